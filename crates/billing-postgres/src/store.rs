//! The connection pool and the one helper every query goes through.
//!
//! Diesel is blocking, so each database call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) with a connection checked out of an r2d2 pool, inside
//! the caller's tracing span. A transaction lives entirely inside one such call: it can
//! never span an `.await`.
//!
//! A call first waits, asynchronously, for one of as many permits as the pool has
//! connections, and only then takes a blocking thread. Under more concurrent requests than
//! connections the extra ones wait as cheap futures (first come, first served) instead of
//! each holding a blocking thread parked in r2d2's wait; at 32 connections the benchmark's
//! p99 fell with it.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::ports::RepoError;
use diesel::r2d2::{ConnectionManager, HandleError, ManageConnection, Pool};
use diesel::{Connection, PgConnection};
use tokio::sync::Semaphore;

use crate::error::{pool_unavailable, DbError};
use crate::outbox::NotificationFormat;

/// How to reach PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Largest number of open connections.
    pub max_connections: u32,
    /// How long a query waits for a connection (and how long opening one may take)
    /// before the call fails with [`RepoError::Unavailable`].
    pub connect_timeout: Duration,
}

impl PgConfig {
    /// Default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// Default connection timeout: short, so that an outage answers fast.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A configuration with the default pool size and timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The URL with its password replaced by `***`, for logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable database url>".to_owned(),
    }
}

/// Adds libpq's `connect_timeout` to a URL that does not set one, so that opening a
/// connection to a silent host gives up too (libpq's own default is to wait forever).
fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.query_pairs().any(|(k, _)| k == "connect_timeout") {
        return url.to_owned();
    }
    // libpq counts whole seconds and treats anything below 2 as 2.
    let secs = timeout.as_secs().max(2);
    parsed
        .query_pairs_mut()
        .append_pair("connect_timeout", &secs.to_string());
    parsed.to_string()
}

/// Sends the pool's connection failures to `tracing` instead of the `log` crate.
#[derive(Debug, Clone, Copy)]
struct TracingErrorHandler;

impl HandleError<diesel::r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

/// A connection used more recently than this is handed out without a test query: under
/// load every checkout would otherwise cost a `SELECT 1` round trip. A connection that dies
/// while in use fails its call and is then discarded ([`PooledConn::broken`]).
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection with what the pool needs to decide whether to test or drop it.
pub(crate) struct PooledConn {
    conn: PgConnection,
    last_used: Instant,
    /// A call on it failed with a connection error: the pool closes it on return.
    broken: bool,
}

/// Diesel's connection manager, testing only connections idle for longer than
/// [`TRUSTED_FOR`] and dropping connections a call found closed.
#[derive(Debug)]
struct Manager(ConnectionManager<PgConnection>);

impl ManageConnection for Manager {
    type Connection = PooledConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledConn, Self::Error> {
        self.0.connect().map(|conn| PooledConn {
            conn,
            last_used: Instant::now(),
            broken: false,
        })
    }

    fn is_valid(&self, c: &mut PooledConn) -> Result<(), Self::Error> {
        if c.last_used.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        self.0.is_valid(&mut c.conn)
    }

    fn has_broken(&self, c: &mut PooledConn) -> bool {
        c.broken || self.0.has_broken(&mut c.conn)
    }
}

/// One caller counted in [`PgStore::waiting`] for as long as it lives.
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicU32) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The PostgreSQL adapter: implements every repository port of `billing_domain::ports`
/// over an r2d2 pool of diesel connections. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<Manager>,
    /// One permit per connection: a call holds one while it holds a blocking thread.
    gate: Arc<Semaphore>,
    /// Callers currently waiting for a pooled connection (r2d2 does not count them).
    waiting: Arc<AtomicU32>,
    /// How a notification's document is rendered for the outbox (see [`crate::outbox`]).
    notification_format: Option<NotificationFormat>,
    /// How billing events are appended (see [`crate::events_out`]).
    events_out: Option<crate::events_out::EventsOutSetup>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (in_use, idle) = self.pool_state();
        f.debug_struct("PgStore")
            .field("in_use", &in_use)
            .field("idle", &idle)
            .finish()
    }
}

impl PgStore {
    /// Builds the pool. Connections open lazily (in the background and on first use), so
    /// this succeeds even while the database is down; calls then fail with
    /// [`RepoError::Unavailable`] after `connect_timeout`. A `max_connections` of 0 is
    /// taken as 1.
    #[must_use]
    pub fn new(config: &PgConfig) -> Self {
        let url = with_connect_timeout(&config.url, config.connect_timeout);
        let max = config.max_connections.max(1);
        let pool = Pool::builder()
            .max_size(max)
            // Keep a couple of warm connections, not the whole pool.
            .min_idle(Some(max.min(2)))
            .connection_timeout(config.connect_timeout)
            // Checks a connection that sat idle with a trivial query before handing it out,
            // so a connection killed by a database restart is replaced instead of failing a
            // call; a recently used one is trusted (see `Manager`).
            .test_on_check_out(true)
            .error_handler(Box::new(TracingErrorHandler))
            .build_unchecked(Manager(ConnectionManager::<PgConnection>::new(url)));
        Self {
            pool,
            gate: Arc::new(Semaphore::new(max as usize)),
            waiting: Arc::new(AtomicU32::new(0)),
            notification_format: None,
            events_out: None,
        }
    }

    /// The store, rendering the notifications it enqueues with `format` (the notifier's
    /// document, `billing_notifier::render_document`). Without one, a webhook that
    /// enqueues a notification fails (`RepoError::Unexpected`): the format is not this
    /// crate's to choose (see the `outbox` module).
    #[must_use]
    pub fn with_notification_format(mut self, format: NotificationFormat) -> Self {
        self.notification_format = Some(format);
        self
    }

    /// The store, appending billing events with `setup`'s format and a delivery for each
    /// of its subscribers. Without it, events are numbered and kept without a body or
    /// deliveries (see [`crate::events_out`]).
    #[must_use]
    pub fn with_billing_events(mut self, setup: crate::events_out::EventsOutSetup) -> Self {
        self.events_out = Some(setup);
        self
    }

    /// How billing events are appended, if set.
    pub(crate) fn events_out(&self) -> Option<crate::events_out::EventsOutSetup> {
        self.events_out.clone()
    }

    /// The format notifications are rendered with, if one was given.
    pub(crate) fn notification_format(&self) -> Option<NotificationFormat> {
        self.notification_format
    }

    /// Connections `(in_use, idle)`, for metrics.
    #[must_use]
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (
            state.connections.saturating_sub(state.idle_connections),
            state.idle_connections,
        )
    }

    /// Callers waiting for a connection right now: a pool too small for the load.
    #[must_use]
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The pool's maximum size.
    #[must_use]
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, inside the current
    /// tracing span. Every query of this crate goes through here.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let timeout = self.pool.connection_timeout();
        let permit = {
            // Counted while waiting, also if the caller gives up (drops this future).
            let _waiting = Waiting::count(&self.waiting);
            tokio::time::timeout(timeout, Arc::clone(&self.gate).acquire_owned()).await
        };
        let permit = match permit {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a timeout is a pool too busy to serve in time.
            Ok(Err(_)) | Err(_) => {
                return Err(RepoError::Unavailable(
                    "timed out waiting for a database connection".into(),
                ))
            }
        };
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let pool = self.pool.clone();
        let waiting = Arc::clone(&self.waiting);
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            // Released after the connection is back in the pool (drop order).
            let _permit = permit;
            // With a permit a connection is free, unless one is being (re)opened, as
            // during an outage: that wait is counted too.
            let conn = {
                let _waiting = Waiting::count(&waiting);
                pool.get_timeout(remaining)
            };
            let mut conn = conn.map_err(pool_unavailable)?;
            let result = f(&mut conn.conn).map_err(DbError::into_repo);
            conn.last_used = Instant::now();
            if matches!(result, Err(RepoError::Unavailable(_))) {
                conn.broken = true;
            }
            result
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(join) => Err(RepoError::Unexpected(Box::new(join))),
        }
    }

    /// Like [`Self::run`], with `f` inside one database transaction: committed when it
    /// returns `Ok`, rolled back otherwise.
    pub(crate) async fn transaction<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| conn.transaction(|tx| f(tx))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;
    use diesel::RunQueryDsl;

    fn sleep_in_database(
        store: &PgStore,
        secs: f64,
    ) -> impl std::future::Future<Output = Result<(), RepoError>> {
        let store = store.clone();
        async move {
            store
                .run(move |conn| {
                    diesel::sql_query(format!("SELECT pg_sleep({secs})"))
                        .execute(conn)
                        .map(|_| ())
                        .map_err(DbError::from)
                })
                .await
        }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..400 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn a_call_beyond_the_pool_is_counted_while_it_waits_and_gives_up_after_the_timeout() {
        let db = TestDatabase::create_empty().unwrap();
        let store = PgStore::new(&PgConfig {
            max_connections: 1,
            connect_timeout: Duration::from_millis(400),
            ..PgConfig::new(db.url())
        });
        let holder = tokio::spawn(sleep_in_database(&store, 2.0));
        until("the first call holds the connection", || {
            store.pool_state().0 == 1
        })
        .await;

        let waiter = tokio::spawn(sleep_in_database(&store, 0.0));
        until("the second call waits", || store.waiting() == 1).await;
        let gave_up = waiter.await.unwrap();

        assert!(
            matches!(gave_up, Err(RepoError::Unavailable(_))),
            "{gave_up:?}"
        );
        assert_eq!(store.waiting(), 0);
        assert!(holder.await.unwrap().is_ok());
        // The permit came back with the connection: the next call is served.
        assert!(sleep_in_database(&store, 0.0).await.is_ok());
    }

    #[test]
    fn a_waiting_call_holds_no_blocking_thread_and_is_uncounted_once_dropped() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = TestDatabase::create_empty().unwrap();
            let store = PgStore::new(&PgConfig {
                max_connections: 1,
                connect_timeout: Duration::from_secs(10),
                ..PgConfig::new(db.url())
            });
            let holder = tokio::spawn(sleep_in_database(&store, 1.5));
            until("the first call holds the connection", || {
                store.pool_state().0 == 1
            })
            .await;
            let waiter = tokio::spawn(sleep_in_database(&store, 0.0));
            until("the second call waits", || store.waiting() == 1).await;

            // One blocking thread runs the holder; were the waiter parked on the other,
            // this would wait for the holder to finish.
            let free = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::task::spawn_blocking(|| 42),
            )
            .await;
            waiter.abort();
            let _ = waiter.await;

            assert_eq!(free.ok().and_then(Result::ok), Some(42));
            assert_eq!(store.waiting(), 0, "a dropped waiter is no longer counted");
            assert!(holder.await.unwrap().is_ok());
        });
    }

    #[test]
    fn the_debug_form_of_a_config_hides_the_password() {
        let config = PgConfig::new("postgres://app:hunter2@db:5432/billing");

        let shown = format!("{config:?}");

        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db"), "{shown}");
    }

    #[test]
    fn a_connect_timeout_is_added_unless_the_url_sets_one() {
        let added = with_connect_timeout("postgres://h/db", Duration::from_secs(5));
        let kept =
            with_connect_timeout("postgres://h/db?connect_timeout=9", Duration::from_secs(5));
        let floored = with_connect_timeout("postgres://h/db", Duration::from_millis(300));

        assert_eq!(added, "postgres://h/db?connect_timeout=5");
        assert_eq!(kept, "postgres://h/db?connect_timeout=9");
        assert_eq!(floored, "postgres://h/db?connect_timeout=2");
    }
}
