//! The Customer Portal.

use super::*;

fn portal_mocks(owner: TenantId) -> Mocks {
    let mut m = Mocks::default();
    m.tenants
        .expect_find_by_customer()
        .returning(move |_| Ok(Some(tenant(owner, Some("cus_1")))));
    m
}

#[tokio::test]
async fn the_portal_refuses_return_urls_off_the_allowed_hosts() {
    let me = TenantId::new();
    let customer = CustomerRef::parse("cus_1").unwrap();

    for bad in [
        "https://evil.example.net/x",
        "https://app.example.com@evil.example.net/",
        "javascript:alert(1)",
        "/relative/path",
        "ftp://app.example.com/",
    ] {
        let err = portal_mocks(me)
            .service()
            .open_portal(&tenant_actor(me), &customer, Some(bad.into()))
            .await
            .unwrap_err();
        assert!(matches!(err, BillingError::InvalidReturnUrl(_)), "{bad}");
    }
}

#[tokio::test]
async fn the_portal_defaults_to_the_configured_return_url() {
    let me = TenantId::new();
    let mut m = portal_mocks(me);
    m.provider
        .expect_create_portal_session()
        .withf(|c, url| c.as_str() == "cus_1" && url == "https://app.example.com/billing")
        .returning(|_, _| Ok("https://billing.stripe.com/p/session/x".into()));

    let url = m
        .service()
        .open_portal(
            &tenant_actor(me),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap();

    assert_eq!(url, "https://billing.stripe.com/p/session/x");
}

#[tokio::test]
async fn another_tenants_customer_gets_no_portal() {
    let err = portal_mocks(TenantId::new())
        .service()
        .open_portal(
            &tenant_actor(TenantId::new()),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn an_unknown_customer_gets_no_portal() {
    let mut m = Mocks::default();
    m.tenants.expect_find_by_customer().returning(|_| Ok(None));

    let err = m
        .service()
        .open_portal(&admin(), &CustomerRef::parse("cus_x").unwrap(), None)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::CustomerNotFound(_)));
}

#[tokio::test]
async fn without_a_configured_default_the_return_url_is_required() {
    let me = TenantId::new();

    let err = portal_mocks(me)
        .service_with(BillingSettings::default())
        .open_portal(
            &tenant_actor(me),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::ReturnUrlRequired));
}
