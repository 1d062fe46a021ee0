//! Stripe's rate limit, emulated: at most N API requests per one-second window (none by
//! default); over it, Stripe's 429 (`code: rate_limit`) with `Retry-After: 1`. Set with
//! `--rate-limit N` or `POST /__emulator/rate_limit {"perSecond": N}` (`null` removes it).

use std::time::{Duration, Instant};

use crate::error::{ApiError, Reply};

/// The limit and the current window's count.
#[derive(Debug)]
pub(crate) struct RateLimit {
    pub per_second: Option<u32>,
    window: Instant,
    count: u32,
    /// Requests refused so far.
    pub refused: u64,
}

impl RateLimit {
    pub(crate) fn new(per_second: Option<u32>) -> Self {
        Self {
            per_second,
            window: Instant::now(),
            count: 0,
            refused: 0,
        }
    }

    /// Counts a request; Stripe's 429 when it is over the limit.
    pub(crate) fn check(&mut self) -> Option<Reply> {
        let limit = self.per_second?;
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.count = 0;
        }
        if self.count < limit {
            self.count += 1;
            return None;
        }
        self.refused += 1;
        Some(
            Reply::from(ApiError::new(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            ))
            .with_header("retry-after", "1"),
        )
    }
}
