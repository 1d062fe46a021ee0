//! Self-service changes and refunds (issue 16): the 409 rules are decided before Stripe is
//! asked (the provider mock has no expectation, so a call would fail the test), and the
//! idempotency keys follow the intent and the local state.

use super::*;
use crate::error::Refusal;
use crate::ids::{PaymentIntentRef, RefundRef, SubscriptionRef};
use crate::model::{PaymentDetail, PaymentStatus, Refund, RefundStatus};
use crate::ports::{CreatedRefund, ProrationBehavior, RefundReason, WorkOutcome};
use crate::service::{change_key, refund_key, PlanChange, RefundInput};
use crate::webhook::RefundSnapshot;

fn live(tenant: TenantId, status: SubscriptionStatus, cancelling: bool) -> Subscription {
    Subscription {
        subscription_ref: Some(SubscriptionRef::parse("sub_1").unwrap()),
        cancel_at_period_end: cancelling,
        ..subscription(tenant, status)
    }
}

fn current(mocks: &mut Mocks, sub: Option<Subscription>) {
    mocks
        .subscriptions
        .expect_current_for_tenant()
        .returning(move |_| Ok(sub.clone()));
}

fn refused(result: Result<impl std::fmt::Debug, BillingError>) -> Refusal {
    match result {
        Err(BillingError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_change_key_names_the_intent_and_the_state_it_was_asked_in() {
    let tenant = TenantId::new();
    let sub = live(tenant, SubscriptionStatus::Active, false);
    let same = change_key("cancel_at_period_end", &sub, "true");
    assert_eq!(same, change_key("cancel_at_period_end", &sub, "true"));
    assert_ne!(same, change_key("cancel_at_period_end", &sub, "false"));
    let later = Subscription {
        updated_at: sub.updated_at + chrono::Duration::seconds(1),
        ..sub.clone()
    };
    assert_ne!(same, change_key("cancel_at_period_end", &later, "true"));
    let cancelling = Subscription {
        cancel_at_period_end: true,
        ..sub.clone()
    };
    assert_ne!(
        same,
        change_key("cancel_at_period_end", &cancelling, "true")
    );
    assert!(same.contains("sub_1") && same.len() <= 255, "{same}");
}

#[test]
fn a_refund_key_counts_the_refunds_already_recorded() {
    let payment = PaymentId::new();
    let key = refund_key(payment, usd(500), Some(RefundReason::Duplicate), 0);
    assert_eq!(key, format!("refund-{payment}-500usd-duplicate-n0"));
    assert_ne!(
        key,
        refund_key(payment, usd(500), Some(RefundReason::Duplicate), 1)
    );
    assert_ne!(
        key,
        refund_key(payment, usd(501), Some(RefundReason::Duplicate), 0)
    );
    assert_ne!(key, refund_key(payment, usd(500), None, 0));
}

#[tokio::test]
async fn a_cancel_at_period_end_already_asked_answers_without_asking_stripe() {
    let tenant = TenantId::new();
    let mut mocks = Mocks::default();
    current(
        &mut mocks,
        Some(live(tenant, SubscriptionStatus::Active, true)),
    );

    let sub = mocks
        .service()
        .cancel_subscription(&tenant_actor(tenant), tenant, true)
        .await
        .unwrap();

    assert!(sub.cancel_at_period_end);
}

#[tokio::test]
async fn a_cancel_at_period_end_sends_the_flag_with_the_state_key() {
    let tenant = TenantId::new();
    let sub = live(tenant, SubscriptionStatus::Active, false);
    let expected_key = change_key("cancel_at_period_end", &sub, "true");
    let mut mocks = Mocks::default();
    current(&mut mocks, Some(sub.clone()));
    mocks
        .provider
        .expect_update_subscription()
        .withf(move |u| {
            u.cancel_at_period_end == Some(true)
                && u.price.is_none()
                && u.idempotency_key == expected_key
                && u.subscription.as_str() == "sub_1"
        })
        .times(1)
        .returning(|u| {
            Err(ProviderError::Refused {
                code: None,
                param: None,
                message: format!("checked {}", u.subscription),
                not_found: false,
            })
        });

    let err = mocks
        .service()
        .cancel_subscription(&tenant_actor(tenant), tenant, true)
        .await
        .unwrap_err();

    assert!(
        matches!(err, BillingError::ProviderRefused { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn changes_of_a_canceled_or_missing_subscription_are_refused() {
    let tenant = TenantId::new();
    let actor = tenant_actor(tenant);

    let mut mocks = Mocks::default();
    current(
        &mut mocks,
        Some(live(tenant, SubscriptionStatus::Canceled, false)),
    );
    let service = mocks.service();
    assert_eq!(
        refused(service.cancel_subscription(&actor, tenant, false).await),
        Refusal::SubscriptionCanceled
    );
    assert_eq!(
        refused(service.resume_subscription(&actor, tenant).await),
        Refusal::SubscriptionCanceled
    );

    let mut mocks = Mocks::default();
    current(&mut mocks, None);
    assert_eq!(
        refused(
            mocks
                .service()
                .cancel_subscription(&actor, tenant, true)
                .await
        ),
        Refusal::NoLiveSubscription(tenant)
    );

    let mut mocks = Mocks::default();
    current(
        &mut mocks,
        Some(live(tenant, SubscriptionStatus::Unpaid, false)),
    );
    assert_eq!(
        refused(
            mocks
                .service()
                .cancel_subscription(&actor, tenant, true)
                .await
        ),
        Refusal::NoLiveSubscription(tenant),
        "only a live subscription ends at period end"
    );
}

#[tokio::test]
async fn a_resume_with_nothing_to_resume_is_refused() {
    let tenant = TenantId::new();
    let mut mocks = Mocks::default();
    current(
        &mut mocks,
        Some(live(tenant, SubscriptionStatus::Active, false)),
    );

    let result = mocks
        .service()
        .resume_subscription(&tenant_actor(tenant), tenant)
        .await;

    assert_eq!(refused(result), Refusal::NothingToResume);
}

#[tokio::test]
async fn another_tenants_token_changes_nothing() {
    let tenant = TenantId::new();
    let mocks = Mocks::default();

    let err = mocks
        .service()
        .cancel_subscription(&tenant_actor(TenantId::new()), tenant, true)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(t) if t == tenant));
}

#[tokio::test]
async fn a_change_to_the_current_plan_or_an_inactive_one_is_refused() {
    let tenant = TenantId::new();
    let current_plan = plan(true, None);
    let sub = Subscription {
        plan_id: current_plan.id,
        ..live(tenant, SubscriptionStatus::Active, false)
    };
    let change = PlanChange {
        plan: PlanKey::parse("plan-pro").unwrap(),
        proration: ProrationBehavior::None,
    };

    let mut mocks = Mocks::default();
    current(&mut mocks, Some(sub.clone()));
    let same = current_plan.clone();
    mocks
        .plans
        .expect_get()
        .returning(move |_| Ok(Some(same.clone())));
    assert!(matches!(
        refused(
            mocks
                .service()
                .change_plan(&admin(), tenant, change.clone())
                .await
        ),
        Refusal::PlanUnchanged(_)
    ));

    let mut mocks = Mocks::default();
    current(&mut mocks, Some(sub));
    mocks
        .plans
        .expect_get()
        .returning(|_| Ok(Some(plan(false, None))));
    let err = mocks
        .service()
        .change_plan(&admin(), tenant, change)
        .await
        .unwrap_err();
    assert!(matches!(err, BillingError::PlanInactive(_)), "{err:?}");
}

fn paid(status: PaymentStatus, refunded: &[(i64, RefundStatus)]) -> PaymentDetail {
    let payment = Payment {
        status,
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        ..crate::testing::payment(TenantId::new())
    };
    let refunds = refunded
        .iter()
        .enumerate()
        .map(|(i, (amount, status))| Refund {
            id: crate::ids::RefundId::new(),
            payment_id: payment.id,
            amount: usd(*amount),
            status: *status,
            reason: None,
            refund_ref: RefundRef::parse(format!("re_{i}")).unwrap(),
            last_event_at: at(1),
            created_at: at(1),
            updated_at: at(1),
        })
        .collect();
    PaymentDetail {
        payment,
        refunds,
        disputes: Vec::new(),
    }
}

fn with_payment(mocks: &mut Mocks, detail: PaymentDetail) -> PaymentId {
    let id = detail.payment.id;
    mocks
        .payments
        .expect_get()
        .returning(move |_| Ok(Some(detail.clone())));
    id
}

#[tokio::test]
async fn a_refund_over_what_is_left_or_of_an_unrefundable_payment_is_refused() {
    // 4900 paid, 1000 refunded, 500 failed (gives its amount back): 3900 left.
    let mut mocks = Mocks::default();
    let id = with_payment(
        &mut mocks,
        paid(
            PaymentStatus::PartiallyRefunded,
            &[(1000, RefundStatus::Succeeded), (500, RefundStatus::Failed)],
        ),
    );
    let input = RefundInput {
        amount: Some(3901),
        ..RefundInput::default()
    };
    assert_eq!(
        refused(mocks.service().create_refund(&admin(), id, input).await),
        Refusal::RefundExceedsPayment {
            asked: 3901,
            left: 3900
        }
    );

    for status in [PaymentStatus::Failed, PaymentStatus::Disputed] {
        let mut mocks = Mocks::default();
        let id = with_payment(&mut mocks, paid(status, &[]));
        assert_eq!(
            refused(
                mocks
                    .service()
                    .create_refund(&admin(), id, RefundInput::default())
                    .await
            ),
            Refusal::PaymentNotRefundable(status)
        );
    }

    let mocks = Mocks::default();
    let err = mocks
        .service()
        .create_refund(
            &tenant_actor(TenantId::new()),
            PaymentId::new(),
            RefundInput::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn a_refund_defaults_to_what_is_left_with_the_counted_key_or_the_callers() {
    let detail = paid(
        PaymentStatus::PartiallyRefunded,
        &[
            (1000, RefundStatus::Succeeded),
            (500, RefundStatus::Canceled),
        ],
    );
    let payment = detail.payment.id;
    let derived = refund_key(payment, usd(3900), None, 2);
    for (given, expected) in [
        (None, derived),
        (Some("caller-1".to_owned()), "caller-1".to_owned()),
    ] {
        let mut mocks = Mocks::default();
        with_payment(&mut mocks, detail.clone());
        mocks
            .provider
            .expect_create_refund()
            .withf(move |r| {
                r.amount == usd(3900)
                    && r.idempotency_key == expected
                    && r.payment_intent.as_ref().map(PaymentIntentRef::as_str) == Some("pi_1")
            })
            .times(1)
            .returning(|r| {
                Ok(CreatedRefund {
                    snapshot: RefundSnapshot {
                        refund: RefundRef::parse("re_new").unwrap(),
                        charge: None,
                        payment_intent: r.payment_intent.clone(),
                        amount: r.amount.minor(),
                        currency: "usd".into(),
                        status: Some(RefundStatus::Succeeded),
                        status_raw: "succeeded".into(),
                        reason: None,
                    },
                    created: at(5),
                })
            });
        // The unit of work that records it runs in the store (its rules are the webhook
        // path's, tested there and end to end); here it is not run, so nothing is recorded.
        mocks.webhooks.expect_apply().times(1).returning(|_| {
            Ok(WorkOutcome::Applied(crate::ports::Applied {
                outcome: crate::model::EventOutcome::Processed,
                detail: None,
            }))
        });
        let input = RefundInput {
            idempotency_key: given,
            ..RefundInput::default()
        };

        let err = mocks
            .service()
            .create_refund(&admin(), payment, input)
            .await
            .unwrap_err();

        assert!(matches!(err, BillingError::Unexpected(_)), "{err:?}");
    }
}
