//! Checkout, and the tenant's one open Checkout Session.

use super::*;

#[tokio::test]
async fn checkout_of_an_unknown_plan_is_not_found() {
    let mut m = Mocks::default();
    m.plans.expect_get().returning(|_| Ok(None));
    let me = TenantId::new();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::PlanNotFound(code) if code == "plan-pro"));
}

#[tokio::test]
async fn checkout_of_an_inactive_plan_is_refused() {
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(false, None))));
    let me = TenantId::new();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::PlanInactive(_)));
}

#[tokio::test]
async fn a_tenant_whose_checkout_awaits_a_delayed_payment_cannot_start_a_second_one() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(move |id| Ok(tenant(id, Some("cus_1"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::Incomplete))));
    m.provider.expect_create_checkout_session().never();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn a_tenant_with_a_live_subscription_is_sent_to_the_portal() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(move |id| Ok(tenant(id, Some("cus_1"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::PastDue))));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn a_customer_of_another_tenant_cannot_be_used_for_checkout() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.tenants
        .expect_find_by_customer()
        .returning(|_| Ok(Some(tenant(TenantId::new(), Some("cus_theirs")))));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, Some("cus_theirs")))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::CustomerOfAnotherTenant));
}

#[tokio::test]
async fn checkout_reuses_the_tenants_known_customer_and_offers_the_plans_trial() {
    let me = TenantId::new();
    let the_plan = plan(true, Some(14));
    let plan_id = the_plan.id;
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .return_once(move |_| Ok(Some(the_plan)));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, Some("cus_known"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::Canceled))));
    m.provider
        .expect_create_checkout_session()
        .withf(move |r| {
            r.tenant == me
                && r.plan == plan_id
                && r.price.as_str() == "price_pro"
                && r.customer.as_ref().map(CustomerRef::as_str) == Some("cus_known")
                && r.trial_days.map(crate::model::TrialDays::get) == Some(14)
                && r.idempotency_key.starts_with(&format!("checkout-{me}-"))
        })
        .returning(|_| {
            Ok(CheckoutSession {
                id: crate::ids::CheckoutSessionRef::parse("cs_test_1").unwrap(),
                url: "https://checkout.stripe.com/c/pay/cs_test_1".into(),
            })
        });

    m.checkout_sessions
        .expect_record_open()
        .withf(move |t, s, _| *t == me && s.as_str() == "cs_test_1")
        .times(1)
        .returning(|_, _, _| Ok(Vec::new()));
    m.provider.expect_expire_checkout_session().never();

    let session = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap();

    assert_eq!(session.id.as_str(), "cs_test_1");
}

/// A tenant without subscription whose checkout opens `cs_new` at Stripe.
fn opening_cs_new() -> Mocks {
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.provider.expect_create_checkout_session().returning(|_| {
        Ok(CheckoutSession {
            id: crate::ids::CheckoutSessionRef::parse("cs_new").unwrap(),
            url: "https://checkout.stripe.com/c/pay/cs_new".into(),
        })
    });
    m
}

/// [`opening_cs_new`], with `older` recorded open.
fn second_checkout(me: TenantId, older: &'static [&'static str]) -> Mocks {
    let mut m = opening_cs_new();
    m.checkout_sessions
        .expect_record_open()
        .withf(move |t, s, _| *t == me && s.as_str() == "cs_new")
        .times(1)
        .returning(move |_, _, _| {
            Ok(older
                .iter()
                .map(|s| crate::ids::CheckoutSessionRef::parse(*s).unwrap())
                .collect())
        });
    m
}

fn expires(m: &mut Mocks, session: &'static str, answer: Result<SessionEnd, ProviderError>) {
    let mut answer = Some(answer);
    m.provider
        .expect_expire_checkout_session()
        .withf(move |s| s.as_str() == session)
        .times(1)
        .returning(move |_| answer.take().unwrap());
}

fn closes(m: &mut Mocks, session: &'static str, end: SessionEnd) {
    m.checkout_sessions
        .expect_close()
        .withf(move |s, e, _| s.as_str() == session && *e == end)
        .times(1)
        .returning(|_, _, _| Ok(()));
}

#[tokio::test]
async fn a_new_checkout_expires_the_tenants_older_open_ones_first() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old_1", "cs_old_2"]);
    expires(&mut m, "cs_old_1", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_old_1", SessionEnd::Expired);
    expires(&mut m, "cs_old_2", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_old_2", SessionEnd::Expired);

    let session = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap();

    assert_eq!(session.id.as_str(), "cs_new");
}

#[tokio::test]
async fn an_older_checkout_found_completed_withdraws_the_new_one_and_answers_409() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old"]);
    expires(&mut m, "cs_old", Ok(SessionEnd::Completed));
    closes(&mut m, "cs_old", SessionEnd::Completed);
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_new", SessionEnd::Expired);

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn when_the_session_cannot_be_recorded_it_is_withdrawn_and_the_outage_answered() {
    let me = TenantId::new();
    let mut m = opening_cs_new();
    m.checkout_sessions
        .expect_record_open()
        .returning(|_, _, _| Err(RepoError::Unavailable("connection refused".into())));
    // Unrecorded, it would escape the next checkout: expired at once.
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    m.checkout_sessions
        .expect_close()
        .returning(|_, _, _| Err(RepoError::Unavailable("connection refused".into())));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn when_an_older_checkout_cannot_be_expired_the_new_one_is_withdrawn_and_stripe_blamed() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old"]);
    expires(
        &mut m,
        "cs_old",
        Err(ProviderError::Unavailable("503 after retries".into())),
    );
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_new", SessionEnd::Expired);

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(
        matches!(err, BillingError::ProviderUnavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn checkout_for_another_tenant_is_forbidden_before_any_lookup() {
    let err = Mocks::default()
        .service()
        .start_checkout(
            &tenant_actor(TenantId::new()),
            checkout_input(TenantId::new(), None),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn stripe_being_down_surfaces_as_provider_unavailable() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.provider
        .expect_create_checkout_session()
        .returning(|_| Err(ProviderError::Unavailable("503 after retries".into())));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::ProviderUnavailable(_)));
}
