//! Billing portal sessions.

use billing_domain::ids::CustomerRef;
use billing_domain::ports::PaymentProvider;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn portal_session_posts_customer_and_return_url_and_returns_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(json(&fixture("billing_portal.session.json")))
        .mount(&server)
        .await;

    let url = client(&server)
        .create_portal_session(
            &CustomerRef::parse("cus_QXg1o8vcGmoR32").unwrap(),
            "https://app.example.com/account?a=1&b=2",
        )
        .await
        .unwrap();

    assert_eq!(
        url,
        "https://sangeekp-15t6ai--customer_portal-mydev.dev.stripe.me/session/{SESSION_SECRET}"
    );
    let r = &server.received_requests().await.unwrap()[0];
    assert_post_headers(r);
    assert_eq!(
        body(r),
        "customer=cus_QXg1o8vcGmoR32&return_url=https%3A%2F%2Fapp.example.com%2Faccount%3Fa%3D1%26b%3D2"
    );
    let key = header(r, "idempotency-key").unwrap();
    assert!(Uuid::parse_str(key).is_ok(), "{key}");
}
