//! The billing portal: a session where a customer manages their subscription.

use billing_domain::ids::CustomerRef;
use billing_domain::ports::ProviderError;

use super::transport::{json, ApiRequest};
use super::StripeClient;
use crate::form::Form;
use crate::wire;

/// `POST /v1/billing_portal/sessions`: the portal's URL for `customer`.
pub(super) async fn create_session(
    client: &StripeClient,
    customer: &CustomerRef,
    return_url: &str,
) -> Result<String, ProviderError> {
    let mut form = Form::new();
    form.push("customer", customer.as_str());
    form.push("return_url", return_url);
    let req = ApiRequest::post(
        "create_portal_session",
        "/v1/billing_portal/sessions",
        form,
        None,
    );
    client
        .call(req, |body| {
            let session: wire::PortalSessionResponse = json(body)?;
            session
                .url
                .filter(|u| !u.is_empty())
                .ok_or_else(|| "portal session without url".to_owned())
        })
        .await
}
