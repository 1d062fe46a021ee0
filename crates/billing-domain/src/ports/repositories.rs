//! The repositories the use cases read and write through, one per table they own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use super::SessionEnd;
use crate::ids::PaymentId;
use crate::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceId, PaymentIntentRef, PlanId, PriceRef,
    TenantId,
};
use crate::model::{Dispute, DisputeStatus, PaymentDetail};
use crate::model::{
    Invoice, InvoiceKey, InvoiceStatus, LedgerEntry, LedgerQuery, NewInvoice, NewPlan, Payment,
    Plan, PlanKey, PlanPatch, Subscription, Tenant,
};
use crate::page::{Page, PageRequest};

/// Tenants.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenantRepository: Send + Sync {
    /// The tenant, if known.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, id: TenantId) -> Result<Option<Tenant>, RepoError>;

    /// The tenant, registering it as `pending` first when unknown. Idempotent and safe
    /// under concurrency.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn ensure(&self, id: TenantId) -> Result<Tenant, RepoError>;

    /// The tenant whose Stripe customer is `customer`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn find_by_customer(&self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError>;
}

/// Plans.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlanRepository: Send + Sync {
    /// All plans, by code; only active ones unless `include_inactive`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(&self, include_inactive: bool) -> Result<Vec<Plan>, RepoError>;

    /// A plan by id or code.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, key: &PlanKey) -> Result<Option<Plan>, RepoError>;

    /// The plan billed by a Stripe price.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn find_by_price(&self, price: &PriceRef) -> Result<Option<Plan>, RepoError>;

    /// Stores a new plan.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `code` or `stripePriceId` when either is taken.
    async fn create(&self, plan: NewPlan) -> Result<Plan, RepoError>;

    /// Applies a patch; `None` when the plan does not exist.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `stripePriceId` when the new price is taken.
    async fn update(&self, id: PlanId, patch: PlanPatch) -> Result<Option<Plan>, RepoError>;
}

/// Subscriptions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SubscriptionRepository: Send + Sync {
    /// The tenant's current subscription: its newest live one, else its newest
    /// `incomplete` one (a first payment on its way), else its newest one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn current_for_tenant(&self, tenant: TenantId)
        -> Result<Option<Subscription>, RepoError>;

    /// The tenant's current subscription (chosen as by
    /// [`current_for_tenant`](Self::current_for_tenant)) with the plan it bills, in one
    /// indexed read: the access check, which other services call on every request.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn current_with_plan(
        &self,
        tenant: TenantId,
    ) -> Result<Option<(Subscription, Plan)>, RepoError>;
}

/// Filters for listing invoices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceQuery {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only this status.
    pub status: Option<InvoiceStatus>,
}

/// Invoices.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InvoiceRepository: Send + Sync {
    /// Stores a new invoice in status `open`, registering its tenant as `pending` when
    /// unknown (in the same transaction).
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `number` when the number is taken.
    async fn create(&self, invoice: NewInvoice) -> Result<Invoice, RepoError>;

    /// An invoice by id or number.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, key: &InvoiceKey) -> Result<Option<Invoice>, RepoError>;

    /// A page of invoices, newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, RepoError>;

    /// Records the PaymentIntent collecting the invoice unless one is already recorded;
    /// returns the invoice as stored afterwards (whose `payment_intent` is the winner when
    /// two callers race).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn attach_payment_intent(
        &self,
        id: InvoiceId,
        payment_intent: &PaymentIntentRef,
        replace: Option<PaymentIntentRef>,
    ) -> Result<Option<Invoice>, RepoError>;
}

/// Filters for listing payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentQuery {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only this invoice's.
    pub invoice: Option<InvoiceId>,
}

/// Payments.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentRepository: Send + Sync {
    /// A page of payments, newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, RepoError>;

    // ---- refunds and disputes (issue 14) ----
    /// A payment with its refunds and disputes.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, id: PaymentId) -> Result<Option<PaymentDetail>, RepoError>;

    /// A page of disputes, newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list_disputes(
        &self,
        query: DisputeQuery,
        page: PageRequest,
    ) -> Result<Page<Dispute>, RepoError>;
}

/// Filters for listing disputes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisputeQuery {
    /// Only this status.
    pub status: Option<DisputeStatus>,
}

/// The webhook event ledger, read side.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LedgerRepository: Send + Sync {
    /// A page of ledger rows, newest received first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, RepoError>;

    /// One ledger row.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, id: &EventId) -> Result<Option<LedgerEntry>, RepoError>;

    /// Up to `limit` `unmatched` events whose object names Stripe customer `customer`
    /// (`data.object.customer`), oldest `created` first: the events that came before the
    /// customer was known to be a tenant's.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn unmatched_for_customer(
        &self,
        customer: &CustomerRef,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, RepoError>;
}

/// Liveness of the storage, for `/health/ready`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// Runs a trivial query.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database does not answer.
    async fn ping(&self) -> Result<(), RepoError>;
}

/// The Checkout Sessions the service opened, so that a tenant never has two it could both
/// complete (each would start a subscription, and Stripe would bill both).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CheckoutSessionRepository: Send + Sync {
    /// Records a session just opened for `tenant` and returns the tenant's other sessions
    /// still recorded as open, oldest first. Serialised per tenant: of two sessions
    /// recorded at once, the one recorded second always sees the first, and the first
    /// never sees the second.
    async fn record_open(
        &self,
        tenant: TenantId,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<Vec<CheckoutSessionRef>, RepoError>;
    /// Records how a session ended.
    async fn close(
        &self,
        session: &CheckoutSessionRef,
        end: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
}
