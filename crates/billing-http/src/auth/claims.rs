//! Which claims a token is checked against and where the tenant and roles are read
//! (docs/contract.md, Operating it: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_TENANT_CLAIM`, `JWT_ROLES_CLAIM`).

use billing_domain::{Actor, TenantId};
use serde_json::Value;

use super::{AuthError, ADMIN_ROLE};

/// The default claim holding the caller's tenant.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";
/// The default claim holding the caller's roles.
pub const DEFAULT_ROLES_CLAIM: &str = "roles";

/// What a token must say beyond its signature and times, and where its tenant and roles
/// are. The default checks no issuer or audience and reads `tenant_id` and `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `iss` must equal this when set (and be present).
    pub issuer: Option<String>,
    /// `aud` must be or contain this when set (and be present).
    pub audience: Option<String>,
    /// The claim holding the tenant id (a UUID string): a top-level name, or a dotted
    /// path into nested objects.
    pub tenant_claim: String,
    /// The claim holding the roles (an array of strings): a top-level name, or a dotted
    /// path such as `realm_access.roles`.
    pub roles_claim: String,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            tenant_claim: DEFAULT_TENANT_CLAIM.to_owned(),
            roles_claim: DEFAULT_ROLES_CLAIM.to_owned(),
        }
    }
}

/// The claim `name` of `claims`: the top-level member of that exact name when there is one
/// (so Auth0's namespaced claims such as `https://billing.example.com/roles` are read
/// whole, dots and all), otherwise the dotted path walked through nested objects. `null`
/// counts as absent.
#[must_use]
pub fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    let top = claims.as_object()?;
    let found = match top.get(name) {
        Some(v) => Some(v),
        None if name.contains('.') => name
            .split('.')
            .try_fold(claims, |at, part| at.as_object()?.get(part)),
        None => None,
    };
    found.filter(|v| !v.is_null())
}

impl TokenPolicy {
    /// The caller a verified token's claims name.
    ///
    /// # Errors
    /// [`AuthError::MissingClaim`] without a non-empty `sub`, [`AuthError::InvalidTenant`]
    /// when the tenant claim is not a UUID string, [`AuthError::Malformed`] when the roles
    /// claim is not an array of strings.
    pub(crate) fn actor(&self, claims: &Value) -> Result<Actor, AuthError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::MissingClaim("sub"))?
            .to_owned();
        let tenant = claim(claims, &self.tenant_claim)
            .map(|t| {
                t.as_str()
                    .and_then(|t| TenantId::parse(t).ok())
                    .ok_or_else(|| AuthError::InvalidTenant(self.tenant_claim.clone()))
            })
            .transpose()?;
        let admin = match claim(claims, &self.roles_claim) {
            None => false,
            Some(Value::Array(roles)) => {
                let mut admin = false;
                for role in roles {
                    let role = role.as_str().ok_or(AuthError::Malformed)?;
                    admin |= role == ADMIN_ROLE;
                }
                admin
            }
            Some(_) => return Err(AuthError::Malformed),
        };
        Ok(Actor {
            subject,
            tenant,
            admin,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_dotted_path_reaches_a_nested_claim_and_an_exact_name_wins() {
        let claims = json!({
            "realm_access": {"roles": ["billing:admin"]},
            "https://billing.example.com/roles": ["viewer"],
            "flat": 1,
        });

        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&json!(["billing:admin"]))
        );
        assert_eq!(
            claim(&claims, "https://billing.example.com/roles"),
            Some(&json!(["viewer"]))
        );
        assert_eq!(claim(&claims, "flat.deeper"), None);
        assert_eq!(claim(&claims, "realm_access.missing"), None);
    }

    #[test]
    fn the_configured_claims_make_the_actor() {
        let tenant = TenantId::new();
        let policy = TokenPolicy {
            tenant_claim: "org.id".into(),
            roles_claim: "resource_access.billing.roles".into(),
            ..TokenPolicy::default()
        };
        let claims = json!({
            "sub": "u-1",
            "org": {"id": tenant.to_string()},
            "resource_access": {"billing": {"roles": ["billing:admin", "x"]}},
            // The defaults are not read once other claims are configured.
            "roles": [],
        });

        let actor = policy.actor(&claims).unwrap();

        assert_eq!(actor.subject, "u-1");
        assert_eq!(actor.tenant, Some(tenant));
        assert!(actor.admin);
    }

    #[test]
    fn a_tenant_that_is_not_a_uuid_string_is_named_in_the_error() {
        let policy = TokenPolicy::default();

        let err = policy
            .actor(&json!({"sub": "u", "tenant_id": 7}))
            .unwrap_err();

        assert_eq!(err, AuthError::InvalidTenant("tenant_id".into()));
        assert!(err.to_string().contains("tenant_id"), "{err}");
    }

    #[test]
    fn roles_must_be_strings() {
        let policy = TokenPolicy::default();

        assert_eq!(
            policy.actor(&json!({"sub": "u", "roles": [1]})),
            Err(AuthError::Malformed)
        );
        assert!(
            !policy
                .actor(&json!({"sub": "u", "roles": null}))
                .unwrap()
                .admin
        );
    }
}
