//! The one PaymentIntent collecting an invoice: handed out again while usable, made
//! anew (with a deterministic idempotency key) when not.

use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::model::{InvoiceKey, InvoiceStatus};
use crate::ports::{ClientSecret, IntentState, PaymentIntentRequest};

impl BillingService {
    #[instrument(skip_all, fields(invoice.key = %key))]
    pub(super) async fn invoice_payment_intent(
        &self,
        actor: &Actor,
        key: &InvoiceKey,
    ) -> Result<ClientSecret, BillingError> {
        let invoice = self.find_invoice(key).await?;
        Self::require_tenant(actor, invoice.tenant_id)?;
        if !invoice.status.is_payable() {
            return Err(BillingError::InvoiceNotPayable(invoice.status));
        }
        let remaining = invoice
            .amount_remaining()
            .map_err(|e| BillingError::Unexpected(Box::new(e)))?;
        if remaining.is_zero() {
            return Err(BillingError::NothingToPay);
        }

        // 1. Ours, or one Stripe made for its invoice: hand the same one out again.
        let mut known = invoice.payment_intent.clone();
        if known.is_none() {
            if let Some(stripe_invoice) = &invoice.invoice_ref {
                known = self
                    .ports
                    .provider
                    .invoice_payment_intent(stripe_invoice, None)
                    .await?;
                if known.is_none() {
                    return Err(BillingError::InvoicePaymentPending);
                }
            }
        }
        // Stripe reported it canceled (`payment_intent.canceled`): never handed out again.
        let canceled = invoice.payment_intent_canceled && known == invoice.payment_intent;
        if let Some(existing) = known.as_ref().filter(|_| !canceled) {
            if let Some(secret) = self.usable_intent(existing).await? {
                if invoice.payment_intent.as_ref() != Some(existing) {
                    self.ports
                        .invoices
                        .attach_payment_intent(invoice.id, existing, None)
                        .await?;
                }
                return Ok(secret);
            }
        }
        // A Stripe invoice is collected by Stripe's own PaymentIntents only: when Stripe's
        // was canceled (the invoice voided, or the attempt replaced), a PaymentIntent of
        // ours would charge outside the invoice while Stripe may still collect it.
        if invoice.invoice_ref.is_some() {
            return Err(BillingError::InvoicePaymentPending);
        }

        // 2. A new one. The key depends only on the invoice, the amount and the intent it
        //    replaces, so concurrent callers send the same request and Stripe creates one.
        let replaces = known.as_ref().map_or("none", |p| p.as_str());
        let tenant = self.ports.tenants.get(invoice.tenant_id).await?;
        let request = PaymentIntentRequest {
            invoice: invoice.id,
            tenant: invoice.tenant_id,
            amount: remaining,
            customer: tenant.and_then(|t| t.customer),
            idempotency_key: format!(
                "invoice-{}-pi-{}{}-after-{replaces}",
                invoice.id,
                remaining.minor(),
                remaining.currency()
            ),
        };
        let created = self.ports.provider.create_payment_intent(&request).await?;
        let stored = self
            .ports
            .invoices
            .attach_payment_intent(invoice.id, &created.id, known)
            .await?
            .ok_or_else(|| BillingError::InvoiceNotFound(key.to_string()))?;
        match stored.payment_intent {
            Some(winner) if winner != created.id => {
                // Someone attached another intent between our read and our write: answer
                // with theirs so that the customer never holds two.
                self.usable_intent(&winner)
                    .await?
                    .ok_or(BillingError::InvoicePaymentPending)
            }
            _ => Ok(created.client_secret),
        }
    }

    /// A PaymentIntent may be handed out again while the customer has not paid through it
    /// and it was not canceled.
    async fn usable_intent(
        &self,
        id: &crate::ids::PaymentIntentRef,
    ) -> Result<Option<ClientSecret>, BillingError> {
        let intent = self.ports.provider.payment_intent(id).await?;
        match intent.state {
            IntentState::AwaitingPayment | IntentState::Processing => {
                Ok(Some(intent.client_secret))
            }
            IntentState::Succeeded => Err(BillingError::InvoiceNotPayable(InvoiceStatus::Paid)),
            IntentState::Canceled => Ok(None),
        }
    }
}
