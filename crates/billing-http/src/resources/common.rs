//! What the resources share: the parsing of path, query and body values into domain
//! types (a bad value answers 400 `invalid_parameter` naming the parameter, or 422
//! `validation_failed` naming the field), the merge of a field given in the query string
//! and the body, and the page of a listing.

use actix_web::web;
use billing_domain::{
    BillingApi, Currency, Cursor, CustomerRef, InvoiceKey, Money, Page, PageLimit, PageRequest,
    PlanKey, TenantId,
};
use serde::Serialize;

use crate::error::ApiError;

/// The service, as the handlers see it.
pub(crate) type Api = web::Data<dyn BillingApi>;

/// Parses a tenant id given as a query or path parameter.
pub(crate) fn tenant_param(name: &str, raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::invalid_parameter(name, "must be a UUID"))
}

/// Parses a plan key (UUID or code) given as a parameter.
pub(crate) fn plan_param(name: &str, raw: &str) -> Result<PlanKey, ApiError> {
    PlanKey::parse(raw)
        .map_err(|_| ApiError::invalid_parameter(name, "must be a plan UUID or a plan code"))
}

/// Parses an invoice key (UUID or number) given as a parameter.
pub(crate) fn invoice_param(name: &str, raw: &str) -> Result<InvoiceKey, ApiError> {
    InvoiceKey::parse(raw).map_err(|_| {
        ApiError::invalid_parameter(name, "must be an invoice UUID or an invoice number")
    })
}

/// Parses a Stripe customer id given as a parameter.
pub(crate) fn customer_param(name: &str, raw: &str) -> Result<CustomerRef, ApiError> {
    CustomerRef::parse(raw).map_err(|_| {
        ApiError::invalid_parameter(name, "must be a Stripe customer id such as cus_123")
    })
}

pub(crate) fn page_param(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => PageLimit::default(),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .and_then(|n| PageLimit::new(n).ok())
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "limit",
                    &format!("must be an integer from 1 to {}", PageLimit::MAX),
                )
            })?,
    };
    let after = cursor
        .map(|raw| {
            Cursor::decode(raw).map_err(|_| {
                ApiError::invalid_parameter("cursor", "is not a cursor this service issued")
            })
        })
        .transpose()?;
    Ok(PageRequest { after, limit })
}

pub(crate) fn currency_field(name: &str, raw: &str) -> Result<Currency, ApiError> {
    Currency::parse(raw).map_err(|e| ApiError::invalid_field(name, e))
}

pub(crate) fn money_field(name: &str, minor: i64, currency: Currency) -> Result<Money, ApiError> {
    Money::new(minor, currency).map_err(|e| ApiError::invalid_field(name, e))
}

/// Free text stored as given. PostgreSQL cannot store U+0000 in text, so a NUL is refused
/// here (422 naming the field) rather than failing in the database (500).
pub(crate) fn text_field(name: &str, value: String) -> Result<String, ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid_field(
            name,
            "must not contain NUL (U+0000) characters",
        ));
    }
    Ok(value)
}

/// Merges one field given in the query string and/or the body: either may carry it, and
/// when both do they must name the same thing.
///
/// # Errors
/// 400 `invalid_parameter` when a value is malformed or the two disagree.
pub(crate) fn merge_param<T: PartialEq>(
    name: &str,
    query: Option<&str>,
    body: Option<&str>,
    parse: impl Fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let query = query.map(|q| parse(name, q)).transpose()?;
    let body = body.map(|b| parse(name, b)).transpose()?;
    match (query, body) {
        (Some(q), Some(b)) if q != b => Err(ApiError::invalid_parameter(
            name,
            "the query string and the body give different values",
        )),
        (q, b) => Ok(q.or(b)),
    }
}

/// A page of results: `{"data": [...], "nextCursor": "..."|null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageResponse<T> {
    /// The rows, newest first.
    pub data: Vec<T>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> PageResponse<T> {
    /// Converts a domain page row by row.
    pub fn from_page<E>(page: &Page<E>) -> Self
    where
        T: for<'a> From<&'a E>,
    {
        Self {
            data: page.items.iter().map(T::from).collect(),
            next_cursor: page.next.as_ref().map(Cursor::encode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_values_must_agree() {
        let same = merge_param("planId", Some("plan-pro"), Some("plan-pro"), plan_param);
        let differ = merge_param("planId", Some("plan-pro"), Some("plan-team"), plan_param);
        let only_body = merge_param("planId", None, Some("plan-team"), plan_param);

        assert!(same.unwrap().is_some());
        assert_eq!(differ.unwrap_err().code(), "invalid_parameter");
        assert!(only_body.unwrap().is_some());
    }

    #[test]
    fn a_limit_outside_the_range_is_refused_naming_limit() {
        let err = page_param(Some("0"), None).unwrap_err();

        assert!(err.detail().starts_with("limit"));
        assert!(page_param(Some("abc"), None).is_err());
        assert_eq!(page_param(Some("100"), None).unwrap().limit.get(), 100);
    }

    #[test]
    fn a_nul_character_in_free_text_is_refused_naming_the_field() {
        use super::super::invoices::CreateInvoiceBody;
        use super::super::plans::{CreatePlanBody, UpdatePlanBody};

        let plan: CreatePlanBody = serde_json::from_str(
            r#"{"code":"p","name":"a\u0000b","stripePriceId":"price_1","amount":1,"currency":"usd","interval":"month"}"#,
        )
        .unwrap();
        let patch: UpdatePlanBody = serde_json::from_str(r#"{"name":"\u0000"}"#).unwrap();
        let invoice: CreateInvoiceBody = serde_json::from_str(
            r#"{"tenantId":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","number":"n1","amountDue":5,"currency":"usd","description":"x\u0000"}"#,
        )
        .unwrap();

        let plan = plan.try_into_domain().unwrap_err();
        let patch = patch.try_into_domain().unwrap_err();
        let invoice = invoice.try_into_domain().unwrap_err();

        assert_eq!(plan.code(), "validation_failed");
        assert!(plan.detail().starts_with("name:"), "{}", plan.detail());
        assert!(patch.detail().starts_with("name:"), "{}", patch.detail());
        assert!(
            invoice.detail().starts_with("description:"),
            "{}",
            invoice.detail()
        );
    }
}
