use std::collections::HashSet;

use billing_domain::page::{PageLimit, PageRequest};
use billing_domain::ports::LedgerRepository;
use billing_domain::{EventId, EventOutcome, LedgerEntry, LedgerQuery};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;

use crate::setup;

fn insert_event(db: &TestDatabase, id: &str, kind: &str, outcome: &str, received_at: &str) {
    db.execute(&format!(
        "INSERT INTO webhook_events (event_id, type, created, api_version, livemode, received_at, \
         processed_at, outcome, detail, payload) \
         VALUES ('{id}', '{kind}', '2026-01-01T00:00:00Z', '2026-07-29.dahlia', false, \
         '{received_at}', '{received_at}', '{outcome}', NULL, '{{\"id\":\"{id}\"}}')"
    ))
    .unwrap();
}

async fn all_pages(store: &PgStore, query: LedgerQuery) -> Vec<LedgerEntry> {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(
                query.clone(),
                PageRequest {
                    after,
                    limit: PageLimit::new(2).unwrap(),
                },
            )
            .await
            .unwrap();
        items.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break items,
        }
    }
}

#[tokio::test]
async fn the_ledger_lists_newest_received_first_across_pages_with_ties() {
    let (db, store) = setup();
    let tie = "2026-04-01T00:00:00Z";
    insert_event(&db, "evt_a", "invoice.payment_succeeded", "processed", tie);
    insert_event(&db, "evt_b", "invoice.payment_failed", "processed", tie);
    insert_event(&db, "evt_c", "customer.created", "ignored", tie);
    insert_event(
        &db,
        "evt_d",
        "invoice.payment_succeeded",
        "stale",
        "2026-04-02T00:00:00Z",
    );
    insert_event(
        &db,
        "evt_e",
        "checkout.session.completed",
        "unmatched",
        "2026-03-01T00:00:00Z",
    );

    let all = all_pages(&store, LedgerQuery::default()).await;

    let ids: Vec<_> = all.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_d", "evt_c", "evt_b", "evt_a", "evt_e"]);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5);
}

#[tokio::test]
async fn the_ledger_is_filtered_by_outcome_and_type() {
    let (db, store) = setup();
    insert_event(
        &db,
        "evt_a",
        "invoice.payment_succeeded",
        "processed",
        "2026-04-01T00:00:00Z",
    );
    insert_event(
        &db,
        "evt_b",
        "invoice.payment_succeeded",
        "stale",
        "2026-04-02T00:00:00Z",
    );
    insert_event(
        &db,
        "evt_c",
        "customer.created",
        "ignored",
        "2026-04-03T00:00:00Z",
    );

    let processed = all_pages(
        &store,
        LedgerQuery {
            outcome: Some(EventOutcome::Processed),
            kind: None,
        },
    )
    .await;
    let of_type = all_pages(
        &store,
        LedgerQuery {
            outcome: None,
            kind: Some("invoice.payment_succeeded".into()),
        },
    )
    .await;
    let duplicates = all_pages(
        &store,
        LedgerQuery {
            outcome: Some(EventOutcome::Duplicate),
            kind: None,
        },
    )
    .await;

    assert_eq!(
        processed
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["evt_a"]
    );
    assert_eq!(
        of_type
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["evt_b", "evt_a"]
    );
    assert!(duplicates.is_empty());
}

#[tokio::test]
async fn a_ledger_row_is_read_back_with_its_payload() {
    let (db, store) = setup();
    insert_event(
        &db,
        "evt_1",
        "invoice.payment_failed",
        "failed",
        "2026-04-01T00:00:00Z",
    );

    let entry = store
        .get(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let missing = store.get(&EventId::parse("evt_2").unwrap()).await.unwrap();

    assert_eq!(entry.kind, "invoice.payment_failed");
    assert_eq!(entry.outcome, EventOutcome::Failed);
    assert_eq!(entry.api_version.as_deref(), Some("2026-07-29.dahlia"));
    assert_eq!(entry.payload, r#"{"id":"evt_1"}"#);
    assert_eq!(entry.processed_at, Some(entry.received_at));
    assert!(missing.is_none());
}

fn insert_about_customer(db: &TestDatabase, id: &str, created: &str, outcome: &str, body: &str) {
    db.execute(&format!(
        "INSERT INTO webhook_events (event_id, type, created, livemode, received_at, outcome, payload) \
         VALUES ('{id}', 'payment_intent.succeeded', '{created}', false, now(), '{outcome}', '{body}')"
    ))
    .unwrap();
}

#[tokio::test]
async fn the_unmatched_events_of_a_customer_come_oldest_first_and_no_others() {
    let (db, store) = setup();
    let about =
        |customer: &str| format!(r#"{{"data": {{"object": {{"customer": "{customer}"}}}}}}"#);
    insert_about_customer(
        &db,
        "evt_late",
        "2026-01-02T00:00:00Z",
        "unmatched",
        &about("cus_1"),
    );
    insert_about_customer(
        &db,
        "evt_early",
        "2026-01-01T00:00:00Z",
        "unmatched",
        &about("cus_1"),
    );
    insert_about_customer(
        &db,
        "evt_other",
        "2026-01-01T00:00:00Z",
        "unmatched",
        &about("cus_2"),
    );
    insert_about_customer(
        &db,
        "evt_done",
        "2026-01-01T00:00:00Z",
        "processed",
        &about("cus_1"),
    );
    insert_about_customer(
        &db,
        "evt_bare",
        "2026-01-01T00:00:00Z",
        "unmatched",
        r#"{"data": {"object": {}}}"#,
    );
    let customer = billing_domain::CustomerRef::parse("cus_1").unwrap();

    let found = store.unmatched_for_customer(&customer, 10).await.unwrap();
    let capped = store.unmatched_for_customer(&customer, 1).await.unwrap();

    let ids: Vec<&str> = found.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_early", "evt_late"]);
    assert_eq!(found[0].outcome, EventOutcome::Unmatched);
    assert_eq!(found[0].payload, about("cus_1"));
    assert_eq!(capped.len(), 1);
}
