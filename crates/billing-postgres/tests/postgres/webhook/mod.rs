//! `WebhookStore::apply` and the statements of its `WebhookTx`, by concern: the
//! transaction itself (commit, rollback, errors), each table's statements, and what two
//! concurrent transactions do to each other (locks, deadlocks, lost races and reruns).

mod concurrency;
mod statements;
mod transaction;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::page::{PageLimit, PageRequest};
use billing_domain::ports::{
    Applied, InvoiceRepository, LedgerRepository, NewLedgerEntry, OutboxRepository, PaymentQuery,
    PaymentRepository, PlanRepository, RepoError, TenantRepository, WebhookStore, WebhookWork,
    WorkOutcome,
};
use billing_domain::{
    ChargeRef, ConflictField, CustomerRef, EventId, EventOutcome, Invoice, InvoiceId, InvoiceKey,
    InvoiceNumber, InvoiceRef, InvoiceStatus, NotificationId, Payment, PaymentId, PaymentIntentRef,
    PaymentStatus, PlanId, PlanKey, PriceRef, Subscription, SubscriptionRef, SubscriptionStatus,
    TenantId, TenantStatus,
};
use billing_postgres::{PgConfig, PgStore};
use chrono::{DateTime, TimeZone, Utc};

use crate::{new_invoice, new_plan, processed, setup, test_document, usd, work, Committed};

fn with_detail(detail: &str) -> Applied {
    Applied {
        outcome: EventOutcome::Processed,
        detail: Some(detail.to_owned()),
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn event_id(id: &str) -> EventId {
    EventId::parse(id).unwrap()
}

fn entry(id: &str) -> NewLedgerEntry {
    NewLedgerEntry {
        event_id: event_id(id),
        kind: "invoice.paid".into(),
        created: at(0),
        api_version: Some("2026-07-29.dahlia".into()),
        livemode: false,
        received_at: at(5),
        outcome: EventOutcome::Processed,
        payload: format!("{{\"id\":\"{id}\"}}").into(),
        source: billing_domain::EventSource::Webhook,
    }
}

/// Work that only inserts the ledger row and reports whether it was new.
fn insert_only(entry: NewLedgerEntry) -> WebhookWork {
    work(move |tx| {
        Ok(Applied {
            outcome: if tx.insert_event(&entry)? {
                EventOutcome::Processed
            } else {
                EventOutcome::Duplicate
            },
            detail: None,
        })
    })
}

fn subscription(tenant: TenantId, plan: PlanId, stripe_id: &str) -> Subscription {
    Subscription {
        current_period_start: Some(at(0)),
        current_period_end: Some(at(30 * 86_400)),
        subscription_ref: Some(SubscriptionRef::parse(stripe_id).unwrap()),
        customer: Some(CustomerRef::parse("cus_test_1").unwrap()),
        last_event_at: Some(at(0)),
        created_at: at(1),
        updated_at: at(1),
        ..billing_domain::testing::subscription(tenant, plan)
    }
}

fn invoice(tenant: TenantId, number: &str, stripe_id: &str) -> Invoice {
    Invoice {
        number: InvoiceNumber::parse(number).unwrap(),
        amount_due: usd(2900),
        invoice_ref: Some(InvoiceRef::parse(stripe_id).unwrap()),
        last_event_at: Some(at(0)),
        created_at: at(1),
        updated_at: at(1),
        ..billing_domain::testing::invoice(tenant)
    }
}

fn payment(tenant: TenantId, status: PaymentStatus, pi: &str) -> Payment {
    Payment {
        id: PaymentId::new(),
        tenant_id: tenant,
        invoice_id: None,
        amount: usd(2900),
        amount_refunded: usd(0),
        status,
        failure_code: (status == PaymentStatus::Failed).then(|| "card_declined".to_owned()),
        failure_message: None,
        payment_intent: Some(PaymentIntentRef::parse(pi).unwrap()),
        charge: None,
        created_at: at(2),
    }
}

fn payment_failed(tenant: TenantId, key: &str) -> NewNotification {
    NewNotification {
        id: NotificationId::new(),
        dedupe_key: key.to_owned(),
        occurred_at: at(0),
        body: NotificationBody::InvoicePaymentFailed {
            tenant,
            invoice: InvoiceId::new(),
            number: "INV-7".into(),
            invoice_ref: Some(InvoiceRef::parse("in_test_7").unwrap()),
            amount_due: usd(4200),
            attempt: 2,
        },
    }
}

/// A custom error of the work's own, to tell it comes back unchanged.
#[derive(Debug, thiserror::Error)]
#[error("marker {0}")]
struct Marker(u32);
