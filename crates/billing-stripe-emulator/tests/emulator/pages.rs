//! The hosted pages, driven as a browser without JavaScript would: GET the page, POST its form.

use billing_stripe_emulator::StripeEmulator;

use crate::harness::{config, Api, PRICE, PRICE_PRO};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn submit(url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let response = browser().post(url).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

#[tokio::test]
async fn the_checkout_page_pays_declines_and_authenticates_with_the_test_cards() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let session = api
        .ok(
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("line_items[0][price]", PRICE),
                (
                    "success_url",
                    "http://app.test/done?id={CHECKOUT_SESSION_ID}",
                ),
            ],
        )
        .await;
    let url = session["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&api.base), "{url}");
    let id = session["id"].as_str().unwrap();

    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Basic") && html.contains("20.00 USD"),
        "{html}"
    );
    assert!(!html.contains("<script"));

    let (status, _, html) = submit(&url, &[("card", "4000 0000 0000 0002")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Your card was declined."));
    let (status, _, html) = submit(&url, &[("card", "4000 0025 0000 3155")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Complete authentication") && html.contains("Fail authentication"));
    let (_, _, html) = submit(
        &format!("{url}/authenticate"),
        &[("card", "4000002500003155"), ("outcome", "fail")],
    )
    .await;
    assert!(html.contains("Authentication failed"));
    assert_eq!(
        emulator.checkout_session_status(id).as_deref(),
        Some("open")
    );

    let (status, location, _) = submit(
        &format!("{url}/authenticate"),
        &[("card", "4000002500003155"), ("outcome", "approve")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("http://app.test/done?id={id}").as_str())
    );
    assert_eq!(
        emulator.checkout_session_status(id).as_deref(),
        Some("complete")
    );

    // The link again: the receipt (what was paid, the subscription), no card form, and the
    // way back to the platform's success URL.
    let html = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Payment complete"), "{html}");
    assert!(
        html.contains("Total paid") && html.contains("20.00 USD"),
        "{html}"
    );
    assert!(html.contains("status <b>active</b>"), "{html}");
    assert!(!html.contains("name=card"), "{html}");
    assert!(
        html.contains(&format!("href=\"http://app.test/done?id={id}\"")),
        "{html}"
    );
    emulator.stop().await;
}

#[tokio::test]
async fn the_portal_switches_plan_cancels_at_period_end_and_resumes() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let session = api
        .checkout(PRICE, &[("customer_email", "p@example.com")])
        .await;
    let completed = api.complete(&session, "4242424242424242").await;
    let (customer, sub) = (
        completed["customer"].as_str().unwrap(),
        completed["subscription"].as_str().unwrap(),
    );
    let portal = api
        .ok(
            "/v1/billing_portal/sessions",
            &[
                ("customer", customer),
                ("return_url", "http://app.test/account"),
            ],
        )
        .await;
    let url = portal["url"].as_str().unwrap().to_owned();
    let html = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Basic")
            && html.contains("Switch plan")
            && html.contains("http://app.test/account"),
        "{html}"
    );

    let (status, location, _) = submit(
        &format!("{url}/switch"),
        &[("subscription", sub), ("price", PRICE_PRO)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, url.strip_prefix(&api.base).unwrap())
    );
    let (_, fetched) = api.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(fetched["items"]["data"][0]["price"]["id"], PRICE_PRO);

    submit(&format!("{url}/cancel"), &[("subscription", sub)]).await;
    let (_, fetched) = api.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(fetched["cancel_at_period_end"], true);
    let html = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Resume subscription"));
    submit(&format!("{url}/resume"), &[("subscription", sub)]).await;
    let (_, fetched) = api.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(fetched["cancel_at_period_end"], false);
    emulator.stop().await;
}

#[tokio::test]
async fn a_payment_intent_is_paid_from_its_client_secret_and_an_invoice_from_its_page() {
    let emulator = StripeEmulator::start(config()).await.unwrap();
    let api = Api::new(&emulator);
    let intent = api
        .ok(
            "/v1/payment_intents",
            &[("amount", "1200"), ("currency", "usd")],
        )
        .await;
    let secret = intent["client_secret"].as_str().unwrap();
    let page_url = format!("{}/pay/{secret}", api.base);
    let html = browser()
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("12.00 USD"));
    let (status, _, html) = submit(&page_url, &[("card", "4242 4242 4242 4242")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Payment complete"));
    let (_, fetched) = api
        .get(&format!(
            "/v1/payment_intents/{}",
            intent["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fetched["status"], "succeeded");

    let session = api.checkout(PRICE, &[]).await;
    let completed = api.complete(&session, "4242424242424242").await;
    let (_, invoice) = api
        .get(&format!(
            "/v1/invoices/{}",
            completed["invoice"].as_str().unwrap()
        ))
        .await;
    let hosted = invoice["hosted_invoice_url"].as_str().unwrap();
    let html = browser()
        .get(hosted)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("paid") && html.contains("20.00 USD"),
        "{html}"
    );
    let pdf = browser()
        .get(invoice["invoice_pdf"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    emulator.stop().await;
}
