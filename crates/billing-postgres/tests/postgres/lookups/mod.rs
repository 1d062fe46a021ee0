//! `PaymentIntentLookups`, by concern: the queue (request, claim and lease, reschedule,
//! backlog) and the completion that records a PaymentIntent and links its payments.

mod linking;
mod queue;

use std::collections::HashSet;

use billing_domain::ports::{
    InvoiceRepository, Linked, PaymentIntentLookups, RepoError, WebhookStore,
};
use billing_domain::{
    Invoice, InvoiceId, InvoiceKey, InvoiceNumber, InvoiceRef, InvoiceStatus, PaymentIntentRef,
    TenantId,
};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;
use chrono::{DateTime, TimeZone, Utc};

use crate::{new_invoice, processed, setup, usd, work};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn pi(s: &str) -> PaymentIntentRef {
    PaymentIntentRef::parse(s).unwrap()
}

/// A paid Stripe invoice `in_<number>` of `tenant`, naming `payment_intent` if given.
fn paid(tenant: TenantId, number: &str, payment_intent: Option<&str>) -> Invoice {
    Invoice {
        number: InvoiceNumber::parse(number).unwrap(),
        status: InvoiceStatus::Paid,
        amount_due: usd(2900),
        amount_paid: usd(2900),
        paid_at: Some(at(0)),
        invoice_ref: Some(InvoiceRef::parse(format!("in_{number}")).unwrap()),
        payment_intent: payment_intent.map(pi),
        last_event_at: Some(at(0)),
        created_at: at(0),
        updated_at: at(0),
        ..billing_domain::testing::invoice(tenant)
    }
}

/// Saves the invoice and, when `lookup_at` is given, requests its lookup due then, in one
/// webhook transaction (what the domain does for `invoice.paid`).
async fn mirror(store: &PgStore, invoice: &Invoice, lookup_at: Option<DateTime<Utc>>) {
    let invoice = invoice.clone();
    store
        .apply(work(move |tx| {
            tx.ensure_tenant(invoice.tenant_id)?;
            tx.save_invoice(&invoice)?;
            if let Some(due) = lookup_at {
                tx.request_payment_intent_lookup(invoice.id, due)?;
            }
            Ok(processed())
        }))
        .await
        .unwrap();
}

/// Requests a lookup in a webhook transaction of its own.
async fn request(store: &PgStore, invoice: InvoiceId, due: DateTime<Utc>) {
    store
        .apply(work(move |tx| {
            tx.request_payment_intent_lookup(invoice, due)?;
            Ok(processed())
        }))
        .await
        .unwrap();
}

/// A payment of `tenant` for PaymentIntent `pi`, recorded for `invoice` (or none); its id.
fn insert_payment(
    db: &TestDatabase,
    tenant: TenantId,
    invoice: Option<InvoiceId>,
    status: &str,
    pi: &str,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    let invoice = invoice.map_or("NULL".to_owned(), |i| format!("'{i}'"));
    db.execute(&format!(
        "INSERT INTO tenants (id) VALUES ('{tenant}') ON CONFLICT DO NOTHING; \
         INSERT INTO payments (id, tenant_id, invoice_id, amount, currency, status, \
         stripe_payment_intent_id) \
         VALUES ('{id}', '{tenant}', {invoice}, 2900, 'usd', '{status}', '{pi}')"
    ))
    .unwrap();
    id
}

/// Fails the test unless the SQL condition holds.
fn assert_sql(db: &TestDatabase, condition: &str) {
    let checked = db.execute(&format!(
        "DO $$ BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION 'condition failed'; END IF; END $$"
    ));
    assert!(checked.is_ok(), "{condition}: {checked:?}");
}

/// The invoice's lookup is closed (no due time, no error) and nothing is left to claim.
async fn assert_lookup_closed(db: &TestDatabase, store: &PgStore, invoice: InvoiceId) {
    assert_sql(
        db,
        &invoice_where(
            invoice,
            "payment_intent_lookup_at IS NULL AND payment_intent_lookup_error IS NULL",
        ),
    );
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(store
        .claim_due(at(100), at(200), 10)
        .await
        .unwrap()
        .is_empty());
}

/// A condition on one invoice's row.
fn invoice_where(invoice: InvoiceId, condition: &str) -> String {
    format!("EXISTS (SELECT 1 FROM invoices WHERE id = '{invoice}' AND {condition})")
}

fn ts(t: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", t.to_rfc3339())
}

async fn stored(store: &PgStore, id: InvoiceId) -> Invoice {
    InvoiceRepository::get(store, &InvoiceKey::Id(id))
        .await
        .unwrap()
        .unwrap()
}
