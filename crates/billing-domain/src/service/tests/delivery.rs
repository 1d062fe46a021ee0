//! Webhook delivery and replay through the service, with the unit of work mocked.

use super::*;

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
        trial_end: None,
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
            Ok(crate::ports::WorkOutcome::SameSecondTie(
                crate::ids::SubscriptionRef::parse("sub_1").unwrap(),
            ))
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
            Ok(crate::ports::WorkOutcome::Applied(crate::ports::Applied {
                outcome: crate::model::EventOutcome::Processed,
                detail: None,
            }))
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
            Ok(crate::ports::WorkOutcome::SameSecondTie(
                crate::ids::SubscriptionRef::parse("sub_1").unwrap(),
            ))
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
            Ok(crate::ports::WorkOutcome::Applied(crate::ports::Applied {
                outcome: crate::model::EventOutcome::Failed,
                detail: Some("tie".into()),
            }))
        });

    let receipt = m
        .service()
        .receive_webhook(b"{}", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.outcome, crate::model::EventOutcome::Failed);
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
        status: Some("paid".into()),
        hosted_invoice_url: None,
        invoice_pdf_url: None,
        paid_out_of_band: false,
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

fn completed_checkout(customer: &str) -> crate::webhook::PaymentEvent {
    crate::webhook::PaymentEvent::CheckoutCompleted(crate::webhook::CheckoutCompleted {
        session: crate::ids::CheckoutSessionRef::parse("cs_test_1").unwrap(),
        tenant: crate::webhook::TenantHints::default(),
        plan: None,
        customer: Some(crate::ids::CustomerRef::parse(customer).unwrap()),
        subscription: None,
        awaiting_payment: false,
    })
}

fn outcome(outcome: crate::model::EventOutcome) -> crate::ports::WorkOutcome {
    crate::ports::WorkOutcome::Applied(crate::ports::Applied {
        outcome,
        detail: None,
    })
}

fn unmatched_entry(id: &str, payload: &str) -> crate::model::LedgerEntry {
    crate::model::LedgerEntry {
        event_id: EventId::parse(id).unwrap(),
        kind: "payment_intent.succeeded".into(),
        created: at(400),
        api_version: None,
        received_at: at(400),
        processed_at: Some(at(400)),
        outcome: crate::model::EventOutcome::Unmatched,
        detail: Some("no tenant".into()),
        payload: payload.into(),
    }
}

/// The next delivery is a signed `checkout.session.completed` with customer `cus_1`.
fn receiving_checkout(m: &mut Mocks) {
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier
        .expect_parse()
        .returning(|_| Ok(parsed_event("evt_checkout", completed_checkout("cus_1"))));
}

#[tokio::test]
async fn a_completed_checkout_applies_again_the_unmatched_events_of_its_customer() {
    let mut m = Mocks::default();
    m.verifier.expect_verify().returning(|_, _, _| Ok(()));
    m.verifier
        .expect_parse()
        .withf(|body| body == b"checkout")
        .times(1)
        .returning(|_| Ok(parsed_event("evt_checkout", completed_checkout("cus_1"))));
    m.verifier
        .expect_parse()
        .withf(|body| body == b"waiting")
        .times(1)
        .returning(|_| {
            Ok(parsed_event(
                "evt_waiting",
                crate::webhook::PaymentEvent::Ignored,
            ))
        });
    m.ledger
        .expect_unmatched_for_customer()
        .withf(|customer, _| customer.as_str() == "cus_1")
        .times(1)
        .returning(|_, _| Ok(vec![unmatched_entry("evt_waiting", "waiting")]));
    m.webhooks
        .expect_apply()
        .times(2)
        .returning(|_| Ok(outcome(crate::model::EventOutcome::Processed)));

    let receipt = m
        .service()
        .receive_webhook(b"checkout", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.event_id.as_str(), "evt_checkout");
    assert_eq!(receipt.outcome, crate::model::EventOutcome::Processed);
}

#[tokio::test]
async fn a_checkout_redelivered_does_not_look_for_unmatched_events_again() {
    let mut m = Mocks::default();
    receiving_checkout(&mut m);
    m.ledger.expect_unmatched_for_customer().never();
    m.webhooks
        .expect_apply()
        .times(1)
        .returning(|_| Ok(outcome(crate::model::EventOutcome::Duplicate)));

    let receipt = m
        .service()
        .receive_webhook(b"checkout", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.outcome, crate::model::EventOutcome::Duplicate);
}

#[tokio::test]
async fn a_ledger_that_cannot_be_read_after_a_checkout_leaves_the_checkout_applied() {
    let mut m = Mocks::default();
    receiving_checkout(&mut m);
    m.ledger
        .expect_unmatched_for_customer()
        .times(1)
        .returning(|_, _| Err(RepoError::Unavailable("connection refused".into())));
    m.webhooks
        .expect_apply()
        .times(1)
        .returning(|_| Ok(outcome(crate::model::EventOutcome::Processed)));

    let receipt = m
        .service()
        .receive_webhook(b"checkout", Some("t=1,v1=00".into()))
        .await
        .unwrap();

    assert_eq!(receipt.outcome, crate::model::EventOutcome::Processed);
}
