//! Tests of the PostgreSQL adapter against a real server (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test owns a random database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly, like the tests themselves"
)]

mod catchup;
mod checkout_sessions;
mod invoices;
mod ledger;
mod lookups;
mod migrations;
mod outbox;
mod payments;
mod plans;
mod refunds;
mod subscriptions;
mod tenants;
mod webhook;

use billing_domain::notification::NewNotification;
use billing_domain::ports::{Applied, RepoError, WebhookTx, WebhookWork, WorkOutcome};
use billing_domain::EventOutcome;
use billing_domain::{
    BillingInterval, Currency, InvoiceNumber, Money, NewInvoice, NewPlan, PlanCode, PriceRef,
    TenantId,
};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;

/// Webhook transaction work from a closure that decides its event.
pub fn work<F>(f: F) -> WebhookWork
where
    F: Fn(&mut dyn WebhookTx) -> Result<Applied, RepoError> + Send + Sync + 'static,
{
    Box::new(move |tx| f(tx).map(WorkOutcome::Applied))
}

/// What work that decided its event came to.
pub trait Committed {
    /// The decision; panics on a same-second tie, which only a test that says so returns.
    fn committed(self) -> Applied;
}

impl Committed for WorkOutcome {
    fn committed(self) -> Applied {
        let decided = match self {
            WorkOutcome::Applied(applied) => Some(applied),
            WorkOutcome::SameSecondTie(_) => None,
        };
        decided.expect("a decision, not a same-second tie")
    }
}

/// The outcome of work that applied its event.
pub fn processed() -> Applied {
    Applied {
        outcome: EventOutcome::Processed,
        detail: None,
    }
}

/// The document the tests' stores render notifications as: every fact of the
/// notification, so that a test can tell which one was stored. The wire format is the
/// notifier's (`billing_notifier::render_document`), tested byte for byte there.
pub fn test_document(
    n: &NewNotification,
) -> Result<String, Box<dyn std::error::Error + Send + Sync + 'static>> {
    Ok(format!("{n:?}"))
}

/// A migrated database and a store on it.
pub fn setup() -> (TestDatabase, PgStore) {
    let db = TestDatabase::create().expect("test database");
    let store = db.store().with_notification_format(test_document);
    (db, store)
}

/// `minor` US cents.
pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

/// A monthly $29 plan without trial.
pub fn new_plan(code: &str, price: &str) -> NewPlan {
    NewPlan {
        code: PlanCode::parse(code).unwrap(),
        name: format!("Plan {code}"),
        price: PriceRef::parse(price).unwrap(),
        amount: usd(2900),
        interval: BillingInterval::Month,
        trial_days: None,
        features: billing_domain::Features::default(),
    }
}

/// An invoice in dollars with no due date or description.
pub fn new_invoice(tenant: TenantId, number: &str, minor: i64) -> NewInvoice {
    NewInvoice {
        tenant_id: tenant,
        number: InvoiceNumber::parse(number).unwrap(),
        amount_due: usd(minor),
        due_date: None,
        description: None,
    }
}
