//! End-to-end tests of the fake over real HTTP (reqwest), one group per endpoint plus
//! idempotency and failure injection.

use std::time::{Duration, Instant};

use billing_stripe_emulator::{Failure, FakeStripe};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

const AUTH: &str = "Bearer sk_test_fake";

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: a transport error fails the test"
)]
async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

fn post(fake: &FakeStripe, path: &str, form: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url()))
        .header("authorization", AUTH)
        .header("stripe-version", "2026-07-29.dahlia")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
}

fn get(fake: &FakeStripe, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("{}{path}", fake.base_url()))
        .header("authorization", AUTH)
}

const CHECKOUT: &str = "mode=subscription&line_items[0][price]=price_123&line_items[0][quantity]=1\
    &customer=cus_t9FXeM4pJmfNhL&client_reference_id=user_8842&metadata[app_user_id]=user_8842\
    &success_url=https%3A%2F%2Fapp.example.com%2Fok%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D";

fn error_of(answer: &Answer) -> (&str, &str, &str) {
    let error = &answer.body["error"];
    (
        error["type"].as_str().unwrap_or(""),
        error["code"].as_str().unwrap_or(""),
        error["param"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn requests_without_a_test_secret_key_get_a_401_that_never_echoes_the_key() {
    let fake = FakeStripe::start().await;
    let url = format!("{}/v1/payment_intents/pi_1", fake.base_url());

    let missing = send(reqwest::Client::new().get(&url)).await;
    let live = send(
        reqwest::Client::new()
            .get(&url)
            .header("authorization", "Bearer sk_live_fake_for_tests"),
    )
    .await;

    assert_eq!(missing.status, 401);
    assert_eq!(error_of(&missing).0, "invalid_request_error");
    assert_eq!(live.status, 401);
    assert!(live.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("API Key"));
    assert!(!live.body.to_string().contains("fake_for_tests"));
    fake.stop().await;
}

#[tokio::test]
async fn checkout_session_is_created_with_echoed_fields_and_the_request_is_recorded() {
    let fake = FakeStripe::start().await;

    let answer = send(post(&fake, "/v1/checkout/sessions", CHECKOUT)).await;

    assert_eq!(answer.status, 200);
    let id = answer.body["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"));
    assert_eq!(
        answer.body["url"],
        format!("https://checkout.stripe.com/c/pay/{id}")
    );
    assert_eq!(answer.body["object"], "checkout.session");
    assert_eq!(answer.body["client_reference_id"], "user_8842");
    assert_eq!(answer.body["customer"], "cus_t9FXeM4pJmfNhL");
    assert_eq!(answer.body["metadata"], json!({"app_user_id": "user_8842"}));
    assert_eq!(
        answer.body["success_url"],
        "https://app.example.com/ok?session_id={CHECKOUT_SESSION_ID}"
    );
    let request_id = answer.headers["request-id"].to_str().unwrap();
    assert!(request_id.starts_with("req_"));
    let recorded = &fake.requests()[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.path, "/v1/checkout/sessions");
    assert_eq!(recorded.header("Stripe-Version"), Some("2026-07-29.dahlia"));
    assert_eq!(
        recorded.form_value("line_items[0][price]"),
        Some("price_123")
    );
    assert_eq!(fake.checkout_sessions_created(), 1);
    let fetched = send(get(&fake, &format!("/v1/checkout/sessions/{id}"))).await;
    assert_eq!(fetched.body["id"], id);
}

#[tokio::test]
async fn checkout_session_without_a_required_parameter_is_a_stripe_shaped_400() {
    let fake = FakeStripe::start().await;

    let no_success_url = send(post(
        &fake,
        "/v1/checkout/sessions",
        "mode=payment&line_items[0][price]=price_1",
    ))
    .await;
    let no_price = send(post(
        &fake,
        "/v1/checkout/sessions",
        "mode=payment&success_url=https%3A%2F%2Fa.example",
    ))
    .await;
    let bad_mode = send(post(
        &fake,
        "/v1/checkout/sessions",
        "mode=rental&line_items[0][price]=price_1&success_url=https%3A%2F%2Fa.example",
    ))
    .await;
    let both_customers = send(post(
        &fake,
        "/v1/checkout/sessions",
        &format!("{CHECKOUT}&customer_email=a%40example.com"),
    ))
    .await;

    assert_eq!(no_success_url.status, 400);
    assert_eq!(
        error_of(&no_success_url),
        ("invalid_request_error", "parameter_missing", "success_url")
    );
    assert_eq!(error_of(&no_price).2, "line_items[0][price]");
    assert_eq!(bad_mode.status, 400);
    assert_eq!(error_of(&bad_mode).2, "mode");
    assert_eq!(both_customers.status, 400);
    assert_eq!(fake.checkout_sessions_created(), 0);
}

/// Creates a Checkout Session over HTTP and returns its id.
#[expect(
    clippy::unwrap_used,
    reason = "test helper: a session without an id fails the test"
)]
async fn new_session(fake: &FakeStripe) -> String {
    let answer = send(post(fake, "/v1/checkout/sessions", CHECKOUT)).await;
    answer.body["id"].as_str().unwrap().to_owned()
}

fn expire_path(id: &str) -> String {
    format!("/v1/checkout/sessions/{id}/expire")
}

#[tokio::test]
async fn new_checkout_sessions_are_open_and_listed_in_creation_order() {
    let fake = FakeStripe::start().await;

    let first = new_session(&fake).await;
    let second = new_session(&fake).await;
    let third = new_session(&fake).await;

    assert_eq!(fake.checkout_session_ids(), [first.clone(), second, third]);
    assert_eq!(
        fake.checkout_session_status(&first).as_deref(),
        Some("open")
    );
    assert_eq!(fake.checkout_session_status("cs_test_nope"), None);
}

#[tokio::test]
async fn expiring_an_open_checkout_session_expires_it_and_drops_its_url() {
    let fake = FakeStripe::start().await;
    let id = new_session(&fake).await;

    let answer = send(post(&fake, &expire_path(&id), "")).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["id"], id.as_str());
    assert_eq!(answer.body["object"], "checkout.session");
    assert_eq!(answer.body["status"], "expired");
    assert_eq!(answer.body["url"], Value::Null);
    assert_eq!(
        fake.checkout_session_status(&id).as_deref(),
        Some("expired")
    );
    let fetched = send(get(&fake, &format!("/v1/checkout/sessions/{id}"))).await;
    assert_eq!(fetched.body["status"], "expired");
    assert_eq!(fetched.body["url"], Value::Null);
}

#[tokio::test]
async fn expiring_a_complete_or_expired_checkout_session_is_a_400() {
    let fake = FakeStripe::start().await;
    let completed = new_session(&fake).await;
    let expired = new_session(&fake).await;
    assert!(fake.complete_checkout_session(&completed));
    assert!(!fake.complete_checkout_session("cs_test_nope"));
    assert_eq!(
        send(post(&fake, &expire_path(&expired), "")).await.status,
        200
    );

    let on_complete = send(post(&fake, &expire_path(&completed), "")).await;
    let on_expired = send(post(&fake, &expire_path(&expired), "")).await;

    for answer in [&on_complete, &on_expired] {
        assert_eq!(answer.status, 400);
        assert_eq!(error_of(answer), ("invalid_request_error", "", ""));
        assert_eq!(
            answer.body["error"]["message"],
            r#"Only Checkout Sessions with a status in ["open"] can be expired."#
        );
    }
    assert_eq!(
        fake.checkout_session_status(&completed).as_deref(),
        Some("complete")
    );
    let fetched = send(get(&fake, &format!("/v1/checkout/sessions/{completed}"))).await;
    assert_eq!(fetched.body["status"], "complete");
    assert_eq!(fetched.body["url"], Value::Null);
}

#[tokio::test]
async fn expiring_an_unknown_checkout_session_is_a_404() {
    let fake = FakeStripe::start().await;

    let answer = send(post(&fake, &expire_path("cs_test_nope"), "")).await;

    assert_eq!(answer.status, 404);
    assert_eq!(
        error_of(&answer),
        ("invalid_request_error", "resource_missing", "session")
    );
    assert_eq!(
        answer.body["error"]["message"],
        "No such checkout.session: 'cs_test_nope'"
    );
}

#[tokio::test]
async fn a_repeated_expire_with_the_same_idempotency_key_replays_the_first_answer() {
    let fake = FakeStripe::start().await;
    let id = new_session(&fake).await;
    let key = format!("expire-{id}");

    let first = send(post(&fake, &expire_path(&id), "").header("idempotency-key", &key)).await;
    let again = send(post(&fake, &expire_path(&id), "").header("idempotency-key", &key)).await;

    assert_eq!(first.status, 200);
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn portal_session_is_created_for_a_known_customer() {
    let fake = FakeStripe::start().await;

    let answer = send(post(
        &fake,
        "/v1/billing_portal/sessions",
        "customer=cus_abc&return_url=https%3A%2F%2Fapp.example.com%2Faccount",
    ))
    .await;

    assert_eq!(answer.status, 200);
    assert!(answer.body["id"].as_str().unwrap().starts_with("bps_"));
    assert_eq!(answer.body["object"], "billing_portal.session");
    assert!(answer.body["url"]
        .as_str()
        .unwrap()
        .starts_with("https://billing.stripe.com/p/session/"));
    assert_eq!(answer.body["customer"], "cus_abc");
    assert_eq!(answer.body["return_url"], "https://app.example.com/account");
}

#[tokio::test]
async fn portal_session_for_an_unknown_or_missing_customer_is_a_400() {
    let fake = FakeStripe::start().await;
    fake.set_accept_any_customer(false);
    fake.add_customer("cus_seeded");

    let unknown = send(post(
        &fake,
        "/v1/billing_portal/sessions",
        "customer=cus_other",
    ))
    .await;
    let missing = send(post(&fake, "/v1/billing_portal/sessions", "return_url=x")).await;
    let seeded = send(post(
        &fake,
        "/v1/billing_portal/sessions",
        "customer=cus_seeded",
    ))
    .await;

    assert_eq!(unknown.status, 400);
    assert_eq!(
        error_of(&unknown),
        ("invalid_request_error", "resource_missing", "customer")
    );
    assert_eq!(
        unknown.body["error"]["message"],
        "No such customer: 'cus_other'"
    );
    assert_eq!(error_of(&missing).1, "parameter_missing");
    assert_eq!(seeded.status, 200);
    assert_eq!(fake.portal_sessions_created(), 1);
}

#[tokio::test]
async fn payment_intent_is_created_stored_and_retrievable() {
    let fake = FakeStripe::start().await;

    let created = send(post(
        &fake,
        "/v1/payment_intents",
        "amount=1999&currency=EUR&metadata[invoice_id]=inv_42",
    ))
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    fake.set_payment_intent_status(&id, "succeeded");
    let fetched = send(get(&fake, &format!("/v1/payment_intents/{id}"))).await;

    assert_eq!(created.status, 200);
    assert!(id.starts_with("pi_"));
    assert!(created.body["client_secret"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{id}_secret_")));
    assert_eq!(created.body["status"], "requires_payment_method");
    assert_eq!(created.body["currency"], "eur");
    assert_eq!(created.body["metadata"], json!({"invoice_id": "inv_42"}));
    assert_eq!(fetched.body["status"], "succeeded");
    assert_eq!(fetched.body["amount_received"], 1999);
    assert_eq!(fake.payment_intents_created(), 1);
}

#[tokio::test]
async fn payment_intent_with_bad_parameters_or_unknown_id_is_rejected() {
    let fake = FakeStripe::start().await;

    let no_amount = send(post(&fake, "/v1/payment_intents", "currency=usd")).await;
    let negative = send(post(&fake, "/v1/payment_intents", "amount=-5&currency=usd")).await;
    let no_currency = send(post(&fake, "/v1/payment_intents", "amount=500")).await;
    let unknown = send(get(&fake, "/v1/payment_intents/pi_nope")).await;

    assert_eq!(no_amount.status, 400);
    assert_eq!(error_of(&no_amount).1, "parameter_missing");
    assert_eq!(
        error_of(&negative),
        (
            "invalid_request_error",
            "parameter_invalid_integer",
            "amount"
        )
    );
    assert_eq!(error_of(&no_currency).2, "currency");
    assert_eq!(unknown.status, 404);
    assert_eq!(error_of(&unknown).1, "resource_missing");
    assert_eq!(fake.payment_intents_created(), 0);
}

#[tokio::test]
async fn same_idempotency_key_and_parameters_replay_the_same_payment_intent() {
    let fake = FakeStripe::start().await;
    let body = "amount=1000&currency=usd&metadata[k]=v";

    let first =
        send(post(&fake, "/v1/payment_intents", body).header("idempotency-key", "k1")).await;
    let again =
        send(post(&fake, "/v1/payment_intents", body).header("idempotency-key", "k1")).await;
    let changed = send(
        post(&fake, "/v1/payment_intents", "amount=2000&currency=usd")
            .header("idempotency-key", "k1"),
    )
    .await;

    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(first.body["client_secret"], again.body["client_secret"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(changed.status, 400);
    assert_eq!(error_of(&changed).0, "idempotency_error");
    assert_eq!(fake.payment_intents_created(), 1);
}

#[tokio::test]
async fn fifty_concurrent_calls_with_one_idempotency_key_create_exactly_one_payment_intent() {
    let fake = FakeStripe::start().await;
    let calls = (0..50).map(|_| {
        send(
            post(&fake, "/v1/payment_intents", "amount=700&currency=usd")
                .header("idempotency-key", "same-key"),
        )
    });

    let answers = futures::future::join_all(calls).await;

    assert!(answers.iter().all(|a| a.status == 200));
    assert!(answers
        .iter()
        .all(|a| a.body["id"] == answers[0].body["id"]));
    assert_eq!(fake.payment_intents_created(), 1);
    assert_eq!(fake.requests().len(), 50);
}

#[tokio::test]
async fn two_injected_500s_are_followed_by_success_and_store_nothing() {
    let fake = FakeStripe::start().await;
    fake.fail_next(2, Failure::Status(500));
    let attempt = || {
        send(
            post(&fake, "/v1/payment_intents", "amount=300&currency=usd")
                .header("idempotency-key", "retry-1"),
        )
    };

    let first = attempt().await;
    let second = attempt().await;
    let third = attempt().await;

    assert_eq!((first.status, second.status, third.status), (500, 500, 200));
    assert_eq!(error_of(&first).0, "api_error");
    assert!(first.headers.contains_key("request-id"));
    assert!(third.headers.get("idempotent-replayed").is_none());
    assert_eq!(fake.payment_intents_created(), 1);
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn injected_stripe_errors_and_should_retry_headers_are_sent_as_configured() {
    let fake = FakeStripe::start().await;
    fake.fail_next(1, Failure::StatusWithShouldRetry(429, false));
    fake.fail_next(
        1,
        Failure::StripeError {
            status: 402,
            error_type: "card_error".into(),
            code: Some("card_declined".into()),
            message: "Your card was declined.".into(),
            param: None,
        },
    );

    let limited = send(get(&fake, "/v1/payment_intents/pi_x")).await;
    let declined = send(post(&fake, "/v1/payment_intents", "amount=1&currency=usd")).await;

    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["stripe-should-retry"], "false");
    assert_eq!(error_of(&limited).1, "rate_limit");
    assert_eq!(declined.status, 402);
    assert_eq!(error_of(&declined), ("card_error", "card_declined", ""));
    assert_eq!(fake.payment_intents_created(), 0);
}

#[tokio::test]
async fn path_filtered_reset_drops_only_matching_requests_without_a_response() {
    let fake = FakeStripe::start().await;
    fake.add_event("evt_1", br#"{"id":"evt_1","object":"event"}"#.to_vec());
    fake.fail_next_on("/v1/payment_intents", 1, Failure::Reset);

    let other = send(get(&fake, "/v1/events/evt_1")).await;
    let reset = post(&fake, "/v1/payment_intents", "amount=1&currency=usd")
        .send()
        .await;
    let after = send(post(&fake, "/v1/payment_intents", "amount=1&currency=usd")).await;

    assert_eq!(other.status, 200);
    assert!(reset.is_err());
    assert_eq!(after.status, 200);
    assert_eq!(fake.payment_intents_created(), 1);
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout() {
    let fake = FakeStripe::start().await;
    fake.fail_next(1, Failure::Hang(Duration::from_secs(30)));

    let hung = get(&fake, "/v1/events/evt_x")
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    assert!(hung.unwrap_err().is_timeout());
    let next = send(get(&fake, "/v1/events/evt_x")).await;
    assert_eq!(next.status, 404);
    fake.stop().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let fake = FakeStripe::start().await;
    fake.set_latency(Duration::from_millis(250));
    let started = Instant::now();

    let answer = send(get(&fake, "/v1/events/evt_x")).await;

    assert_eq!(answer.status, 404);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn invoice_payments_are_included_only_when_expanded() {
    let fake = FakeStripe::start().await;
    let mut invoice = billing_stripe_emulator::fixtures::invoice();
    invoice["id"] = json!("in_test_1");
    invoice["payments"] = json!(["pi_paid_1"]);
    fake.add_invoice(invoice);

    let plain = send(get(&fake, "/v1/invoices/in_test_1")).await;
    let brackets = send(get(&fake, "/v1/invoices/in_test_1?expand[]=payments")).await;
    let indexed = send(get(&fake, "/v1/invoices/in_test_1?expand%5B0%5D=payments")).await;
    let missing = send(get(&fake, "/v1/invoices/in_missing")).await;

    assert_eq!(plain.status, 200);
    assert!(plain.body.get("payments").is_none());
    let payment = &brackets.body["payments"]["data"][0]["payment"];
    assert_eq!(
        payment,
        &json!({"type": "payment_intent", "payment_intent": "pi_paid_1"})
    );
    assert_eq!(indexed.body["payments"]["object"], "list");
    assert_eq!(missing.status, 404);
    assert_eq!(error_of(&missing).1, "resource_missing");
}

#[tokio::test]
async fn events_are_served_byte_for_byte_and_unknown_ones_are_404() {
    let fake = FakeStripe::start().await;
    let raw = b"{\"id\": \"evt_9\",  \"object\":\"event\"}\n".to_vec();
    fake.add_event("evt_9", raw.clone());

    let response = get(&fake, "/v1/events/evt_9").send().await.unwrap();
    let body = response.bytes().await.unwrap();
    let missing = send(get(&fake, "/v1/events/evt_0")).await;

    assert_eq!(body.to_vec(), raw);
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn unknown_routes_are_a_stripe_style_404() {
    let fake = FakeStripe::start().await;

    let answer = send(get(&fake, "/v1/widgets")).await;

    assert_eq!(answer.status, 404);
    assert_eq!(error_of(&answer).0, "invalid_request_error");
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (GET: /v1/widgets)"));
}

#[tokio::test]
async fn a_reset_sends_not_a_single_byte_before_closing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeStripe::start().await;
    fake.fail_next(1, Failure::Reset);
    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();

    stream
        .write_all(b"GET /v1/events/evt_1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk_test_fake\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;

    assert!(read.is_ok(), "the connection was not closed");
    assert!(
        received.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections() {
    let fake = FakeStripe::start().await;
    let url = format!("{}/v1/events/evt_1", fake.base_url());

    fake.stop().await;
    let refused = reqwest::Client::new().get(url).send().await;

    assert!(refused.unwrap_err().is_connect());
}
