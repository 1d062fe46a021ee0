//! The Customer Portal: a session for the tenant owning the customer, returning to an
//! allowed URL.

use tracing::instrument;
use url::Url;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::CustomerRef;

impl BillingService {
    #[instrument(skip_all, fields(stripe.customer = %customer))]
    pub(super) async fn open_portal(
        &self,
        actor: &Actor,
        customer: &CustomerRef,
        return_url: Option<String>,
    ) -> Result<String, BillingError> {
        let owner = self.ports.tenants.find_by_customer(customer).await?;
        let owner = match owner {
            Some(t) if actor.may_act_for(t.id) => t,
            Some(t) => return Err(BillingError::Forbidden(t.id)),
            None => return Err(BillingError::CustomerNotFound(customer.to_string())),
        };
        let return_url = match return_url {
            Some(url) => {
                self.check_return_url(&url)?;
                url
            }
            None => self
                .settings
                .portal_return_url
                .clone()
                .ok_or(BillingError::ReturnUrlRequired)?,
        };
        tracing::debug!(tenant.id = %owner.id, "opening customer portal");
        Ok(self
            .ports
            .provider
            .create_portal_session(customer, &return_url)
            .await?)
    }

    fn check_return_url(&self, raw: &str) -> Result<(), BillingError> {
        let url =
            Url::parse(raw).map_err(|_| BillingError::InvalidReturnUrl("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BillingError::InvalidReturnUrl(
                "scheme must be http or https",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BillingError::InvalidReturnUrl(
                "credentials are not allowed",
            ));
        }
        let host = url
            .host_str()
            .ok_or(BillingError::InvalidReturnUrl("no host"))?
            .to_ascii_lowercase();
        if self.settings.allowed_return_hosts.contains(&host) {
            Ok(())
        } else {
            Err(BillingError::InvalidReturnUrl("host is not allowed"))
        }
    }
}
