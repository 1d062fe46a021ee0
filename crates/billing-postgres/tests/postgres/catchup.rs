//! `CatchupStore` against PostgreSQL: the lease (one holder of several, lost when it
//! expires), the watermark (written only by the lease's holder), which events the ledger
//! holds, and the ledger's `source` (kept from the first arrival).

use std::sync::Arc;

use billing_domain::ports::{Applied, CatchupStore, NewLedgerEntry, WebhookStore};
use billing_domain::{EventId, EventOutcome, EventSource};
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;

use crate::{setup, work, Committed};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn entry(id: &str, source: EventSource) -> NewLedgerEntry {
    NewLedgerEntry {
        event_id: EventId::parse(id).unwrap(),
        kind: "invoice.paid".into(),
        created: at(0),
        api_version: None,
        livemode: false,
        received_at: at(1),
        outcome: EventOutcome::Processed,
        payload: format!("{{\"id\":\"{id}\"}}").into(),
        source,
    }
}

#[tokio::test]
async fn of_several_holders_asking_at_once_exactly_one_gets_the_lease() {
    let (_db, store) = setup();
    let store = Arc::new(store);
    let asks = (0..8).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .try_lease(&format!("replica-{n}"), at(0), at(120))
                .await
                .unwrap()
        })
    });
    let won: Vec<bool> = futures::future::join_all(asks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = format!("replica-{}", won.iter().position(|w| *w).unwrap());
    let loser = if winner == "replica-0" {
        "replica-1"
    } else {
        "replica-0"
    };

    // The holder renews; the others wait for its end.
    assert!(store.try_lease(&winner, at(60), at(180)).await.unwrap());
    assert!(!store.try_lease(loser, at(170), at(300)).await.unwrap());
    // A holder that died loses it when it expires.
    assert!(store.try_lease(loser, at(180), at(300)).await.unwrap());
    assert!(!store.try_lease(&winner, at(190), at(310)).await.unwrap());
    // Released, it is anyone's at once; a non-holder's release changes nothing.
    store.release_lease(&winner).await.unwrap();
    assert!(!store.try_lease(&winner, at(200), at(320)).await.unwrap());
    store.release_lease(loser).await.unwrap();
    assert!(store.try_lease(&winner, at(200), at(320)).await.unwrap());
}

#[tokio::test]
async fn only_the_lease_holder_moves_the_watermark() {
    let (_db, store) = setup();
    assert_eq!(store.watermark().await.unwrap(), None);
    assert!(store.try_lease("a", at(0), at(120)).await.unwrap());
    assert!(store.set_watermark("a", at(50)).await.unwrap());
    assert!(!store.set_watermark("b", at(90)).await.unwrap());
    assert_eq!(store.watermark().await.unwrap(), Some(at(50)));
    store.release_lease("a").await.unwrap();
    assert!(!store.set_watermark("a", at(60)).await.unwrap());
    assert_eq!(
        store.watermark().await.unwrap(),
        Some(at(50)),
        "kept after release"
    );
}

#[tokio::test]
async fn known_events_and_the_source_of_the_first_arrival() {
    let (db, store) = setup();
    for (id, source) in [
        ("evt_hook", EventSource::Webhook),
        ("evt_caught", EventSource::Catchup),
        ("evt_replayed", EventSource::Replay),
    ] {
        let e = entry(id, source);
        let inserted = store
            .apply(work(move |tx| {
                tx.insert_event(&e)?;
                Ok(Applied {
                    outcome: EventOutcome::Processed,
                    detail: None,
                })
            }))
            .await
            .unwrap()
            .committed();
        assert_eq!(inserted.outcome, EventOutcome::Processed);
    }
    // The catch-up arriving second finds the webhook's row: a duplicate, source kept.
    let late = entry("evt_hook", EventSource::Catchup);
    let again = store
        .apply(work(move |tx| {
            Ok(Applied {
                outcome: if tx.insert_event(&late)? {
                    EventOutcome::Processed
                } else {
                    EventOutcome::Duplicate
                },
                detail: None,
            })
        }))
        .await
        .unwrap()
        .committed();
    assert_eq!(again.outcome, EventOutcome::Duplicate);

    let asked = ["evt_hook", "evt_missing", "evt_caught"]
        .map(|id| EventId::parse(id).unwrap())
        .to_vec();
    let known = store.known_events(asked).await.unwrap();
    assert_eq!(
        known.iter().map(EventId::as_str).collect::<Vec<_>>(),
        ["evt_hook", "evt_caught"]
    );

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        source: String,
    }
    let url = db.url().to_owned();
    let rows: Vec<Row> = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        diesel::sql_query("SELECT event_id, source FROM webhook_events ORDER BY event_id")
            .load(&mut conn)
            .unwrap()
    })
    .await
    .unwrap();
    let rows: Vec<(String, String)> = rows.into_iter().map(|r| (r.event_id, r.source)).collect();
    assert_eq!(
        rows,
        [
            ("evt_caught".to_owned(), "catchup".to_owned()),
            ("evt_hook".to_owned(), "webhook".to_owned()),
            ("evt_replayed".to_owned(), "replay".to_owned()),
        ]
    );
}
