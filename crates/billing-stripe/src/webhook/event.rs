//! A verified Stripe event mapped to the domain's [`ProviderEvent`] (docs/stripe.md, Events): the
//! envelope first, then `data.object` typed by the event type.
//!
//! A new event type is one [`EventKind`] variant, its type string and its `match` arm in
//! `parse_event`. No input, however malformed, makes these functions panic.

use std::fmt;

use billing_domain::ids::{
    ChargeRef, CheckoutSessionRef, CustomerRef, EventId, InvoiceRef, PaymentIntentRef, PriceRef,
    SubscriptionRef,
};
use billing_domain::model::SubscriptionStatus;
use billing_domain::webhook::{
    CheckoutCompleted, CustomerDeleted, InvalidPayload, InvoiceSnapshot, PaymentEvent,
    PaymentIntentSnapshot, ProviderEvent, SubscriptionSnapshot, TenantHints,
};
// ---- refunds and disputes (issue 14) ----
use billing_domain::ids::{DisputeRef, RefundRef};
use billing_domain::model::{DisputeStatus, RefundStatus};
use billing_domain::webhook::{ChargeRefunded, DisputeSnapshot, RefundSnapshot};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::wire::{self, Expandable, Metadata};

/// The event types this service acts on. Adding one means adding a `match` arm below:
/// there is deliberately no `_` arm, so the compiler asks for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    CheckoutSessionCompleted,
    InvoicePaymentSucceeded,
    InvoicePaymentFailed,
    SubscriptionUpdated,
    SubscriptionDeleted,
    PaymentIntentSucceeded,
    PaymentIntentFailed,
    // ---- the lifecycle beyond the seven (issue 14) ----
    InvoicePaid,
    InvoiceCreated,
    InvoiceFinalized,
    InvoiceUpdated,
    InvoiceVoided,
    InvoiceMarkedUncollectible,
    InvoicePaymentActionRequired,
    SubscriptionCreated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionTrialWillEnd,
    CheckoutSessionExpired,
    CheckoutAsyncPaymentSucceeded,
    CheckoutAsyncPaymentFailed,
    PaymentIntentCanceled,
    CustomerDeleted,
    // ---- end of the lifecycle block ----
    // ---- refunds and disputes (issue 14) ----
    ChargeRefunded,
    RefundChanged,
    DisputeChanged,
    Unknown,
}

impl EventKind {
    fn from_type(kind: &str) -> Self {
        match kind {
            "checkout.session.completed" => Self::CheckoutSessionCompleted,
            "invoice.payment_succeeded" => Self::InvoicePaymentSucceeded,
            "invoice.payment_failed" => Self::InvoicePaymentFailed,
            "customer.subscription.updated" => Self::SubscriptionUpdated,
            "customer.subscription.deleted" => Self::SubscriptionDeleted,
            "payment_intent.succeeded" => Self::PaymentIntentSucceeded,
            "payment_intent.payment_failed" => Self::PaymentIntentFailed,
            // ---- the lifecycle beyond the seven (issue 14) ----
            "invoice.paid" => Self::InvoicePaid,
            "invoice.created" => Self::InvoiceCreated,
            "invoice.finalized" => Self::InvoiceFinalized,
            "invoice.updated" => Self::InvoiceUpdated,
            "invoice.voided" => Self::InvoiceVoided,
            "invoice.marked_uncollectible" => Self::InvoiceMarkedUncollectible,
            "invoice.payment_action_required" => Self::InvoicePaymentActionRequired,
            "customer.subscription.created" => Self::SubscriptionCreated,
            "customer.subscription.paused" => Self::SubscriptionPaused,
            "customer.subscription.resumed" => Self::SubscriptionResumed,
            "customer.subscription.trial_will_end" => Self::SubscriptionTrialWillEnd,
            "checkout.session.expired" => Self::CheckoutSessionExpired,
            "checkout.session.async_payment_succeeded" => Self::CheckoutAsyncPaymentSucceeded,
            "checkout.session.async_payment_failed" => Self::CheckoutAsyncPaymentFailed,
            "payment_intent.canceled" => Self::PaymentIntentCanceled,
            "customer.deleted" => Self::CustomerDeleted,
            // ---- end of the lifecycle block ----
            // ---- refunds and disputes (issue 14) ----
            "charge.refunded" => Self::ChargeRefunded,
            // `charge.refund.updated` is the older name of `refund.updated`.
            "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
                Self::RefundChanged
            }
            "charge.dispute.created"
            | "charge.dispute.updated"
            | "charge.dispute.funds_withdrawn"
            | "charge.dispute.funds_reinstated"
            | "charge.dispute.closed" => Self::DisputeChanged,
            _ => Self::Unknown,
        }
    }
}

fn invalid(what: impl fmt::Display) -> InvalidPayload {
    InvalidPayload(what.to_string())
}

/// Parses a verified body once: the envelope with `data.object` kept as raw text, then
/// that text straight into the typed object its event type calls for.
pub(super) fn parse_event(payload: &[u8]) -> Result<ProviderEvent, InvalidPayload> {
    let envelope: wire::EventEnvelope<'_> = serde_json::from_slice(payload)
        .map_err(|e| invalid(format_args!("not a Stripe event ({})", describe(&e))))?;
    let id = EventId::parse(envelope.id).map_err(|e| invalid(format_args!("event id: {e}")))?;
    let created = timestamp(envelope.created, "created")?;
    // Stripe's types are dotted lower-case words; anything else (a NUL, a megabyte of text)
    // would only end up in the ledger and the metrics' labels.
    if !is_event_type(&envelope.kind) {
        return Err(invalid("event type is not a Stripe event type"));
    }
    if envelope
        .api_version
        .as_deref()
        .is_some_and(|v| !is_api_version(v))
    {
        return Err(invalid("api_version is not a Stripe API version"));
    }
    let kind = EventKind::from_type(&envelope.kind);
    let object = || {
        envelope
            .data
            .as_ref()
            .and_then(|d| d.object)
            .map(serde_json::value::RawValue::get)
            .ok_or_else(|| invalid("event without data.object"))
    };
    let event = match kind {
        EventKind::CheckoutSessionCompleted => {
            PaymentEvent::CheckoutCompleted(checkout(typed(object()?)?)?)
        }
        EventKind::InvoicePaymentSucceeded => {
            PaymentEvent::InvoicePaid(invoice(typed(object()?)?)?)
        }
        EventKind::InvoicePaymentFailed => {
            PaymentEvent::InvoicePaymentFailed(invoice(typed(object()?)?)?)
        }
        EventKind::SubscriptionUpdated => {
            PaymentEvent::SubscriptionUpdated(subscription(typed(object()?)?)?)
        }
        EventKind::SubscriptionDeleted => {
            PaymentEvent::SubscriptionDeleted(subscription(typed(object()?)?)?)
        }
        EventKind::PaymentIntentSucceeded => {
            PaymentEvent::PaymentSucceeded(payment_intent(typed(object()?)?)?)
        }
        EventKind::PaymentIntentFailed => {
            PaymentEvent::PaymentFailed(payment_intent(typed(object()?)?)?)
        }
        // ---- the lifecycle beyond the seven (issue 14) ----
        // `invoice.paid` and `invoice.payment_succeeded` report one payment; the rules
        // make the second change nothing.
        EventKind::InvoicePaid => PaymentEvent::InvoicePaid(invoice(typed(object()?)?)?),
        EventKind::InvoiceCreated => PaymentEvent::InvoiceCreated(invoice(typed(object()?)?)?),
        EventKind::InvoiceFinalized => PaymentEvent::InvoiceFinalized(invoice(typed(object()?)?)?),
        EventKind::InvoiceUpdated => PaymentEvent::InvoiceUpdated(invoice(typed(object()?)?)?),
        EventKind::InvoiceVoided => PaymentEvent::InvoiceVoided(invoice(typed(object()?)?)?),
        EventKind::InvoiceMarkedUncollectible => {
            PaymentEvent::InvoiceMarkedUncollectible(invoice(typed(object()?)?)?)
        }
        EventKind::InvoicePaymentActionRequired => {
            PaymentEvent::InvoicePaymentActionRequired(invoice(typed(object()?)?)?)
        }
        EventKind::SubscriptionCreated => {
            PaymentEvent::SubscriptionCreated(subscription(typed(object()?)?)?)
        }
        EventKind::SubscriptionPaused => {
            PaymentEvent::SubscriptionPaused(subscription(typed(object()?)?)?)
        }
        EventKind::SubscriptionResumed => {
            PaymentEvent::SubscriptionResumed(subscription(typed(object()?)?)?)
        }
        EventKind::SubscriptionTrialWillEnd => {
            PaymentEvent::SubscriptionTrialWillEnd(subscription(typed(object()?)?)?)
        }
        EventKind::CheckoutSessionExpired => {
            PaymentEvent::CheckoutExpired(checkout(typed(object()?)?)?)
        }
        EventKind::CheckoutAsyncPaymentSucceeded => {
            PaymentEvent::CheckoutAsyncPaymentSucceeded(checkout(typed(object()?)?)?)
        }
        EventKind::CheckoutAsyncPaymentFailed => {
            PaymentEvent::CheckoutAsyncPaymentFailed(checkout(typed(object()?)?)?)
        }
        EventKind::PaymentIntentCanceled => {
            PaymentEvent::PaymentIntentCanceled(payment_intent(typed(object()?)?)?)
        }
        EventKind::CustomerDeleted => PaymentEvent::CustomerDeleted(customer(typed(object()?)?)?),
        // ---- end of the lifecycle block ----
        // ---- refunds and disputes (issue 14) ----
        EventKind::ChargeRefunded => PaymentEvent::ChargeRefunded(charge(typed(object()?)?)?),
        EventKind::RefundChanged => {
            let r: wire::RefundObject = typed(object()?)?;
            expect_object(r.object.as_deref(), "refund")?;
            PaymentEvent::RefundChanged(refund(r, None)?)
        }
        EventKind::DisputeChanged => PaymentEvent::DisputeChanged(dispute(typed(object()?)?)?),
        EventKind::Unknown => PaymentEvent::Ignored,
    };
    Ok(ProviderEvent {
        id,
        kind: envelope.kind,
        created,
        api_version: envelope.api_version,
        livemode: envelope.livemode.unwrap_or(false),
        event,
    })
}

fn is_event_type(kind: &str) -> bool {
    (1..=100).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

fn is_api_version(version: &str) -> bool {
    (1..=64).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// An event's object must be of the kind its type announces (a payment intent delivered
/// as a subscription update is not a subscription). Absent means not said: accepted.
fn expect_object(actual: Option<&str>, expected: &str) -> Result<(), InvalidPayload> {
    match actual {
        Some(object) if object != expected => Err(invalid(format_args!(
            "data.object is a {}, not a {expected}",
            object
                .chars()
                .filter(char::is_ascii_graphic)
                .take(40)
                .collect::<String>()
        ))),
        _ => Ok(()),
    }
}

/// Free text from Stripe (decline messages) without the NUL that PostgreSQL refuses.
fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn typed<T: DeserializeOwned>(raw: &str) -> Result<T, InvalidPayload> {
    serde_json::from_str(raw)
        .map_err(|e| invalid(format_args!("unreadable data.object ({})", describe(&e))))
}

/// A JSON error by position only: the body is never quoted into messages or logs.
fn describe(e: &serde_json::Error) -> String {
    format!(
        "{:?} at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn timestamp(secs: i64, field: &str) -> Result<DateTime<Utc>, InvalidPayload> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| invalid(format_args!("{field} out of range")))
}

fn opt_timestamp(secs: Option<i64>, field: &str) -> Result<Option<DateTime<Utc>>, InvalidPayload> {
    secs.map(|s| timestamp(s, field)).transpose()
}

macro_rules! refs {
    ($($fn_name:ident => $ty:ty),* $(,)?) => {$(
        fn $fn_name(value: Option<&str>, field: &str) -> Result<Option<$ty>, InvalidPayload> {
            value
                .map(|v| <$ty>::parse(v).map_err(|e| invalid(format_args!("{field}: {e}"))))
                .transpose()
        }
    )*};
}

refs!(
    customer_ref => CustomerRef,
    subscription_ref => SubscriptionRef,
    payment_intent_ref => PaymentIntentRef,
    charge_ref => ChargeRef,
    price_ref => PriceRef,
);

// ---- refunds and disputes (issue 14) ----

/// A refund; `charge` fills in the charge a charge's `refunds` list leaves implicit.
pub(crate) fn refund(
    r: wire::RefundObject,
    charge: Option<&ChargeRef>,
) -> Result<RefundSnapshot, InvalidPayload> {
    let own = charge_ref(id_of(r.charge.as_ref()), "charge")?;
    Ok(RefundSnapshot {
        refund: RefundRef::parse(r.id).map_err(|e| invalid(format_args!("refund id: {e}")))?,
        charge: own.or_else(|| charge.cloned()),
        payment_intent: payment_intent_ref(id_of(r.payment_intent.as_ref()), "payment_intent")?,
        amount: r.amount,
        currency: r.currency,
        status: RefundStatus::parse(&r.status),
        status_raw: r.status,
        reason: r.reason.as_deref().map(text),
    })
}

fn charge(c: wire::ChargeObject) -> Result<ChargeRefunded, InvalidPayload> {
    expect_object(c.object.as_deref(), "charge")?;
    let id = ChargeRef::parse(c.id).map_err(|e| invalid(format_args!("id: {e}")))?;
    let refunds = c
        .refunds
        .map(|l| l.data)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            expect_object(r.object.as_deref(), "refund")?;
            refund(r, Some(&id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChargeRefunded {
        payment_intent: payment_intent_ref(id_of(c.payment_intent.as_ref()), "payment_intent")?,
        amount_refunded: c.amount_refunded,
        refunds,
        charge: id,
    })
}

fn dispute(d: wire::DisputeObject) -> Result<DisputeSnapshot, InvalidPayload> {
    expect_object(d.object.as_deref(), "dispute")?;
    Ok(DisputeSnapshot {
        dispute: DisputeRef::parse(d.id).map_err(|e| invalid(format_args!("id: {e}")))?,
        charge: charge_ref(id_of(d.charge.as_ref()), "charge")?,
        payment_intent: payment_intent_ref(id_of(d.payment_intent.as_ref()), "payment_intent")?,
        amount: d.amount,
        currency: d.currency,
        reason: text(&d.reason),
        status: DisputeStatus::parse(&d.status),
        status_raw: d.status,
    })
}

fn id_of(e: Option<&Expandable>) -> Option<&str> {
    e.map(Expandable::id)
}

fn meta(m: Option<&Metadata>) -> Metadata {
    m.cloned().unwrap_or_default()
}

pub(crate) fn checkout(
    s: wire::CheckoutSessionObject,
) -> Result<CheckoutCompleted, InvalidPayload> {
    expect_object(s.object.as_deref(), "checkout.session")?;
    let metadata = meta(s.metadata.as_ref());
    let customer = customer_ref(id_of(s.customer.as_ref()), "customer")?;
    Ok(CheckoutCompleted {
        session: CheckoutSessionRef::parse(s.id).map_err(|e| invalid(format_args!("id: {e}")))?,
        tenant: TenantHints {
            metadata: metadata.tenant_id,
            client_reference: s.client_reference_id,
            subscription_metadata: None,
            customer: customer.clone(),
        },
        plan: metadata.plan_id,
        customer,
        subscription: subscription_ref(id_of(s.subscription.as_ref()), "subscription")?,
        // Fulfil on `paid` and `no_payment_required` (a trial) only; `unpaid`, or a value
        // this version does not know, waits for the subscription to turn active. A
        // payload without the field (never seen from Stripe) is taken as paid.
        awaiting_payment: s
            .payment_status
            .as_deref()
            .is_some_and(|p| !matches!(p, "paid" | "no_payment_required")),
    })
}

pub(crate) fn invoice(i: wire::InvoiceObject) -> Result<InvoiceSnapshot, InvalidPayload> {
    expect_object(i.object.as_deref(), "invoice")?;
    let metadata = meta(i.metadata.as_ref());
    // Dahlia/basil: `parent.subscription_details`; older: top-level fields.
    let details = i
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref());
    let subscription = details
        .and_then(|d| d.subscription.as_ref())
        .or(i.subscription.as_ref());
    let subscription_metadata = details
        .and_then(|d| d.metadata.as_ref())
        .or_else(|| {
            i.subscription_details
                .as_ref()
                .and_then(|d| d.metadata.as_ref())
        })
        .and_then(|m| m.tenant_id.clone());
    let payment_intent = wire::first_payment_intent(i.payments.as_ref(), i.payment_intent.as_ref());
    let customer = customer_ref(id_of(i.customer.as_ref()), "customer")?;
    Ok(InvoiceSnapshot {
        invoice: InvoiceRef::parse(i.id).map_err(|e| invalid(format_args!("id: {e}")))?,
        number: i.number,
        tenant: TenantHints {
            metadata: metadata.tenant_id,
            client_reference: None,
            subscription_metadata,
            customer,
        },
        local_invoice: metadata.invoice_id,
        subscription: subscription_ref(id_of(subscription), "subscription")?,
        amount_due: i.amount_due,
        amount_paid: i.amount_paid,
        currency: i.currency,
        paid_at: opt_timestamp(
            i.status_transitions.as_ref().and_then(|s| s.paid_at),
            "status_transitions.paid_at",
        )?,
        attempt_count: i.attempt_count,
        payment_intent: payment_intent_ref(payment_intent, "payment_intent")?,
        due_date: opt_timestamp(i.due_date, "due_date")?,
        created: opt_timestamp(i.created, "created")?,
        status: i.status.map(|s| text(&s)),
        hosted_invoice_url: i.hosted_invoice_url.map(|u| text(&u)),
        invoice_pdf_url: i.invoice_pdf.map(|u| text(&u)),
        paid_out_of_band: i.paid_out_of_band.unwrap_or(false),
    })
}

pub(crate) fn subscription(
    s: wire::SubscriptionObject,
) -> Result<SubscriptionSnapshot, InvalidPayload> {
    expect_object(s.object.as_deref(), "subscription")?;
    let metadata = meta(s.metadata.as_ref());
    let item = s.items.as_ref().and_then(|l| l.data.first());
    // Basil moved the period onto the items; older payloads have it at the top level.
    let start = item
        .and_then(|i| i.current_period_start)
        .or(s.current_period_start);
    let end = item
        .and_then(|i| i.current_period_end)
        .or(s.current_period_end);
    let customer = customer_ref(id_of(s.customer.as_ref()), "customer")?;
    Ok(SubscriptionSnapshot {
        subscription: SubscriptionRef::parse(s.id).map_err(|e| invalid(format_args!("id: {e}")))?,
        customer: customer.clone(),
        tenant: TenantHints {
            metadata: metadata.tenant_id,
            client_reference: None,
            subscription_metadata: None,
            customer,
        },
        status: SubscriptionStatus::parse(&s.status),
        status_raw: s.status,
        price: price_ref(
            id_of(item.and_then(|i| i.price.as_ref())),
            "items.data[0].price",
        )?,
        plan: metadata.plan_id,
        current_period_start: opt_timestamp(start, "current_period_start")?,
        current_period_end: opt_timestamp(end, "current_period_end")?,
        cancel_at_period_end: s.cancel_at_period_end.unwrap_or(false),
        canceled_at: opt_timestamp(s.canceled_at, "canceled_at")?,
        ended_at: opt_timestamp(s.ended_at, "ended_at")?,
        trial_end: opt_timestamp(s.trial_end, "trial_end")?,
    })
}

fn customer(c: wire::CustomerObject) -> Result<CustomerDeleted, InvalidPayload> {
    expect_object(c.object.as_deref(), "customer")?;
    let customer = CustomerRef::parse(c.id).map_err(|e| invalid(format_args!("id: {e}")))?;
    Ok(CustomerDeleted {
        tenant: TenantHints {
            metadata: meta(c.metadata.as_ref()).tenant_id,
            client_reference: None,
            subscription_metadata: None,
            customer: Some(customer.clone()),
        },
        customer,
    })
}

fn payment_intent(p: wire::PaymentIntentObject) -> Result<PaymentIntentSnapshot, InvalidPayload> {
    expect_object(p.object.as_deref(), "payment_intent")?;
    let metadata = meta(p.metadata.as_ref());
    let error = p.last_payment_error.as_ref();
    let charge = p
        .latest_charge
        .as_ref()
        .or_else(|| error.and_then(|e| e.charge.as_ref()));
    let customer = customer_ref(id_of(p.customer.as_ref()), "customer")?;
    Ok(PaymentIntentSnapshot {
        payment_intent: PaymentIntentRef::parse(p.id)
            .map_err(|e| invalid(format_args!("id: {e}")))?,
        amount: p.amount,
        amount_received: p.amount_received,
        currency: p.currency,
        customer: customer.clone(),
        tenant: TenantHints {
            metadata: metadata.tenant_id,
            client_reference: None,
            subscription_metadata: None,
            customer,
        },
        local_invoice: metadata.invoice_id,
        charge: charge_ref(id_of(charge), "latest_charge")?,
        failure_code: error
            .and_then(|e| e.decline_code.as_deref().or(e.code.as_deref()))
            .map(text),
        failure_message: error.and_then(|e| e.message.as_deref()).map(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_string_maps_to_its_kind_and_others_to_unknown() {
        assert_eq!(
            EventKind::from_type("invoice.payment_failed"),
            EventKind::InvoicePaymentFailed
        );
        assert_eq!(EventKind::from_type("invoice.paid"), EventKind::InvoicePaid);
        assert_eq!(
            EventKind::from_type("customer.subscription.paused"),
            EventKind::SubscriptionPaused
        );
        assert_eq!(EventKind::from_type("invoice.upcoming"), EventKind::Unknown);
        assert_eq!(
            EventKind::from_type("charge.refund.updated"),
            EventKind::RefundChanged
        );
        assert_eq!(
            EventKind::from_type("charge.dispute.funds_reinstated"),
            EventKind::DisputeChanged
        );
        assert_eq!(EventKind::from_type(""), EventKind::Unknown);
    }
}
