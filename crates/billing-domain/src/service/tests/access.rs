//! The access check: one read, the decision, features only while entitled.

use super::*;
use crate::model::{AccessReason, Features};

fn featured_plan() -> Plan {
    Plan {
        features: Features::parse(vec!["reports".into(), "seats:10".into()]).unwrap(),
        ..plan(true, None)
    }
}

#[tokio::test]
async fn an_active_tenant_gets_its_plans_features_from_one_read() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(1)
        .withf(move |t| *t == me)
        .returning(move |t| {
            Ok(Some((
                subscription(t, SubscriptionStatus::Active),
                featured_plan(),
            )))
        });

    let access = m
        .service()
        .tenant_access(&tenant_actor(me), me)
        .await
        .unwrap();

    assert!(access.decision.entitled);
    assert_eq!(access.decision.reason, AccessReason::Active);
    assert_eq!(access.plan_code.unwrap().as_str(), "plan-pro");
    assert_eq!(access.features.as_slice(), ["reports", "seats:10"]);
    assert_eq!(access.status, Some(SubscriptionStatus::Active));
}

#[tokio::test]
async fn a_tenant_past_its_grace_keeps_its_plan_code_but_no_features() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions.expect_current_with_plan().returning(|t| {
        let sub = Subscription {
            past_due_since: Some(at(0)),
            ..subscription(t, SubscriptionStatus::PastDue)
        };
        Ok(Some((sub, featured_plan())))
    });
    // The clock stands at 10 days after the failure; the grace is 3 days.
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(10 * 86_400));
    m.clock = Some(clock);

    let access = m
        .service_with(BillingSettings {
            access_grace: chrono::Duration::days(3),
            ..BillingSettings::default()
        })
        .tenant_access(&admin(), me)
        .await
        .unwrap();

    assert!(!access.decision.entitled);
    assert_eq!(access.decision.reason, AccessReason::PastDue);
    assert_eq!(access.plan_code.unwrap().as_str(), "plan-pro");
    assert!(access.features.is_empty());
    assert_eq!(access.status, Some(SubscriptionStatus::PastDue));
}

#[tokio::test]
async fn the_grace_setting_decides_how_long_a_past_due_tenant_keeps_access() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions.expect_current_with_plan().returning(|t| {
        let sub = Subscription {
            past_due_since: Some(at(0)),
            ..subscription(t, SubscriptionStatus::PastDue)
        };
        Ok(Some((sub, featured_plan())))
    });
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(10 * 86_400));
    m.clock = Some(clock);

    let access = m
        .service_with(BillingSettings {
            access_grace: chrono::Duration::days(14),
            ..BillingSettings::default()
        })
        .tenant_access(&admin(), me)
        .await
        .unwrap();

    assert!(access.decision.entitled);
    assert_eq!(access.decision.reason, AccessReason::PastDueGrace);
    assert_eq!(access.decision.until, Some(at(14 * 86_400)));
    assert_eq!(access.features.as_slice(), ["reports", "seats:10"]);
}

#[tokio::test]
async fn a_tenant_without_a_subscription_is_not_entitled() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .returning(|_| Ok(None));

    let access = m
        .service()
        .tenant_access(&tenant_actor(me), me)
        .await
        .unwrap();

    assert!(!access.decision.entitled);
    assert_eq!(access.decision.reason, AccessReason::NoSubscription);
    assert_eq!((access.plan_code, access.status), (None, None));
    assert!(access.features.is_empty());
}

#[tokio::test]
async fn another_tenants_access_is_forbidden_without_reading() {
    let m = Mocks::default();

    let err = m
        .service()
        .tenant_access(&tenant_actor(TenantId::new()), TenantId::new())
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}
