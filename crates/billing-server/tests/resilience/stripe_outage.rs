//! Scenario 2: Stripe failing. While the fake answers `/v1/payment_intents` with 500s,
//! 429s, hangs beyond the per-try timeout and connection resets, twenty callers ask for the
//! same invoice's PaymentIntent at once (plus one caller for each of three other
//! invoices). Every answer is 200 or 502 `stripe_unavailable` within the configured
//! deadline, Stripe never holds two PaymentIntents for one invoice, and once Stripe
//! recovers each invoice has exactly one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use billing_stripe_emulator::{Failure, FakeStripe};
use serde_json::{json, Value};

use crate::support::{admin_token, client, database, server_env, sql, tenant_token, ServerProcess};

const DEADLINE: Duration = Duration::from_secs(3);
/// Scheduling, the database and the HTTP hop on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);
const SAME_INVOICE: usize = 20;

async fn create_invoice(server: &ServerProcess, tenant: TenantId, number: &str) {
    let response = client(Duration::from_secs(10))
        .post(server.url("/api/v1/billing/invoices"))
        .bearer_auth(admin_token())
        .json(&json!({
            "tenantId": tenant.to_string(), "number": number, "amountDue": 12500,
            "currency": "usd", "dueDate": "2026-12-31",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "create invoice {number}");
}

/// Asks for `number`'s PaymentIntent: the client secret on 200, `None` on 502
/// `stripe_unavailable`; anything else, or an answer after the deadline, fails the test.
async fn pay(
    http: reqwest::Client,
    server: String,
    token: String,
    number: String,
) -> Option<String> {
    let started = Instant::now();
    let response = http
        .post(format!(
            "{server}/api/v1/billing/invoices/{number}/payment-intent"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took <= DEADLINE + SLACK,
        "{number}: answered after {took:?}, the deadline is {DEADLINE:?}"
    );
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    match status {
        200 => Some(body["clientSecret"].as_str().unwrap().to_owned()),
        502 => {
            assert!(content_type.starts_with("application/problem+json"));
            assert_eq!(body["code"], "stripe_unavailable", "{body}");
            None
        }
        other => panic!("{number}: unexpected {other} {body}"),
    }
}

fn inject_storm(stripe: &FakeStripe) {
    let path = "/v1/payment_intents";
    for _ in 0..2 {
        stripe.fail_next_on(path, 6, Failure::Status(500));
        stripe.fail_next_on(path, 6, Failure::Status(429));
        stripe.fail_next_on(path, 6, Failure::Hang(Duration::from_secs(4)));
        stripe.fail_next_on(path, 6, Failure::Reset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_stripe_gets_bounded_502s_and_never_two_payment_intents_for_one_invoice() {
    let started = Instant::now();
    let db = database(true).await;
    let stripe = FakeStripe::start().await;
    let mut env = server_env(db.url(), &stripe.base_url());
    env.insert("STRIPE_MAX_RETRIES", "2".to_owned());
    env.insert("STRIPE_TIMEOUT_SECS", "1".to_owned());
    env.insert("STRIPE_DEADLINE_SECS", DEADLINE.as_secs().to_string());
    let server = ServerProcess::start(&env).await;

    let tenant = TenantId::new();
    let numbers = ["inv-storm-a", "inv-storm-b", "inv-storm-c", "inv-storm-d"];
    for number in numbers {
        create_invoice(&server, tenant, number).await;
    }
    inject_storm(&stripe);

    let http = client(Duration::from_secs(30));
    let token = tenant_token(tenant);
    let callers: Vec<(&str, _)> = std::iter::repeat_n(numbers[0], SAME_INVOICE)
        .chain(numbers[1..].iter().copied())
        .map(|number| {
            let call = tokio::spawn(pay(
                http.clone(),
                server.address.clone(),
                token.clone(),
                number.to_owned(),
            ));
            (number, call)
        })
        .collect();
    let mut secrets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut unavailable = 0;
    for (number, call) in callers {
        match call.await.unwrap() {
            Some(secret) => {
                secrets.entry(number).or_default().insert(secret);
            }
            None => unavailable += 1,
        }
    }
    // 48 injected failures, 23 callers of at most 3 attempts each: a caller succeeds only
    // once the queue is drained, with at most 2 failed attempts, so not all can succeed.
    assert!(unavailable > 0, "the storm never reached a caller");
    for (number, seen) in &secrets {
        assert_eq!(seen.len(), 1, "{number}: several client secrets {seen:?}");
    }
    assert!(
        stripe.payment_intents_created() <= numbers.len(),
        "Stripe holds {} PaymentIntents for {} invoices",
        stripe.payment_intents_created(),
        numbers.len()
    );

    // Stripe recovers: one more call per invoice succeeds, with the same intent as before.
    stripe.clear_failures();
    for number in numbers {
        let secret = pay(
            http.clone(),
            server.address.clone(),
            token.clone(),
            number.to_owned(),
        )
        .await
        .unwrap_or_else(|| panic!("{number}: still unavailable after Stripe recovered"));
        if let Some(seen) = secrets.get(number) {
            assert!(seen.contains(&secret), "{number}: a second PaymentIntent");
        }
        let intent = sql(
            db.url(),
            &format!("select stripe_payment_intent_id from invoices where number = '{number}'"),
        );
        assert!(
            secret.starts_with(&format!("{intent}_secret_")),
            "{number}: stored {intent}, handed out {secret}"
        );
    }
    assert_eq!(stripe.payment_intents_created(), numbers.len());
    assert_eq!(
        sql(
            db.url(),
            "select count(distinct stripe_payment_intent_id) from invoices"
        ),
        numbers.len().to_string()
    );
    eprintln!(
        "stripe outage: {} calls, {unavailable} answered 502, {} Stripe requests, {:?}",
        SAME_INVOICE + numbers.len() - 1,
        stripe.requests().len(),
        started.elapsed()
    );
}
