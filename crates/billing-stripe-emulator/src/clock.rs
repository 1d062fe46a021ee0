//! Test clocks: advancing one runs, in time order, everything that falls due for the
//! customers tied to it — trial-end notices, renewals, finalizations an hour after a
//! renewal draft, retries of failed payments, cancellations at period end.

use serde_json::{json, Value};

use crate::engine;
use crate::events::emit;
use crate::store::{int_of, set, str_of, Store};

/// Stripe sends `customer.subscription.trial_will_end` this long before `trial_end`.
const TRIAL_NOTICE: i64 = 3 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// Ordered before other work of the same second, as Stripe makes them.
    TrialWillEnd(String, i64),
    Finalize(String),
    Retry(String),
    Renew(String),
}

/// The earliest piece of work due at or before `target` on `clock`.
fn next_due(store: &Store, clock: &str, target: i64) -> Option<(i64, Due)> {
    let on_clock = |customer: Option<&str>| {
        customer
            .and_then(|c| store.customers.get(c))
            .and_then(|c| str_of(c, "test_clock"))
            == Some(clock)
    };
    let now = store
        .clocks
        .get(clock)
        .map_or(target, |c| int_of(c, "frozen_time"));
    let mut due: Vec<(i64, Due)> = Vec::new();
    for (id, sub) in &store.subscriptions {
        if !on_clock(str_of(sub, "customer")) {
            continue;
        }
        let status = str_of(sub, "status").unwrap_or_default();
        if !matches!(status, "trialing" | "active" | "past_due" | "unpaid") {
            continue;
        }
        if status == "trialing" {
            if let Some(trial_end) = sub["trial_end"].as_i64() {
                let notice = (trial_end - TRIAL_NOTICE).max(now);
                if notice <= target && !store.trial_will_end_sent.contains(&(id.clone(), trial_end))
                {
                    due.push((notice, Due::TrialWillEnd(id.clone(), trial_end)));
                }
            }
        }
        let period_end = sub["items"]["data"][0]["current_period_end"].as_i64();
        let cancel_at = sub["cancel_at"].as_i64();
        if let Some(end) = [period_end, cancel_at].into_iter().flatten().min() {
            if end <= target {
                due.push((end, Due::Renew(id.clone())));
            }
        }
    }
    for (id, invoice) in &store.invoices {
        if !on_clock(str_of(invoice, "customer")) {
            continue;
        }
        match str_of(invoice, "status") {
            Some("draft") => {
                if let Some(at) = invoice["automatically_finalizes_at"].as_i64() {
                    if at <= target {
                        due.push((at, Due::Finalize(id.clone())));
                    }
                }
            }
            Some("open") => {
                if let Some(at) = invoice["next_payment_attempt"].as_i64() {
                    if at <= target {
                        due.push((at, Due::Retry(id.clone())));
                    }
                }
            }
            _ => {}
        }
    }
    due.into_iter().min()
}

/// Moves `clock` to `target`, running what falls due on the way. Emits
/// `test_helpers.test_clock.advancing` and `.ready`.
pub(crate) fn advance(store: &mut Store, clock: &str, target: i64) -> Option<Value> {
    let start = store.clocks.get(clock)?.clone();
    emit(
        store,
        "test_helpers.test_clock.advancing",
        &json!({ "id": clock, "object": "test_helpers.test_clock", "status": "advancing", "frozen_time": start["frozen_time"] }),
        None,
        int_of(&start, "frozen_time"),
    );
    // Bounded, in case of a subscription that renews every second for years.
    for _ in 0..10_000 {
        let Some((at, work)) = next_due(store, clock, target) else {
            break;
        };
        if let Some(c) = store.clocks.get_mut(clock) {
            set(c, "frozen_time", json!(at.max(int_of(c, "frozen_time"))));
        }
        match work {
            Due::TrialWillEnd(sub, trial_end) => {
                store.trial_will_end_sent.insert((sub.clone(), trial_end));
                if let Some(object) = store.subscriptions.get(&sub).cloned() {
                    emit(
                        store,
                        "customer.subscription.trial_will_end",
                        &object,
                        None,
                        at,
                    );
                }
            }
            Due::Renew(sub) => engine::renew(store, &sub, at),
            Due::Finalize(invoice) => engine::finalize_renewal(store, &invoice, at),
            Due::Retry(invoice) => engine::retry(store, &invoice, at),
        }
    }
    let clock_object = store.clocks.get_mut(clock)?;
    set(clock_object, "frozen_time", json!(target));
    set(clock_object, "status", json!("ready"));
    let ready = clock_object.clone();
    emit(store, "test_helpers.test_clock.ready", &ready, None, target);
    Some(ready)
}
