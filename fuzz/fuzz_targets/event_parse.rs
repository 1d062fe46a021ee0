//! Fuzz target: the webhook event parser on arbitrary bytes (seeded with the seven sample
//! events from `fuzz/seeds/event_parse/`).
//!
//! Properties: `parse` never panics; it is deterministic; an accepted event has a usable id.

#![no_main]

use std::time::Duration;

use billing_domain::ports::WebhookVerifier;
use billing_stripe::StripeWebhookVerifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let v = StripeWebhookVerifier::new(Vec::new(), Duration::from_secs(300));
    let first = v.parse(data);
    if let Ok(event) = &first {
        let id = event.id.as_str();
        assert!(!id.is_empty() && id.len() <= 255 && id.chars().all(|c| c.is_ascii_graphic()));
        assert_eq!(&v.parse(data), &first, "parse is not deterministic");
    }
});
