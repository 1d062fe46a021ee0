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

// ---- the answers kept in memory ----

/// A clock read from a shared number of milliseconds, which the test moves.
fn moving_clock() -> (MockClock, Arc<std::sync::atomic::AtomicI64>) {
    let millis = Arc::new(std::sync::atomic::AtomicI64::new(1_000_000));
    let read = Arc::clone(&millis);
    let mut clock = MockClock::new();
    clock.expect_now().returning(move || {
        Utc.timestamp_millis_opt(read.load(std::sync::atomic::Ordering::SeqCst))
            .unwrap()
    });
    (clock, millis)
}

fn kept_for(ms: i64) -> BillingSettings {
    BillingSettings {
        access_cache_ttl: chrono::Duration::milliseconds(ms),
        ..BillingSettings::default()
    }
}

#[tokio::test]
async fn an_entitled_answer_is_read_once_per_ttl() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(2)
        .returning(|t| {
            Ok(Some((
                subscription(t, SubscriptionStatus::Active),
                featured_plan(),
            )))
        });
    let (clock, millis) = moving_clock();
    m.clock = Some(clock);
    let service = m.service_with(kept_for(1_000));

    let first = service.tenant_access(&admin(), me).await.unwrap();
    millis.fetch_add(999, std::sync::atomic::Ordering::SeqCst);
    let kept = service.tenant_access(&admin(), me).await.unwrap();
    millis.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let read_again = service.tenant_access(&admin(), me).await.unwrap();

    assert_eq!(first, kept);
    assert_eq!(kept, read_again);
}

#[tokio::test]
async fn an_answer_without_access_is_read_every_time() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(3)
        .returning(|t| {
            Ok(Some((
                subscription(t, SubscriptionStatus::Unpaid),
                featured_plan(),
            )))
        });
    let service = m.service_with(kept_for(60_000));

    for _ in 0..3 {
        let access = service.tenant_access(&admin(), me).await.unwrap();
        assert!(!access.decision.entitled);
    }
}

#[tokio::test]
async fn a_kept_answer_ends_at_its_own_until() {
    // Past due 7 days minus 300 ms ago: the grace ends 300 ms from now, sooner than the TTL.
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(2)
        .returning(|t| {
            let sub = Subscription {
                past_due_since: Some(
                    Utc.timestamp_millis_opt(1_000_000 + 300).unwrap() - chrono::Duration::days(7),
                ),
                ..subscription(t, SubscriptionStatus::PastDue)
            };
            Ok(Some((sub, featured_plan())))
        });
    let (clock, millis) = moving_clock();
    m.clock = Some(clock);
    let service = m.service_with(kept_for(10_000));

    let grace = service.tenant_access(&admin(), me).await.unwrap();
    millis.fetch_add(300, std::sync::atomic::Ordering::SeqCst);
    let after = service.tenant_access(&admin(), me).await.unwrap();

    assert!(grace.decision.entitled);
    assert!(
        !after.decision.entitled,
        "the grace's end was not kept past"
    );
}

#[tokio::test]
async fn a_zero_ttl_keeps_nothing() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(2)
        .returning(|t| {
            Ok(Some((
                subscription(t, SubscriptionStatus::Active),
                featured_plan(),
            )))
        });
    let service = m.service_with(kept_for(0));

    service.tenant_access(&admin(), me).await.unwrap();
    service.tenant_access(&admin(), me).await.unwrap();
}

#[tokio::test]
async fn a_committed_unit_of_work_forgets_every_kept_answer_and_a_tie_does_not() {
    use crate::ports::{Applied, WorkOutcome};
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.subscriptions
        .expect_current_with_plan()
        .times(2)
        .returning(|t| {
            Ok(Some((
                subscription(t, SubscriptionStatus::Active),
                featured_plan(),
            )))
        });
    let mut outcomes = vec![
        WorkOutcome::Applied(Applied {
            outcome: crate::model::EventOutcome::Processed,
            detail: None,
        }),
        WorkOutcome::SameSecondTie(crate::ids::SubscriptionRef::parse("sub_tie").unwrap()),
    ];
    m.webhooks
        .expect_apply()
        .times(2)
        .returning(move |_| Ok(outcomes.pop().unwrap()));
    let service = m.service_with(kept_for(60_000));
    let noop = || -> crate::ports::WebhookWork { Box::new(|_| unreachable!()) };

    service.tenant_access(&admin(), me).await.unwrap();
    // A tie rolls back: the kept answer stays (no second read yet).
    service.ports.webhooks.apply(noop()).await.unwrap();
    service.tenant_access(&admin(), me).await.unwrap();
    // A commit: the next check reads again (the second and last read).
    service.ports.webhooks.apply(noop()).await.unwrap();
    service.tenant_access(&admin(), me).await.unwrap();
}
