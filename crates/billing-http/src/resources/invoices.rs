//! `/api/v1/billing/invoices`: invoices, and the PaymentIntent that collects one.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use billing_domain::ports::InvoiceQuery;
use billing_domain::{Invoice, InvoiceNumber, InvoiceStatus, NewInvoice, PageRequest, TenantId};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    currency_field, invoice_param, money_field, page_param, tenant_param, text_field, Api,
    PageResponse,
};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::paths;
use crate::responses::{BadGateway, BodyErrors, Conflict, Guarded, NotFound};

/// An invoice's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum InvoiceStatusName {
    /// Not yet issued.
    Draft,
    /// Issued, awaiting payment.
    Open,
    /// Paid in full.
    Paid,
    /// A payment failed or the due date passed.
    Overdue,
    /// Cancelled.
    Void,
    /// Written off.
    Uncollectible,
}

/// Query of `GET /api/v1/billing/invoices`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInvoicesParams {
    /// Only this tenant's (a tenant token sees only its own anyway).
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<String>,
    /// Only this status.
    #[param(value_type = Option<InvoiceStatusName>, inline)]
    pub status: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListInvoicesParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(InvoiceQuery, PageRequest), ApiError> {
        let tenant = self
            .tenant_id
            .as_deref()
            .map(|t| tenant_param("tenantId", t))
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                InvoiceStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "status",
                        "must be one of draft, open, paid, overdue, void, uncollectible",
                    )
                })
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((InvoiceQuery { tenant, status }, page))
    }
}

/// Body of `POST /api/v1/billing/invoices`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInvoiceBody {
    /// Owner (UUID).
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Unique number such as `inv-001`: 1-64 visible ASCII characters but `/`, and not a
    /// UUID.
    #[schema(pattern = "^[!-.0-~]{1,64}$", example = "inv-001")]
    pub number: String,
    /// Amount owed in minor units (> 0).
    #[schema(minimum = 1)]
    pub amount_due: i64,
    /// Currency code.
    #[schema(pattern = "^[A-Za-z]{3}$", example = "usd")]
    pub currency: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub due_date: Option<String>,
    /// Free text (no NUL characters).
    #[serde(default)]
    #[schema(pattern = "^[^\\x00]*$")]
    pub description: Option<String>,
}

impl CreateInvoiceBody {
    /// Converts to the domain's input.
    ///
    /// # Errors
    /// 422 `validation_failed` naming the first field that breaks a rule.
    pub fn try_into_domain(self) -> Result<NewInvoice, ApiError> {
        let tenant_id = TenantId::parse(&self.tenant_id)
            .map_err(|_| ApiError::invalid_field("tenantId", "must be a UUID"))?;
        let number =
            InvoiceNumber::parse(&self.number).map_err(|e| ApiError::invalid_field("number", e))?;
        let currency = currency_field("currency", &self.currency)?;
        let due_date = self
            .due_date
            .map(|d| {
                // Years 1-9999 only: chrono reads "-5000-01-01", PostgreSQL cannot store it.
                NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .ok()
                    .filter(|date| (1..=9999).contains(&date.year()))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "dueDate",
                            "must be a date YYYY-MM-DD (years 1-9999)",
                        )
                    })
            })
            .transpose()?;
        Ok(NewInvoice {
            tenant_id,
            number,
            amount_due: money_field("amountDue", self.amount_due, currency)?,
            due_date,
            description: self
                .description
                .map(|d| text_field("description", d))
                .transpose()?,
        })
    }
}

/// An invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Owner.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Subscription billed, if any.
    #[schema(format = Uuid, required = true)]
    pub subscription_id: Option<String>,
    /// Number.
    pub number: String,
    /// Status.
    #[schema(value_type = InvoiceStatusName)]
    pub status: &'static str,
    /// Amount owed, minor units.
    pub amount_due: i64,
    /// Amount paid, minor units.
    pub amount_paid: i64,
    /// Amount still due, minor units.
    pub amount_remaining: i64,
    /// Lower-case currency.
    pub currency: String,
    /// Due date `YYYY-MM-DD`.
    #[schema(required = true)]
    pub due_date: Option<NaiveDate>,
    /// Free text.
    #[schema(required = true)]
    pub description: Option<String>,
    /// When paid in full.
    #[schema(required = true)]
    pub paid_at: Option<DateTime<Utc>>,
    /// Stripe invoice id.
    #[schema(required = true)]
    pub stripe_invoice_id: Option<String>,
    /// Stripe PaymentIntent id.
    #[schema(required = true)]
    pub stripe_payment_intent_id: Option<String>,
    /// Stripe's hosted invoice page (invoices Stripe made, once finalised).
    #[schema(required = true)]
    pub hosted_invoice_url: Option<String>,
    /// Stripe's invoice PDF (invoices Stripe made, once finalised).
    #[schema(required = true)]
    pub invoice_pdf_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Invoice> for InvoiceResponse {
    fn from(i: &Invoice) -> Self {
        // The database keeps both amounts in one currency; should they ever differ,
        // the floor of the subtraction is the honest answer rather than a failure.
        let remaining = i.amount_remaining().map_or_else(
            |_| (i.amount_due.minor() - i.amount_paid.minor()).max(0),
            |m| m.minor(),
        );
        Self {
            id: i.id.to_string(),
            tenant_id: i.tenant_id.to_string(),
            subscription_id: i.subscription_id.map(|s| s.to_string()),
            number: i.number.to_string(),
            status: i.status.as_str(),
            amount_due: i.amount_due.minor(),
            amount_paid: i.amount_paid.minor(),
            amount_remaining: remaining,
            currency: i.amount_due.currency().to_string(),
            due_date: i.due_date,
            description: i.description.clone(),
            paid_at: i.paid_at,
            stripe_invoice_id: i.invoice_ref.as_ref().map(ToString::to_string),
            stripe_payment_intent_id: i.payment_intent.as_ref().map(ToString::to_string),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            invoice_pdf_url: i.invoice_pdf_url.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// `POST /api/v1/billing/invoices/{invoiceId}/payment-intent` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentIntentResponse {
    /// The PaymentIntent's client secret, for Stripe.js.
    pub client_secret: String,
}

/// A page of invoices.
///
/// # Responses
/// 200 `{data: [InvoiceResponse], nextCursor}` · 400 bad filter, limit or cursor · 403
#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices",
    tag = "invoices",
    params(ListInvoicesParams),
    responses(
        (status = 200, description = "A page of invoices, newest first", body = PageResponse<InvoiceResponse>),
        Guarded
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = ?query.tenant_id))]
pub async fn list_invoices(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListInvoicesParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let invoices = api.list_invoices(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<InvoiceResponse>::from_page(&invoices)))
}

/// One invoice by UUID or number.
///
/// # Responses
/// 200 `InvoiceResponse` · 400 malformed key · 403 · 404 `invoice_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices/{invoiceId}",
    tag = "invoices",
    params(("invoiceId" = String, Path, description = "An invoice's UUID or its number, e.g. `inv-001`", pattern = "^[!-.0-~]{1,64}$", example = "inv-001")),
    responses(
        (status = 200, description = "The invoice", body = InvoiceResponse),
        Guarded,
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(invoice.key = %path))]
pub async fn get_invoice(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = invoice_param("invoiceId", &path)?;
    let invoice = api.get_invoice(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(InvoiceResponse::from(&invoice)))
}

/// Creates an invoice (admin).
///
/// # Responses
/// 201 `InvoiceResponse` with `Location` · 403 `admin_required` · 409 `invoice_exists` · 422
#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices",
    tag = "invoices",
    request_body = CreateInvoiceBody,
    responses(
        (status = 201, description = "The new invoice", body = InvoiceResponse, headers(("Location" = String, description = "The new resource"))),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %body.tenant_id))]
pub async fn create_invoice(
    actor: AuthenticatedActor,
    api: Api,
    body: web::Json<CreateInvoiceBody>,
) -> Result<HttpResponse, ApiError> {
    let invoice = api
        .create_invoice(&actor, body.into_inner().try_into_domain()?)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{}/{}", paths::INVOICES, invoice.id),
        ))
        .json(InvoiceResponse::from(&invoice)))
}

/// The client secret of the one PaymentIntent collecting an invoice.
///
/// # Responses
/// 200 `{clientSecret}` · 403 · 404 · 409 (paid, not payable, nothing to pay, pending) ·
/// 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/payment-intent",
    tag = "invoices",
    params(("invoiceId" = String, Path, description = "An invoice's UUID or its number, e.g. `inv-001`", pattern = "^[!-.0-~]{1,64}$", example = "inv-001")),
    responses(
        (status = 200, description = "The client secret of the invoice's one PaymentIntent", body = PaymentIntentResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(invoice.key = %path))]
pub async fn invoice_payment_intent(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = invoice_param("invoiceId", &path)?;
    let secret = api.invoice_payment_intent(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(PaymentIntentResponse {
        client_secret: secret.expose().to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_date_postgresql_cannot_store_is_refused_not_a_500() {
        for date in ["-5000-01-01", "0000-12-31", "10000-01-01", "2026-02-30"] {
            let body: CreateInvoiceBody = serde_json::from_str(&format!(
                r#"{{"tenantId":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","number":"n1","amountDue":5,"currency":"usd","dueDate":"{date}"}}"#
            ))
            .unwrap();

            let err = body.try_into_domain().unwrap_err();

            assert!(
                err.detail().starts_with("dueDate:"),
                "{date}: {}",
                err.detail()
            );
        }
    }

    #[test]
    fn free_text_without_nul_passes_unchanged() {
        let body: CreateInvoiceBody = serde_json::from_str(
            r#"{"tenantId":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","number":"n1","amountDue":5,"currency":"usd","description":"Zoë's \u00e9 invoice"}"#,
        )
        .unwrap();

        let invoice = body.try_into_domain().unwrap();

        assert_eq!(invoice.description.as_deref(), Some("Zoë's é invoice"));
    }
}
