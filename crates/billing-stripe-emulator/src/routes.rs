//! Request execution: API-key check, routing by OpenAPI path template, idempotency. Runs
//! synchronously with the [`Store`] locked, so concurrent requests are serialised.

use bytes::Bytes;
use serde_json::Value;

use crate::api::{self, Call};
use crate::api_billing as billing;
use crate::api_invoices as invoices;
use crate::api_subscriptions as subscriptions;
use crate::error::{ApiError, Reply};
use crate::failure::Failure;
use crate::request::{Params, RecordedRequest};
use crate::store::{IdempotentEntry, Store};

type JsonHandler = fn(&mut Store, &Call<'_>) -> Result<Value, ApiError>;
type RawHandler = fn(&mut Store, &Call<'_>) -> Result<Bytes, ApiError>;

#[derive(Clone, Copy)]
enum Handler {
    Json(JsonHandler),
    Raw(RawHandler),
}

/// One operation of Stripe's API: its method, its path template exactly as in Stripe's
/// OpenAPI description (what `validation::check` takes), and its handler.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub method: &'static str,
    pub openapi: &'static str,
    handler: Handler,
}

macro_rules! routes {
    ($($method:literal $path:literal => $kind:ident($handler:path),)*) => {
        &[$(Route { method: $method, openapi: $path, handler: Handler::$kind($handler) },)*]
    };
}

/// Every operation the emulator serves. Static paths come before templated ones.
pub(crate) const ROUTES: &[Route] = routes! {
    "POST" "/v1/checkout/sessions" => Json(api::create_checkout_session),
    "GET" "/v1/checkout/sessions/{session}" => Json(api::retrieve_checkout_session),
    "POST" "/v1/checkout/sessions/{session}/expire" => Json(api::expire_checkout_session),
    "POST" "/v1/billing_portal/sessions" => Json(api::create_portal_session),
    "POST" "/v1/payment_intents" => Json(api::create_payment_intent),
    "GET" "/v1/payment_intents/{intent}" => Json(api::retrieve_payment_intent),
    "POST" "/v1/payment_intents/{intent}/confirm" => Json(billing::confirm_payment_intent),
    "POST" "/v1/customers" => Json(api::create_customer),
    "GET" "/v1/customers/{customer}" => Json(api::retrieve_customer),
    "POST" "/v1/invoices/create_preview" => Json(subscriptions::preview_invoice),
    "GET" "/v1/invoices" => Json(invoices::list_invoices),
    "GET" "/v1/invoices/{invoice}" => Json(api::retrieve_invoice),
    "POST" "/v1/invoices/{invoice}/void" => Json(invoices::void_invoice),
    "POST" "/v1/invoices/{invoice}/mark_uncollectible" => Json(invoices::mark_uncollectible),
    "POST" "/v1/invoices/{invoice}/pay" => Json(invoices::pay_invoice),
    "GET" "/v1/subscriptions" => Json(subscriptions::list_subscriptions),
    "GET" "/v1/subscriptions/{subscription_exposed_id}" => Json(api::retrieve_subscription),
    "POST" "/v1/subscriptions/{subscription_exposed_id}" => Json(subscriptions::update_subscription),
    "DELETE" "/v1/subscriptions/{subscription_exposed_id}" => Json(subscriptions::cancel_subscription),
    "POST" "/v1/subscriptions/{subscription}/resume" => Json(subscriptions::resume_subscription),
    "GET" "/v1/events" => Json(api::list_events),
    "GET" "/v1/events/{id}" => Raw(api::retrieve_event),
    "POST" "/v1/refunds" => Json(billing::create_refund),
    "GET" "/v1/refunds/{refund}" => Json(billing::retrieve_refund),
    "GET" "/v1/charges/{charge}" => Json(billing::retrieve_charge),
    "GET" "/v1/disputes/{dispute}" => Json(billing::retrieve_dispute),
    "POST" "/v1/products" => Json(billing::create_product),
    "GET" "/v1/products/{id}" => Json(billing::retrieve_product),
    "POST" "/v1/prices" => Json(billing::create_price),
    "GET" "/v1/prices/{price}" => Json(billing::retrieve_price),
    "POST" "/v1/test_helpers/test_clocks" => Json(billing::create_clock),
    "GET" "/v1/test_helpers/test_clocks/{test_clock}" => Json(billing::retrieve_clock),
    "POST" "/v1/test_helpers/test_clocks/{test_clock}/advance" => Json(billing::advance_clock),
};

/// The route for `method` and `path`, with the path's `{...}` segments.
pub(crate) fn route(method: &str, path: &str) -> Option<(&'static Route, Vec<String>)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    ROUTES
        .iter()
        .filter(|r| r.method == method)
        .find_map(|route| {
            let template: Vec<&str> = route.openapi.split('/').filter(|s| !s.is_empty()).collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut args = Vec::new();
            for (t, s) in template.iter().zip(&segments) {
                if t.starts_with('{') {
                    args.push(percent_decode(s));
                } else if t != s {
                    return None;
                }
            }
            Some((route, args))
        })
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| segment.to_owned(), |(_, v)| v.into_owned())
}

/// The parameters Stripe would check against the operation's table: the query for GET and
/// DELETE, the form body for POST.
fn params_of(req: &RecordedRequest, query: &[(String, String)]) -> Vec<(String, String)> {
    if req.method == "POST" {
        req.form.clone()
    } else {
        let mut params = query.to_vec();
        params.extend(req.form.iter().cloned());
        params
    }
}

/// Stripe's parameter validation, before anything executes (a validation error is never
/// stored under an idempotency key): the operation's table, generated from Stripe's
/// OpenAPI description by `scripts/stripe/gen_params.py`, refuses unknown, malformed and
/// missing parameters with Stripe's 400 naming the `param`.
fn validate(route: &Route, params: &[(String, String)]) -> Result<(), ApiError> {
    crate::validation::check(route.method, route.openapi, params)
        .map_err(|e| ApiError::invalid(&e.param, e.code, e.message))
}

/// Executes one request against the store.
pub(crate) fn dispatch(
    store: &mut Store,
    req: &RecordedRequest,
    request_id: &str,
    api_key: Option<&str>,
) -> Reply {
    if let Err(error) = authenticate(req, api_key) {
        return Reply::from(error).with_header("www-authenticate", "Basic realm=\"Stripe\"");
    }
    let Some((route, args)) = route(&req.method, &req.path) else {
        return ApiError::unrecognized_url(&req.method, &req.path).into();
    };
    let query = req.query_pairs();
    let params = params_of(req, &query);
    if let Err(error) = validate(route, &params) {
        return error.into();
    }
    let key = (req.method == "POST")
        .then(|| req.header("idempotency-key").map(str::to_owned))
        .flatten();
    store.request = Some((request_id.to_owned(), key.clone()));
    let call = Call {
        params: Params(&params),
        args: &args,
    };
    let reply = match (route.handler, key) {
        (Handler::Json(handler), Some(key)) => idempotent(store, req, &key, &params, |store| {
            handler(store, &call).into()
        }),
        (Handler::Json(handler), None) => handler(store, &call).into(),
        (Handler::Raw(handler), _) => match handler(store, &call) {
            Ok(body) => Reply::raw(200, body),
            Err(error) => error.into(),
        },
    };
    store.request = None;
    reply
}

/// `Authorization: Bearer sk_test_...` is required (the configured key, when one is); the
/// 401 never repeats the key back.
fn authenticate(req: &RecordedRequest, expected: Option<&str>) -> Result<(), ApiError> {
    let Some(header) = req.header("authorization") else {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = header.strip_prefix("Bearer ");
    let valid = key
        .and_then(|key| key.strip_prefix("sk_test_"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
        && expected.is_none_or(|expected| key == Some(expected));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided. The emulator accepts only its test secret key (sk_test_...).",
        ))
    }
}

/// Runs a POST handler under Stripe's idempotency rules (docs/stripe.md, Idempotency): a key seen before with
/// the same path and parameters replays the stored answer; with different ones it is a 400
/// `idempotency_error`. Only successful executions are stored: validation failures are not.
fn idempotent(
    store: &mut Store,
    req: &RecordedRequest,
    key: &str,
    params: &[(String, String)],
    handler: impl FnOnce(&mut Store) -> Reply,
) -> Reply {
    let fingerprint = Params(params).fingerprint();
    if let Some(entry) = store.idempotency.get(key) {
        if entry.path != req.path || entry.params != fingerprint {
            return ApiError::new(
                400,
                "idempotency_error",
                None,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                ),
            )
            .into();
        }
        return entry
            .reply
            .clone()
            .with_header("idempotent-replayed", "true");
    }
    let reply = handler(store);
    if reply.is_success() {
        store.idempotency.insert(
            key.to_owned(),
            IdempotentEntry {
                path: req.path.clone(),
                params: fingerprint,
                reply: reply.clone(),
            },
        );
    }
    reply
}

/// The answer for an injected [`Failure`] that produces a response.
pub(crate) fn injected(failure: &Failure) -> Option<Reply> {
    let status_error = |status: u16| {
        if status == 429 {
            ApiError::new(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            )
        } else {
            ApiError::new(
                status,
                "api_error",
                None,
                "An unknown error occurred (injected by the Stripe emulator).",
            )
        }
    };
    match failure {
        Failure::Status(status) => Some(status_error(*status).into()),
        Failure::StatusWithShouldRetry(status, retry) => Some(
            Reply::from(status_error(*status))
                .with_header("stripe-should-retry", retry.to_string()),
        ),
        Failure::StripeError {
            status,
            error_type,
            code,
            message,
            param,
        } => Some(
            ApiError {
                status: *status,
                error_type: error_type.clone(),
                code: code.clone(),
                message: message.clone(),
                param: param.clone(),
                extra: None,
            }
            .into(),
        ),
        Failure::Hang(_) | Failure::Reset => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_openapi_templates() {
        let (r, args) = route("POST", "/v1/checkout/sessions/cs_test_1/expire").unwrap();
        assert_eq!(r.openapi, "/v1/checkout/sessions/{session}/expire");
        assert_eq!(args, ["cs_test_1"]);
        let (r, _) = route("POST", "/v1/invoices/create_preview").unwrap();
        assert_eq!(r.openapi, "/v1/invoices/create_preview");
        let (r, args) = route("GET", "/v1/invoices/in_1%2Fx").unwrap();
        assert_eq!(r.openapi, "/v1/invoices/{invoice}");
        assert_eq!(args, ["in_1/x"]);
        assert!(route("PUT", "/v1/customers").is_none());
    }
}
