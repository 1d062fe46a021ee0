//! Scenario 1: PostgreSQL becomes unavailable under webhook load. The service's backends
//! are terminated several times and new connections are refused for a second while eight
//! Stripe-like senders deliver a stream of events and redeliver every non-2xx answer. Every
//! event must end up applied exactly once and the service must recover on its own.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_postgres::testing::{base_url, url_with_database};

use crate::support::{
    client, count, create_plans, database, deliver, invoice_event, payment_succeeded, server_env,
    sql, subscription_event, Event, Party, ServerProcess, PRO_PRICE,
};

const EVENTS: usize = 300;
const SENDERS: usize = 8;
/// Coprime with the 5-event cycle of [`stream`], so every tenant gets every kind.
const TENANTS: usize = 7;
/// Pause of each sender between two events: keeps the stream running for at least
/// `EVENTS / SENDERS * PACE` (about 3.4 s), longer than the chaos below (about 2.5 s).
const PACE: Duration = Duration::from_millis(90);

/// The stream: 60 % `payment_intent.succeeded` (each its own PaymentIntent and charge),
/// 20 % `invoice.payment_failed` (each its own invoice), 20 %
/// `customer.subscription.updated` (each its own subscription).
fn stream(parties: &[Party]) -> Vec<Event> {
    let created = 1_800_000_000;
    (0..EVENTS)
        .map(|i| {
            let party = &parties[i % parties.len()];
            let id = format!("evt_outage_{i:04}");
            match i % 5 {
                0 => invoice_event(
                    "invoice.payment_failed",
                    &id,
                    created,
                    party,
                    &format!("in_outage_{i}"),
                    None,
                    1,
                ),
                1 => subscription_event(
                    "customer.subscription.updated",
                    &id,
                    created,
                    party,
                    &format!("sub_outage_{i}"),
                    "active",
                    PRO_PRICE,
                ),
                _ => payment_succeeded(
                    &id,
                    created,
                    party,
                    &format!("pi_outage_{i}"),
                    &format!("ch_outage_{i}"),
                    1000 + i64::try_from(i).unwrap(),
                ),
            }
        })
        .collect()
}

/// Terminates every backend of database `name` (run from the maintenance database).
fn terminate_backends(admin: &str, name: &str) -> i64 {
    count(
        admin,
        &format!(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = '{name}' and pid <> pg_backend_pid()"
        ),
    )
}

/// Restores connections even when the test fails halfway.
struct AllowConnections<'a> {
    admin: &'a str,
    name: &'a str,
}

impl Drop for AllowConnections<'_> {
    fn drop(&mut self) {
        sql(
            self.admin,
            &format!("alter database \"{}\" allow_connections true", self.name),
        );
    }
}

fn chaos(admin: &str, name: &str) -> i64 {
    let mut killed = 0;
    let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
    pause(200);
    for _ in 0..3 {
        killed += terminate_backends(admin, name);
        pause(300);
    }
    {
        let _restore = AllowConnections { admin, name };
        sql(
            admin,
            &format!("alter database \"{name}\" allow_connections false"),
        );
        killed += terminate_backends(admin, name);
        pause(1000);
    }
    for _ in 0..2 {
        pause(250);
        killed += terminate_backends(admin, name);
    }
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_survive_postgres_being_killed_and_refusing_connections_and_apply_each_event_once()
{
    let started = Instant::now();
    let db = database(true).await;
    let stripe = billing_stripe_emulator::FakeStripe::start().await;
    let mut server = ServerProcess::start(&server_env(db.url(), &stripe.base_url())).await;
    create_plans(&server).await;
    let parties: Vec<Party> = (0..TENANTS)
        .map(|i| Party::new(&format!("outage{i}")))
        .collect();
    let events = Arc::new(stream(&parties));
    let admin = url_with_database(&base_url(), "postgres").unwrap();

    let give_up = Instant::now() + Duration::from_secs(60);
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let events = Arc::clone(&events);
            let next = Arc::clone(&next);
            let address = server.address.clone();
            tokio::spawn(async move {
                let client = client(Duration::from_secs(10));
                let mut redeliveries = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.get(i) else {
                        return redeliveries;
                    };
                    let delivered = deliver(&client, &address, event, give_up).await;
                    assert!(
                        ["processed", "duplicate"].contains(&delivered.outcome.as_str()),
                        "{}: {}",
                        event.id,
                        delivered.outcome
                    );
                    redeliveries += delivered.attempts - 1;
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect();
    let name = db.name().to_owned();
    let chaos_admin = admin.clone();
    let killed = tokio::task::spawn_blocking(move || chaos(&chaos_admin, &name))
        .await
        .unwrap();
    let mut redeliveries = 0;
    for sender in senders {
        redeliveries += sender.await.unwrap();
    }

    // It recovers by itself: same process, ready again.
    let probe = client(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = probe.get(server.url("/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "/health/ready never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.is_running(), "the service must not have restarted");

    let url = db.url();
    let ledger: BTreeSet<String> = sql(url, "select event_id from webhook_events")
        .lines()
        .map(str::to_owned)
        .collect();
    let sent: BTreeSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ledger, sent, "every event exactly once in the ledger");
    assert_eq!(
        sql(
            url,
            "select outcome || ':' || count(*) from webhook_events group by outcome"
        ),
        format!("processed:{EVENTS}")
    );
    let intents = events
        .iter()
        .filter(|e| e.kind == "payment_intent.succeeded")
        .count();
    assert_eq!(
        count(url, "select count(*) from payments"),
        i64::try_from(intents).unwrap(),
        "one payment per succeeded PaymentIntent"
    );
    assert_eq!(
        count(
            url,
            "select count(distinct stripe_payment_intent_id) from payments \
             where status = 'succeeded' and source_event_id like 'evt_outage_%'"
        ),
        i64::try_from(intents).unwrap()
    );
    let invoices = events
        .iter()
        .filter(|e| e.kind == "invoice.payment_failed")
        .count();
    assert_eq!(
        count(
            url,
            "select count(*) from invoices where status = 'overdue'"
        ),
        i64::try_from(invoices).unwrap()
    );
    assert_eq!(
        count(url, "select count(*) from notifications"),
        i64::try_from(invoices).unwrap(),
        "one notification per failed invoice"
    );
    assert_eq!(
        count(
            url,
            "select count(*) from subscriptions where status = 'active'"
        ),
        i64::try_from(EVENTS - intents - invoices).unwrap()
    );
    assert_eq!(
        count(url, "select count(*) from tenants where status = 'active'"),
        i64::try_from(TENANTS).unwrap()
    );
    eprintln!(
        "postgres outage: {EVENTS} events, {killed} backends terminated, \
         {redeliveries} redeliveries, {:?}",
        started.elapsed()
    );
}
