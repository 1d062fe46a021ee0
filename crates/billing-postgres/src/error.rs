//! Translation of diesel and pool errors into the domain's [`RepoError`].
//!
//! Constraint names are fixed by the migrations; this is the one place that knows how
//! they map to the field names the API reports in a conflict.

use billing_domain::ports::RepoError;
use billing_domain::{ConflictField, ReferenceField};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// An error inside a database closure: either diesel's own or an already-translated one
/// (for instance a row that fails domain validation). [`DbError::into_repo`] turns it into
/// the port's error at the edge.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// From diesel.
    #[error(transparent)]
    Diesel(#[from] DieselError),
    /// Already a port error.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl DbError {
    /// The port error for this failure.
    pub(crate) fn into_repo(self) -> RepoError {
        match self {
            Self::Diesel(e) => map_diesel(e),
            Self::Repo(e) => e,
        }
    }
}

/// A stored row that the domain refuses (it can only come from a manual edit or a bug).
#[derive(Debug, thiserror::Error)]
#[error("invalid {table} row: {reason}")]
pub(crate) struct InvalidRow {
    /// Which table.
    pub(crate) table: &'static str,
    /// What was wrong.
    pub(crate) reason: String,
}

impl InvalidRow {
    pub(crate) fn new(table: &'static str, reason: impl Into<String>) -> Self {
        Self {
            table,
            reason: reason.into(),
        }
    }
}

impl From<InvalidRow> for RepoError {
    fn from(e: InvalidRow) -> Self {
        RepoError::Unexpected(Box::new(e))
    }
}

impl From<InvalidRow> for DbError {
    fn from(e: InvalidRow) -> Self {
        DbError::Repo(e.into())
    }
}

/// Maps a diesel error to the port error.
pub(crate) fn map_diesel(e: DieselError) -> RepoError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
            RepoError::Conflict(unique_field(info.constraint_name()))
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, ref info) => {
            RepoError::MissingReference(foreign_key_field(info.constraint_name()))
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => RepoError::Unavailable(Box::new(e)),
        other => RepoError::Unexpected(Box::new(other)),
    }
}

/// The field a unique constraint protects.
pub(crate) fn unique_field(constraint: Option<&str>) -> ConflictField {
    match constraint.unwrap_or_default() {
        "plans_code_key" => ConflictField::PlanCode,
        "plans_stripe_price_id_key" => ConflictField::StripePrice,
        "invoices_number_key" => ConflictField::InvoiceNumber,
        "invoices_stripe_invoice_id_key" => ConflictField::StripeInvoice,
        "invoices_stripe_payment_intent_id_key" | "payments_succeeded_payment_intent_key" => {
            ConflictField::StripePaymentIntent
        }
        "tenants_stripe_customer_id_key" => ConflictField::StripeCustomer,
        "subscriptions_stripe_subscription_id_key" => ConflictField::StripeSubscription,
        "payments_stripe_charge_id_key" | "payments_succeeded_charge_key" => {
            ConflictField::StripeCharge
        }
        "payments_source_event_id_key" => ConflictField::SourceEvent,
        "notifications_dedupe_key_key" => ConflictField::DedupeKey,
        "webhook_events_pkey" => ConflictField::EventId,
        _ => ConflictField::Id,
    }
}

/// The field a foreign key points from.
pub(crate) fn foreign_key_field(constraint: Option<&str>) -> ReferenceField {
    match constraint.unwrap_or_default() {
        "subscriptions_tenant_id_fkey" | "invoices_tenant_id_fkey" | "payments_tenant_id_fkey" => {
            ReferenceField::Tenant
        }
        "subscriptions_plan_id_fkey" => ReferenceField::Plan,
        "invoices_subscription_id_fkey" => ReferenceField::Subscription,
        "payments_invoice_id_fkey" => ReferenceField::Invoice,
        _ => ReferenceField::Other,
    }
}

/// A pool checkout that failed: the database is unreachable or saturated.
pub(crate) fn pool_unavailable(e: diesel::r2d2::PoolError) -> RepoError {
    RepoError::Unavailable(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unique_constraint_of_the_migrations_names_its_field() {
        let named = [
            ("plans_code_key", ConflictField::PlanCode),
            ("plans_stripe_price_id_key", ConflictField::StripePrice),
            ("invoices_number_key", ConflictField::InvoiceNumber),
            (
                "payments_succeeded_payment_intent_key",
                ConflictField::StripePaymentIntent,
            ),
            ("payments_succeeded_charge_key", ConflictField::StripeCharge),
        ];

        for (constraint, field) in named {
            assert_eq!(unique_field(Some(constraint)), field);
        }
        assert_eq!(unique_field(None), ConflictField::Id);
    }

    #[test]
    fn a_lost_connection_is_unavailable_not_unexpected() {
        let e = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection".to_owned()),
        );

        assert!(matches!(map_diesel(e), RepoError::Unavailable(_)));
    }
}
