//! The catch-up's schedule (issue 15): a pass at start, then every
//! `STRIPE_CATCHUP_INTERVAL_SECS`, until shutdown. The pass itself is the domain's
//! (`billing_domain::jobs::catchup`); a pass another replica holds is skipped quietly.

use std::sync::Arc;
use std::time::Duration;

use billing_domain::jobs::catchup::CatchupError;
use billing_domain::BillingService;
use tokio::sync::watch;

/// This process's name on the catch-up lease: unique per start.
#[must_use]
pub fn lease_holder() -> String {
    let secret = crate::config::random_secret();
    format!(
        "billing-server-{}-{}",
        std::process::id(),
        secret.get(..16).unwrap_or(&secret)
    )
}

/// Runs catch-up passes every `interval` until `stop`.
pub async fn catch_up(
    service: Arc<BillingService>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Outcomes and failures are logged by the job; another replica's pass is fine.
        if let Err(CatchupError::InProgress) = service.catch_up(None).await {
            tracing::debug!("catch-up pass skipped: another replica holds the lease");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
