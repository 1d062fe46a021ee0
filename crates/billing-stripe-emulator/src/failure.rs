//! Failure injection: what the fake does instead of executing a request, and the queue of
//! pending injections (`fail_next`).

use std::time::Duration;

/// A fault the fake produces instead of executing a request. Injected failures never store
/// anything (no PaymentIntent, no idempotency record): they happen before execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Answer with this status and a Stripe-shaped error body: `rate_limit`
    /// (`invalid_request_error`) for 429, `api_error` otherwise.
    Status(u16),
    /// Like [`Failure::Status`] plus a `Stripe-Should-Retry: true|false` header.
    StatusWithShouldRetry(u16, bool),
    /// Sleep this long, then close the connection without answering (a hung server; pick a
    /// duration beyond the client's timeout).
    Hang(Duration),
    /// Close the connection without sending any response bytes.
    Reset,
    /// Answer with an arbitrary Stripe error object.
    StripeError {
        /// HTTP status.
        status: u16,
        /// `error.type`, e.g. `card_error`, `invalid_request_error`.
        error_type: String,
        /// `error.code`, e.g. `card_declined`.
        code: Option<String>,
        /// `error.message`.
        message: String,
        /// `error.param`.
        param: Option<String>,
    },
}

#[derive(Debug)]
struct Injection {
    remaining: usize,
    path_prefix: Option<String>,
    failure: Failure,
}

/// Pending injections, consumed in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Injections(Vec<Injection>);

impl Injections {
    pub fn push(&mut self, n: usize, path_prefix: Option<String>, failure: Failure) {
        if n > 0 {
            self.0.push(Injection {
                remaining: n,
                path_prefix,
                failure,
            });
        }
    }

    /// Takes one failure for a request to `path`, if an injection applies to it.
    pub fn take(&mut self, path: &str) -> Option<Failure> {
        let index = self.0.iter().position(|inj| {
            inj.path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
        })?;
        let injection = &mut self.0[index];
        injection.remaining -= 1;
        let failure = injection.failure.clone();
        if injection.remaining == 0 {
            self.0.remove(index);
        }
        Some(failure)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injections_are_consumed_in_order_and_respect_the_path_prefix() {
        let mut injections = Injections::default();
        injections.push(1, Some("/v1/invoices".into()), Failure::Reset);
        injections.push(2, None, Failure::Status(500));

        assert_eq!(
            injections.take("/v1/payment_intents"),
            Some(Failure::Status(500))
        );
        assert_eq!(injections.take("/v1/invoices/in_1"), Some(Failure::Reset));
        assert_eq!(
            injections.take("/v1/invoices/in_1"),
            Some(Failure::Status(500))
        );
        assert_eq!(injections.take("/v1/invoices/in_1"), None);
    }
}
