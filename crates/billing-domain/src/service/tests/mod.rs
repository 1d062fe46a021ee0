//! Rules of `BillingService`, with mockall mocks of every port: the mocks and entity
//! builders here, the tests in one file per use case.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::ids::{InvoiceRef, PaymentIntentRef, PlanId, PriceRef};
use crate::model::{
    BillingInterval, InvoiceNumber, InvoiceStatus, PlanCode, SubscriptionStatus, Tenant,
};
use crate::money::{Currency, Money};
use crate::ports::{
    IntentState, MockCheckoutSessionRepository, MockClock, MockHealthCheck, MockInvoiceRepository,
    MockLedgerRepository, MockPaymentProvider, MockPaymentRepository, MockPlanRepository,
    MockSubscriptionRepository, MockTenantRepository, MockWebhookStore, MockWebhookVerifier,
    PaymentIntentInfo, ProviderError, RepoError, SessionEnd,
};
use crate::webhook::ProviderEvent;

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
            ..BillingSettings::default()
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
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        ..crate::testing::tenant(id)
    }
}

fn plan(active: bool, trial: Option<i64>) -> Plan {
    Plan {
        trial_days: trial.map(|d| crate::model::TrialDays::new(d).unwrap()),
        features: crate::model::Features::default(),
        active,
        ..crate::testing::plan()
    }
}

fn subscription(tenant: TenantId, status: SubscriptionStatus) -> Subscription {
    Subscription {
        status,
        ..crate::testing::subscription(tenant, PlanId::new())
    }
}

pub(crate) fn invoice(tenant: TenantId, status: InvoiceStatus, due: i64, paid: i64) -> Invoice {
    Invoice {
        status,
        amount_due: usd(due),
        amount_paid: usd(paid),
        ..crate::testing::invoice(tenant)
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

mod access;
mod checkout;
mod delivery;
mod payment_intent;
mod plans_invoices;
mod portal;
mod scoping;
mod self_service;
