//! Plans and invoices (admin).

use super::*;

#[tokio::test]
async fn creating_a_plan_needs_the_admin_role() {
    let new = NewPlan {
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
        features: crate::model::Features::default(),
    };

    let err = Mocks::default()
        .service()
        .create_plan(&tenant_actor(TenantId::new()), new)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn a_duplicate_plan_code_is_reported_with_its_field() {
    let mut m = Mocks::default();
    m.plans
        .expect_create()
        .returning(|_| Err(RepoError::Conflict(crate::error::ConflictField::PlanCode)));
    let new = NewPlan {
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
        features: crate::model::Features::default(),
    };

    let err = m.service().create_plan(&admin(), new).await.unwrap_err();

    assert!(matches!(
        err,
        BillingError::PlanExists(crate::error::ConflictField::PlanCode)
    ));
}

#[tokio::test]
async fn an_empty_plan_patch_is_refused_before_touching_the_database() {
    let err = Mocks::default()
        .service()
        .update_plan(
            &admin(),
            &PlanKey::parse("plan-pro").unwrap(),
            PlanPatch::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Invalid(_)));
}

#[tokio::test]
async fn an_invoice_for_nothing_is_refused() {
    let new = NewInvoice {
        tenant_id: TenantId::new(),
        number: InvoiceNumber::parse("inv-009").unwrap(),
        amount_due: usd(0),
        due_date: None,
        description: None,
    };

    let err = Mocks::default()
        .service()
        .create_invoice(&admin(), new)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Invalid(_)));
}

#[tokio::test]
async fn a_taken_invoice_number_is_a_conflict() {
    let mut m = Mocks::default();
    m.invoices.expect_create().returning(|_| {
        Err(RepoError::Conflict(
            crate::error::ConflictField::InvoiceNumber,
        ))
    });
    let new = NewInvoice {
        tenant_id: TenantId::new(),
        number: InvoiceNumber::parse("inv-001").unwrap(),
        amount_due: usd(100),
        due_date: None,
        description: None,
    };

    let err = m.service().create_invoice(&admin(), new).await.unwrap_err();

    assert!(matches!(err, BillingError::InvoiceExists));
}

#[tokio::test]
async fn a_database_outage_is_reported_as_unavailable() {
    let mut m = Mocks::default();
    m.health
        .expect_ping()
        .returning(|| Err(RepoError::Unavailable("connection refused".into())));

    let err = m.service().ready().await.unwrap_err();

    assert!(matches!(err, BillingError::Unavailable(_)));
}
