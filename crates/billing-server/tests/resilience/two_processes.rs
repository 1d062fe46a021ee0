//! Scenario 3: two server processes on one database receive the same event stream at the
//! same time (every event sent to both, racing), with redeliveries and out-of-order
//! subscription and invoice updates. The final state must equal the state one process
//! reaches receiving the stream one event at a time on a fresh database.
//!
//! The stream is split in lanes, each about its own tenant, subscriptions, invoices and
//! PaymentIntents: lanes run concurrently, and inside a lane an event is sent to both
//! processes and both answers awaited before the next one, so the order in which distinct
//! events of one entity are first applied is the stream's order and the expected ledger
//! outcomes (`stale` included) are well defined.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::support::{
    checkout_completed, client, create_plans, database, deliver, invoice_event, payment_failed,
    payment_succeeded, server_env, sql, subscription_event, Event, Party, ServerProcess,
    BASIC_PRICE, PRO_PRICE,
};

const LANES: usize = 4;

/// One lane's deliveries, in order (a redelivery repeats an earlier event's bytes).
fn lane(l: usize) -> Vec<Event> {
    let party = Party::new(&format!("lane{l}"));
    let base = 1_800_000_000 + i64::try_from(l).unwrap() * 10_000;
    let id = |name: &str| format!("evt_l{l}_{name}");
    let sub_a = format!("sub_l{l}_a");
    let sub_b = format!("sub_l{l}_b");
    let mut rng = StdRng::seed_from_u64(u64::try_from(l).unwrap());
    let mut script = Vec::new();

    // A checkout starts subscription a, then ten updates of it arrive shuffled.
    script.push(checkout_completed(
        &id("checkout"),
        base,
        &party,
        &sub_a,
        "plan-basic",
    ));
    let statuses = ["active", "past_due", "active", "unpaid", "active"];
    let mut updates: Vec<Event> = (0..10)
        .map(|k| {
            subscription_event(
                "customer.subscription.updated",
                &id(&format!("sub_a_{k}")),
                base + 10 + k,
                &party,
                &sub_a,
                statuses[usize::try_from(k).unwrap() % statuses.len()],
                if k % 2 == 0 { PRO_PRICE } else { BASIC_PRICE },
            )
        })
        .collect();
    updates.shuffle(&mut rng);
    script.extend(updates);

    // Subscription b: created by an update, updated, deleted, then an older update.
    let b = |name: &str, created: i64, kind: &'static str, status: &str| {
        subscription_event(kind, &id(name), created, &party, &sub_b, status, PRO_PRICE)
    };
    let updated = "customer.subscription.updated";
    script.push(b("sub_b_0", base + 30, updated, "trialing"));
    script.push(b("sub_b_2", base + 32, updated, "past_due"));
    script.push(b("sub_b_1", base + 31, updated, "active"));
    script.push(b("sub_b_3", base + 33, updated, "active"));
    script.push(b(
        "sub_b_del",
        base + 40,
        "customer.subscription.deleted",
        "canceled",
    ));
    script.push(b("sub_b_late", base + 35, updated, "active"));

    // Invoices: failed then paid; for one of them the payment comes before an older failure.
    for k in 0..5 {
        let invoice = format!("in_l{l}_{k}");
        let failed = invoice_event(
            "invoice.payment_failed",
            &id(&format!("inv{k}_failed")),
            base + 50 + k,
            &party,
            &invoice,
            Some(&sub_a),
            1,
        );
        let paid = invoice_event(
            "invoice.payment_succeeded",
            &id(&format!("inv{k}_paid")),
            base + 60 + k,
            &party,
            &invoice,
            Some(&sub_a),
            1,
        );
        match k {
            3 => script.extend([paid, failed]),
            1 => script.push(failed),
            _ => script.extend([failed, paid]),
        }
    }

    // PaymentIntents: a failed attempt, then success.
    for k in 0..6 {
        let pi = format!("pi_l{l}_{k}");
        script.push(payment_failed(
            &id(&format!("pi{k}_failed")),
            base + 70 + k,
            &party,
            &pi,
            &format!("ch_l{l}_{k}_declined"),
        ));
        script.push(payment_succeeded(
            &id(&format!("pi{k}_ok")),
            base + 80 + k,
            &party,
            &pi,
            &format!("ch_l{l}_{k}_ok"),
            4900,
        ));
    }

    // Redeliveries: after every fourth event, one earlier event again.
    let mut with_redeliveries = Vec::new();
    for (i, event) in script.iter().enumerate() {
        with_redeliveries.push(event.clone());
        if i % 4 == 3 {
            with_redeliveries.push(script[rng.random_range(0..=i)].clone());
        }
    }
    with_redeliveries
}

/// The relevant columns of every table, without generated ids and wall-clock timestamps.
fn canonical_dump(url: &str) -> Vec<(&'static str, String)> {
    [
        (
            "tenants",
            "select id, name, status, stripe_customer_id from tenants order by id",
        ),
        (
            "subscriptions",
            "select s.stripe_subscription_id, s.tenant_id, p.code, s.status, \
             s.current_period_start, s.current_period_end, s.cancel_at_period_end, \
             s.canceled_at, s.stripe_customer_id, s.last_event_at \
             from subscriptions s join plans p on p.id = s.plan_id order by 1",
        ),
        (
            "invoices",
            "select i.number, i.tenant_id, s.stripe_subscription_id, i.status, i.amount_due, \
             i.amount_paid, i.currency, i.due_date, i.paid_at, i.stripe_invoice_id, \
             i.stripe_payment_intent_id, i.last_event_at \
             from invoices i left join subscriptions s on s.id = i.subscription_id order by 1",
        ),
        (
            "payments",
            "select p.source_event_id, p.tenant_id, i.number, p.amount, p.currency, p.status, \
             p.failure_code, p.failure_message, p.stripe_payment_intent_id, p.stripe_charge_id \
             from payments p left join invoices i on i.id = p.invoice_id order by 1",
        ),
        (
            "webhook_events",
            "select event_id, type, created, api_version, livemode, outcome, detail, \
             md5(payload) from webhook_events order by 1",
        ),
        (
            "notifications",
            "select dedupe_key, kind, tenant_id from notifications order by 1",
        ),
    ]
    .into_iter()
    .map(|(table, query)| (table, sql(url, query)))
    .collect()
}

/// Sends every lane to both processes, each event to both at once; returns how many
/// events each process applied (answered other than `duplicate`).
async fn race(
    lanes: &[Vec<Event>],
    a: &ServerProcess,
    b: &ServerProcess,
    give_up: Instant,
) -> (usize, usize) {
    let tasks: Vec<_> = lanes
        .iter()
        .cloned()
        .enumerate()
        .map(|(l, script)| {
            let (a, b) = (a.address.clone(), b.address.clone());
            tokio::spawn(async move {
                let http = client(Duration::from_secs(10));
                let mut rng = StdRng::seed_from_u64(100 + u64::try_from(l).unwrap());
                let mut seen = std::collections::BTreeSet::new();
                let mut by_a_b = (0, 0);
                for event in &script {
                    // Either process may get it first, by up to 3 ms.
                    let a_first = rng.random_bool(0.5);
                    let (first, second) = if a_first { (&a, &b) } else { (&b, &a) };
                    let lag = Duration::from_micros(rng.random_range(0..3000));
                    let (x, y) = tokio::join!(deliver(&http, first, event, give_up), async {
                        tokio::time::sleep(lag).await;
                        deliver(&http, second, event, give_up).await
                    });
                    let applied = [&x, &y].iter().filter(|d| d.outcome != "duplicate").count();
                    let expected = usize::from(seen.insert(event.id.clone()));
                    assert_eq!(
                        applied, expected,
                        "{}: answered {} and {}",
                        event.id, x.outcome, y.outcome
                    );
                    let (by_a, by_b) = if a_first { (&x, &y) } else { (&y, &x) };
                    by_a_b.0 += usize::from(by_a.outcome != "duplicate");
                    by_a_b.1 += usize::from(by_b.outcome != "duplicate");
                }
                by_a_b
            })
        })
        .collect();
    let mut total = (0, 0);
    for task in tasks {
        let (by_a, by_b) = task.await.unwrap();
        total = (total.0 + by_a, total.1 + by_b);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_receiving_one_stream_reach_the_state_of_one_process_receiving_it_in_order() {
    let started = Instant::now();
    let lanes: Vec<Vec<Event>> = (0..LANES).map(lane).collect();
    let deliveries: usize = lanes.iter().map(Vec::len).sum();
    let stripe = billing_stripe_emulator::FakeStripe::start().await;
    let give_up = Instant::now() + Duration::from_secs(90);

    // Two processes on one empty database: both migrate at start, under the advisory lock.
    let shared = database(false).await;
    let mut env = server_env(shared.url(), &stripe.base_url());
    env.insert("MIGRATE_ON_START", "true".to_owned());
    let (a, b) = tokio::join!(ServerProcess::start(&env), ServerProcess::start(&env));
    create_plans(&a).await;
    let (by_a, by_b) = race(&lanes, &a, &b, give_up).await;
    assert!(
        by_a > 0 && by_b > 0,
        "one process applied everything: {by_a}/{by_b}"
    );

    // The reference: one process, one event at a time, on a fresh database.
    let fresh = database(true).await;
    let single = ServerProcess::start(&server_env(fresh.url(), &stripe.base_url())).await;
    create_plans(&single).await;
    let http = client(Duration::from_secs(10));
    for event in lanes.iter().flatten() {
        deliver(&http, &single.address, event, give_up).await;
    }

    let raced = canonical_dump(shared.url());
    let sequential = canonical_dump(fresh.url());
    for ((table, got), (_, want)) in raced.iter().zip(&sequential) {
        assert!(!want.is_empty(), "{table} is empty: the stream did nothing");
        if got != want {
            let diff: Vec<String> = got
                .lines()
                .zip(want.lines())
                .filter(|(g, w)| g != w)
                .take(5)
                .map(|(g, w)| format!("  two processes: {g}\n  one process:   {w}"))
                .collect();
            panic!(
                "{table} differs ({} vs {} rows):\n{}",
                got.lines().count(),
                want.lines().count(),
                diff.join("\n")
            );
        }
    }
    let outcomes = sql(
        fresh.url(),
        "select outcome || ':' || count(*) from webhook_events group by outcome order by 1",
    );
    eprintln!(
        "two processes: {deliveries} deliveries to each process, applied {by_a} by one and \
         {by_b} by the other, outcomes [{}], {:?}",
        outcomes.replace('\n', " "),
        started.elapsed()
    );
}
