//! Rules of `BillingService`, with mockall mocks of every port.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::ids::{InvoiceId, InvoiceRef, PaymentIntentRef, PlanId, PriceRef, SubscriptionId};
use crate::model::{BillingInterval, InvoiceNumber, PlanCode, SubscriptionStatus, TenantStatus};
use crate::money::{Currency, Money};
use crate::ports::{
    MockCheckoutSessionRepository, MockClock, MockHealthCheck, MockInvoiceRepository,
    MockLedgerRepository, MockPaymentProvider, MockPaymentRepository, MockPlanRepository,
    MockSubscriptionRepository, MockTenantRepository, MockWebhookStore, MockWebhookVerifier,
    PaymentIntentInfo, ProviderError,
};

#[derive(Default)]
struct Mocks {
    tenants: MockTenantRepository,
    plans: MockPlanRepository,
    subscriptions: MockSubscriptionRepository,
    invoices: MockInvoiceRepository,
    payments: MockPaymentRepository,
    ledger: MockLedgerRepository,
    health: MockHealthCheck,
    provider: MockPaymentProvider,
    verifier: MockWebhookVerifier,
    webhooks: MockWebhookStore,
    checkout_sessions: MockCheckoutSessionRepository,
    clock: Option<MockClock>,
}

impl Mocks {
    fn service(self) -> BillingService {
        self.service_with(BillingSettings {
            portal_return_url: Some("https://app.example.com/billing".into()),
            allowed_return_hosts: vec!["app.example.com".into()],
            livemode: None,
        })
    }

    fn service_with(self, settings: BillingSettings) -> BillingService {
        BillingService::new(
            Ports {
                tenants: Arc::new(self.tenants),
                plans: Arc::new(self.plans),
                subscriptions: Arc::new(self.subscriptions),
                invoices: Arc::new(self.invoices),
                payments: Arc::new(self.payments),
                ledger: Arc::new(self.ledger),
                health: Arc::new(self.health),
                provider: Arc::new(self.provider),
                verifier: Arc::new(self.verifier),
                webhooks: Arc::new(self.webhooks),
                checkout_sessions: Arc::new(self.checkout_sessions),
                clock: Arc::new(self.clock.unwrap_or_else(|| {
                    let mut clock = MockClock::new();
                    clock.expect_now().returning(|| at(1_000));
                    clock
                })),
            },
            settings,
        )
    }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn tenant_actor(tenant: TenantId) -> Actor {
    Actor {
        subject: "user-1".into(),
        tenant: Some(tenant),
        admin: false,
    }
}

fn admin() -> Actor {
    Actor {
        subject: "ops".into(),
        tenant: None,
        admin: true,
    }
}

fn tenant(id: TenantId, customer: Option<&str>) -> Tenant {
    Tenant {
        id,
        name: String::new(),
        status: TenantStatus::Pending,
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        created_at: at(0),
        updated_at: at(0),
    }
}

fn plan(active: bool, trial: Option<i64>) -> Plan {
    Plan {
        id: PlanId::new(),
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: trial.map(|d| crate::model::TrialDays::new(d).unwrap()),
        active,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn subscription(tenant: TenantId, status: SubscriptionStatus) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        plan_id: PlanId::new(),
        status,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        canceled_at: None,
        subscription_ref: None,
        customer: None,
        last_event_at: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn invoice(tenant: TenantId, status: InvoiceStatus, due: i64, paid: i64) -> Invoice {
    Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant,
        subscription_id: None,
        number: InvoiceNumber::parse("inv-001").unwrap(),
        status,
        amount_due: usd(due),
        amount_paid: usd(paid),
        due_date: None,
        description: None,
        paid_at: None,
        invoice_ref: None,
        payment_intent: None,
        last_event_at: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn intent(id: &str, state: IntentState) -> PaymentIntentInfo {
    PaymentIntentInfo {
        id: PaymentIntentRef::parse(id).unwrap(),
        client_secret: ClientSecret::new(format!("{id}_secret_x")),
        state,
        amount: usd(1000),
    }
}

fn checkout_input(tenant: TenantId, customer: Option<&str>) -> CheckoutInput {
    CheckoutInput {
        tenant,
        plan: PlanKey::parse("plan-pro").unwrap(),
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
    }
}

// ---- scoping -------------------------------------------------------------------------

#[tokio::test]
async fn a_tenant_listing_invoices_without_a_filter_sees_only_its_own() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.invoices
        .expect_list()
        .withf(move |q, _| q.tenant == Some(me))
        .returning(|_, _| {
            Ok(Page {
                items: vec![],
                next: None,
            })
        });

    let page = m
        .service()
        .list_invoices(
            &tenant_actor(me),
            InvoiceQuery::default(),
            PageRequest::default(),
        )
        .await
        .unwrap();

    assert!(page.items.is_empty());
}

#[tokio::test]
async fn a_tenant_asking_for_another_tenants_invoices_is_forbidden() {
    let m = Mocks::default();
    let query = InvoiceQuery {
        tenant: Some(TenantId::new()),
        status: None,
    };

    let err = m
        .service()
        .list_invoices(
            &tenant_actor(TenantId::new()),
            query,
            PageRequest::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn a_token_without_tenant_or_admin_role_cannot_list_payments() {
    let actor = Actor {
        subject: "x".into(),
        tenant: None,
        admin: false,
    };

    let err = Mocks::default()
        .service()
        .list_payments(&actor, PaymentQuery::default(), PageRequest::default())
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::NoTenant));
}

#[tokio::test]
async fn reading_another_tenants_invoice_is_forbidden() {
    let owner = TenantId::new();
    let mut m = Mocks::default();
    let inv = invoice(owner, InvoiceStatus::Open, 1000, 0);
    m.invoices.expect_get().return_once(move |_| Ok(Some(inv)));

    let err = m
        .service()
        .get_invoice(
            &tenant_actor(TenantId::new()),
            &InvoiceKey::parse("inv-001").unwrap(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(t) if t == owner));
}

#[tokio::test]
async fn the_event_ledger_is_for_admins_only() {
    let err = Mocks::default()
        .service()
        .list_events(
            &tenant_actor(TenantId::new()),
            LedgerQuery::default(),
            PageRequest::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn tenants_never_see_inactive_plans_even_when_asking() {
    let mut m = Mocks::default();
    m.plans
        .expect_list()
        .withf(|include_inactive| !include_inactive)
        .returning(|_| Ok(vec![]));

    let plans = m
        .service()
        .list_plans(&tenant_actor(TenantId::new()), true)
        .await
        .unwrap();

    assert!(plans.is_empty());
}

// ---- plans and invoices (admin) -------------------------------------------------------

#[tokio::test]
async fn creating_a_plan_needs_the_admin_role() {
    let new = NewPlan {
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
    };

    let err = Mocks::default()
        .service()
        .create_plan(&tenant_actor(TenantId::new()), new)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn a_duplicate_plan_code_is_reported_with_its_field() {
    let mut m = Mocks::default();
    m.plans
        .expect_create()
        .returning(|_| Err(RepoError::Conflict("code")));
    let new = NewPlan {
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
    };

    let err = m.service().create_plan(&admin(), new).await.unwrap_err();

    assert!(matches!(err, BillingError::PlanExists("code")));
}

#[tokio::test]
async fn an_empty_plan_patch_is_refused_before_touching_the_database() {
    let err = Mocks::default()
        .service()
        .update_plan(
            &admin(),
            &PlanKey::parse("plan-pro").unwrap(),
            PlanPatch::default(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Invalid(_)));
}

#[tokio::test]
async fn an_invoice_for_nothing_is_refused() {
    let new = NewInvoice {
        tenant_id: TenantId::new(),
        number: InvoiceNumber::parse("inv-009").unwrap(),
        amount_due: usd(0),
        due_date: None,
        description: None,
    };

    let err = Mocks::default()
        .service()
        .create_invoice(&admin(), new)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Invalid(_)));
}

#[tokio::test]
async fn a_taken_invoice_number_is_a_conflict() {
    let mut m = Mocks::default();
    m.invoices
        .expect_create()
        .returning(|_| Err(RepoError::Conflict("number")));
    let new = NewInvoice {
        tenant_id: TenantId::new(),
        number: InvoiceNumber::parse("inv-001").unwrap(),
        amount_due: usd(100),
        due_date: None,
        description: None,
    };

    let err = m.service().create_invoice(&admin(), new).await.unwrap_err();

    assert!(matches!(err, BillingError::InvoiceExists));
}

#[tokio::test]
async fn a_database_outage_is_reported_as_unavailable() {
    let mut m = Mocks::default();
    m.health
        .expect_ping()
        .returning(|| Err(RepoError::Unavailable("connection refused".into())));

    let err = m.service().ready().await.unwrap_err();

    assert!(matches!(err, BillingError::Unavailable(_)));
}

// ---- checkout --------------------------------------------------------------------------

#[tokio::test]
async fn checkout_of_an_unknown_plan_is_not_found() {
    let mut m = Mocks::default();
    m.plans.expect_get().returning(|_| Ok(None));
    let me = TenantId::new();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::PlanNotFound(code) if code == "plan-pro"));
}

#[tokio::test]
async fn checkout_of_an_inactive_plan_is_refused() {
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(false, None))));
    let me = TenantId::new();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::PlanInactive(_)));
}

#[tokio::test]
async fn a_tenant_whose_checkout_awaits_a_delayed_payment_cannot_start_a_second_one() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(move |id| Ok(tenant(id, Some("cus_1"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::Incomplete))));
    m.provider.expect_create_checkout_session().never();

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn a_tenant_with_a_live_subscription_is_sent_to_the_portal() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(move |id| Ok(tenant(id, Some("cus_1"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::PastDue))));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn a_customer_of_another_tenant_cannot_be_used_for_checkout() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.tenants
        .expect_find_by_customer()
        .returning(|_| Ok(Some(tenant(TenantId::new(), Some("cus_theirs")))));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, Some("cus_theirs")))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::CustomerOfAnotherTenant));
}

#[tokio::test]
async fn checkout_reuses_the_tenants_known_customer_and_offers_the_plans_trial() {
    let me = TenantId::new();
    let the_plan = plan(true, Some(14));
    let plan_id = the_plan.id;
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .return_once(move |_| Ok(Some(the_plan)));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, Some("cus_known"))));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(move |t| Ok(Some(subscription(t, SubscriptionStatus::Canceled))));
    m.provider
        .expect_create_checkout_session()
        .withf(move |r| {
            r.tenant == me
                && r.plan == plan_id
                && r.price.as_str() == "price_pro"
                && r.customer.as_ref().map(CustomerRef::as_str) == Some("cus_known")
                && r.trial_days.map(crate::model::TrialDays::get) == Some(14)
                && r.idempotency_key.starts_with(&format!("checkout-{me}-"))
        })
        .returning(|_| {
            Ok(CheckoutSession {
                id: crate::ids::CheckoutSessionRef::parse("cs_test_1").unwrap(),
                url: "https://checkout.stripe.com/c/pay/cs_test_1".into(),
            })
        });

    m.checkout_sessions
        .expect_record_open()
        .withf(move |t, s, _| *t == me && s.as_str() == "cs_test_1")
        .times(1)
        .returning(|_, _, _| Ok(Vec::new()));
    m.provider.expect_expire_checkout_session().never();

    let session = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap();

    assert_eq!(session.id.as_str(), "cs_test_1");
}

/// A tenant without subscription whose checkout opens `cs_new` at Stripe.
fn opening_cs_new() -> Mocks {
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.provider.expect_create_checkout_session().returning(|_| {
        Ok(CheckoutSession {
            id: crate::ids::CheckoutSessionRef::parse("cs_new").unwrap(),
            url: "https://checkout.stripe.com/c/pay/cs_new".into(),
        })
    });
    m
}

/// [`opening_cs_new`], with `older` recorded open.
fn second_checkout(me: TenantId, older: &'static [&'static str]) -> Mocks {
    let mut m = opening_cs_new();
    m.checkout_sessions
        .expect_record_open()
        .withf(move |t, s, _| *t == me && s.as_str() == "cs_new")
        .times(1)
        .returning(move |_, _, _| {
            Ok(older
                .iter()
                .map(|s| crate::ids::CheckoutSessionRef::parse(*s).unwrap())
                .collect())
        });
    m
}

fn expires(m: &mut Mocks, session: &'static str, answer: Result<SessionEnd, ProviderError>) {
    let mut answer = Some(answer);
    m.provider
        .expect_expire_checkout_session()
        .withf(move |s| s.as_str() == session)
        .times(1)
        .returning(move |_| answer.take().unwrap());
}

fn closes(m: &mut Mocks, session: &'static str, end: SessionEnd) {
    m.checkout_sessions
        .expect_close()
        .withf(move |s, e, _| s.as_str() == session && *e == end)
        .times(1)
        .returning(|_, _, _| Ok(()));
}

#[tokio::test]
async fn a_new_checkout_expires_the_tenants_older_open_ones_first() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old_1", "cs_old_2"]);
    expires(&mut m, "cs_old_1", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_old_1", SessionEnd::Expired);
    expires(&mut m, "cs_old_2", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_old_2", SessionEnd::Expired);

    let session = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap();

    assert_eq!(session.id.as_str(), "cs_new");
}

#[tokio::test]
async fn an_older_checkout_found_completed_withdraws_the_new_one_and_answers_409() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old"]);
    expires(&mut m, "cs_old", Ok(SessionEnd::Completed));
    closes(&mut m, "cs_old", SessionEnd::Completed);
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_new", SessionEnd::Expired);

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AlreadySubscribed(t) if t == me));
}

#[tokio::test]
async fn when_the_session_cannot_be_recorded_it_is_withdrawn_and_the_outage_answered() {
    let me = TenantId::new();
    let mut m = opening_cs_new();
    m.checkout_sessions
        .expect_record_open()
        .returning(|_, _, _| Err(RepoError::Unavailable("connection refused".into())));
    // Unrecorded, it would escape the next checkout: expired at once.
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    m.checkout_sessions
        .expect_close()
        .returning(|_, _, _| Err(RepoError::Unavailable("connection refused".into())));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn when_an_older_checkout_cannot_be_expired_the_new_one_is_withdrawn_and_stripe_blamed() {
    let me = TenantId::new();
    let mut m = second_checkout(me, &["cs_old"]);
    expires(
        &mut m,
        "cs_old",
        Err(ProviderError::Unavailable("503 after retries".into())),
    );
    expires(&mut m, "cs_new", Ok(SessionEnd::Expired));
    closes(&mut m, "cs_new", SessionEnd::Expired);

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(
        matches!(err, BillingError::ProviderUnavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn checkout_for_another_tenant_is_forbidden_before_any_lookup() {
    let err = Mocks::default()
        .service()
        .start_checkout(
            &tenant_actor(TenantId::new()),
            checkout_input(TenantId::new(), None),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn stripe_being_down_surfaces_as_provider_unavailable() {
    let me = TenantId::new();
    let mut m = Mocks::default();
    m.plans
        .expect_get()
        .returning(|_| Ok(Some(plan(true, None))));
    m.tenants
        .expect_ensure()
        .returning(|id| Ok(tenant(id, None)));
    m.subscriptions
        .expect_current_for_tenant()
        .returning(|_| Ok(None));
    m.provider
        .expect_create_checkout_session()
        .returning(|_| Err(ProviderError::Unavailable("503 after retries".into())));

    let err = m
        .service()
        .start_checkout(&tenant_actor(me), checkout_input(me, None))
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::ProviderUnavailable(_)));
}

// ---- portal ----------------------------------------------------------------------------

fn portal_mocks(owner: TenantId) -> Mocks {
    let mut m = Mocks::default();
    m.tenants
        .expect_find_by_customer()
        .returning(move |_| Ok(Some(tenant(owner, Some("cus_1")))));
    m
}

#[tokio::test]
async fn the_portal_refuses_return_urls_off_the_allowed_hosts() {
    let me = TenantId::new();
    let customer = CustomerRef::parse("cus_1").unwrap();

    for bad in [
        "https://evil.example.net/x",
        "https://app.example.com@evil.example.net/",
        "javascript:alert(1)",
        "/relative/path",
        "ftp://app.example.com/",
    ] {
        let err = portal_mocks(me)
            .service()
            .open_portal(&tenant_actor(me), &customer, Some(bad.into()))
            .await
            .unwrap_err();
        assert!(matches!(err, BillingError::InvalidReturnUrl(_)), "{bad}");
    }
}

#[tokio::test]
async fn the_portal_defaults_to_the_configured_return_url() {
    let me = TenantId::new();
    let mut m = portal_mocks(me);
    m.provider
        .expect_create_portal_session()
        .withf(|c, url| c.as_str() == "cus_1" && url == "https://app.example.com/billing")
        .returning(|_, _| Ok("https://billing.stripe.com/p/session/x".into()));

    let url = m
        .service()
        .open_portal(
            &tenant_actor(me),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap();

    assert_eq!(url, "https://billing.stripe.com/p/session/x");
}

#[tokio::test]
async fn another_tenants_customer_gets_no_portal() {
    let err = portal_mocks(TenantId::new())
        .service()
        .open_portal(
            &tenant_actor(TenantId::new()),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::Forbidden(_)));
}

#[tokio::test]
async fn an_unknown_customer_gets_no_portal() {
    let mut m = Mocks::default();
    m.tenants.expect_find_by_customer().returning(|_| Ok(None));

    let err = m
        .service()
        .open_portal(&admin(), &CustomerRef::parse("cus_x").unwrap(), None)
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::CustomerNotFound(_)));
}

#[tokio::test]
async fn without_a_configured_default_the_return_url_is_required() {
    let me = TenantId::new();

    let err = portal_mocks(me)
        .service_with(BillingSettings::default())
        .open_portal(
            &tenant_actor(me),
            &CustomerRef::parse("cus_1").unwrap(),
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::ReturnUrlRequired));
}

// ---- payment intents -------------------------------------------------------------------

fn with_invoice(inv: Invoice) -> Mocks {
    let mut m = Mocks::default();
    m.invoices.expect_get().return_once(move |_| Ok(Some(inv)));
    m
}

async fn pay(m: Mocks, tenant: TenantId) -> Result<ClientSecret, BillingError> {
    m.service()
        .invoice_payment_intent(
            &tenant_actor(tenant),
            &InvoiceKey::parse("inv-001").unwrap(),
        )
        .await
}

#[tokio::test]
async fn paid_void_and_uncollectible_invoices_cannot_be_paid_again() {
    let me = TenantId::new();
    for status in [
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
        InvoiceStatus::Uncollectible,
        InvoiceStatus::Draft,
    ] {
        let err = pay(with_invoice(invoice(me, status, 1000, 0)), me)
            .await
            .unwrap_err();
        assert!(matches!(err, BillingError::InvoiceNotPayable(s) if s == status));
    }
}

#[tokio::test]
async fn an_invoice_with_nothing_left_to_pay_gets_no_intent() {
    let me = TenantId::new();

    let err = pay(
        with_invoice(invoice(me, InvoiceStatus::Open, 1000, 1000)),
        me,
    )
    .await
    .unwrap_err();

    assert!(matches!(err, BillingError::NothingToPay));
}

#[tokio::test]
async fn an_existing_usable_intent_is_handed_out_again_without_creating_one() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_1").unwrap());
    let mut m = with_invoice(inv);
    m.provider
        .expect_payment_intent()
        .returning(|_| Ok(intent("pi_1", IntentState::AwaitingPayment)));
    m.provider.expect_create_payment_intent().never();

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_1_secret_x");
}

#[tokio::test]
async fn a_stripe_invoice_is_paid_through_the_intent_stripe_made() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.invoice_ref = Some(InvoiceRef::parse("in_1").unwrap());
    let id = inv.id;
    let mut m = with_invoice(inv);
    // A browser waits for this one: the client's own deadline, no budget.
    m.provider
        .expect_invoice_payment_intent()
        .withf(|_, budget| budget.is_none())
        .returning(|_, _| Ok(Some(PaymentIntentRef::parse("pi_stripe").unwrap())));
    m.provider
        .expect_payment_intent()
        .returning(|_| Ok(intent("pi_stripe", IntentState::AwaitingPayment)));
    m.invoices
        .expect_attach_payment_intent()
        .withf(move |i, pi, replace| *i == id && pi.as_str() == "pi_stripe" && replace.is_none())
        .times(1)
        .returning(|_, _, _| Ok(None));
    m.provider.expect_create_payment_intent().never();

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_stripe_secret_x");
}

#[tokio::test]
async fn a_stripe_invoice_without_a_stripe_intent_is_not_charged_outside_stripe() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.invoice_ref = Some(InvoiceRef::parse("in_1").unwrap());
    let mut m = with_invoice(inv);
    m.provider
        .expect_invoice_payment_intent()
        .returning(|_, _| Ok(None));
    m.provider.expect_create_payment_intent().never();

    let err = pay(m, me).await.unwrap_err();

    assert!(matches!(err, BillingError::InvoicePaymentPending));
}

#[tokio::test]
async fn a_new_intent_asks_for_what_is_left_with_a_deterministic_key() {
    let me = TenantId::new();
    let inv = invoice(me, InvoiceStatus::Overdue, 1000, 250);
    let id = inv.id;
    let stored = Invoice {
        payment_intent: Some(PaymentIntentRef::parse("pi_new").unwrap()),
        ..inv.clone()
    };
    let mut m = with_invoice(inv);
    m.tenants
        .expect_get()
        .returning(|id| Ok(Some(tenant(id, Some("cus_9")))));
    m.provider
        .expect_create_payment_intent()
        .withf(move |r| {
            r.invoice == id
                && r.tenant == me
                && r.amount == usd(750)
                && r.customer.as_ref().map(CustomerRef::as_str) == Some("cus_9")
                && r.idempotency_key == format!("invoice-{id}-pi-750usd-after-none")
        })
        .times(1)
        .returning(|_| Ok(intent("pi_new", IntentState::AwaitingPayment)));
    m.invoices
        .expect_attach_payment_intent()
        .return_once(move |_, _, _| Ok(Some(stored)));

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_new_secret_x");
}

#[tokio::test]
async fn a_canceled_intent_is_replaced_and_the_key_names_what_it_replaces() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_old").unwrap());
    let mut m = with_invoice(inv.clone());
    m.provider
        .expect_payment_intent()
        .returning(|_| Ok(intent("pi_old", IntentState::Canceled)));
    m.tenants.expect_get().returning(|_| Ok(None));
    m.provider
        .expect_create_payment_intent()
        .withf(|r| r.idempotency_key.ends_with("-after-pi_old") && r.customer.is_none())
        .returning(|_| Ok(intent("pi_new", IntentState::AwaitingPayment)));
    m.invoices
        .expect_attach_payment_intent()
        .withf(|_, pi, replace| {
            pi.as_str() == "pi_new"
                && replace.as_ref().map(PaymentIntentRef::as_str) == Some("pi_old")
        })
        .return_once(move |_, pi, _| {
            Ok(Some(Invoice {
                payment_intent: Some(pi.clone()),
                ..inv
            }))
        });

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_new_secret_x");
}

#[tokio::test]
async fn when_another_caller_attached_a_different_intent_theirs_is_returned() {
    let me = TenantId::new();
    let inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    let stored = Invoice {
        payment_intent: Some(PaymentIntentRef::parse("pi_theirs").unwrap()),
        ..inv.clone()
    };
    let mut m = with_invoice(inv);
    m.tenants.expect_get().returning(|_| Ok(None));
    m.provider
        .expect_create_payment_intent()
        .returning(|_| Ok(intent("pi_mine", IntentState::AwaitingPayment)));
    m.invoices
        .expect_attach_payment_intent()
        .return_once(move |_, _, _| Ok(Some(stored)));
    m.provider
        .expect_payment_intent()
        .withf(|id| id.as_str() == "pi_theirs")
        .returning(|_| Ok(intent("pi_theirs", IntentState::AwaitingPayment)));

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_theirs_secret_x");
}

#[tokio::test]
async fn an_intent_that_already_succeeded_means_the_invoice_is_paid() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_1").unwrap());
    let mut m = with_invoice(inv);
    m.provider
        .expect_payment_intent()
        .returning(|_| Ok(intent("pi_1", IntentState::Succeeded)));
    m.provider.expect_create_payment_intent().never();

    let err = pay(m, me).await.unwrap_err();

    assert!(matches!(
        err,
        BillingError::InvoiceNotPayable(InvoiceStatus::Paid)
    ));
}

// ---- webhook delivery ------------------------------------------------------------------

fn parsed_event(id: &str, event: crate::webhook::PaymentEvent) -> ProviderEvent {
    ProviderEvent {
        id: EventId::parse(id).unwrap(),
        kind: "customer.subscription.updated".into(),
        created: at(500),
        api_version: None,
        livemode: false,
        event,
    }
}

fn snapshot(status: SubscriptionStatus) -> crate::webhook::SubscriptionSnapshot {
    crate::webhook::SubscriptionSnapshot {
        subscription: crate::ids::SubscriptionRef::parse("sub_1").unwrap(),
        customer: None,
        tenant: crate::webhook::TenantHints::default(),
        status: Some(status),
        status_raw: status.as_str().into(),
        price: None,
        plan: None,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        canceled_at: None,
        ended_at: None,
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_before_anything_is_stored() {
    let mut m = Mocks::default();
    m.verifier
        .expect_verify()
        .returning(|_, _, _| Err(crate::webhook::SignatureError::Mismatch));
    m.webhooks.expect_apply().never();

    let err = m
        .service()
        .receive_webhook(b"{}", Some("t=1,v1=00".into()))
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        WebhookError::Signature(crate::webhook::SignatureError::Mismatch)
    ));
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_is_invalid_payload() {
    let mut m = Mocks::default();
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier
        .expect_parse()
        .returning(|_| Err(crate::webhook::InvalidPayload("expected value".into())));
    m.webhooks.expect_apply().never();

    let err = m
        .service()
        .receive_webhook(b"not json", Some("t=1,v1=00".into()))
        .await
        .unwrap_err();

    assert!(matches!(err, WebhookError::InvalidPayload(_)));
}

#[tokio::test]
async fn a_database_outage_during_a_delivery_asks_stripe_to_retry() {
    let mut m = Mocks::default();
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier
        .expect_parse()
        .returning(|_| Ok(parsed_event("evt_1", crate::webhook::PaymentEvent::Ignored)));
    m.webhooks
        .expect_apply()
        .returning(|_| Err(RepoError::Unavailable("connection refused".into())));

    let err = m
        .service()
        .receive_webhook(b"{}", Some("t=1,v1=00".into()))
        .await
        .unwrap_err();

    assert!(matches!(err, WebhookError::Unavailable(_)));
}

#[tokio::test]
async fn a_same_second_tie_is_settled_with_the_subscription_stripe_has_now() {
    let mut m = Mocks::default();
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier.expect_parse().returning(|_| {
        Ok(parsed_event(
            "evt_1",
            crate::webhook::PaymentEvent::SubscriptionUpdated(snapshot(SubscriptionStatus::Active)),
        ))
    });
    let mut seq = mockall::Sequence::new();
    m.webhooks
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Err(RepoError::Unexpected(Box::new(super::SameSecondTie(
                crate::ids::SubscriptionRef::parse("sub_1").unwrap(),
            ))))
        });
    m.provider
        .expect_subscription()
        .withf(|s| s.as_str() == "sub_1")
        .times(1)
        .returning(|_| Ok(snapshot(SubscriptionStatus::PastDue)));
    m.webhooks
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(crate::ports::Applied {
                outcome: crate::model::EventOutcome::Processed,
                detail: None,
            })
        });

    let receipt = m
        .service()
        .receive_webhook(b"{}", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.outcome, crate::model::EventOutcome::Processed);
    assert_eq!(receipt.event_id.as_str(), "evt_1");
}

#[tokio::test]
async fn replaying_events_is_for_admins_only() {
    let err = Mocks::default()
        .service()
        .replay_event(
            &tenant_actor(TenantId::new()),
            &EventId::parse("evt_1").unwrap(),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::AdminOnly));
}

#[tokio::test]
async fn replaying_an_event_stripe_does_not_know_is_not_found() {
    let mut m = Mocks::default();
    m.provider.expect_fetch_event().returning(|_| {
        Err(ProviderError::Refused {
            code: Some("resource_missing".into()),
            param: None,
            message: "No such event".into(),
            not_found: true,
        })
    });

    let err = m
        .service()
        .replay_event(&admin(), &EventId::parse("evt_404").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, BillingError::EventNotFound(id) if id == "evt_404"));
}

#[tokio::test]
async fn a_tie_on_a_subscription_stripe_no_longer_knows_is_recorded_not_retried_forever() {
    let mut m = Mocks::default();
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier.expect_parse().returning(|_| {
        Ok(parsed_event(
            "evt_1",
            crate::webhook::PaymentEvent::SubscriptionUpdated(snapshot(SubscriptionStatus::Active)),
        ))
    });
    let mut seq = mockall::Sequence::new();
    m.webhooks
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Err(RepoError::Unexpected(Box::new(super::SameSecondTie(
                crate::ids::SubscriptionRef::parse("sub_1").unwrap(),
            ))))
        });
    m.provider.expect_subscription().returning(|_| {
        Err(ProviderError::Refused {
            code: Some("resource_missing".into()),
            param: Some("id".into()),
            message: "No such subscription".into(),
            not_found: true,
        })
    });
    m.webhooks
        .expect_apply()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(crate::ports::Applied {
                outcome: crate::model::EventOutcome::Failed,
                detail: Some("tie".into()),
            })
        });

    let receipt = m
        .service()
        .receive_webhook(b"{}", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.outcome, crate::model::EventOutcome::Failed);
}

#[tokio::test]
async fn a_stripe_invoice_whose_stripe_intent_was_canceled_gets_no_intent_of_ours() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Overdue, 1000, 0);
    inv.invoice_ref = Some(InvoiceRef::parse("in_1").unwrap());
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_stripe").unwrap());
    let mut m = with_invoice(inv);
    m.provider
        .expect_payment_intent()
        .returning(|_| Ok(intent("pi_stripe", IntentState::Canceled)));
    m.provider.expect_create_payment_intent().never();

    let err = pay(m, me).await.unwrap_err();

    assert!(matches!(err, BillingError::InvoicePaymentPending));
}

fn paid_invoice_without_intent() -> crate::webhook::PaymentEvent {
    crate::webhook::PaymentEvent::InvoicePaid(crate::webhook::InvoiceSnapshot {
        invoice: crate::ids::InvoiceRef::parse("in_1").unwrap(),
        number: Some("ABC-0001".into()),
        tenant: crate::webhook::TenantHints::default(),
        local_invoice: None,
        subscription: None,
        amount_due: 2000,
        amount_paid: 2000,
        currency: "usd".into(),
        paid_at: None,
        attempt_count: 1,
        payment_intent: None,
        due_date: None,
        created: None,
    })
}

/// Delivers the test-mode paid invoice of [`paid_invoice_without_intent`] to a service
/// whose key has the mode `live`.
async fn deliver_to_mode(mut m: Mocks, live: bool) -> WebhookReceipt {
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier
        .expect_parse()
        .returning(|_| Ok(parsed_event("evt_test_mode", paid_invoice_without_intent())));
    m.service_with(BillingSettings {
        livemode: Some(live),
        ..BillingSettings::default()
    })
    .receive_webhook(b"{}", Some("t=1,v1=00".into()))
    .await
    .unwrap()
}

#[tokio::test]
async fn an_event_of_the_other_mode_is_recorded_as_failed_for_a_replay_and_changes_nothing() {
    let mut m = Mocks::default();
    // No look at Stripe for it either.
    m.provider.expect_invoice_payment_intent().never();
    m.webhooks.expect_apply().times(1).returning(|work| {
        // A strict mock: any effect (a tenant, an invoice) would be an unexpected call.
        let mut tx = crate::ports::MockWebhookTx::new();
        tx.expect_insert_event()
            .withf(|e| e.outcome == crate::model::EventOutcome::Failed && !e.livemode)
            .times(1)
            .returning(|_| Ok(true));
        tx.expect_set_event_outcome()
            .withf(|_, applied, _| {
                applied.outcome == crate::model::EventOutcome::Failed
                    && applied.detail.as_deref().is_some_and(|d| {
                        d.starts_with(
                            "a test-mode event reached a live-mode service; nothing applied",
                        )
                    })
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        work(&mut tx)
    });

    let receipt = deliver_to_mode(m, true).await;

    // `failed`, so that a replay applies it once the configuration is fixed.
    assert_eq!(receipt.outcome, crate::model::EventOutcome::Failed);
}

#[tokio::test]
async fn an_event_of_the_services_own_mode_is_applied() {
    let mut m = Mocks::default();
    // Stripe is not asked while the delivery waits (the linker looks the PaymentIntent
    // up later).
    m.provider.expect_invoice_payment_intent().never();
    m.webhooks.expect_apply().times(1).returning(|work| {
        let mut tx = crate::ports::MockWebhookTx::new();
        tx.expect_insert_event()
            .withf(|e| e.outcome == crate::model::EventOutcome::Processed)
            .times(1)
            .returning(|_| Ok(true));
        // The rules run: they look for the invoice.
        tx.expect_lock_invoice_by_ref()
            .times(1)
            .returning(|_| Ok(None));
        tx.expect_set_event_outcome().returning(|_, _, _| Ok(()));
        work(&mut tx)
    });

    let receipt = deliver_to_mode(m, false).await;

    // No tenant hint: the invoice cannot be mirrored, but it was looked at.
    assert_eq!(receipt.outcome, crate::model::EventOutcome::Unmatched);
}
