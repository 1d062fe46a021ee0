//! Who sees what: tenant tokens reach only their own tenant, some listings are admins'.

use super::*;

#[tokio::test]
async fn a_tenant_listing_invoices_without_a_filter_sees_only_its_own() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.invoices
        .expect_list()
        .withf(move |q, _| q.tenant == Some(me))
        .returning(|_, _| {
            Ok(Page {
                items: vec![],
                next: None,
            })
        });

    let page = m
        .service()
        .list_invoices(
            &tenant_actor(me),
            InvoiceQuery::default(),
            PageRequest::default(),
        )
        .await
        .unwrap();

    assert!(page.items.is_empty());
}

#[tokio::test]
async fn a_tenant_asking_for_another_tenants_invoices_is_forbidden() {
    let m = Mocks::default();
    let query = InvoiceQuery {
        tenant: Some(TenantId::new()),
        status: None,
    };

    let err = m
        .service()
        .list_invoices(
            &tenant_actor(TenantId::new()),
            query,
            PageRequest::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn a_token_without_tenant_or_admin_role_cannot_list_payments() {
    let actor = Actor {
        subject: "x".into(),
        tenant: None,
        admin: false,
    };

    let err = Mocks::default()
        .service()
        .list_payments(&actor, PaymentQuery::default(), PageRequest::default())
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::NoTenant));
}

#[tokio::test]
async fn reading_another_tenants_invoice_is_forbidden() {
    let owner = TenantId::new();
    let mut m = Mocks::default();
    let inv = invoice(owner, InvoiceStatus::Open, 1000, 0);
    m.invoices.expect_get().return_once(move |_| Ok(Some(inv)));

    let err = m
        .service()
        .get_invoice(
            &tenant_actor(TenantId::new()),
            &InvoiceKey::parse("inv-001").unwrap(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(t) if t == owner));
}

#[tokio::test]
async fn the_event_ledger_is_for_admins_only() {
    let err = Mocks::default()
        .service()
        .list_events(
            &tenant_actor(TenantId::new()),
            LedgerQuery::default(),
            PageRequest::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn tenants_never_see_inactive_plans_even_when_asking() {
    let mut m = Mocks::default();
    m.plans
        .expect_list()
        .withf(|include_inactive| !include_inactive)
        .returning(|_| Ok(vec![]));

    let plans = m
        .service()
        .list_plans(&tenant_actor(TenantId::new()), true)
        .await
        .unwrap();

    assert!(plans.is_empty());
}
