//! Entity builders for tests, in one place (behind the `testing` feature for other crates'
//! tests): each gives a plain, valid entity that a test adjusts with struct-update syntax
//! (`Invoice { status: InvoiceStatus::Paid, ..testing::invoice(tenant) }`), so that a field
//! added to an entity is added here once, not in every test crate.
#![allow(
    clippy::unwrap_used,
    reason = "the literals below are valid by construction; a test helper may fail loudly"
)]

use chrono::{DateTime, TimeZone, Utc};

use crate::ids::{InvoiceId, PaymentId, PlanId, PriceRef, SubscriptionId, TenantId};
use crate::model::{
    BillingInterval, Features, Invoice, InvoiceNumber, InvoiceStatus, Payment, PaymentStatus, Plan,
    PlanCode, Subscription, SubscriptionStatus, Tenant, TenantStatus,
};
use crate::money::{Currency, Money};

/// The Unix epoch: the builders' every timestamp.
#[must_use]
pub fn epoch() -> DateTime<Utc> {
    Utc.timestamp_opt(0, 0).unwrap()
}

/// `minor` US cents.
#[must_use]
pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

/// A `pending` tenant without a Stripe customer.
#[must_use]
pub fn tenant(id: TenantId) -> Tenant {
    Tenant {
        id,
        name: String::new(),
        status: TenantStatus::Pending,
        customer: None,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

/// The active monthly plan `plan-pro` (price `price_pro`, 49.00 usd, no trial).
#[must_use]
pub fn plan() -> Plan {
    Plan {
        id: PlanId::new(),
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
        features: Features::default(),
        active: true,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

/// An `active` subscription of `tenant` to `plan`, without Stripe references or period.
#[must_use]
pub fn subscription(tenant: TenantId, plan: PlanId) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        plan_id: plan,
        status: SubscriptionStatus::Active,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        canceled_at: None,
        past_due_since: None,
        subscription_ref: None,
        customer: None,
        last_event_at: None,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

/// The `open` invoice `inv-001` of `tenant`: 49.00 usd due, nothing paid, no Stripe ids.
#[must_use]
pub fn invoice(tenant: TenantId) -> Invoice {
    Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant,
        subscription_id: None,
        number: InvoiceNumber::parse("inv-001").unwrap(),
        status: InvoiceStatus::Open,
        amount_due: usd(4900),
        amount_paid: usd(0),
        due_date: None,
        description: None,
        paid_at: None,
        invoice_ref: None,
        payment_intent: None,
        last_event_at: None,
        hosted_invoice_url: None,
        invoice_pdf_url: None,
        payment_intent_canceled: false,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

/// A `succeeded` payment of 49.00 usd by `tenant`, nothing refunded, on no invoice, without
/// Stripe ids.
#[must_use]
pub fn payment(tenant: TenantId) -> Payment {
    Payment {
        id: PaymentId::new(),
        tenant_id: tenant,
        invoice_id: None,
        amount: usd(4900),
        amount_refunded: usd(0),
        status: PaymentStatus::Succeeded,
        failure_code: None,
        failure_message: None,
        payment_intent: None,
        charge: None,
        created_at: epoch(),
    }
}
