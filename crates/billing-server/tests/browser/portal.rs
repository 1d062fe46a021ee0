//! The Customer Portal in the browser: a plan change, then the API shows the new plan.

use crate::harness::{bounded, eventually, Browser, Service};
use fantoccini::Locator;

#[tokio::test]
async fn a_plan_change_in_the_portal_puts_the_tenant_on_the_new_plan() {
    bounded(async {
        let service = Service::start().await;
        let browser = Browser::start(800, 1000).await;
        let (tenant, token, url) = service.start_checkout("plan-pro").await;
        browser.goto(&url).await;
        browser.wait_for_text("Total due today").await;
        browser
            .fill("input[name=card]", "4242 4242 4242 4242")
            .await;
        browser.click_button("Pay").await;
        let view = service.wait_until_active(tenant, &token).await;
        let customer = view["stripeCustomerId"].as_str().unwrap().to_owned();
        let pro = service.plan_id("plan-pro").await;
        let basic = service.plan_id("plan-basic").await;
        assert_eq!(view["subscription"]["planId"], pro.as_str(), "{view}");

        let portal = service
            .post(&format!("/stripe/portal?customerId={customer}"), &token)
            .await;
        browser
            .goto(portal["portalUrl"].as_str().expect("portalUrl"))
            .await;
        let page = browser.wait_for_text("Switch plan").await;
        assert!(page.contains("Pro"), "the current plan: {page}");
        assert!(page.contains("status active"), "{page}");
        browser.screenshot("portal").await;

        let select = browser
            .client
            .find(Locator::Css("select[name=price]"))
            .await
            .unwrap();
        select
            .select_by_value("price_dev_basic_monthly")
            .await
            .unwrap();
        browser.click_button("Switch").await;

        let page = eventually("the portal showing Basic as the plan", || async {
            let heading = match browser.client.find(Locator::Css("section h2")).await {
                Ok(h) => h.text().await.unwrap_or_default(),
                Err(e) => return Err(e.to_string()),
            };
            if heading == "Basic" {
                Ok(browser.text().await)
            } else {
                Err(heading)
            }
        })
        .await;
        assert!(page.contains("9.00 USD"), "the new price: {page}");

        let view = eventually("the API showing the tenant on plan-basic", || async {
            let view = service.tenant(tenant, &token).await;
            if view["subscription"]["planId"] == basic.as_str() {
                Ok(view)
            } else {
                Err(view.to_string())
            }
        })
        .await;
        assert_eq!(view["status"], "active", "{view}");
        assert_eq!(view["subscription"]["status"], "active", "{view}");

        browser.quit().await;
        service.stop().await;
    })
    .await;
}
