//! Creating the database and bringing its schema up to date.
//!
//! The migrations in the repository's top-level `migrations/` are compiled into the
//! binary. Running them takes a PostgreSQL advisory lock first, so that replicas starting
//! together apply each migration once: the others wait, then find nothing pending.
//!
//! These functions are blocking (they run at start-up or in the `migrate` Job, before
//! any request is served); from async code call them through `spawn_blocking`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use billing_domain::ports::BoxError;

/// The schema migrations, embedded at compile time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the advisory lock that serialises migration runs ("billing" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x0062_696c_6c69_6e67;

/// Why setting up the database failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL is not a `postgres://` URL naming a database.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The server could not be reached.
    #[error("cannot connect to the database")]
    Connect(#[source] diesel::ConnectionError),
    /// A statement failed.
    #[error("database statement failed")]
    Query(#[source] diesel::result::Error),
    /// A migration failed.
    #[error("migration failed")]
    Migration(#[source] BoxError),
}

impl From<diesel::result::Error> for SetupError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Query(e)
    }
}

/// Splits a database URL into the database name and the URL of the `postgres`
/// maintenance database on the same server.
fn split_database(url: &str) -> Result<(String, String), SetupError> {
    let mut parsed = url::Url::parse(url).map_err(|e| SetupError::InvalidUrl(format!("{e}")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(SetupError::InvalidUrl(format!(
            "scheme must be postgres, not {}",
            parsed.scheme()
        )));
    }
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err(SetupError::InvalidUrl("no database name".to_owned()));
    }
    if name.contains(['%', '/']) {
        // Kept simple on purpose: our database names never need escaping.
        return Err(SetupError::InvalidUrl(
            "database name must not need percent-encoding".to_owned(),
        ));
    }
    parsed.set_path("/postgres");
    Ok((name, parsed.to_string()))
}

/// `"name"` quoted as an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn database_exists(conn: &mut PgConnection, name: &str) -> Result<bool, SetupError> {
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(conn)?;
    Ok(row.exists)
}

/// Creates the database that `url` names when it does not exist, connecting to the
/// `postgres` maintenance database of the same server. Returns whether it created it.
/// Safe when several processes do it at once: losing the race is not an error.
///
/// # Errors
/// [`SetupError`] when the server cannot be reached or refuses to create the database.
#[tracing::instrument(skip_all)]
pub fn ensure_database(url: &str) -> Result<bool, SetupError> {
    let (name, admin_url) = split_database(url)?;
    let mut conn = PgConnection::establish(&admin_url).map_err(SetupError::Connect)?;
    if database_exists(&mut conn, &name)? {
        return Ok(false);
    }
    match diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut conn) {
        Ok(_) => {
            tracing::info!(db.name = %name, "created database");
            Ok(true)
        }
        // A concurrent creator won (duplicate_database, or a unique violation on
        // pg_database when both got past the existence check): the database is there.
        Err(e) if database_exists(&mut conn, &name)? => {
            tracing::debug!(db.name = %name, error = %e, "database created concurrently");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `f` on a dedicated connection holding the migration advisory lock.
fn with_migration_lock<T>(
    url: &str,
    f: impl FnOnce(&mut PgConnection) -> Result<T, SetupError>,
) -> Result<T, SetupError> {
    let mut conn = PgConnection::establish(url).map_err(SetupError::Connect)?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)?;
    let result = f(&mut conn);
    // Closing the connection would release the lock too; unlocking explicitly keeps
    // the other replicas from waiting on our disconnect.
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn);
    let value = result?;
    unlocked?;
    Ok(value)
}

/// Applies the pending migrations under the advisory lock; returns the versions applied
/// by this call (empty when the schema was already up to date).
///
/// # Errors
/// [`SetupError`] when the database cannot be reached or a migration fails (that
/// migration is rolled back).
#[tracing::instrument(skip_all)]
pub fn run_migrations(url: &str) -> Result<Vec<String>, SetupError> {
    let applied = with_migration_lock(url, |conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(SetupError::Migration)
    })?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    Ok(applied)
}

/// Reverts every applied migration, newest first, under the advisory lock; returns the
/// versions reverted. For tests (up/down/up) and for tearing down a development database.
///
/// # Errors
/// [`SetupError`] when the database cannot be reached or a down migration fails.
#[tracing::instrument(skip_all)]
pub fn revert_all(url: &str) -> Result<Vec<String>, SetupError> {
    with_migration_lock(url, |conn| {
        conn.revert_all_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(SetupError::Migration)
    })
}

/// The versions of the migrations applied to the database, oldest first.
///
/// # Errors
/// [`SetupError`] when the database cannot be reached.
pub fn applied_migrations(url: &str) -> Result<Vec<String>, SetupError> {
    let mut conn = PgConnection::establish(url).map_err(SetupError::Connect)?;
    let mut versions: Vec<String> = conn
        .applied_migrations()
        .map_err(SetupError::Migration)?
        .iter()
        .map(ToString::to_string)
        .collect();
    versions.sort();
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maintenance_url_keeps_the_server_and_credentials() {
        let (name, admin) =
            split_database("postgres://app:pw@db.internal:6543/billing?sslmode=disable").unwrap();

        assert_eq!(name, "billing");
        assert_eq!(
            admin,
            "postgres://app:pw@db.internal:6543/postgres?sslmode=disable"
        );
    }

    #[test]
    fn a_url_without_a_database_is_refused() {
        assert!(matches!(
            split_database("postgres://h:5432/"),
            Err(SetupError::InvalidUrl(_))
        ));
        assert!(matches!(
            split_database("mysql://h/db"),
            Err(SetupError::InvalidUrl(_))
        ));
    }

    #[test]
    fn identifiers_are_quoted_against_injection() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
