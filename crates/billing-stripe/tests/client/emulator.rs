//! Every operation of the client against the Stripe emulator, which validates each request
//! as Stripe does (an unknown or malformed parameter is a 400 that would fail these calls)
//! and keeps state, so an answer here is the consequence of what the client sent, not a
//! canned body. The wiremock tests beside this file keep what needs an exact wire answer:
//! byte-exact forms, Stripe's error bodies, resets, hangs, the older invoice shape.

use billing_domain::ids::{CustomerRef, EventId, InvoiceRef, PaymentIntentRef, SubscriptionRef};
use billing_domain::model::SubscriptionStatus;
use billing_domain::ports::{IntentState, PaymentProvider, SessionEnd};
use billing_stripe::{StripeClient, StripeConfig};
use billing_stripe_emulator::{fixtures, EmulatorConfig, RecordedRequest, StripeEmulator};
use secrecy::SecretString;
use serde_json::json;

use crate::support::*;

const CUSTOMER: &str = "cus_t9FXeM4pJmfNhL";

/// An emulator that accepts only the client's key and knows the test price, and a client
/// pointed at it.
async fn emulator() -> (StripeEmulator, StripeClient) {
    let emulator = StripeEmulator::start(EmulatorConfig {
        api_key: Some(KEY.to_owned()),
        prices: vec![billing_stripe_emulator::PriceSeed {
            id: "price_1Rq3oaHx4KpL29aTqhCv4Gt4".to_owned(),
            product_name: "Pro".to_owned(),
            unit_amount: 4900,
            currency: "usd".to_owned(),
            interval: Some("month".to_owned()),
        }],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let mut config = StripeConfig::new(
        Some(SecretString::from(KEY.to_owned())),
        "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "https://app.example.com/billing/cancel",
    );
    config.api_base = emulator.base_url().parse().unwrap();
    config.retry = fast_policy();
    let client = StripeClient::new(config).unwrap();
    (emulator, client)
}

/// The requests the client sent to `path` (the emulator records every one).
fn sent(emulator: &StripeEmulator, method: &str, path: &str) -> Vec<RecordedRequest> {
    emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

fn form_value<'a>(r: &'a RecordedRequest, key: &str) -> Option<&'a str> {
    r.form
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_checkout_session_is_accepted_and_opened_with_the_plan_tenant_and_trial() {
    let (emulator, client) = emulator().await;
    emulator.add_customer(CUSTOMER);

    let session = client
        .create_checkout_session(&checkout_request(Some(CUSTOMER), Some(14)))
        .await
        .unwrap();

    assert!(
        session.id.as_str().starts_with("cs_test_"),
        "{}",
        session.id
    );
    assert_eq!(
        emulator
            .checkout_session_status(session.id.as_str())
            .as_deref(),
        Some("open")
    );
    assert!(session.url.contains(session.id.as_str()), "{}", session.url);
    let [request] = sent(&emulator, "POST", "/v1/checkout/sessions")
        .try_into()
        .unwrap();
    assert_eq!(form_value(&request, "customer"), Some(CUSTOMER));
    assert_eq!(form_value(&request, "client_reference_id"), Some(TENANT));
    assert_eq!(
        form_value(&request, "subscription_data[trial_period_days]"),
        Some("14")
    );
}

#[tokio::test]
async fn a_checkout_without_customer_or_trial_is_accepted_too() {
    let (emulator, client) = emulator().await;

    let session = client
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();

    assert_eq!(
        emulator
            .checkout_session_status(session.id.as_str())
            .as_deref(),
        Some("open")
    );
}

#[tokio::test]
async fn the_same_checkout_sent_twice_is_one_session_at_stripe() {
    let (emulator, client) = emulator().await;

    let first = client
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();
    let second = client
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();

    assert_eq!(first.id, second.id);
    assert_eq!(emulator.checkout_sessions_created(), 1);
}

#[tokio::test]
async fn an_unknown_customer_is_refused_as_stripe_refuses_it() {
    let (emulator, client) = emulator().await;

    let refused = client
        .create_checkout_session(&checkout_request(Some("cus_nobodyknows"), None))
        .await;

    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(emulator.checkout_sessions_created(), 0);
}

#[tokio::test]
async fn an_open_session_expires_and_a_completed_one_reads_back_as_completed() {
    let (emulator, client) = emulator().await;
    let open = client
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();
    let mut other = checkout_request(None, None);
    other.idempotency_key = "checkout:tenant:other".to_owned();
    let completed = client.create_checkout_session(&other).await.unwrap();
    assert!(emulator.complete_checkout_session(completed.id.as_str()));

    let ended_open = client.expire_checkout_session(&open.id).await.unwrap();
    let ended_completed = client.expire_checkout_session(&completed.id).await.unwrap();

    assert_eq!(ended_open, SessionEnd::Expired);
    assert_eq!(
        emulator
            .checkout_session_status(open.id.as_str())
            .as_deref(),
        Some("expired")
    );
    assert_eq!(ended_completed, SessionEnd::Completed);
}

#[tokio::test]
async fn a_portal_session_is_made_for_a_known_customer() {
    let (emulator, client) = emulator().await;
    emulator.add_customer(CUSTOMER);

    let url = client
        .create_portal_session(
            &CustomerRef::parse(CUSTOMER).unwrap(),
            "https://app.example.com/account?a=1&b=2",
        )
        .await
        .unwrap();

    assert!(url.starts_with("http"), "{url}");
    assert_eq!(emulator.portal_sessions_created(), 1);
}

#[tokio::test]
async fn a_payment_intent_is_created_once_and_read_back_with_its_state() {
    let (emulator, client) = emulator().await;
    emulator.add_customer(CUSTOMER);

    let created = client
        .create_payment_intent(&intent_request())
        .await
        .unwrap();
    let again = client
        .create_payment_intent(&intent_request())
        .await
        .unwrap();
    assert!(emulator.set_payment_intent_status(created.id.as_str(), "succeeded"));
    let read = client.payment_intent(&created.id).await.unwrap();

    assert_eq!(again.id, created.id);
    assert_eq!(emulator.payment_intents_created(), 1);
    assert_eq!(created.amount.minor(), 4900);
    assert_eq!(created.state, IntentState::AwaitingPayment);
    assert_eq!(read.state, IntentState::Succeeded);
    let stored = emulator.payment_intent(created.id.as_str()).unwrap();
    assert_eq!(stored["metadata"]["invoiceId"], INVOICE);
    assert_eq!(stored["metadata"]["tenantId"], TENANT);
    assert_eq!(stored["automatic_payment_methods"]["enabled"], true);
}

#[tokio::test]
async fn an_invoices_payment_intent_is_found_through_its_expanded_payments() {
    let (emulator, client) = emulator().await;
    let mut invoice = fixtures::invoice();
    invoice["id"] = json!("in_emulated");
    invoice["status"] = json!("paid");
    let id = emulator.add_invoice(invoice);
    let mut without = fixtures::invoice();
    without["id"] = json!("in_without_payments");
    let bare = emulator.add_invoice(without);
    emulator.add_invoice_payment(&id, "pi_from_invoice");

    let found = client
        .invoice_payment_intent(&InvoiceRef::parse(&id).unwrap(), None)
        .await
        .unwrap();
    let none = client
        .invoice_payment_intent(&InvoiceRef::parse(&bare).unwrap(), None)
        .await
        .unwrap();

    assert_eq!(
        found,
        Some(PaymentIntentRef::parse("pi_from_invoice").unwrap())
    );
    assert_eq!(none, None);
}

#[tokio::test]
async fn an_event_is_fetched_byte_for_byte_and_a_subscription_in_its_current_state() {
    let (emulator, client) = emulator().await;
    let raw = fixture("event.json");
    emulator.add_event("evt_emulated", raw.clone());
    let mut subscription = fixtures::subscription();
    subscription["id"] = json!("sub_emulated");
    subscription["status"] = json!("past_due");
    emulator.add_subscription(subscription);

    let bytes = client
        .fetch_event(&EventId::parse("evt_emulated").unwrap())
        .await
        .unwrap();
    let snapshot = client
        .subscription(&SubscriptionRef::parse("sub_emulated").unwrap())
        .await
        .unwrap();

    assert_eq!(bytes, raw.as_bytes());
    assert_eq!(snapshot.subscription.as_str(), "sub_emulated");
    assert_eq!(snapshot.status, Some(SubscriptionStatus::PastDue));
    assert_eq!(
        snapshot.price.unwrap().as_str(),
        fixtures::subscription()["items"]["data"][0]["price"]["id"]
            .as_str()
            .unwrap()
    );
}

// ---- catch-up (issue 15) ----

async fn create_customers(emulator: &StripeEmulator, n: usize) {
    let http = reqwest::Client::new();
    for i in 0..n {
        http.post(format!(
            "{}/v1/customers",
            emulator.base_url().trim_end_matches('/')
        ))
        .bearer_auth(KEY)
        .form(&[("email", format!("c{i}@example.com"))])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    }
}

#[tokio::test]
async fn events_are_listed_newest_first_as_stripe_renders_them_and_paged_after_a_cursor() {
    let (emulator, client) = emulator().await;
    create_customers(&emulator, 3).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);

    let page = client.list_events(since, None).await.unwrap();

    assert!(page.events.len() >= 3, "{:?}", page.events.len());
    assert!(!page.has_more);
    assert!(page.events.windows(2).all(|w| w[0].created >= w[1].created));
    for event in &page.events {
        let body: serde_json::Value = serde_json::from_slice(&event.raw).unwrap();
        assert_eq!(body["id"], event.id.as_str());
        assert_eq!(body["object"], "event");
    }
    let sent = sent(&emulator, "GET", "/v1/events");
    assert_eq!(sent.len(), 1);
    let query = sent[0].query.clone().unwrap_or_default();
    assert!(query.contains("limit=100"), "{query}");
    assert!(
        query.contains(&format!("created%5Bgte%5D={}", since.timestamp()))
            || query.contains(&format!("created[gte]={}", since.timestamp())),
        "{query}"
    );

    let first = page.events[0].id.clone();
    let older = client.list_events(since, Some(first)).await.unwrap();
    assert_eq!(
        older.events.len(),
        page.events.len() - 1,
        "after the newest: the others"
    );
    // A future start lists nothing.
    let none = client
        .list_events(chrono::Utc::now() + chrono::Duration::hours(1), None)
        .await
        .unwrap();
    assert!(none.events.is_empty());
}

#[tokio::test]
async fn the_background_budget_keeps_calls_under_the_emulators_rate_limit_and_pauses_on_429() {
    let (emulator, client) = emulator().await;
    let control = format!(
        "{}/__emulator/rate_limit",
        emulator.base_url().trim_end_matches('/')
    );
    let http = reqwest::Client::new();
    http.post(&control)
        .json(&json!({"perSecond": 5}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let since = chrono::Utc::now();

    // Unpaced, a burst is refused with Stripe's 429 `rate_limit`.
    let burst = futures::future::join_all((0..12).map(|_| {
        let http = http.clone();
        let url = format!("{}/v1/events", emulator.base_url().trim_end_matches('/'));
        async move { http.get(url).bearer_auth(KEY).send().await.unwrap() }
    }))
    .await;
    let refused: Vec<_> = burst.into_iter().filter(|r| r.status() == 429).collect();
    assert!(!refused.is_empty());
    assert_eq!(refused[0].headers()["retry-after"], "1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before: serde_json::Value = http
        .get(&control)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Paced at 2/s, eight calls all get through without one 429.
    let paced = client.with_budget(std::sync::Arc::new(billing_stripe::RateBudget::new(2.0)));
    let calls = futures::future::join_all((0..8).map(|_| paced.list_events(since, None))).await;
    assert!(calls.iter().all(Result::is_ok), "{calls:?}");
    let after: serde_json::Value = http
        .get(&control)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["refused"], after["refused"], "{after}");
}
