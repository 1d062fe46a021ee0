//! [`HealthCheck`]: a trivial query through the pool, for `/health/ready`.

use async_trait::async_trait;
use billing_domain::ports::{HealthCheck, RepoError};
use diesel::prelude::*;
use diesel::sql_types::Integer;

use crate::store::PgStore;

#[async_trait]
impl HealthCheck for PgStore {
    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<(), RepoError> {
        self.run(|conn| {
            diesel::select(1.into_sql::<Integer>()).get_result::<i32>(conn)?;
            Ok(())
        })
        .await
    }
}
