//! PaymentIntents: creating one for an invoice and reading one back.

use billing_domain::ids::{CustomerRef, PaymentIntentRef};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    ClientSecret, IntentState, PaymentIntentInfo, PaymentIntentRequest, ProviderError,
};

use super::transport::{json, object_path, ApiRequest};
use super::StripeClient;
use crate::form::{Form, FormValue};
use crate::wire;

/// `POST /v1/payment_intents`: a PaymentIntent paying one local invoice.
pub(super) async fn create(
    client: &StripeClient,
    request: &PaymentIntentRequest,
) -> Result<PaymentIntentInfo, ProviderError> {
    let mut form = Form::new();
    form.push("amount", request.amount.minor());
    form.push("currency", request.amount.currency().as_str());
    form.push_opt(
        "customer",
        request.customer.as_ref().map(CustomerRef::as_str),
    );
    form.push(
        "metadata",
        FormValue::map([
            ("invoiceId", request.invoice.to_string()),
            ("tenantId", request.tenant.to_string()),
        ]),
    );
    form.push(
        "automatic_payment_methods",
        FormValue::map([("enabled", true)]),
    );
    let req = ApiRequest::post(
        "create_payment_intent",
        "/v1/payment_intents",
        form,
        Some(request.idempotency_key.clone()),
    );
    client.call(req, intent_info).await
}

/// `GET /v1/payment_intents/{id}`.
pub(super) async fn retrieve(
    client: &StripeClient,
    id: &PaymentIntentRef,
) -> Result<PaymentIntentInfo, ProviderError> {
    let path = object_path("payment_intents", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(
            ApiRequest::get("retrieve_payment_intent", path),
            intent_info,
        )
        .await
}

fn intent_state(status: &str) -> IntentState {
    match status {
        "requires_payment_method" | "requires_confirmation" | "requires_action" => {
            IntentState::AwaitingPayment
        }
        "succeeded" => IntentState::Succeeded,
        "canceled" => IntentState::Canceled,
        // `processing`, `requires_capture` and any status added later: never hand out a
        // second PaymentIntent because of a status we do not know.
        _ => IntentState::Processing,
    }
}

fn intent_info(body: &[u8]) -> Result<PaymentIntentInfo, String> {
    let pi: wire::PaymentIntentResponse = json(body)?;
    let id = PaymentIntentRef::parse(pi.id).map_err(|e| e.to_string())?;
    let client_secret = pi
        .client_secret
        .filter(|s| !s.is_empty())
        .ok_or("payment intent without client_secret")?;
    let currency = Currency::parse(&pi.currency).map_err(|e| e.to_string())?;
    let amount = Money::new(pi.amount, currency).map_err(|e| e.to_string())?;
    Ok(PaymentIntentInfo {
        id,
        client_secret: ClientSecret::new(client_secret),
        state: intent_state(&pi.status),
        amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_intent_statuses_count_as_processing() {
        assert_eq!(
            intent_state("requires_action"),
            IntentState::AwaitingPayment
        );
        assert_eq!(intent_state("requires_capture"), IntentState::Processing);
        assert_eq!(intent_state("something_new"), IntentState::Processing);
        assert_eq!(intent_state("canceled"), IntentState::Canceled);
        assert_eq!(intent_state("succeeded"), IntentState::Succeeded);
    }
}
