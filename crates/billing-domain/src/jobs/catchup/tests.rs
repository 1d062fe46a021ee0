//! The catch-up pass over mocks of its ports: what it lists, what it applies and in which
//! order, the lease, the watermark and the 30-day floor.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use mockall::predicate::eq;

use super::*;
use crate::metrics::NoMetrics;
use crate::ports::{EventPage, MockCatchupStore, MockClock, MockPaymentProvider};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

const NOW: i64 = 100 * 86_400;

fn event(id: &str, created: i64) -> ListedEvent {
    ListedEvent {
        id: EventId::parse(id).unwrap(),
        created: at(created),
        raw: id.as_bytes().to_vec(),
    }
}

fn receipt(id: &str, outcome: EventOutcome) -> WebhookReceipt {
    WebhookReceipt {
        event_id: EventId::parse(id).unwrap(),
        kind: "invoice.paid".into(),
        created: at(0),
        api_version: None,
        outcome,
        detail: None,
    }
}

fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(at(NOW));
    Arc::new(clock)
}

fn job(store: MockCatchupStore, provider: MockPaymentProvider) -> CatchupJob {
    CatchupJob::new(
        Arc::new(store),
        Arc::new(provider),
        clock(),
        Arc::new(NoMetrics),
        CatchupSettings::new("replica-a".into()),
    )
}

/// A store whose lease is free, with `watermark`, knowing `known`, recording the
/// watermark it is given.
fn store(
    watermark: Option<i64>,
    known: &'static [&'static str],
    set: Arc<Mutex<Vec<DateTime<Utc>>>>,
) -> MockCatchupStore {
    let mut store = MockCatchupStore::new();
    store.expect_try_lease().returning(|_, _, _| Ok(true));
    store.expect_release_lease().returning(|_| Ok(()));
    store
        .expect_watermark()
        .returning(move || Ok(watermark.map(at)));
    store.expect_known_events().returning(move |ids| {
        Ok(ids
            .into_iter()
            .filter(|id| known.contains(&id.as_str()))
            .collect())
    });
    store.expect_set_watermark().returning(move |_, to| {
        set.lock().unwrap().push(to);
        Ok(true)
    });
    store
}

/// An applier recording the order it was called in, answering `outcome_of(id)`.
struct Recorder {
    seen: Mutex<Vec<String>>,
    outcome_of: fn(&str) -> Result<EventOutcome, ()>,
}

#[async_trait]
impl EventApplier for Recorder {
    async fn apply_caught_up(&self, payload: Vec<u8>) -> Result<WebhookReceipt, WebhookError> {
        let id = String::from_utf8(payload).unwrap();
        self.seen.lock().unwrap().push(id.clone());
        match (self.outcome_of)(&id) {
            Ok(outcome) => Ok(receipt(&id, outcome)),
            Err(()) => Err(WebhookError::Unavailable("database down".into())),
        }
    }
}

fn recorder(outcome_of: fn(&str) -> Result<EventOutcome, ()>) -> Recorder {
    Recorder {
        seen: Mutex::new(Vec::new()),
        outcome_of,
    }
}

#[tokio::test]
async fn applies_the_missing_events_of_every_page_oldest_first_and_moves_the_watermark() {
    let set = Arc::new(Mutex::new(Vec::new()));
    let mut provider = MockPaymentProvider::new();
    let start = at(NOW - 3600 - 600);
    provider
        .expect_list_events()
        .with(eq(start), eq(None))
        .times(1)
        .returning(|_, _| {
            Ok(EventPage {
                events: vec![
                    event("evt_5", NOW - 10),
                    event("evt_4", NOW - 20),
                    event("evt_3", NOW - 20),
                ],
                has_more: true,
            })
        });
    provider
        .expect_list_events()
        .with(eq(start), eq(Some(EventId::parse("evt_3").unwrap())))
        .times(1)
        .returning(|_, _| {
            Ok(EventPage {
                events: vec![event("evt_2", NOW - 30), event("evt_1", NOW - 40)],
                has_more: false,
            })
        });
    let job = job(store(Some(NOW - 3600), &["evt_4"], set.clone()), provider);
    let applier = recorder(|id| {
        Ok(match id {
            "evt_2" => EventOutcome::Unmatched,
            "evt_5" => EventOutcome::Duplicate,
            _ => EventOutcome::Processed,
        })
    });

    let report = job.run_once(&applier, None).await.unwrap();

    assert_eq!(
        *applier.seen.lock().unwrap(),
        ["evt_1", "evt_2", "evt_3", "evt_5"],
        "the ledger's evt_4 is skipped, the others applied oldest first"
    );
    assert_eq!(report.listed, 5);
    assert_eq!(report.applied, 2);
    assert_eq!(
        report.already_applied, 2,
        "evt_4 known, evt_5 a duplicate by then"
    );
    assert_eq!(report.unmatched, 1);
    assert_eq!(report.failed, 0);
    assert_eq!(report.since, start);
    assert_eq!(*set.lock().unwrap(), [at(NOW)]);
    assert_eq!(report.watermark, Some(at(NOW)));
}

#[tokio::test]
async fn another_holder_of_the_lease_means_in_progress_and_nothing_listed() {
    let mut store = MockCatchupStore::new();
    store
        .expect_try_lease()
        .withf(|holder, now, until| holder == "replica-a" && *now == at(NOW) && *until > *now)
        .returning(|_, _, _| Ok(false));
    store.expect_release_lease().never();
    let mut provider = MockPaymentProvider::new();
    provider.expect_list_events().never();
    let job = job(store, provider);
    let applier = recorder(|_| Ok(EventOutcome::Processed));

    let result = job.run_once(&applier, None).await;

    assert!(
        matches!(result, Err(CatchupError::InProgress)),
        "{result:?}"
    );
    assert!(applier.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_holds_the_watermark_at_it() {
    let set = Arc::new(Mutex::new(Vec::new()));
    let mut provider = MockPaymentProvider::new();
    provider.expect_list_events().returning(|_, _| {
        Ok(EventPage {
            events: vec![
                event("evt_3", NOW - 10),
                event("evt_2", NOW - 20),
                event("evt_1", NOW - 30),
            ],
            has_more: false,
        })
    });
    let job = job(store(Some(NOW - 60), &[], set.clone()), provider);
    let applier = recorder(|id| {
        if id == "evt_2" {
            Err(())
        } else {
            Ok(EventOutcome::Processed)
        }
    });

    let report = job.run_once(&applier, None).await.unwrap();

    assert_eq!(*applier.seen.lock().unwrap(), ["evt_1", "evt_2", "evt_3"]);
    assert_eq!(report.applied, 2);
    assert_eq!(report.failed, 1);
    assert_eq!(
        *set.lock().unwrap(),
        [at(NOW - 20)],
        "the next pass lists evt_2 again"
    );
}

#[tokio::test]
async fn never_lists_beyond_stripes_thirty_days() {
    for watermark in [None, Some(NOW - 40 * 86_400)] {
        let set = Arc::new(Mutex::new(Vec::new()));
        let mut provider = MockPaymentProvider::new();
        provider
            .expect_list_events()
            .with(eq(at(NOW - 30 * 86_400)), eq(None))
            .times(1)
            .returning(|_, _| Ok(EventPage::default()));
        let job = job(store(watermark, &[], set.clone()), provider);
        let report = job
            .run_once(&recorder(|_| Ok(EventOutcome::Processed)), None)
            .await
            .unwrap();
        assert_eq!(report.listed, 0);
        assert_eq!(*set.lock().unwrap(), [at(NOW)]);
    }
}

#[tokio::test]
async fn a_since_later_than_the_watermark_leaves_it_alone() {
    let set = Arc::new(Mutex::new(Vec::new()));
    let mut provider = MockPaymentProvider::new();
    provider
        .expect_list_events()
        .with(eq(at(NOW - 60)), eq(None))
        .returning(|_, _| Ok(EventPage::default()));
    let job = job(store(Some(NOW - 86_400), &[], set.clone()), provider);

    let report = job
        .run_once(
            &recorder(|_| Ok(EventOutcome::Processed)),
            Some(at(NOW - 60)),
        )
        .await
        .unwrap();

    assert_eq!(report.since, at(NOW - 60));
    assert_eq!(report.watermark, None);
    assert!(
        set.lock().unwrap().is_empty(),
        "events before `since` were not listed"
    );
}

#[tokio::test]
async fn stripe_unavailable_applies_nothing_and_releases_the_lease() {
    let mut store = MockCatchupStore::new();
    store.expect_try_lease().returning(|_, _, _| Ok(true));
    store.expect_watermark().returning(|| Ok(None));
    store
        .expect_release_lease()
        .with(eq("replica-a"))
        .times(1)
        .returning(|_| Ok(()));
    store.expect_set_watermark().never();
    let mut provider = MockPaymentProvider::new();
    provider
        .expect_list_events()
        .returning(|_, _| Err(ProviderError::Unavailable("down".into())));
    let job = job(store, provider);
    let applier = recorder(|_| Ok(EventOutcome::Processed));

    let result = job.run_once(&applier, None).await;

    assert!(
        matches!(result, Err(CatchupError::Provider(_))),
        "{result:?}"
    );
    assert!(applier.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn losing_the_lease_between_pages_stops_the_pass() {
    let mut store = MockCatchupStore::new();
    let mut calls = 0;
    store.expect_try_lease().returning(move |_, _, _| {
        calls += 1;
        Ok(calls == 1)
    });
    store.expect_watermark().returning(|| Ok(None));
    store.expect_known_events().returning(|_| Ok(Vec::new()));
    store.expect_release_lease().returning(|_| Ok(()));
    store.expect_set_watermark().never();
    let mut provider = MockPaymentProvider::new();
    provider.expect_list_events().times(1).returning(|_, _| {
        Ok(EventPage {
            events: vec![event("evt_1", NOW - 10)],
            has_more: true,
        })
    });
    let job = job(store, provider);
    let applier = recorder(|_| Ok(EventOutcome::Processed));

    let result = job.run_once(&applier, None).await;

    assert!(
        matches!(result, Err(CatchupError::InProgress)),
        "{result:?}"
    );
    assert!(applier.seen.lock().unwrap().is_empty());
}
