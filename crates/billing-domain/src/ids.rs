//! Identifiers: our own UUID ids and the payment provider's opaque references.
//!
//! Each id is its own type so that a tenant id can never be passed where an invoice id is
//! expected. Provider references (Stripe's `cus_…`, `sub_…`, …) are kept opaque: the
//! domain checks only that they are non-empty, printable and of bounded length, and never
//! interprets their prefixes.

use std::fmt;

use thiserror::Error;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The inner UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses the hyphenated (or simple) textual form.
            ///
            /// # Errors
            /// [`InvalidId`] when `s` is not a UUID.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId {
                    kind: stringify!($name),
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

uuid_id!(
    /// A tenant of the platform.
    TenantId
);
uuid_id!(
    /// A plan a tenant can subscribe to.
    PlanId
);
uuid_id!(
    /// A tenant's subscription.
    SubscriptionId
);
uuid_id!(
    /// An invoice.
    InvoiceId
);
uuid_id!(
    /// A recorded payment (or failed payment attempt).
    PaymentId
);
uuid_id!(
    /// A notification in the outbox.
    NotificationId
);
// ---- refunds and disputes (issue 14) ----
uuid_id!(
    /// A refund of a payment.
    RefundId
);
uuid_id!(
    /// A dispute (chargeback or inquiry) on a payment.
    DisputeId
);

// ---- billing events out (issue 16) ----
uuid_id!(
    /// A billing event sent to the platform's other services.
    BillingEventId
);
uuid_id!(
    /// One subscriber's delivery of a billing event (what the outbox admin retries).
    BillingDeliveryId
);

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a valid {kind}")]
pub struct InvalidId {
    /// Which id type was expected.
    pub kind: &'static str,
}

/// The longest provider reference we accept (Stripe documents ids up to 255 characters;
/// its parameters accept up to 5000, so this is conservative but real).
pub const MAX_REF_LEN: usize = 255;

macro_rules! external_ref {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a provider reference.
            ///
            /// # Errors
            /// [`InvalidId`] when the value is empty, longer than [`MAX_REF_LEN`], or holds
            /// whitespace or control characters.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                let ok = !s.is_empty()
                    && s.len() <= MAX_REF_LEN
                    && s.chars().all(|c| c.is_ascii_graphic());
                if ok {
                    Ok(Self(s))
                } else {
                    Err(InvalidId { kind: stringify!($name) })
                }
            }

            /// The reference as the provider spells it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

external_ref!(
    /// The provider's customer id (Stripe `cus_…`).
    CustomerRef
);
external_ref!(
    /// The provider's price id (Stripe `price_…`).
    PriceRef
);
external_ref!(
    /// The provider's subscription id (Stripe `sub_…`).
    SubscriptionRef
);
external_ref!(
    /// The provider's invoice id (Stripe `in_…`).
    InvoiceRef
);
external_ref!(
    /// The provider's payment intent id (Stripe `pi_…`).
    PaymentIntentRef
);
external_ref!(
    /// The provider's charge id (Stripe `ch_…`).
    ChargeRef
);
external_ref!(
    /// The provider's checkout session id (Stripe `cs_…`).
    CheckoutSessionRef
);
external_ref!(
    /// The provider's event id (Stripe `evt_…`): the key of the event ledger.
    EventId
);
// ---- refunds and disputes (issue 14) ----
external_ref!(
    /// The provider's refund id (Stripe `re_…`).
    RefundRef
);
external_ref!(
    /// The provider's dispute id (Stripe `dp_…`, `du_…`).
    DisputeRef
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip_through_their_text_form() {
        let id = TenantId::new();

        let parsed = TenantId::parse(&id.to_string()).unwrap();

        assert_eq!(parsed, id);
    }

    #[test]
    fn a_non_uuid_is_rejected_with_the_id_kind() {
        let err = InvoiceId::parse("inv-001").unwrap_err();

        assert_eq!(err.kind, "InvoiceId");
    }

    #[test]
    fn provider_refs_reject_empty_whitespace_and_oversized_values() {
        assert!(CustomerRef::parse("cus_123").is_ok());
        assert!(CustomerRef::parse("").is_err());
        assert!(CustomerRef::parse("cus 123").is_err());
        assert!(CustomerRef::parse("cus_\n").is_err());
        assert!(CustomerRef::parse("c".repeat(MAX_REF_LEN + 1)).is_err());
    }
}
