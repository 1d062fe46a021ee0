//! Who is calling, and what they may touch. Token verification is the HTTP adapter's job;
//! the rules about tenants are the domain's.

use crate::ids::TenantId;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub`.
    pub subject: String,
    /// The tenant the caller acts for, if the token names one.
    pub tenant: Option<TenantId>,
    /// Holds the `billing:admin` role: may act for every tenant and use admin endpoints.
    pub admin: bool,
}

impl Actor {
    /// Whether the caller may read or act on `tenant`'s data.
    #[must_use]
    pub fn may_act_for(&self, tenant: TenantId) -> bool {
        self.admin || self.tenant == Some(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_token_reaches_only_its_own_tenant_and_an_admin_reaches_all() {
        let mine = TenantId::new();
        let other = TenantId::new();
        let tenant = Actor {
            subject: "u1".into(),
            tenant: Some(mine),
            admin: false,
        };
        let admin = Actor {
            subject: "ops".into(),
            tenant: None,
            admin: true,
        };

        assert!(tenant.may_act_for(mine));
        assert!(!tenant.may_act_for(other));
        assert!(admin.may_act_for(other));
    }
}
