//! Checkout, renewals, failed renewals and trials, through the API and the test clock.

use serde_json::json;

use crate::harness::{types_after, verify, with_receiver, Api, PRICE, SECRET};

const CHECKOUT_SEQUENCE: [&str; 12] = [
    "customer.created",
    "payment_method.attached",
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
    "checkout.session.completed",
];

#[tokio::test]
async fn a_paid_checkout_emits_lifecycles_sequence_signed_and_in_order() {
    let (emulator, receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let session = api
        .checkout(PRICE, &[("customer_email", "buyer@example.com")])
        .await;
    let completed = api.complete(&session, "4242 4242 4242 4242").await;
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["payment_status"], "paid");
    assert_eq!(completed["client_reference_id"], "tenant-1");
    assert_eq!(completed["amount_total"], 2000);

    let deliveries = receiver.wait_for(CHECKOUT_SEQUENCE.len()).await;
    assert_eq!(receiver.types(), CHECKOUT_SEQUENCE);
    for delivery in &deliveries {
        assert!(
            verify(SECRET, &delivery.signature, &delivery.body),
            "bad signature"
        );
        assert!(!verify("whsec_other", &delivery.signature, &delivery.body));
        let event = delivery.event();
        assert_eq!(event["api_version"], "2026-07-29.dahlia");
        assert_eq!(event["pending_webhooks"], 1);
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    }
    let created = deliveries[2].event();
    assert_eq!(created["data"]["object"]["status"], "incomplete");
    let updated = deliveries[10].event();
    assert_eq!(updated["data"]["object"]["status"], "active");
    assert_eq!(
        updated["data"]["previous_attributes"]["status"],
        "incomplete"
    );

    let sub_id = completed["subscription"].as_str().unwrap();
    assert!(sub_id.starts_with("sub_"));
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["metadata"]["tenantId"], "tenant-1");
    assert_eq!(sub["items"]["data"][0]["price"]["id"], PRICE);
    let item = &sub["items"]["data"][0];
    assert!(item["current_period_end"].as_i64() > item["current_period_start"].as_i64());

    let invoice_id = completed["invoice"].as_str().unwrap();
    let (_, invoice) = api
        .get(&format!("/v1/invoices/{invoice_id}?expand[]=payments"))
        .await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["amount_paid"], 2000);
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        sub_id
    );
    assert_eq!(
        invoice["parent"]["subscription_details"]["metadata"]["tenantId"],
        "tenant-1"
    );
    assert!(invoice["hosted_invoice_url"]
        .as_str()
        .unwrap()
        .starts_with(&api.base));
    let pi = invoice["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap();
    let (_, intent) = api.get(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(intent["status"], "succeeded");
    let charge = intent["latest_charge"].as_str().unwrap();
    let (status, charge) = api.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(status, 200);
    assert_eq!(charge["amount_captured"], 2000);

    // Every delivery succeeded: nothing is pending any more.
    let (_, pending) = api.get("/v1/events?delivery_success=false").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (_, after) = api.get("/v1/events?delivery_success=false").await;
    assert!(after["data"].as_array().unwrap().len() <= pending["data"].as_array().unwrap().len());
    assert_eq!(after["data"].as_array().unwrap().len(), 0, "{after}");
    emulator.stop().await;
}

#[tokio::test]
async fn declined_and_authentication_cards_do_not_complete_until_approved() {
    let (emulator, _receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let session = api.checkout(PRICE, &[]).await;
    let path = format!("/checkout/sessions/{session}/complete");
    let (status, body) = api
        .control(&path, json!({ "card": "4000000000000002" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("card_declined"))
    );
    let (status, body) = api
        .control(&path, json!({ "card": "4000002500003155" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("authentication_required"))
    );
    let (status, _) = api
        .control(
            &path,
            json!({ "card": "4000002500003155", "authentication": "fail" }),
        )
        .await;
    assert_eq!(status, 402);
    assert_eq!(
        emulator.checkout_session_status(&session).as_deref(),
        Some("open")
    );
    assert!(
        emulator.event_types().is_empty(),
        "{:?}",
        emulator.event_types()
    );

    let (status, body) = api
        .control(
            &path,
            json!({ "card": "4000002500003155", "authentication": "approve" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment_status"], "paid");
    emulator.stop().await;
}

#[tokio::test]
async fn a_clock_advanced_a_month_renews_and_pays_in_stripes_order() {
    let (emulator, _receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let start = 1_780_000_000;
    let (clock, customer) = api.clock_customer(start).await;
    let session = api.checkout(PRICE, &[("customer", &customer)]).await;
    let completed = api.complete(&session, "4242424242424242").await;
    let sub_id = completed["subscription"].as_str().unwrap().to_owned();
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    let period_end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    assert_eq!(sub["items"]["data"][0]["current_period_start"], start);
    assert_eq!(sub["test_clock"], clock.as_str());

    let before = emulator.event_types().len();
    api.advance(&clock, period_end + 2 * 3600).await;
    assert_eq!(
        types_after(&emulator, before),
        [
            "test_helpers.test_clock.advancing",
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated",
            "test_helpers.test_clock.ready",
        ]
    );
    let events = emulator.events();
    let renewal = &events[before + 1]["data"]["object"];
    assert_eq!(renewal["billing_reason"], "subscription_cycle");
    assert_eq!(renewal["status"], "draft");
    assert_eq!(events[before + 1]["created"], period_end);
    assert_eq!(events[before + 2]["created"], period_end + 3600);
    let updated = &events[before + 8];
    assert_eq!(
        updated["data"]["object"]["items"]["data"][0]["current_period_start"],
        period_end
    );
    assert_eq!(
        updated["data"]["previous_attributes"]["items"]["data"][0]["current_period_end"],
        period_end
    );
    let (_, clock_now) = api
        .get(&format!("/v1/test_helpers/test_clocks/{clock}"))
        .await;
    assert_eq!(clock_now["status"], "ready");
    assert_eq!(clock_now["frozen_time"], period_end + 2 * 3600);
    emulator.stop().await;
}

#[tokio::test]
async fn a_failing_card_takes_the_renewal_to_past_due_and_the_retries_to_cancellation() {
    let (emulator, _receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let start = 1_780_000_000;
    let (clock, customer) = api.clock_customer(start).await;
    let session = api.checkout(PRICE, &[("customer", &customer)]).await;
    let completed = api.complete(&session, "4242424242424242").await;
    let sub_id = completed["subscription"].as_str().unwrap().to_owned();
    let (status, _) = api
        .control(
            &format!("/customers/{customer}/payment_method"),
            json!({ "card": "4000000000000341" }),
        )
        .await;
    assert_eq!(status, 200);
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    let period_end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();

    let before = emulator.event_types().len();
    api.advance(&clock, period_end + 2 * 3600).await;
    assert_eq!(
        types_after(&emulator, before)[1..],
        [
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "invoice.payment_failed",
            "payment_intent.payment_failed",
            "charge.failed",
            "customer.subscription.updated",
            "test_helpers.test_clock.ready",
        ]
    );
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "past_due");
    let failed = &emulator.events()[before + 4]["data"]["object"];
    assert_eq!(failed["attempt_count"], 1);
    assert_eq!(
        failed["next_payment_attempt"],
        period_end + 3600 + 3 * 86_400
    );

    // Three retries 3, 5 and 7 days apart, then the subscription is canceled.
    let before = emulator.event_types().len();
    api.advance(&clock, period_end + 20 * 86_400).await;
    let types = types_after(&emulator, before);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "invoice.payment_failed")
            .count(),
        3,
        "{types:?}"
    );
    assert!(
        types.contains(&"customer.subscription.deleted".to_owned()),
        "{types:?}"
    );
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["cancellation_details"]["reason"], "payment_failed");
    let (_, listed) = api
        .get(&format!("/v1/subscriptions?customer={customer}"))
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    let (_, all) = api
        .get(&format!("/v1/subscriptions?customer={customer}&status=all"))
        .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    emulator.stop().await;
}

#[tokio::test]
async fn a_trial_pays_nothing_warns_three_days_before_and_renews_at_its_end() {
    let (emulator, _receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let start = 1_780_000_000;
    let (clock, customer) = api.clock_customer(start).await;
    let session = api
        .checkout(
            PRICE,
            &[
                ("customer", &customer),
                ("subscription_data[trial_period_days]", "14"),
            ],
        )
        .await;
    let completed = api.complete(&session, "4242424242424242").await;
    assert_eq!(completed["payment_status"], "no_payment_required");
    let types = emulator.event_types();
    assert!(
        !types.contains(&"payment_intent.created".to_owned()),
        "{types:?}"
    );
    assert!(types.contains(&"invoice.paid".to_owned()));
    let sub_id = completed["subscription"].as_str().unwrap().to_owned();
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "trialing");
    let trial_end = start + 14 * 86_400;
    assert_eq!(sub["trial_end"], trial_end);

    let before = emulator.event_types().len();
    api.advance(&clock, start + 12 * 86_400).await;
    assert_eq!(
        types_after(&emulator, before)[1..],
        [
            "customer.subscription.trial_will_end",
            "test_helpers.test_clock.ready"
        ]
    );
    assert_eq!(
        emulator.events()[before + 1]["created"],
        trial_end - 3 * 86_400
    );

    api.advance(&clock, trial_end + 2 * 3600).await;
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "active");
    let latest = sub["latest_invoice"].as_str().unwrap();
    let (_, invoice) = api.get(&format!("/v1/invoices/{latest}")).await;
    assert_eq!(
        (invoice["status"].as_str(), invoice["amount_paid"].as_i64()),
        (Some("paid"), Some(2000))
    );
    emulator.stop().await;
}

#[tokio::test]
async fn cancel_at_period_end_ends_the_subscription_when_the_clock_passes_it() {
    let (emulator, _receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    let (clock, customer) = api.clock_customer(1_780_000_000).await;
    let session = api.checkout(PRICE, &[("customer", &customer)]).await;
    let sub_id = api.complete(&session, "4242424242424242").await["subscription"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub = api
        .ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &[("cancel_at_period_end", "true")],
        )
        .await;
    let end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    assert_eq!(sub["cancel_at"], end);
    let updated = emulator.events().pop().unwrap();
    assert_eq!(updated["type"], "customer.subscription.updated");
    assert_eq!(
        updated["data"]["previous_attributes"]["cancel_at_period_end"],
        false
    );

    api.advance(&clock, end + 60).await;
    let types = emulator.event_types();
    assert_eq!(types[types.len() - 2], "customer.subscription.deleted");
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(sub["status"], "canceled");
    emulator.stop().await;
}
