//! Test support behind the `testing` feature (and this crate's own unit tests): throw-away
//! databases on a real PostgreSQL server. Crates whose tests use it enable the feature in
//! their `[dev-dependencies]` only, so it is never part of a production build.
//!
//! [`TestDatabase::create`] makes a database with a random name (`billing_test_<uuid>`) on
//! the server named by `DATABASE_URL` (default [`DEFAULT_BASE_URL`]), and dropping the
//! guard drops the database again (best effort, `WITH (FORCE)` so open pools don't block
//! it). Not meant for production code.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::migrate::{quote_ident, run_migrations, SetupError};
use crate::store::{PgConfig, PgStore};

/// The server tests use when `DATABASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `DATABASE_URL`, or [`DEFAULT_BASE_URL`].
#[must_use]
pub fn base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned())
}

/// `base` with its database replaced by `name`.
///
/// # Errors
/// [`SetupError::InvalidUrl`] when `base` is not a URL.
pub fn url_with_database(base: &str, name: &str) -> Result<String, SetupError> {
    let mut url = url::Url::parse(base).map_err(|e| SetupError::InvalidUrl(e.to_string()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// A fresh random database name, `billing_test_<uuid without hyphens>`.
#[must_use]
pub fn random_database_name() -> String {
    format!("billing_test_{}", uuid::Uuid::new_v4().simple())
}

/// Drops a database, closing its other connections first. Missing is fine.
///
/// # Errors
/// [`SetupError`] when the server cannot be reached or refuses.
pub fn drop_database(admin_url: &str, name: &str) -> Result<(), SetupError> {
    let mut conn = PgConnection::establish(admin_url).map_err(SetupError::Connect)?;
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .execute(&mut conn)?;
    Ok(())
}

/// A database that exists for one test and is dropped with this guard.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a random name (no migrations).
    ///
    /// # Errors
    /// [`SetupError`] when the server cannot be reached.
    pub fn create_empty() -> Result<Self, SetupError> {
        let admin_url = url_with_database(&base_url(), "postgres")?;
        let name = random_database_name();
        let url = url_with_database(&admin_url, &name)?;
        let mut conn = PgConnection::establish(&admin_url).map_err(SetupError::Connect)?;
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut conn)?;
        Ok(Self {
            name,
            url,
            admin_url,
        })
    }

    /// Creates a database with a random name and applies every migration.
    ///
    /// # Errors
    /// [`SetupError`] when the server cannot be reached or a migration fails.
    pub fn create() -> Result<Self, SetupError> {
        let db = Self::create_empty()?;
        run_migrations(&db.url)?;
        Ok(db)
    }

    /// A name for a database that does not exist yet on the same server, with its URL;
    /// nothing is created, but the guard still drops it at the end if something did.
    ///
    /// # Errors
    /// [`SetupError::InvalidUrl`] when `DATABASE_URL` is not a URL.
    pub fn reserve() -> Result<Self, SetupError> {
        let admin_url = url_with_database(&base_url(), "postgres")?;
        let name = random_database_name();
        let url = url_with_database(&admin_url, &name)?;
        Ok(Self {
            name,
            url,
            admin_url,
        })
    }

    /// The database's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A store on this database with a small pool.
    #[must_use]
    pub fn store(&self) -> PgStore {
        PgStore::new(&PgConfig {
            max_connections: 4,
            ..PgConfig::new(self.url.clone())
        })
    }

    fn connect(&self) -> Result<PgConnection, SetupError> {
        PgConnection::establish(&self.url).map_err(SetupError::Connect)
    }

    /// PostgreSQL's plan (`EXPLAIN`, one line a row) of the access read
    /// (`SubscriptionRepository::current_with_plan`) for `tenant`: the same statement with
    /// the same parameters, so that a test can check it uses indexes.
    ///
    /// # Errors
    /// [`SetupError`] when the statement fails.
    pub fn explain_access_read(
        &self,
        tenant: billing_domain::TenantId,
    ) -> Result<Vec<String>, SetupError> {
        let mut conn = self.connect()?;
        Ok(crate::subscriptions::explain_current_with_plan(
            &mut conn, tenant,
        )?)
    }

    /// Runs SQL statements separated by `;` (no parameters), for arranging test data.
    ///
    /// # Errors
    /// [`SetupError`] when a statement fails.
    pub fn execute(&self, sql: &str) -> Result<(), SetupError> {
        let mut conn = self.connect()?;
        conn.batch_execute(sql)?;
        Ok(())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = drop_database(&self.admin_url, &self.name) {
            // Best effort: a leftover test database is harmless and easy to spot by name.
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
