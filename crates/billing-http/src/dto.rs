//! Request and response shapes of the HTTP API (SPEC §3) and their conversions.
//!
//! * Bodies (`*Body`) deny unknown fields and convert with `try_into_domain()`, which
//!   answers 422 `validation_failed` naming the field when a value breaks a rule.
//! * Query strings (`*Params`) are read as raw strings and parsed here, so that a bad value
//!   answers 400 `invalid_parameter` naming the parameter rather than a serde message.
//! * Responses (`*Response`) are built with `From<&Entity>`. Ids are strings, money is an
//!   integer in minor units plus a lower-case currency, times are RFC 3339 in UTC, and
//!   absent optional values are `null` (never omitted) so every response has one shape.

use billing_domain::ports::{CheckoutSession, InvoiceQuery, PaymentQuery};
use billing_domain::service::WebhookReceipt;
use billing_domain::{
    BillingInterval, Currency, Cursor, CustomerRef, EventOutcome, Invoice, InvoiceId, InvoiceKey,
    InvoiceNumber, InvoiceStatus, LedgerEntry, LedgerQuery, Money, NewInvoice, NewPlan, Page,
    PageLimit, PageRequest, Payment, Plan, PlanCode, PlanKey, PlanPatch, PriceRef, Subscription,
    TenantId, TenantOverview, TrialDays,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ApiError;

// ---------------------------------------------------------------------------------------
// Parsing helpers

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

fn page_param(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
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

fn currency_field(name: &str, raw: &str) -> Result<Currency, ApiError> {
    Currency::parse(raw).map_err(|e| ApiError::invalid_field(name, e))
}

fn money_field(name: &str, minor: i64, currency: Currency) -> Result<Money, ApiError> {
    Money::new(minor, currency).map_err(|e| ApiError::invalid_field(name, e))
}

fn price_field(raw: String) -> Result<PriceRef, ApiError> {
    PriceRef::parse(raw).map_err(|_| {
        ApiError::invalid_field(
            "stripePriceId",
            "must be a Stripe price id such as price_123",
        )
    })
}

/// Free text stored as given. PostgreSQL cannot store U+0000 in text, so a NUL is refused
/// here (422 naming the field) rather than failing in the database (500).
fn text_field(name: &str, value: String) -> Result<String, ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid_field(
            name,
            "must not contain NUL (U+0000) characters",
        ));
    }
    Ok(value)
}

fn trial_field(days: i64) -> Result<TrialDays, ApiError> {
    TrialDays::new(days).map_err(|e| ApiError::invalid_field("trialDays", e))
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

// ---------------------------------------------------------------------------------------
// Names of the enumerations, for the OpenAPI document only (responses carry them as
// strings from the domain's `as_str`; the tests check the two agree).

/// A plan's billing interval.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum IntervalName {
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

/// A tenant's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TenantStatusName {
    /// Registered, not yet subscribed.
    Pending,
    /// Subscribed.
    Active,
    /// Suspended by an operator.
    Suspended,
    /// Nothing live is left.
    Cancelled,
}

/// A subscription's status (Stripe's set).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SubscriptionStatusName {
    /// `incomplete`.
    Incomplete,
    /// `incomplete_expired`.
    IncompleteExpired,
    /// `trialing`.
    Trialing,
    /// `active`.
    Active,
    /// `past_due`.
    PastDue,
    /// `canceled`.
    Canceled,
    /// `unpaid`.
    Unpaid,
    /// `paused`.
    Paused,
}

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

/// A payment's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentStatusName {
    /// Money moved.
    Succeeded,
    /// A failed attempt.
    Failed,
}

/// What became of a webhook event.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EventOutcomeName {
    /// Applied.
    Processed,
    /// Already in the ledger.
    Duplicate,
    /// Older than the newest applied event about the same object.
    Stale,
    /// A type the service does not act on.
    Ignored,
    /// Its tenant could not be resolved; kept for replay.
    Unmatched,
    /// Could not be applied; kept for an operator.
    Failed,
}

/// A health answer.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HealthStatusName {
    /// Healthy.
    Ok,
}

// ---------------------------------------------------------------------------------------
// Plans

/// Query of `GET /api/v1/billing/plans`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPlansParams {
    /// `true` to include retired plans (admins only; ignored for others).
    #[param(value_type = Option<bool>)]
    pub include_inactive: Option<String>,
}

impl ListPlansParams {
    /// The flag, default `false`.
    ///
    /// # Errors
    /// 400 `invalid_parameter` unless the value is `true` or `false`.
    pub fn include_inactive(&self) -> Result<bool, ApiError> {
        match self.include_inactive.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid_parameter(
                "includeInactive",
                "must be true or false",
            )),
        }
    }
}

/// Body of `POST /api/v1/billing/plans`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePlanBody {
    /// Code such as `plan-pro`.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,63}$", example = "plan-pro")]
    pub code: String,
    /// Display name: 1-200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00]*\\S[^\\x00]*$",
        example = "Pro"
    )]
    pub name: String,
    /// Stripe price id.
    #[schema(pattern = "^[!-~]{1,255}$", example = "price_123")]
    pub stripe_price_id: String,
    /// Price per interval in minor units.
    #[schema(minimum = 0)]
    pub amount: i64,
    /// Currency code.
    #[schema(pattern = "^[A-Za-z]{3}$", example = "usd")]
    pub currency: String,
    /// `month` or `year`.
    #[schema(value_type = IntervalName)]
    pub interval: String,
    /// Trial days (1-730), if any.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 730)]
    pub trial_days: Option<i64>,
}

impl CreatePlanBody {
    /// Converts to the domain's input.
    ///
    /// # Errors
    /// 422 `validation_failed` naming the first field that breaks a rule.
    pub fn try_into_domain(self) -> Result<NewPlan, ApiError> {
        let code = PlanCode::parse(&self.code).map_err(|e| ApiError::invalid_field("code", e))?;
        let currency = currency_field("currency", &self.currency)?;
        let interval = BillingInterval::parse(&self.interval)
            .ok_or_else(|| ApiError::invalid_field("interval", "must be month or year"))?;
        Ok(NewPlan {
            code,
            name: text_field("name", self.name)?,
            price: price_field(self.stripe_price_id)?,
            amount: money_field("amount", self.amount, currency)?,
            interval,
            trial_days: self.trial_days.map(trial_field).transpose()?,
        })
    }
}

/// Body of `PATCH /api/v1/billing/plans/{planId}`. Absent fields stay as they are;
/// `"trialDays": null` removes the trial. `amount` and `currency` go together.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePlanBody {
    /// New display name: 1-200 characters, not blank.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00]*\\S[^\\x00]*$",
        example = "Pro"
    )]
    pub name: Option<String>,
    /// New Stripe price id.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "price_123")]
    pub stripe_price_id: Option<String>,
    /// New amount (requires `currency`).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub amount: Option<i64>,
    /// Currency of the new amount (requires `amount`).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z]{3}$", example = "usd")]
    pub currency: Option<String>,
    /// New trial (1-730); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 730)]
    pub trial_days: Option<Option<i64>>,
    /// Activate or retire.
    #[serde(default)]
    pub active: Option<bool>,
}

impl UpdatePlanBody {
    /// Converts to the domain's patch.
    ///
    /// # Errors
    /// 422 `validation_failed` naming the first field that breaks a rule.
    pub fn try_into_domain(self) -> Result<PlanPatch, ApiError> {
        let amount = match (self.amount, self.currency) {
            (None, None) => None,
            (Some(minor), Some(currency)) => Some(money_field(
                "amount",
                minor,
                currency_field("currency", &currency)?,
            )?),
            (Some(_), None) => {
                return Err(ApiError::invalid_field(
                    "currency",
                    "is required with amount",
                ))
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid_field(
                    "amount",
                    "is required with currency",
                ))
            }
        };
        Ok(PlanPatch {
            name: self.name.map(|n| text_field("name", n)).transpose()?,
            price: self.stripe_price_id.map(price_field).transpose()?,
            amount,
            trial_days: self
                .trial_days
                .map(|days| days.map(trial_field).transpose())
                .transpose()?,
            active: self.active,
        })
    }
}

/// A plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Stripe price id.
    pub stripe_price_id: String,
    /// Price per interval, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// `month` or `year`.
    #[schema(value_type = IntervalName)]
    pub interval: &'static str,
    /// Trial days or `null`.
    #[schema(required = true)]
    pub trial_days: Option<u16>,
    /// Whether it can be bought.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Plan> for PlanResponse {
    fn from(p: &Plan) -> Self {
        Self {
            id: p.id.to_string(),
            code: p.code.to_string(),
            name: p.name.clone(),
            stripe_price_id: p.price.to_string(),
            amount: p.amount.minor(),
            currency: p.amount.currency().to_string(),
            interval: p.interval.as_str(),
            trial_days: p.trial_days.map(TrialDays::get),
            active: p.active,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tenants and subscriptions

/// A subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Owner.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Plan billed.
    #[schema(format = Uuid)]
    pub plan_id: String,
    /// Stripe's status.
    #[schema(value_type = SubscriptionStatusName)]
    pub status: &'static str,
    /// Start of the current period.
    #[schema(required = true)]
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current period.
    #[schema(required = true)]
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends with the period.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    #[schema(required = true)]
    pub canceled_at: Option<DateTime<Utc>>,
    /// Stripe subscription id.
    #[schema(required = true)]
    pub stripe_subscription_id: Option<String>,
    /// Stripe customer id.
    #[schema(required = true)]
    pub stripe_customer_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionResponse {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            tenant_id: s.tenant_id.to_string(),
            plan_id: s.plan_id.to_string(),
            status: s.status.as_str(),
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            canceled_at: s.canceled_at,
            stripe_subscription_id: s.subscription_ref.as_ref().map(ToString::to_string),
            stripe_customer_id: s.customer.as_ref().map(ToString::to_string),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A tenant with its current subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// `pending`, `active`, `suspended` or `cancelled`.
    #[schema(value_type = TenantStatusName)]
    pub status: &'static str,
    /// Stripe customer id.
    #[schema(required = true)]
    pub stripe_customer_id: Option<String>,
    /// Current subscription or `null`.
    #[schema(required = true)]
    pub subscription: Option<SubscriptionResponse>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&TenantOverview> for TenantResponse {
    fn from(o: &TenantOverview) -> Self {
        let t = &o.tenant;
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            status: t.status.as_str(),
            stripe_customer_id: t.customer.as_ref().map(ToString::to_string),
            subscription: o.subscription.as_ref().map(SubscriptionResponse::from),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Invoices

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
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Payments

/// Query of `GET /api/v1/billing/payments`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPaymentsParams {
    /// Only this tenant's.
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<String>,
    /// Only this invoice's (UUID).
    #[param(value_type = Option<String>, format = Uuid)]
    pub invoice_id: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListPaymentsParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(PaymentQuery, PageRequest), ApiError> {
        let tenant = self
            .tenant_id
            .as_deref()
            .map(|t| tenant_param("tenantId", t))
            .transpose()?;
        let invoice = self
            .invoice_id
            .as_deref()
            .map(|i| {
                InvoiceId::parse(i)
                    .map_err(|_| ApiError::invalid_parameter("invoiceId", "must be a UUID"))
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((PaymentQuery { tenant, invoice }, page))
    }
}

/// A payment or failed attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Payer.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Invoice paid, if known.
    #[schema(format = Uuid, required = true)]
    pub invoice_id: Option<String>,
    /// Amount, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// `succeeded` or `failed`.
    #[schema(value_type = PaymentStatusName)]
    pub status: &'static str,
    /// Stripe's failure code.
    #[schema(required = true)]
    pub failure_code: Option<String>,
    /// Stripe's failure message.
    #[schema(required = true)]
    pub failure_message: Option<String>,
    /// Stripe PaymentIntent id.
    #[schema(required = true)]
    pub stripe_payment_intent_id: Option<String>,
    /// Stripe charge id.
    #[schema(required = true)]
    pub stripe_charge_id: Option<String>,
    /// When recorded.
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.to_string(),
            tenant_id: p.tenant_id.to_string(),
            invoice_id: p.invoice_id.map(|i| i.to_string()),
            amount: p.amount.minor(),
            currency: p.amount.currency().to_string(),
            status: p.status.as_str(),
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            stripe_payment_intent_id: p.payment_intent.as_ref().map(ToString::to_string),
            stripe_charge_id: p.charge.as_ref().map(ToString::to_string),
            created_at: p.created_at,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Event ledger

/// Query of `GET /api/v1/billing/stripe/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListEventsParams {
    /// Outcome filter.
    #[param(value_type = Option<EventOutcomeName>, inline)]
    pub status: Option<String>,
    /// Stripe event type filter.
    #[serde(rename = "type")]
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$",
        example = "invoice.paid"
    )]
    pub kind: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListEventsParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(LedgerQuery, PageRequest), ApiError> {
        let outcome = self
            .status
            .as_deref()
            .map(|s| {
                EventOutcome::parse(s).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "status",
                        "must be one of processed, duplicate, stale, ignored, unmatched, failed",
                    )
                })
            })
            .transpose()?;
        let kind = self
            .kind
            .map(|k| {
                let ok = !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic());
                if ok {
                    Ok(k)
                } else {
                    Err(ApiError::invalid_parameter(
                        "type",
                        "must be a Stripe event type such as invoice.paid",
                    ))
                }
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((LedgerQuery { outcome, kind }, page))
    }
}

/// A ledger row, without its payload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    /// Stripe event id.
    pub event_id: String,
    /// Stripe event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// API version of the payload.
    #[schema(required = true)]
    pub api_version: Option<String>,
    /// When first received.
    pub received_at: DateTime<Utc>,
    /// When its outcome was decided.
    #[schema(required = true)]
    pub processed_at: Option<DateTime<Utc>>,
    /// Outcome.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
    /// Why (stale, unmatched, failed).
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl From<&LedgerEntry> for EventResponse {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            event_id: e.event_id.to_string(),
            kind: e.kind.clone(),
            created: e.created,
            api_version: e.api_version.clone(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            outcome: e.outcome.as_str(),
            detail: e.detail.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pages

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

// ---------------------------------------------------------------------------------------
// Stripe endpoints

/// The checkout fields, from the query string or the JSON body (same names).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutParams {
    /// Tenant subscribing (UUID).
    #[serde(default)]
    #[schema(format = Uuid)]
    #[param(format = Uuid)]
    pub tenant_id: Option<String>,
    /// Plan UUID or code.
    #[serde(default)]
    #[schema(
        pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
        example = "plan-pro"
    )]
    #[param(
        pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
        example = "plan-pro"
    )]
    pub plan_id: Option<String>,
    /// Stripe customer to reuse.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    #[param(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    pub customer_id: Option<String>,
}

/// `POST /api/v1/billing/stripe/checkout` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutResponse {
    /// The hosted Checkout page.
    pub session_url: String,
    /// Stripe's session id (`cs_…`).
    pub session_id: String,
}

impl From<&CheckoutSession> for CheckoutResponse {
    fn from(s: &CheckoutSession) -> Self {
        Self {
            session_url: s.url.clone(),
            session_id: s.id.to_string(),
        }
    }
}

/// The portal fields, from the query string or the JSON body (same names).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalParams {
    /// Stripe customer (required).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    #[param(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    pub customer_id: Option<String>,
    /// Where the portal sends the customer back.
    #[serde(default)]
    pub return_url: Option<String>,
}

/// `POST /api/v1/billing/stripe/portal` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalResponse {
    /// The portal session URL.
    pub portal_url: String,
}

/// `POST /api/v1/billing/invoices/{invoiceId}/payment-intent` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentIntentResponse {
    /// The PaymentIntent's client secret, for Stripe.js.
    pub client_secret: String,
}

/// Health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    #[schema(value_type = HealthStatusName)]
    pub status: &'static str,
}

/// `POST /api/v1/billing/stripe/webhook` answer to an accepted delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAck {
    /// Always `true`.
    pub received: bool,
    /// Stripe's event id.
    pub event_id: String,
    /// What the delivery came to.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
}

impl From<&WebhookReceipt> for WebhookAck {
    fn from(r: &WebhookReceipt) -> Self {
        Self {
            received: true,
            event_id: r.event_id.to_string(),
            outcome: r.outcome.as_str(),
        }
    }
}

/// `POST /api/v1/billing/stripe/events/{eventId}/replay` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResponse {
    /// Stripe's event id.
    pub event_id: String,
    /// Stripe's event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the replay came to.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
    /// Why, when not simply processed.
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl From<&WebhookReceipt> for ReplayResponse {
    fn from(r: &WebhookReceipt) -> Self {
        Self {
            event_id: r.event_id.to_string(),
            kind: r.kind.clone(),
            outcome: r.outcome.as_str(),
            detail: r.detail.clone(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_distinguishes_an_absent_trial_from_a_null_one() {
        let absent: UpdatePlanBody = serde_json::from_str(r#"{"name":"Pro"}"#).unwrap();
        let null: UpdatePlanBody = serde_json::from_str(r#"{"trialDays":null}"#).unwrap();
        let set: UpdatePlanBody = serde_json::from_str(r#"{"trialDays":14}"#).unwrap();

        assert_eq!(absent.try_into_domain().unwrap().trial_days, None);
        assert_eq!(null.try_into_domain().unwrap().trial_days, Some(None));
        assert_eq!(
            set.try_into_domain().unwrap().trial_days,
            Some(Some(TrialDays::new(14).unwrap()))
        );
    }

    #[test]
    fn a_nul_character_in_free_text_is_refused_naming_the_field() {
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

    #[test]
    fn an_amount_without_a_currency_names_the_missing_field() {
        let body: UpdatePlanBody = serde_json::from_str(r#"{"amount":900}"#).unwrap();

        let err = body.try_into_domain().unwrap_err();

        assert_eq!(err.code(), "validation_failed");
        assert!(err.detail().starts_with("currency"), "{}", err.detail());
    }

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
}
