//! Checkout Sessions: creating one for a subscription, and expiring one nobody will
//! complete (reading back how it ended when Stripe refuses).

use billing_domain::ids::{CheckoutSessionRef, CustomerRef};
use billing_domain::ports::{CheckoutRequest, CheckoutSession, ProviderError, SessionEnd};

use super::transport::{json, object_path, ApiRequest};
use super::StripeClient;
use crate::form::{Form, FormValue};
use crate::wire;

/// The template Stripe replaces with the session id in a Checkout `success_url`.
pub const CHECKOUT_SESSION_ID_TEMPLATE: &str = "{CHECKOUT_SESSION_ID}";

/// `POST /v1/checkout/sessions`: a subscription Checkout Session for one tenant and plan.
pub(super) async fn create_session(
    client: &StripeClient,
    request: &CheckoutRequest,
) -> Result<CheckoutSession, ProviderError> {
    let tenant = request.tenant.to_string();
    let plan = request.plan.to_string();
    let ids = || {
        FormValue::map([
            ("tenantId", FormValue::from(tenant.as_str())),
            ("planId", FormValue::from(plan.as_str())),
        ])
    };
    let mut subscription_data = vec![("metadata".to_owned(), ids())];
    if let Some(days) = request.trial_days {
        subscription_data.push((
            "trial_period_days".to_owned(),
            FormValue::Int(i64::from(days.get())),
        ));
    }
    let mut form = Form::new();
    form.push("mode", "subscription");
    form.push(
        "line_items",
        FormValue::List(vec![FormValue::map([
            ("price", FormValue::from(request.price.as_str())),
            ("quantity", FormValue::Int(1)),
        ])]),
    );
    form.push("client_reference_id", tenant.as_str());
    form.push_opt(
        "customer",
        request.customer.as_ref().map(CustomerRef::as_str),
    );
    form.push("metadata", ids());
    form.push("subscription_data", FormValue::Map(subscription_data));
    form.push("success_url", client.success_url.as_str());
    form.push("cancel_url", client.config.checkout_cancel_url.as_str());
    let req = ApiRequest::post(
        "create_checkout_session",
        "/v1/checkout/sessions",
        form,
        Some(request.idempotency_key.clone()),
    );
    client
        .call(req, |body| {
            let session: wire::CheckoutSessionResponse = json(body)?;
            let url = session
                .url
                .filter(|u| !u.is_empty())
                .ok_or("checkout session without url")?;
            Ok(CheckoutSession {
                id: CheckoutSessionRef::parse(session.id).map_err(|e| e.to_string())?,
                url,
            })
        })
        .await
}

/// `POST /v1/checkout/sessions/{id}/expire`, or how the session ended if it was not open.
pub(super) async fn expire_session(
    client: &StripeClient,
    session: &CheckoutSessionRef,
) -> Result<SessionEnd, ProviderError> {
    let path = object_path("checkout/sessions", session.as_str()).map_err(ProviderError::from)?;
    // No key of our own: `send` gives the call one, kept across its retries only.
    // Stripe replays a stored answer for a key for a day, a 500 included, so a key per
    // session would replay one failure to every later checkout of the tenant. Expiring
    // twice is harmless anyway (the second is refused and the session read back).
    let req = ApiRequest::post(
        "expire_checkout_session",
        &format!("{path}/expire"),
        Form::new(),
        None,
    );
    let expired = client
        .call(req, |body| {
            let session: wire::CheckoutSessionStatus = json(body)?;
            session_end(session.status.as_deref())
                .ok_or_else(|| "expired checkout session neither expired nor complete".to_owned())
        })
        .await;
    match expired {
        Ok(end) => Ok(end),
        Err(e) if is_not_found(&e) => Ok(SessionEnd::Expired),
        // Only open sessions can be expired (400): ask Stripe how this one ended.
        Err(ProviderError::Refused { .. }) => checkout_session_end(client, path).await,
        Err(e) => Err(e),
    }
}

/// Reads how a Checkout Session ended after Stripe refused to expire it (it was not
/// open): `complete` or `expired`; a session Stripe no longer knows counts as expired.
async fn checkout_session_end(
    client: &StripeClient,
    path: String,
) -> Result<SessionEnd, ProviderError> {
    let read = client
        .call(ApiRequest::get("retrieve_checkout_session", path), |body| {
            json::<wire::CheckoutSessionStatus>(body)
        })
        .await;
    match read {
        Ok(session) => session_end(session.status.as_deref()).ok_or_else(|| {
            ProviderError::Unexpected(
                "Stripe refused to expire a checkout session that is not complete or expired"
                    .into(),
            )
        }),
        Err(e) if is_not_found(&e) => Ok(SessionEnd::Expired),
        // Refusing a read we made on our own is no fault of the caller's request.
        Err(ProviderError::Refused { .. }) => Err(ProviderError::Unexpected(
            "Stripe refused to read back a checkout session it would not expire".into(),
        )),
        Err(e) => Err(e),
    }
}

/// How a Checkout Session that nobody can complete any more ended, from its `status`;
/// `None` while it is still open (or for a status we do not know).
fn session_end(status: Option<&str>) -> Option<SessionEnd> {
    match status {
        Some("expired") => Some(SessionEnd::Expired),
        Some("complete") => Some(SessionEnd::Completed),
        _ => None,
    }
}

/// Whether Stripe answered that the object named does not exist (404 or
/// `resource_missing`).
fn is_not_found(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Refused {
            not_found: true,
            ..
        }
    )
}

/// Adds `session_id={CHECKOUT_SESSION_ID}` to a success URL that lacks the template.
pub(super) fn with_session_template(url: &str) -> String {
    if url.contains(CHECKOUT_SESSION_ID_TEMPLATE) {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut out = format!("{base}{sep}session_id={CHECKOUT_SESSION_ID_TEMPLATE}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_url_without_the_template_gets_it_as_a_query_parameter() {
        assert_eq!(
            with_session_template("https://a.example/ok"),
            "https://a.example/ok?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            with_session_template("https://a.example/ok?x=1#top"),
            "https://a.example/ok?x=1&session_id={CHECKOUT_SESSION_ID}#top"
        );
        assert_eq!(
            with_session_template("https://a.example/ok?s={CHECKOUT_SESSION_ID}"),
            "https://a.example/ok?s={CHECKOUT_SESSION_ID}"
        );
    }
}
