//! Self-service changes of a tenant's subscription (cancel, resume, change plan and its
//! preview) and admin refunds of a payment (issue 16).
//!
//! * **One change at Stripe per intent.** Every call carries a deterministic
//!   `Idempotency-Key` made of what is asked and of the subscription's (or payment's)
//!   local state when it was asked ([`change_key`], [`refund_key`]): the same request sent
//!   twice, or by two replicas at once, reads the same state and makes one change; the
//!   same request sent again after the state moved on (cancel, resume, cancel again) is a
//!   new intent with a new key, so Stripe does not answer it with the first one's reply.
//! * **Nothing asked of Stripe that is already so.** A cancel at period end of a
//!   subscription already set to end answers it as it is; a plan change to the current
//!   plan, a resume with nothing to resume and any change of a canceled subscription are
//!   refused with a 409 code ([`Refusal`]).
//! * **Local state follows Stripe's answer at once**, applied through the webhook path's
//!   subscription rules under the same row lock ([`answers`]); the change's own webhooks
//!   follow and change nothing more.
//! * **Refunds**: the amount defaults to what is left (the payment minus its refunds that
//!   are not failed or canceled); more than that is refused before Stripe is asked. The
//!   key counts the refunds already recorded, so identical concurrent requests make one
//!   refund and a second, later partial refund of the same amount is a refund of its own;
//!   the caller's `Idempotency-Key`, when given, is used instead.

use std::sync::{Arc, Mutex};

use tracing::instrument;

use super::webhook::answers::{self, Recorded};
use super::BillingService;
use crate::auth::Actor;
use crate::error::{BillingError, Refusal};
use crate::ids::{PaymentId, SubscriptionRef, TenantId};
use crate::model::{PaymentStatus, PlanKey, Refund, Subscription, SubscriptionStatus};
use crate::money::Money;
use crate::ports::{
    InvoicePreview, PlanChangePreview, ProrationBehavior, ProviderError, RefundReason,
    RefundRequest, SubscriptionUpdate, WorkOutcome,
};
use crate::webhook::SubscriptionSnapshot;

/// A plan change asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    /// The new plan (id or code).
    pub plan: PlanKey,
    /// How the rest of the period is billed.
    pub proration: ProrationBehavior,
}

/// A refund asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefundInput {
    /// Minor units; `None`: what is left to refund.
    pub amount: Option<i64>,
    /// Stripe's reason.
    pub reason: Option<RefundReason>,
    /// The caller's `Idempotency-Key`, used instead of the derived one.
    pub idempotency_key: Option<String>,
}

/// The idempotency key of a subscription change: the operation, the subscription, what is
/// asked (`intent`) and the local state it was asked in (status, cancel at period end,
/// plan and the row's last change), so that a later identical request made in another
/// state is not answered with this one's reply.
#[must_use]
pub fn change_key(operation: &str, sub: &Subscription, intent: &str) -> String {
    let reference = sub
        .subscription_ref
        .as_ref()
        .map_or("none", SubscriptionRef::as_str);
    format!(
        "selfservice-{operation}-{reference}-{intent}-{status}-c{cancel}-p{plan}-v{version}",
        status = sub.status.as_str(),
        cancel = u8::from(sub.cancel_at_period_end),
        plan = sub.plan_id,
        version = sub.updated_at.timestamp_micros(),
    )
}

/// The idempotency key of a refund: the payment, the amount and currency, the reason and
/// how many refunds of the payment are already recorded.
#[must_use]
pub fn refund_key(
    payment: PaymentId,
    amount: Money,
    reason: Option<RefundReason>,
    recorded: usize,
) -> String {
    format!(
        "refund-{payment}-{}{}-{}-n{recorded}",
        amount.minor(),
        amount.currency(),
        reason.map_or("none", RefundReason::as_str),
    )
}

/// Whether a payment in this status can be refunded: a collected payment that is not
/// disputed (a fully refunded one has nothing left, which the amount check says).
const fn refundable(status: PaymentStatus) -> bool {
    matches!(
        status,
        PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
    )
}

impl BillingService {
    /// The tenant's current subscription as the target of a change: 409
    /// `no_live_subscription` without one (or one Stripe does not know), 409
    /// `subscription_canceled` when it ended.
    async fn change_target(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<(Subscription, SubscriptionRef), BillingError> {
        Self::require_tenant(actor, tenant)?;
        let sub = self
            .ports
            .subscriptions
            .current_for_tenant(tenant)
            .await?
            .ok_or(BillingError::Refused(Refusal::NoLiveSubscription(tenant)))?;
        if sub.status.is_final() {
            return Err(BillingError::Refused(Refusal::SubscriptionCanceled));
        }
        let reference = sub
            .subscription_ref
            .clone()
            .ok_or(BillingError::Refused(Refusal::NoLiveSubscription(tenant)))?;
        Ok((sub, reference))
    }

    /// A live target (trialing, active, past due).
    async fn live_target(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<(Subscription, SubscriptionRef), BillingError> {
        let (sub, reference) = self.change_target(actor, tenant).await?;
        if !sub.status.is_live() {
            return Err(BillingError::Refused(Refusal::NoLiveSubscription(tenant)));
        }
        Ok((sub, reference))
    }

    /// Applies Stripe's answer (see [`answers::subscription_answer`]); the row afterwards,
    /// or `fallback` when the subscription is not known here.
    async fn apply_answer(
        &self,
        answer: SubscriptionSnapshot,
        fallback: Subscription,
    ) -> Result<Subscription, BillingError> {
        let now = self.ports.clock.now();
        let slot: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let answer = Arc::new(answer);
        self.ports
            .webhooks
            .apply(Box::new(move |tx| {
                let row = answers::subscription_answer(tx, &answer, now)?;
                if let Ok(mut guard) = out.lock() {
                    *guard = row;
                }
                Ok(WorkOutcome::Applied(crate::ports::Applied {
                    outcome: crate::model::EventOutcome::Processed,
                    detail: None,
                }))
            }))
            .await?;
        let row = slot.lock().ok().and_then(|mut g| g.take());
        Ok(row.unwrap_or(fallback))
    }

    #[instrument(skip_all, fields(tenant.id = %tenant, at_period_end))]
    pub(super) async fn cancel_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
        at_period_end: bool,
    ) -> Result<Subscription, BillingError> {
        if at_period_end {
            let (sub, reference) = self.live_target(actor, tenant).await?;
            if sub.cancel_at_period_end {
                return Ok(sub);
            }
            let update = SubscriptionUpdate {
                subscription: reference,
                cancel_at_period_end: Some(true),
                price: None,
                proration: None,
                idempotency_key: change_key("cancel_at_period_end", &sub, "true"),
            };
            let answer = self.ports.provider.update_subscription(&update).await?;
            return self.apply_answer(answer, sub).await;
        }
        let (sub, reference) = self.change_target(actor, tenant).await?;
        match self
            .ports
            .provider
            .cancel_subscription_now(&reference)
            .await
        {
            Ok(answer) => self.apply_answer(answer, sub).await,
            // A concurrent cancel got there first (Stripe no longer cancels it): follow
            // Stripe's state and say so.
            Err(refused @ ProviderError::Refused { .. }) => {
                let current = self.ports.provider.subscription(&reference).await?;
                if current.status == Some(SubscriptionStatus::Canceled) {
                    self.apply_answer(current, sub).await?;
                    Err(BillingError::Refused(Refusal::SubscriptionCanceled))
                } else {
                    Err(refused.into())
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    #[instrument(skip_all, fields(tenant.id = %tenant))]
    pub(super) async fn resume_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<Subscription, BillingError> {
        let (sub, reference) = self.change_target(actor, tenant).await?;
        let answer = if sub.status == SubscriptionStatus::Paused {
            let key = change_key("resume", &sub, "paused");
            self.ports
                .provider
                .resume_subscription(&reference, &key)
                .await?
        } else if sub.status.is_live() && sub.cancel_at_period_end {
            let update = SubscriptionUpdate {
                subscription: reference,
                cancel_at_period_end: Some(false),
                price: None,
                proration: None,
                idempotency_key: change_key("cancel_at_period_end", &sub, "false"),
            };
            self.ports.provider.update_subscription(&update).await?
        } else {
            return Err(BillingError::Refused(Refusal::NothingToResume));
        };
        self.apply_answer(answer, sub).await
    }

    /// The live subscription, the new plan's price and the item to change.
    async fn plan_change_target(
        &self,
        actor: &Actor,
        tenant: TenantId,
        plan: &PlanKey,
    ) -> Result<
        (
            Subscription,
            SubscriptionRef,
            crate::model::Plan,
            crate::ports::SubscriptionState,
        ),
        BillingError,
    > {
        let (sub, reference) = self.live_target(actor, tenant).await?;
        let plan = self
            .ports
            .plans
            .get(plan)
            .await?
            .ok_or_else(|| BillingError::PlanNotFound(plan.to_string()))?;
        if !plan.active {
            return Err(BillingError::PlanInactive(plan.code.to_string()));
        }
        if plan.id == sub.plan_id {
            return Err(BillingError::Refused(Refusal::PlanUnchanged(
                plan.code.to_string(),
            )));
        }
        let state = self.ports.provider.subscription_state(&reference).await?;
        Ok((sub, reference, plan, state))
    }

    #[instrument(skip_all, fields(tenant.id = %tenant, plan = %change.plan))]
    pub(super) async fn change_plan(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<Subscription, BillingError> {
        let (sub, reference, plan, state) =
            self.plan_change_target(actor, tenant, &change.plan).await?;
        let item = state.item.ok_or_else(|| {
            BillingError::ProviderUnavailable("Stripe answered a subscription without items".into())
        })?;
        if state.snapshot.price.as_ref() == Some(&plan.price) {
            // Stripe bills the plan already (its webhook is on its way): follow it.
            return self.apply_answer(state.snapshot, sub).await;
        }
        let update = SubscriptionUpdate {
            subscription: reference,
            cancel_at_period_end: None,
            price: Some((item, plan.price.clone())),
            proration: Some(change.proration),
            idempotency_key: change_key(
                "change_plan",
                &sub,
                &format!("{}-{}", plan.id, change.proration.as_str()),
            ),
        };
        let answer = self.ports.provider.update_subscription(&update).await?;
        self.apply_answer(answer, sub).await
    }

    #[instrument(skip_all, fields(tenant.id = %tenant, plan = %change.plan))]
    pub(super) async fn preview_plan_change(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<InvoicePreview, BillingError> {
        let (sub, reference, plan, state) =
            self.plan_change_target(actor, tenant, &change.plan).await?;
        let item = state.item.ok_or_else(|| {
            BillingError::ProviderUnavailable("Stripe answered a subscription without items".into())
        })?;
        let preview = PlanChangePreview {
            customer: state.snapshot.customer.clone().or(sub.customer),
            subscription: reference,
            item,
            price: plan.price,
            proration: change.proration,
        };
        Ok(self.ports.provider.preview_plan_change(&preview).await?)
    }

    #[instrument(skip_all, fields(payment.id = %id))]
    pub(super) async fn create_refund(
        &self,
        actor: &Actor,
        id: PaymentId,
        input: RefundInput,
    ) -> Result<Refund, BillingError> {
        Self::require_admin(actor)?;
        let detail = self
            .ports
            .payments
            .get(id)
            .await?
            .ok_or(BillingError::PaymentNotFound(id))?;
        let payment = detail.payment;
        if !refundable(payment.status)
            || (payment.payment_intent.is_none() && payment.charge.is_none())
        {
            return Err(BillingError::Refused(Refusal::PaymentNotRefundable(
                payment.status,
            )));
        }
        let counted: i64 = detail
            .refunds
            .iter()
            .filter(|r| r.status.counts())
            .map(|r| r.amount.minor())
            .sum();
        let left = payment.amount.minor() - counted;
        let asked = input.amount.unwrap_or(left);
        if asked < 1 && input.amount.is_some() {
            return Err(BillingError::Invalid(
                "amount must be a positive integer in minor units".into(),
            ));
        }
        if asked > left || left < 1 {
            return Err(BillingError::Refused(Refusal::RefundExceedsPayment {
                asked,
                left: left.max(0),
            }));
        }
        let amount = Money::new(asked, payment.amount.currency())
            .map_err(|e| BillingError::Invalid(e.to_string()))?;
        let idempotency_key = input
            .idempotency_key
            .unwrap_or_else(|| refund_key(id, amount, input.reason, detail.refunds.len()));
        let request = RefundRequest {
            payment: id,
            payment_intent: payment.payment_intent.clone(),
            charge: payment.charge.clone(),
            amount,
            reason: input.reason,
            idempotency_key,
        };
        let created = match self.ports.provider.create_refund(&request).await {
            Ok(created) => created,
            // Stripe's own over-refund check (a refund made elsewhere, not yet recorded).
            Err(ProviderError::Refused {
                code: Some(code), ..
            }) if code == "charge_already_refunded" || code == "amount_too_large" => {
                return Err(BillingError::Refused(Refusal::RefundExceedsPayment {
                    asked,
                    left: left.max(0),
                }))
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.ports.clock.now();
        let slot: Arc<Mutex<Option<Recorded>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let created = Arc::new(created);
        let recorded_for = Arc::clone(&created);
        let payment = Arc::new(payment);
        self.ports
            .webhooks
            .apply(Box::new(move |tx| {
                let recorded = answers::record_refund(tx, &payment, &recorded_for, now)?;
                if let Ok(mut guard) = out.lock() {
                    *guard = Some(recorded);
                }
                Ok(WorkOutcome::Applied(crate::ports::Applied {
                    outcome: crate::model::EventOutcome::Processed,
                    detail: None,
                }))
            }))
            .await?;
        match slot.lock().ok().and_then(|mut g| g.take()) {
            Some(Recorded::Refund(refund)) => Ok(refund),
            Some(Recorded::Unrecorded(why)) => Err(BillingError::Unexpected(
                format!(
                    "refund {} made at Stripe but not recorded: {why}",
                    created.snapshot.refund
                )
                .into(),
            )),
            None => Err(BillingError::Unexpected("refund not recorded".into())),
        }
    }
}
