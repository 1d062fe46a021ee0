//! `customer.deleted`: the tenant that paid through the customer no longer has one; its
//! subscriptions, invoices and payments are kept as history. The deletion is remembered
//! whoever the customer was, so that an event still naming the customer (sent before the
//! deletion, delivered after it) never records it on a tenant again
//! ([`super::tenant::settle_tenant`]).

use chrono::{DateTime, Utc};

use super::tenant::resolve_tenant;
use super::{applied, processed, unmatched};
use crate::model::EventOutcome;
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::CustomerDeleted;

pub(super) fn customer_deleted(
    tx: &mut dyn WebhookTx,
    c: &CustomerDeleted,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    tx.record_customer_deleted(&c.customer, now)?;
    let tenant = match resolve_tenant(tx, &c.tenant)? {
        Ok(t) => t,
        Err(reason) => return Ok(unmatched(reason)),
    };
    // Under the tenant's lock, as every change of its customer.
    let Some(mut tenant) = tx.lock_tenant(tenant.id)? else {
        return Ok(unmatched(format!("tenant {} vanished", tenant.id)));
    };
    if tenant.customer.as_ref() != Some(&c.customer) {
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!(
                "tenant {} does not pay through {}; nothing cleared",
                tenant.id, c.customer
            )),
        ));
    }
    tenant.customer = None;
    tenant.updated_at = now;
    tx.save_tenant(&tenant)?;
    Ok(processed())
}
