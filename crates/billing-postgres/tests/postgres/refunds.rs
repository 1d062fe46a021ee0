//! Refunds and disputes (issue 14) through the real rules and the real database: the
//! events are applied by `BillingService::receive_webhook` (its verifier a stand-in that
//! hands back the event a test registered) on a `PgStore`, so that the ledger, the row
//! locks on the payment, the refund and dispute upserts and the outbox are PostgreSQL's.
//! The events carry the values of the 2026 samples in
//! `billing-stripe/tests/fixtures/events/` (`charge.refunded.json`, `refund.*.json`,
//! `charge.dispute.*.json`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use billing_domain::page::{PageLimit, PageRequest};
use billing_domain::ports::{
    DisputeQuery, MockPaymentProvider, PaymentQuery, PaymentRepository, WebhookVerifier,
};
use billing_domain::service::WebhookReceipt;
use billing_domain::webhook::{
    ChargeRefunded, DisputeSnapshot, InvalidPayload, PaymentEvent, PaymentIntentSnapshot,
    ProviderEvent, RefundSnapshot, SignatureError, TenantHints,
};
use billing_domain::{
    BillingApi, BillingService, BillingSettings, ChargeRef, DisputeRef, DisputeStatus, EventId,
    EventOutcome, Payment, PaymentDetail, PaymentIntentRef, PaymentStatus, Ports, RefundRef,
    RefundStatus, TenantId,
};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;
use chrono::{DateTime, TimeZone, Utc};

use crate::{setup, usd};

const CHARGE: &str = "ch_1RqRVlHx4KpL29aT8iUtRSB7";
const PAYMENT_INTENT: &str = "pi_1RqWFLHx4KpL29aTXSrZ0rcy";
const REFUND_1: &str = "re_1RqH2aHx4KpL29aTg1bJ5rEe";
const REFUND_2: &str = "re_1RqH9cHx4KpL29aTq4Zk2wPa";
const DISPUTE: &str = "dp_1RqJ4eHx4KpL29aTn3Vb8xCd";

/// Hands back the event registered under the body's text (its event id).
#[derive(Default, Clone)]
struct Registered(Arc<Mutex<HashMap<String, ProviderEvent>>>);

impl WebhookVerifier for Registered {
    fn verify(
        &self,
        _payload: &[u8],
        _signature: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        Ok(())
    }

    fn parse(&self, payload: &[u8]) -> Result<ProviderEvent, InvalidPayload> {
        let key = String::from_utf8_lossy(payload).into_owned();
        self.0
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .ok_or_else(|| InvalidPayload(format!("no event {key}")))
    }
}

struct Harness {
    _db: TestDatabase,
    store: PgStore,
    service: Arc<BillingService>,
    events: Registered,
    tenant: TenantId,
}

impl Harness {
    fn new() -> Self {
        let (db, store) = setup();
        let shared = Arc::new(store.clone());
        let events = Registered::default();
        let service = BillingService::new(
            Ports {
                tenants: shared.clone(),
                plans: shared.clone(),
                subscriptions: shared.clone(),
                invoices: shared.clone(),
                payments: shared.clone(),
                ledger: shared.clone(),
                health: shared.clone(),
                webhooks: shared.clone(),
                checkout_sessions: shared,
                provider: Arc::new(MockPaymentProvider::new()),
                verifier: Arc::new(events.clone()),
                clock: Arc::new(billing_domain::ports::SystemClock),
            },
            BillingSettings::default(),
        );
        Self {
            _db: db,
            store,
            service: Arc::new(service),
            events,
            tenant: TenantId::new(),
        }
    }

    /// Delivers `event` as Stripe's webhook would.
    async fn deliver(&self, event: &ProviderEvent) -> WebhookReceipt {
        self.events
            .0
            .lock()
            .unwrap()
            .insert(event.id.to_string(), event.clone());
        self.service
            .receive_webhook(event.id.as_str().as_bytes(), Some("t=1,v1=00".into()))
            .await
            .unwrap()
    }

    /// `payment_intent.succeeded` of the sample: a $49 payment with its charge.
    async fn paid(&self) -> Payment {
        let receipt = self
            .deliver(&event(
                "evt_1RqF0hHx4KpL29aThXHsP9po",
                "payment_intent.succeeded",
                0,
                PaymentEvent::PaymentSucceeded(PaymentIntentSnapshot {
                    payment_intent: PaymentIntentRef::parse(PAYMENT_INTENT).unwrap(),
                    amount: 4900,
                    amount_received: 4900,
                    currency: "usd".into(),
                    customer: None,
                    tenant: TenantHints {
                        metadata: Some(self.tenant.to_string()),
                        ..TenantHints::default()
                    },
                    local_invoice: None,
                    charge: Some(ChargeRef::parse(CHARGE).unwrap()),
                    failure_code: None,
                    failure_message: None,
                }),
            ))
            .await;
        assert_eq!(receipt.outcome, EventOutcome::Processed);
        let page = self
            .store
            .list(
                PaymentQuery {
                    tenant: Some(self.tenant),
                    invoice: None,
                },
                PageRequest {
                    after: None,
                    limit: PageLimit::default(),
                },
            )
            .await
            .unwrap();
        page.items[0].clone()
    }

    async fn detail(&self, payment: &Payment) -> PaymentDetail {
        self.store.get(payment.id).await.unwrap().unwrap()
    }

    /// The notifications the outbox holds, by type.
    fn notifications(&self) -> Vec<String> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Kind {
            #[diesel(sql_type = diesel::sql_types::Text)]
            kind: String,
        }
        let mut conn = PgConnection::establish(self._db.url()).unwrap();
        diesel::sql_query("SELECT kind FROM notifications ORDER BY created_at")
            .load::<Kind>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|k| k.kind)
            .collect()
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_786_530_131 + secs, 0).unwrap()
}

fn event(id: &str, kind: &str, created: i64, payload: PaymentEvent) -> ProviderEvent {
    ProviderEvent {
        id: EventId::parse(id).unwrap(),
        kind: kind.into(),
        created: at(created),
        api_version: Some("2026-07-29.dahlia".into()),
        livemode: false,
        event: payload,
    }
}

fn refund(id: &str, amount: i64, status: &str) -> RefundSnapshot {
    RefundSnapshot {
        refund: RefundRef::parse(id).unwrap(),
        charge: Some(ChargeRef::parse(CHARGE).unwrap()),
        payment_intent: Some(PaymentIntentRef::parse(PAYMENT_INTENT).unwrap()),
        amount,
        currency: "usd".into(),
        status: RefundStatus::parse(status),
        status_raw: status.into(),
        reason: Some("requested_by_customer".into()),
    }
}

fn charge_refunded(refunds: Vec<RefundSnapshot>) -> PaymentEvent {
    PaymentEvent::ChargeRefunded(ChargeRefunded {
        charge: ChargeRef::parse(CHARGE).unwrap(),
        payment_intent: Some(PaymentIntentRef::parse(PAYMENT_INTENT).unwrap()),
        amount_refunded: refunds
            .iter()
            .filter(|r| r.status_raw != "failed")
            .map(|r| r.amount)
            .sum(),
        refunds,
    })
}

fn dispute(status: &str) -> PaymentEvent {
    PaymentEvent::DisputeChanged(DisputeSnapshot {
        dispute: DisputeRef::parse(DISPUTE).unwrap(),
        charge: Some(ChargeRef::parse(CHARGE).unwrap()),
        payment_intent: Some(PaymentIntentRef::parse(PAYMENT_INTENT).unwrap()),
        amount: 4900,
        currency: "usd".into(),
        reason: "fraudulent".into(),
        status: DisputeStatus::parse(status),
        status_raw: status.into(),
    })
}

/// A refund's business fields (not our ids or times), by Stripe id.
fn refund_rows(detail: &PaymentDetail) -> Vec<(String, i64, RefundStatus, Option<String>)> {
    let mut rows: Vec<_> = detail
        .refunds
        .iter()
        .map(|r| {
            (
                r.refund_ref.to_string(),
                r.amount.minor(),
                r.status,
                r.reason.clone(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Every new type, in the order Stripe creates them: a refund that fails, a second one
/// that succeeds, then a dispute that is won.
fn story() -> Vec<ProviderEvent> {
    vec![
        event(
            "evt_c1",
            "charge.refunded",
            100,
            charge_refunded(vec![refund(REFUND_1, 3400, "pending")]),
        ),
        event(
            "evt_r1",
            "refund.created",
            100,
            PaymentEvent::RefundChanged(refund(REFUND_1, 3400, "pending")),
        ),
        event(
            "evt_r2",
            "refund.updated",
            200,
            PaymentEvent::RefundChanged(refund(REFUND_1, 3400, "failed")),
        ),
        event(
            "evt_r3",
            "refund.failed",
            200,
            PaymentEvent::RefundChanged(refund(REFUND_1, 3400, "failed")),
        ),
        event(
            "evt_c2",
            "charge.refunded",
            300,
            charge_refunded(vec![
                refund(REFUND_2, 1500, "succeeded"),
                refund(REFUND_1, 3400, "failed"),
            ]),
        ),
        event(
            "evt_d1",
            "charge.dispute.created",
            400,
            dispute("needs_response"),
        ),
        event(
            "evt_d2",
            "charge.dispute.funds_withdrawn",
            400,
            dispute("needs_response"),
        ),
        event(
            "evt_d3",
            "charge.dispute.updated",
            500,
            dispute("under_review"),
        ),
        event("evt_d4", "charge.dispute.closed", 600, dispute("won")),
        event(
            "evt_d5",
            "charge.dispute.funds_reinstated",
            600,
            dispute("won"),
        ),
    ]
}

fn assert_story_end(detail: &PaymentDetail) {
    assert_eq!(
        refund_rows(detail),
        vec![
            (
                REFUND_1.to_owned(),
                3400,
                RefundStatus::Failed,
                Some("requested_by_customer".to_owned())
            ),
            (
                REFUND_2.to_owned(),
                1500,
                RefundStatus::Succeeded,
                Some("requested_by_customer".to_owned())
            ),
        ]
    );
    assert_eq!(detail.disputes.len(), 1);
    assert_eq!(detail.disputes[0].status, DisputeStatus::Won);
    assert_eq!(detail.disputes[0].amount, usd(4900));
    assert_eq!(detail.payment.amount_refunded, usd(1500));
    assert_eq!(detail.payment.status, PaymentStatus::PartiallyRefunded);
}

#[tokio::test]
async fn every_new_type_applied_once_in_order_ends_partially_refunded_with_a_won_dispute() {
    let h = Harness::new();
    let payment = h.paid().await;

    let mut states = Vec::new();
    for ev in story() {
        let receipt = h.deliver(&ev).await;
        assert_eq!(receipt.outcome, EventOutcome::Processed, "{}", ev.kind);
        states.push(h.detail(&payment).await.payment.status);
    }

    assert_eq!(
        states[0],
        PaymentStatus::PartiallyRefunded,
        "pending counts"
    );
    assert_eq!(
        states[2],
        PaymentStatus::Succeeded,
        "a failed refund gives it back"
    );
    assert_eq!(states[5], PaymentStatus::Disputed);
    assert_story_end(&h.detail(&payment).await);
    assert_eq!(h.notifications(), vec!["dispute.created".to_owned()]);
}

#[tokio::test]
async fn every_new_type_delivered_five_times_three_at_once_and_out_of_order_applies_once() {
    let h = Harness::new();
    let payment = h.paid().await;
    let events = story();

    // Newest first (out of order), each three times at once...
    let mut outcomes: HashMap<String, Vec<EventOutcome>> = HashMap::new();
    for ev in events.iter().rev() {
        let three = futures::future::join_all((0..3).map(|_| h.deliver(ev))).await;
        outcomes
            .entry(ev.id.to_string())
            .or_default()
            .extend(three.into_iter().map(|r| r.outcome));
    }
    // ...then twice more in order.
    for _ in 0..2 {
        for ev in &events {
            let receipt = h.deliver(ev).await;
            outcomes
                .entry(ev.id.to_string())
                .or_default()
                .push(receipt.outcome);
        }
    }

    for (id, seen) in &outcomes {
        assert_eq!(seen.len(), 5, "{id}");
        assert_eq!(
            seen.iter()
                .filter(|o| **o != EventOutcome::Duplicate)
                .count(),
            1,
            "{id} applied once: {seen:?}"
        );
    }
    // Delivered newest first, the older events about the same refund or dispute are stale.
    assert_eq!(
        outcomes["evt_r1"][0..3]
            .iter()
            .filter(|o| **o == EventOutcome::Stale)
            .count(),
        1
    );
    assert_story_end(&h.detail(&payment).await);
    assert_eq!(h.notifications(), vec!["dispute.created".to_owned()]);
}

#[tokio::test]
async fn charge_refunded_before_or_after_refund_created_gives_the_same_rows() {
    let charge = event(
        "evt_1RqH2bHx4KpL29aTc8sW3nQe",
        "charge.refunded",
        3600,
        charge_refunded(vec![refund(REFUND_1, 1500, "succeeded")]),
    );
    let created = event(
        "evt_1RqH2bHx4KpL29aTr2fD9kLm",
        "refund.created",
        3600,
        PaymentEvent::RefundChanged(refund(REFUND_1, 1500, "succeeded")),
    );

    let mut finals = Vec::new();
    for order in [[&charge, &created], [&created, &charge]] {
        let h = Harness::new();
        let payment = h.paid().await;
        for ev in order {
            assert_eq!(h.deliver(ev).await.outcome, EventOutcome::Processed);
        }
        let detail = h.detail(&payment).await;
        finals.push((
            refund_rows(&detail),
            detail.payment.status,
            detail.payment.amount_refunded,
        ));
    }

    assert_eq!(finals[0], finals[1]);
    assert_eq!(finals[0].0.len(), 1);
    assert_eq!(finals[0].1, PaymentStatus::PartiallyRefunded);
    assert_eq!(finals[0].2, usd(1500));
}

#[tokio::test]
async fn a_lost_dispute_and_a_full_refund_of_an_unknown_payment_are_recorded_as_such() {
    let h = Harness::new();
    let unknown = h
        .deliver(&event(
            "evt_r_unknown",
            "refund.created",
            100,
            PaymentEvent::RefundChanged(refund(REFUND_1, 4900, "succeeded")),
        ))
        .await;
    assert_eq!(unknown.outcome, EventOutcome::Unmatched);
    assert!(unknown
        .detail
        .unwrap()
        .contains("no collected payment for charge"));

    let payment = h.paid().await;
    h.deliver(&event(
        "evt_r_full",
        "refund.created",
        200,
        PaymentEvent::RefundChanged(refund(REFUND_2, 4900, "succeeded")),
    ))
    .await;
    assert_eq!(
        h.detail(&payment).await.payment.status,
        PaymentStatus::Refunded
    );
    h.deliver(&event(
        "evt_d_lost",
        "charge.dispute.closed",
        300,
        dispute("lost"),
    ))
    .await;

    let detail = h.detail(&payment).await;
    assert_eq!(detail.payment.status, PaymentStatus::DisputeLost);
    assert_eq!(detail.payment.amount_refunded, usd(4900));
}

#[tokio::test]
async fn disputes_are_listed_by_status_newest_first_in_pages() {
    let h = Harness::new();
    h.paid().await;
    h.deliver(&event(
        "evt_d1",
        "charge.dispute.created",
        100,
        dispute("needs_response"),
    ))
    .await;

    let open = h
        .store
        .list_disputes(
            DisputeQuery {
                status: Some(DisputeStatus::NeedsResponse),
            },
            PageRequest {
                after: None,
                limit: PageLimit::new(1).unwrap(),
            },
        )
        .await
        .unwrap();
    let lost = h
        .store
        .list_disputes(
            DisputeQuery {
                status: Some(DisputeStatus::Lost),
            },
            PageRequest {
                after: None,
                limit: PageLimit::default(),
            },
        )
        .await
        .unwrap();

    assert_eq!(open.items.len(), 1);
    assert_eq!(open.items[0].dispute_ref.as_str(), DISPUTE);
    assert!(open.next.is_none());
    assert!(lost.items.is_empty());
    assert!(h
        .store
        .get(billing_domain::PaymentId::new())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_refunded_payment_is_still_the_one_success_of_its_payment_intent() {
    let h = Harness::new();
    let payment = h.paid().await;
    h.deliver(&event(
        "evt_r_full",
        "refund.created",
        100,
        PaymentEvent::RefundChanged(refund(REFUND_1, 4900, "succeeded")),
    ))
    .await;

    // Another event about the same PaymentIntent's success (a replay of a copy, say).
    let mut again = event(
        "evt_pi_again",
        "payment_intent.succeeded",
        200,
        PaymentEvent::Ignored,
    );
    let first = h.events.parse(b"evt_1RqF0hHx4KpL29aThXHsP9po").unwrap();
    again.event = first.event;
    let receipt = h.deliver(&again).await;

    assert_eq!(
        receipt.detail.as_deref(),
        Some("payment was already recorded")
    );
    let page = h
        .store
        .list(
            PaymentQuery {
                tenant: Some(h.tenant),
                invoice: None,
            },
            PageRequest {
                after: None,
                limit: PageLimit::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, payment.id);
    assert_eq!(page.items[0].status, PaymentStatus::Refunded);
}
