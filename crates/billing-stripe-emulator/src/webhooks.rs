//! Webhook delivery as Stripe does it: each event signed (`Stripe-Signature: t=...,v1=...`,
//! HMAC-SHA256 over `"{t}.{body}"` with the endpoint secret), POSTed to the forward URL one
//! at a time in creation order (or shuffled), retried on a non-2xx, a timeout or a
//! connection failure after each wait of the configured schedule, then given up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;

use crate::server::{lock, Shared};
use crate::store::{now, AttemptRecord, Delivery};

/// The `Stripe-Signature` header for `body` signed at `timestamp` with `secret`.
#[must_use]
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The next due delivery: `(event index, attempt number, body)`.
fn next_due(shared: &Shared, shuffle: bool) -> Option<(usize, u32, Bytes)> {
    let store = lock(&shared.store);
    if store.held {
        return None;
    }
    let now = Instant::now();
    let due: Vec<usize> = store
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.delivery, Delivery::Pending { next_at, .. } if next_at <= now))
        .map(|(i, _)| i)
        .collect();
    let index = if shuffle && !due.is_empty() {
        due[rand::rng().random_range(0..due.len())]
    } else {
        *due.first()?
    };
    let event = &store.events[index];
    let Delivery::Pending { attempts, .. } = event.delivery else {
        return None;
    };
    Some((index, attempts + 1, event.render()))
}

/// Delivers events until the server stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    url: String,
    secret: String,
    retries: Vec<Duration>,
    timeout: Duration,
    shuffle: bool,
) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(_) => return,
    };
    loop {
        let Some((index, attempt, body)) = next_due(&shared, shuffle) else {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            continue;
        };
        let timestamp = now();
        let result = client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header(
                "stripe-signature",
                signature_header(&secret, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let (status, error) = match result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) if e.is_timeout() => (None, Some("timeout".to_owned())),
            Err(_) => (None, Some("connection failed".to_owned())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let mut store = lock(&shared.store);
        let Some(event) = store.events.get_mut(index) else {
            continue;
        };
        // A drop while the request was in flight wins over a later retry.
        if !matches!(event.delivery, Delivery::Pending { .. }) {
            continue;
        }
        event.delivery = if delivered {
            Delivery::Delivered { attempts: attempt }
        } else {
            match usize::try_from(attempt - 1)
                .ok()
                .and_then(|i| retries.get(i))
            {
                Some(wait) => Delivery::Pending {
                    attempts: attempt,
                    next_at: Instant::now() + *wait,
                },
                None => Delivery::Failed { attempts: attempt },
            }
        };
        let record = AttemptRecord {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            attempt,
            status,
            error,
            at: timestamp,
        };
        store.attempts.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_worked_example_of_facts_5_5() {
        assert_eq!(
            signature_header(
                "whsec_test_secret",
                1_700_000_000,
                br#"{"id":"evt_test_webhook","object":"event"}"#
            ),
            "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
        );
    }
}
