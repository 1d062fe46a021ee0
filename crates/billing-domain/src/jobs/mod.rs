//! The background jobs: queues the webhook path fills inside its transaction and that are
//! worked off after it committed, so that answering Stripe never waits for a third party.
//!
//! * [`outbox`]: delivers the notifications.
//! * [`linker`]: looks up the PaymentIntent of paid Stripe invoices.
//! * [`catchup`]: applies the events Stripe sent whose webhook never arrived.
//!
//! Each job owns one pass (`run_once`); the binary loops it on a timer and stops it on
//! shutdown, so this crate needs no async runtime. Both share the pacing rules of a
//! leased queue ([`QueuePolicy`]) and the shape of a pass's report ([`PassReport`]).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub mod catchup;
pub mod linker;
pub mod outbox;
pub mod reconcile;

/// How a leased queue is worked off: batch, lease and retries with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Items taken per pass.
    pub batch: u32,
    /// How long a claimed item stays hidden from other workers.
    pub lease: Duration,
    /// First retry delay; doubled per attempt.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Attempts before an item is given up.
    pub max_attempts: u32,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl QueuePolicy {
    /// Delay before the retry that follows attempt number `attempts` (1-based).
    #[must_use]
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// When a claim taken at `now` ends.
    #[must_use]
    pub fn lease_end(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + delta(self.lease)
    }

    /// When to try again after attempt number `attempts` failed at `now`; `None` gives up,
    /// at the last attempt or when trying again cannot help (`hopeless`).
    #[must_use]
    pub fn retry_at(
        &self,
        now: DateTime<Utc>,
        attempts: u32,
        hopeless: bool,
    ) -> Option<DateTime<Utc>> {
        (!hopeless && attempts < self.max_attempts).then(|| now + delta(self.backoff(attempts)))
    }
}

/// What one pass over a queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Items finished: a notification delivered or logged, a lookup's answer recorded.
    pub done: u32,
    /// Items that failed and were rescheduled.
    pub retried: u32,
    /// Items given up (dead letters, left for an operator).
    pub dead: u32,
}

impl PassReport {
    /// Items the pass handled, whatever became of them.
    #[must_use]
    pub const fn handled(&self) -> u32 {
        self.done + self.retried + self.dead
    }
}
