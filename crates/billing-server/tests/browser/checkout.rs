//! Checkout in the browser with Stripe's test cards: one that pays, one that is declined,
//! one that asks for authentication (failed, then approved).

use crate::harness::{bounded, Browser, Service};

/// The Checkout page's card field, typed into as a person would.
const CARD: &str = "input[name=card]";

#[tokio::test]
async fn a_checkout_paid_with_4242_makes_the_tenant_active_with_its_subscription() {
    bounded(async {
        let service = Service::start().await;
        let browser = Browser::start(800, 1000).await;
        let (tenant, token, url) = service.start_checkout("plan-pro").await;

        browser.goto(&url).await;
        let page = browser.wait_for_text("Total due today").await;
        assert!(page.contains("Pro"), "the plan on the page: {page}");
        assert!(page.contains("29.00 USD"), "its price: {page}");
        browser.fill(CARD, "4242 4242 4242 4242").await;
        browser.screenshot("checkout").await;
        browser.click_button("Pay").await;

        let receipt = browser.wait_for_text("Payment complete").await;
        let landed = browser.client.current_url().await.unwrap();
        assert!(
            landed.path().starts_with("/c/pay/cs_"),
            "redirected to the success URL with the session id: {landed}"
        );
        assert!(receipt.contains("29.00 USD"), "{receipt}");
        browser.screenshot("checkout-success").await;

        let view = service.wait_until_active(tenant, &token).await;
        assert_eq!(
            view["subscription"]["planId"],
            service.plan_id("plan-pro").await.as_str(),
            "{view}"
        );
        assert_eq!(view["subscription"]["status"], "active", "{view}");

        browser.quit().await;
        service.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_declined_card_shows_the_decline_and_leaves_the_tenant_inactive() {
    bounded(async {
        let service = Service::start().await;
        let browser = Browser::start(800, 1000).await;
        let (tenant, token, url) = service.start_checkout("plan-basic").await;

        browser.goto(&url).await;
        browser.wait_for_text("Total due today").await;
        browser.fill(CARD, "4000 0000 0000 0002").await;
        browser.click_button("Pay").await;

        let page = browser.wait_for_text("declined").await;
        assert!(
            page.contains("Your card was declined."),
            "Stripe's message: {page}"
        );
        browser.screenshot("checkout-declined").await;
        let events = service.emulator.event_types();
        assert!(
            !events
                .iter()
                .any(|e| e == "checkout.session.completed"
                    || e.starts_with("customer.subscription.")),
            "a declined card starts nothing: {events:?}"
        );
        let view = service.tenant(tenant, &token).await;
        assert_ne!(view["status"], "active", "{view}");
        assert!(view["subscription"].is_null(), "{view}");

        // The same session still takes a card that pays.
        browser.fill(CARD, "4242 4242 4242 4242").await;
        browser.click_button("Pay").await;
        browser.wait_for_text("Payment complete").await;
        service.wait_until_active(tenant, &token).await;

        browser.quit().await;
        service.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_card_that_needs_authentication_pays_once_approved_and_not_when_failed() {
    bounded(async {
        let service = Service::start().await;
        let browser = Browser::start(800, 1000).await;
        let (tenant, token, url) = service.start_checkout("plan-pro").await;

        browser.goto(&url).await;
        browser.wait_for_text("Total due today").await;
        browser.fill(CARD, "4000 0025 0000 3155").await;
        browser.click_button("Pay").await;
        browser.wait_for_text("Your bank asks you to confirm").await;
        browser.click_button("Fail authentication").await;

        let page = browser.wait_for_text("Authentication failed").await;
        assert!(page.contains("Total due today"), "back on Checkout: {page}");
        let view = service.tenant(tenant, &token).await;
        assert_ne!(view["status"], "active", "{view}");
        assert!(view["subscription"].is_null(), "{view}");

        browser.fill(CARD, "4000 0025 0000 3155").await;
        browser.click_button("Pay").await;
        browser.wait_for_text("Your bank asks you to confirm").await;
        browser.screenshot("checkout-3ds").await;
        browser.click_button("Complete authentication").await;

        browser.wait_for_text("Payment complete").await;
        let view = service.wait_until_active(tenant, &token).await;
        assert_eq!(view["subscription"]["status"], "active", "{view}");

        browser.quit().await;
        service.stop().await;
    })
    .await;
}
