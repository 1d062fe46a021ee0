//! Delivery, the events list, PaymentIntent confirmation, refunds, disputes and the controls.

use std::time::Duration;

use billing_stripe_emulator::StripeEmulator;
use serde_json::{json, Value};

use crate::harness::{config, verify, with_receiver, Api, PRICE, SECRET};

async fn customer(api: &Api, email: &str) -> String {
    api.ok("/v1/customers", &[("email", email)]).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_delivery_answered_500_is_retried_until_it_succeeds() {
    let (emulator, receiver) = with_receiver(vec![500, 503]).await;
    let api = Api::new(&emulator);
    customer(&api, "a@example.com").await;
    let deliveries = receiver.wait_for(3).await;
    let first = deliveries[0].event();
    assert!(deliveries.iter().all(|d| d.event()["id"] == first["id"]));
    assert!(deliveries
        .iter()
        .all(|d| verify(SECRET, &d.signature, &d.body)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, state) = api.control_get("/deliveries").await;
    assert_eq!(state["events"][0]["state"], "delivered");
    assert_eq!(state["events"][0]["attempts"], 3);
    let statuses: Vec<Value> = state["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(500), json!(503), json!(200)]);
    let (_, event) = api
        .get(&format!("/v1/events/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(event["pending_webhooks"], 0);
    assert_eq!(event["type"], "customer.created");
    emulator.stop().await;
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_given_up_and_listed_as_undelivered() {
    let (emulator, receiver) = with_receiver(vec![500, 500, 500, 500]).await;
    let api = Api::new(&emulator);
    customer(&api, "a@example.com").await;
    // One attempt and the two retries of the test schedule.
    receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3);
    let (_, failed) = api.get("/v1/events?delivery_success=false").await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
    assert_eq!(failed["data"][0]["pending_webhooks"], 1);
    emulator.stop().await;
}

#[tokio::test]
async fn events_are_listed_newest_first_with_filters_and_cursors() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    for n in 0..5 {
        customer(&api, &format!("c{n}@example.com")).await;
    }
    let day_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 86_400;
    api.ok(
        "/v1/test_helpers/test_clocks",
        &[("frozen_time", &day_ago.to_string())],
    )
    .await;
    let all = emulator.events();
    let newest_first: Vec<String> = all
        .iter()
        .rev()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();

    let (status, page) = api.get("/v1/events?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    let (_, customers) = api.get("/v1/events?type=customer.created&limit=100").await;
    let customer_ids = ids(&customers);
    assert_eq!(customer_ids.len(), 5);
    assert_eq!(
        customer_ids,
        newest_first
            .iter()
            .filter(|id| customer_ids.contains(id))
            .cloned()
            .collect::<Vec<_>>()
    );
    let (_, second) = api
        .get(&format!(
            "/v1/events?type=customer.created&limit=2&starting_after={}",
            customer_ids[1]
        ))
        .await;
    assert_eq!(ids(&second), customer_ids[2..4]);
    assert_eq!(second["has_more"], true);
    let (_, before) = api
        .get(&format!(
            "/v1/events?type=customer.created&limit=2&ending_before={}",
            customer_ids[3]
        ))
        .await;
    assert_eq!(ids(&before), customer_ids[1..3]);
    assert_eq!(before["has_more"], true);

    let (_, typed) = api
        .get("/v1/events?types[]=test_helpers.test_clock.created&types[]=nothing")
        .await;
    assert_eq!(ids(&typed).len(), 1);
    let (_, wildcard) = api.get("/v1/events?type=customer.*&limit=100").await;
    assert_eq!(ids(&wildcard).len(), 5);
    let (_, window) = api
        .get(&format!("/v1/events?created[lte]={day_ago}&limit=100"))
        .await;
    assert_eq!(ids(&window).len(), 1);
    let (_, delivered) = api.get("/v1/events?delivery_success=true&limit=100").await;
    assert_eq!(ids(&delivered).len(), 6, "no endpoint: nothing pending");

    let (status, error) = api.get("/v1/events?limit=0").await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("limit"))
    );
    let (status, _) = api.get("/v1/events?limit=101").await;
    assert_eq!(status, 400);
    let (status, error) = api.get("/v1/events?starting_after=evt_nope").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("resource_missing"))
    );
    emulator.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_a_401() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/events", emulator.base_url());
    let response = client
        .get(&url)
        .bearer_auth("sk_test_other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(!body.contains("sk_test_other"));
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    emulator.stop().await;
}

#[tokio::test]
async fn confirming_a_payment_intent_follows_the_test_payment_method() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let new_intent = || {
        api.ok(
            "/v1/payment_intents",
            &[("amount", "1500"), ("currency", "usd")],
        )
    };
    let pi = new_intent().await["id"].as_str().unwrap().to_owned();
    let paid = api
        .ok(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount_received"], 1500);
    assert!(paid["latest_charge"].as_str().unwrap().starts_with("ch_"));
    let (status, again) = api
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (400, Some("payment_intent_unexpected_state"))
    );

    let pi = new_intent().await["id"].as_str().unwrap().to_owned();
    let (status, declined) = api
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", "pm_card_chargeDeclined")],
        )
        .await;
    assert_eq!(status, 402);
    assert_eq!(declined["error"]["type"], "card_error");
    assert_eq!(declined["error"]["code"], "card_declined");
    assert_eq!(
        declined["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );

    let pi = new_intent().await["id"].as_str().unwrap().to_owned();
    let action = api
        .ok(
            &format!("/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", "pm_card_authenticationRequired")],
        )
        .await;
    assert_eq!(action["status"], "requires_action");
    assert_eq!(action["next_action"]["type"], "redirect_to_url");
    let (status, approved) = api
        .control(
            &format!("/payment_intents/{pi}/authenticate"),
            json!({ "outcome": "approve" }),
        )
        .await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (200, Some("succeeded"))
    );
    let types = emulator.event_types();
    assert!(types.contains(&"payment_intent.requires_action".to_owned()));
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "payment_intent.succeeded")
            .count(),
        2
    );
    emulator.stop().await;
}

/// A paid subscription checkout; returns (charge id, subscription id).
async fn paid_checkout(api: &Api) -> (String, String) {
    let session = api
        .checkout(PRICE, &[("customer_email", "b@example.com")])
        .await;
    let completed = api.complete(&session, "4242424242424242").await;
    let invoice = completed["invoice"].as_str().unwrap();
    let (_, invoice) = api
        .get(&format!("/v1/invoices/{invoice}?expand[]=payments"))
        .await;
    let pi = invoice["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap();
    let (_, intent) = api.get(&format!("/v1/payment_intents/{pi}")).await;
    (
        intent["latest_charge"].as_str().unwrap().to_owned(),
        completed["subscription"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn refunds_through_the_api_and_the_dashboard_move_the_charge() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let (charge, _) = paid_checkout(&api).await;
    let before = emulator.event_types().len();
    let (status, refund) = api
        .control(
            &format!("/charges/{charge}/refund"),
            json!({ "amount": 500, "reason": "requested_by_customer" }),
        )
        .await;
    assert_eq!(status, 200, "{refund}");
    assert!(refund["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(
        emulator.event_types()[before..],
        ["charge.refunded", "refund.created"]
    );
    let (_, partly) = api.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(
        (
            partly["amount_refunded"].as_i64(),
            partly["refunded"].as_bool()
        ),
        (Some(500), Some(false))
    );

    let (status, error) = api
        .post("/v1/refunds", &[("charge", &charge), ("amount", "5000")])
        .await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    let rest = api.ok("/v1/refunds", &[("charge", &charge)]).await;
    assert_eq!(rest["amount"], 1500);
    let (_, fetched) = api
        .get(&format!("/v1/refunds/{}", rest["id"].as_str().unwrap()))
        .await;
    assert_eq!(fetched["status"], "succeeded");
    let (_, full) = api.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(full["refunded"], true);
    let (status, error) = api.post("/v1/refunds", &[("charge", &charge)]).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("charge_already_refunded"))
    );
    emulator.stop().await;
}

#[tokio::test]
async fn a_dispute_opens_and_closes_won_with_stripes_events() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let (charge, _) = paid_checkout(&api).await;
    let before = emulator.event_types().len();
    let (status, dispute) = api
        .control(
            &format!("/charges/{charge}/dispute"),
            json!({ "reason": "fraudulent" }),
        )
        .await;
    assert_eq!(status, 200);
    let id = dispute["id"].as_str().unwrap();
    assert!(id.starts_with("dp_"));
    assert_eq!(dispute["amount"], 2000);
    let (_, fetched) = api.get(&format!("/v1/disputes/{id}")).await;
    assert_eq!(fetched["status"], "needs_response");
    let (status, closed) = api
        .control(
            &format!("/disputes/{id}/close"),
            json!({ "outcome": "won" }),
        )
        .await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("won")));
    assert_eq!(
        emulator.event_types()[before..],
        [
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.closed",
            "charge.dispute.funds_reinstated"
        ]
    );
    emulator.stop().await;
}

#[tokio::test]
async fn held_deliveries_wait_for_release_and_dropped_ones_stay_undelivered() {
    let (emulator, receiver) = with_receiver(vec![]).await;
    let api = Api::new(&emulator);
    api.control("/deliveries/hold", json!({})).await;
    customer(&api, "held@example.com").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(receiver.received().is_empty());
    api.control("/deliveries/release", json!({})).await;
    receiver.wait_for(1).await;

    api.control("/deliveries/hold", json!({})).await;
    customer(&api, "dropped@example.com").await;
    let (_, dropped) = api.control("/deliveries/drop", json!({})).await;
    assert_eq!(dropped["dropped"].as_array().unwrap().len(), 1);
    api.control("/deliveries/release", json!({})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(receiver.received().len(), 1);
    let (_, undelivered) = api.get("/v1/events?delivery_success=false").await;
    assert_eq!(ids(&undelivered), [dropped["dropped"][0].as_str().unwrap()]);
    emulator.stop().await;
}

#[tokio::test]
async fn drift_changes_an_object_without_an_event() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let (_, sub) = paid_checkout(&api).await;
    let before = emulator.event_types().len();
    let (status, changed) = api
        .control(
            &format!("/objects/subscriptions/{sub}"),
            json!({ "status": "past_due", "price": "price_pro" }),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (_, fetched) = api.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(fetched["status"], "past_due");
    assert_eq!(fetched["items"]["data"][0]["price"]["id"], "price_pro");
    assert_eq!(emulator.event_types().len(), before);
    let (status, _) = api.control("/objects/widgets/x", json!({})).await;
    assert_eq!(status, 404);
    emulator.stop().await;
}

#[tokio::test]
async fn a_plan_switch_with_always_invoice_bills_the_proration_at_once() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let (_, sub_id) = paid_checkout(&api).await;
    let (_, sub) = api.get(&format!("/v1/subscriptions/{sub_id}")).await;
    let item = sub["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, preview) = api
        .post(
            "/v1/invoices/create_preview",
            &[
                ("subscription", &sub_id),
                ("subscription_details[items][0][id]", &item),
                ("subscription_details[items][0][price]", "price_pro"),
            ],
        )
        .await;
    assert!(preview.get("id").is_none());
    assert!(
        preview["amount_due"].as_i64().unwrap() > 5000,
        "{}",
        preview["amount_due"]
    );
    let before = emulator.event_types().len();
    let updated = api
        .ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &[
                ("items[0][id]", &item),
                ("items[0][price]", "price_pro"),
                ("proration_behavior", "always_invoice"),
            ],
        )
        .await;
    assert_eq!(updated["items"]["data"][0]["price"]["id"], "price_pro");
    let types = emulator.event_types()[before..].to_vec();
    assert_eq!(types[0], "customer.subscription.updated");
    assert!(types.contains(&"invoice.paid".to_owned()), "{types:?}");
    let event = &emulator.events()[before];
    assert_eq!(
        event["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"],
        PRICE
    );
    let (status, _) = api.delete(&format!("/v1/subscriptions/{sub_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        emulator.event_types().last().unwrap(),
        "customer.subscription.deleted"
    );
    emulator.stop().await;
}
