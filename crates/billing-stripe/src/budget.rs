//! The background rate budget: one token bucket shared by every background caller of
//! Stripe (the catch-up, the PaymentIntent linker, the reconciliation sweep), so that
//! together they stay under Stripe's rate limit (`LIFECYCLE.md` §4: 100 operations per
//! second in live mode, 25 in test mode) and leave most of it to the request path.
//!
//! The budget belongs to a separate [`crate::StripeClient`] instance (the "background"
//! provider, built with [`crate::StripeClient::with_budget`]): the request path's client
//! has none, so a request never waits behind a catch-up. Each attempt (retries included)
//! takes a token; a 429 empties the bucket and pauses it for the answer's `Retry-After`,
//! or for a backoff doubling from 1 s to 32 s while 429s continue.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Stripe's live-mode limit, operations per second.
pub const LIVE_MODE_LIMIT: f64 = 100.0;
/// Stripe's test-mode limit, operations per second.
pub const TEST_MODE_LIMIT: f64 = 25.0;
/// The background callers' share of the mode's limit.
pub const BACKGROUND_SHARE: f64 = 0.4;

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(32);

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
    next_pause: Duration,
}

/// A token bucket of `rate` requests per second (bursts of up to one second's worth).
#[derive(Debug)]
pub struct RateBudget {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

impl RateBudget {
    /// A budget of `per_second` requests per second (at least 0.1).
    #[must_use]
    pub fn new(per_second: f64) -> Self {
        let rate = if per_second.is_finite() {
            per_second.max(0.1)
        } else {
            LIVE_MODE_LIMIT
        };
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                refilled: Instant::now(),
                paused_until: None,
                next_pause: FIRST_PAUSE,
            }),
        }
    }

    /// The default rate for an API key: [`BACKGROUND_SHARE`] of its mode's limit
    /// (test mode for `sk_test_`/`rk_test_` keys and keys of unknown mode).
    #[must_use]
    pub fn default_rate(api_key: Option<&str>) -> f64 {
        let live = api_key.and_then(crate::key_livemode) == Some(true);
        BACKGROUND_SHARE
            * if live {
                LIVE_MODE_LIMIT
            } else {
                TEST_MODE_LIMIT
            }
    }

    /// Requests per second.
    #[must_use]
    pub const fn rate(&self) -> f64 {
        self.rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long to wait before a token is free at `now`, taking it when one is.
    fn take(&self, now: Instant) -> Option<Duration> {
        let mut state = self.lock();
        if let Some(until) = state.paused_until {
            if until > now {
                return Some(until - now);
            }
            state.paused_until = None;
            state.refilled = now;
        }
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.burst);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - state.tokens) / self.rate))
        }
    }

    /// Waits until a request may be sent, and counts it.
    pub async fn acquire(&self) {
        while let Some(wait) = self.take(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// Stripe answered 429: nothing is sent for `retry_after`, or for the next backoff
    /// step when Stripe named none.
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let mut state = self.lock();
        let pause = retry_after.unwrap_or(state.next_pause).min(LONGEST_PAUSE);
        state.next_pause = (state.next_pause * 2).min(LONGEST_PAUSE);
        state.tokens = 0.0;
        let until = Instant::now() + pause;
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        tracing::warn!(
            pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "Stripe rate limit hit: background calls paused"
        );
    }

    /// A request got through: the next 429's backoff starts again from its first step.
    pub fn succeeded(&self) {
        self.lock().next_pause = FIRST_PAUSE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_one_token_per_interval() {
        let budget = RateBudget::new(10.0);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(budget.take(now), None);
        }
        let wait = budget.take(now).unwrap_or_default();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(budget.take(now + Duration::from_millis(100)), None);
    }

    #[test]
    fn a_429_pauses_for_retry_after_then_backs_off_doubling() {
        let budget = RateBudget::new(100.0);
        budget.throttled(Some(Duration::from_secs(2)));
        let wait = budget.take(Instant::now()).unwrap_or_default();
        assert!(wait > Duration::from_millis(1900), "{wait:?}");
        let fresh = RateBudget::new(100.0);
        fresh.throttled(None);
        fresh.throttled(None);
        let wait = fresh.take(Instant::now()).unwrap_or_default();
        assert!(
            wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        fresh.succeeded();
        assert_eq!(fresh.lock().next_pause, FIRST_PAUSE);
    }

    #[test]
    fn the_default_is_forty_percent_of_the_modes_limit() {
        assert!((RateBudget::default_rate(Some("sk_test_abc")) - 10.0).abs() < 1e-9);
        assert!((RateBudget::default_rate(Some("sk_live_abc")) - 40.0).abs() < 1e-9);
        assert!((RateBudget::default_rate(None) - 10.0).abs() < 1e-9);
    }
}
