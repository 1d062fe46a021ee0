//! The one PaymentIntent collecting an invoice.

use super::*;

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

#[tokio::test]
async fn an_intent_stripe_reported_canceled_is_replaced_without_asking_stripe_about_it() {
    let me = TenantId::new();
    let mut inv = invoice(me, InvoiceStatus::Open, 1000, 0);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_old").unwrap());
    inv.payment_intent_canceled = true;
    let id = inv.id;
    let stored = Invoice {
        payment_intent: Some(PaymentIntentRef::parse("pi_new").unwrap()),
        payment_intent_canceled: false,
        ..inv.clone()
    };
    let mut m = with_invoice(inv);
    // `payment_intent.canceled` said so: the canceled one is not read, nor handed out.
    m.provider.expect_payment_intent().never();
    m.tenants
        .expect_get()
        .returning(|id| Ok(Some(tenant(id, None))));
    m.provider
        .expect_create_payment_intent()
        .withf(move |r| r.idempotency_key == format!("invoice-{id}-pi-1000usd-after-pi_old"))
        .times(1)
        .returning(|_| {
            Ok(PaymentIntentInfo {
                id: PaymentIntentRef::parse("pi_new").unwrap(),
                client_secret: ClientSecret::new("pi_new_secret_x".into()),
                state: IntentState::AwaitingPayment,
                amount: usd(1000),
            })
        });
    m.invoices
        .expect_attach_payment_intent()
        .withf(|_, pi, replace| {
            pi.as_str() == "pi_new"
                && replace.as_ref().map(PaymentIntentRef::as_str) == Some("pi_old")
        })
        .times(1)
        .return_once(move |_, _, _| Ok(Some(stored)));

    let secret = pay(m, me).await.unwrap();

    assert_eq!(secret.expose(), "pi_new_secret_x");
}
