//! Stripe's JSON, as far as we read it: lenient serde types for API responses, error
//! bodies and webhook objects.
//!
//! Leniency rules (docs/stripe.md, Wire; docs/contract.md, Calls to Stripe): unknown fields are ignored (serde's default), enums
//! that Stripe may extend are kept as `String`, almost everything is an `Option` (serde
//! reads a missing `Option` field as `None`, so those need no `#[serde(default)]`; the
//! attribute stays on the few required-looking fields a payload may still omit), and
//! expandable fields accept both an id and an expanded object. These types never leave the
//! crate.
//!
//! Shared shapes live here; [`api`] holds API answers and error bodies, [`events`] the
//! webhook envelope and the objects events carry (a new event type's object goes there).

use serde::Deserialize;

mod api;
mod events;

pub(crate) use api::*;
pub(crate) use events::*;

/// An expandable reference: an id string, or the expanded object carrying an `id`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum Expandable {
    /// Not expanded.
    Id(String),
    /// Expanded (or a deleted customer stub).
    Object {
        /// The object's id.
        id: String,
    },
}

impl Expandable {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

/// The metadata keys this service writes; every other key is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(rename = "tenantId")]
    pub(crate) tenant_id: Option<String>,
    #[serde(rename = "planId")]
    pub(crate) plan_id: Option<String>,
    #[serde(rename = "invoiceId")]
    pub(crate) invoice_id: Option<String>,
}

/// A Stripe list (`{"object":"list","data":[…]}`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct List<T> {
    #[serde(default = "Vec::new")]
    pub(crate) data: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { data: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expandable_field_accepts_an_id_or_an_object() {
        let id: Expandable = serde_json::from_str(r#""pi_1""#).unwrap();
        let obj: Expandable =
            serde_json::from_str(r#"{"id":"pi_2","object":"payment_intent","x":[1]}"#).unwrap();

        assert_eq!(id.id(), "pi_1");
        assert_eq!(obj.id(), "pi_2");
    }

    #[test]
    fn metadata_ignores_other_keys_and_null() {
        let m: Option<Metadata> = serde_json::from_str("null").unwrap();
        let m2: Metadata = serde_json::from_str(r#"{"tenantId":"t","other":"x"}"#).unwrap();

        assert!(m.is_none());
        assert_eq!(m2.tenant_id.as_deref(), Some("t"));
        assert_eq!(m2.plan_id, None);
    }
}
