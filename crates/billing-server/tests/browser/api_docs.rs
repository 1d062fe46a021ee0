//! `/api-docs`: the OpenAPI document rendered by the embedded viewer in a real browser.

use crate::harness::{bounded, eventually, Browser, Service};
use fantoccini::Locator;

#[tokio::test]
async fn api_docs_renders_the_document_with_its_operations() {
    bounded(async {
        let service = Service::start().await;
        let browser = Browser::start(1200, 1000).await;

        browser.goto(&format!("{}/api-docs", service.base)).await;
        let title = eventually("the API's title rendered", || async {
            let title = browser
                .client
                .find(Locator::Css(".info .title"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if title.is_empty() {
                Err("an empty title".to_owned())
            } else {
                Ok(title)
            }
        })
        .await;
        assert!(title.starts_with("Billing Service"), "{title}");
        let landed = browser.client.current_url().await.unwrap();
        assert_eq!(landed.path(), "/api-docs/", "{landed}");

        let checkout = eventually("the checkout operation rendered", || async {
            let paths = browser
                .client
                .find_all(Locator::Css(".opblock-summary-path"))
                .await
                .map_err(|e| e.to_string())?;
            for path in paths {
                let text = path.text().await.map_err(|e| e.to_string())?;
                if text.contains("/api/v1/billing/stripe/checkout") {
                    return Ok(path);
                }
            }
            Err(browser.text().await)
        })
        .await;
        // Opening it shows its parameters, from the document.
        checkout.click().await.unwrap();
        let page = browser.wait_for_text("planId").await;
        assert!(page.contains("Parameters"), "{page}");
        browser
            .client
            .execute("window.scrollTo(0, 0)", Vec::new())
            .await
            .unwrap();
        browser.screenshot("api-docs").await;

        browser.quit().await;
        service.stop().await;
    })
    .await;
}
