//! Invoices and the payments made on them: listings scoped to the caller, admin-made
//! invoices.

use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::PaymentId;
use crate::model::{Dispute, PaymentDetail};
use crate::model::{Invoice, InvoiceKey, NewInvoice, Payment, MAX_DESCRIPTION_LEN};
use crate::page::{Page, PageRequest};
use crate::ports::DisputeQuery;
use crate::ports::{InvoiceQuery, PaymentQuery, RepoError};

impl BillingService {
    #[instrument(skip_all)]
    pub(super) async fn list_invoices(
        &self,
        actor: &Actor,
        mut query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, BillingError> {
        query.tenant = Self::scope(actor, query.tenant)?;
        Ok(self.ports.invoices.list(query, page).await?)
    }

    #[instrument(skip_all, fields(invoice.key = %key))]
    pub(super) async fn get_invoice(
        &self,
        actor: &Actor,
        key: &InvoiceKey,
    ) -> Result<Invoice, BillingError> {
        let invoice = self.find_invoice(key).await?;
        Self::require_tenant(actor, invoice.tenant_id)?;
        Ok(invoice)
    }

    #[instrument(skip_all, fields(tenant.id = %invoice.tenant_id))]
    pub(super) async fn create_invoice(
        &self,
        actor: &Actor,
        invoice: NewInvoice,
    ) -> Result<Invoice, BillingError> {
        Self::require_admin(actor)?;
        if invoice.amount_due.is_zero() {
            return Err(BillingError::Invalid(
                "amountDue must be greater than zero".into(),
            ));
        }
        if invoice
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            return Err(BillingError::Invalid(format!(
                "description must be at most {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        match self.ports.invoices.create(invoice).await {
            Err(RepoError::Conflict(_)) => Err(BillingError::InvoiceExists),
            other => Ok(other?),
        }
    }

    #[instrument(skip_all)]
    pub(super) async fn list_payments(
        &self,
        actor: &Actor,
        mut query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, BillingError> {
        query.tenant = Self::scope(actor, query.tenant)?;
        Ok(self.ports.payments.list(query, page).await?)
    }

    pub(super) async fn find_invoice(&self, key: &InvoiceKey) -> Result<Invoice, BillingError> {
        self.ports
            .invoices
            .get(key)
            .await?
            .ok_or_else(|| BillingError::InvoiceNotFound(key.to_string()))
    }
}

// ---- refunds and disputes (issue 14) ----
impl BillingService {
    #[instrument(skip_all, fields(payment.id = %id))]
    pub(super) async fn get_payment(
        &self,
        actor: &Actor,
        id: PaymentId,
    ) -> Result<PaymentDetail, BillingError> {
        let detail = self
            .ports
            .payments
            .get(id)
            .await?
            .ok_or(BillingError::PaymentNotFound(id))?;
        Self::require_tenant(actor, detail.payment.tenant_id)?;
        Ok(detail)
    }

    #[instrument(skip_all)]
    pub(super) async fn list_disputes(
        &self,
        actor: &Actor,
        query: DisputeQuery,
        page: PageRequest,
    ) -> Result<Page<Dispute>, BillingError> {
        Self::require_admin(actor)?;
        Ok(self.ports.payments.list_disputes(query, page).await?)
    }
}
