//! The periodic reconciliation sweep (issue 15, `STRIPE_RECONCILE_INTERVAL_SECS`): at
//! start and at the start of every interval, the replica that claims the interval (a row
//! in `reconcile_sweeps`) reconciles every tenant with a live subscription or an open
//! invoice (`billing_domain::jobs::reconcile`). The others find the claim taken and wait
//! for the next interval. The Stripe calls go through the provider given, so that a
//! background (rate-limited) one can be passed in.

use std::sync::Arc;
use std::time::Duration;

use billing_domain::jobs::reconcile::Reconciler;
use billing_domain::ports::PaymentProvider;
use tokio::sync::watch;

/// This replica's name in the claims: the pod's `HOSTNAME`, else the process id.
fn replica_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| format!("replica-{}", std::process::id()))
}

/// How long until the next interval of length `interval` starts (intervals are aligned
/// on the Unix epoch, as the claims are).
fn until_next(interval: Duration) -> Duration {
    let secs = interval.as_secs().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into = now.as_secs() % secs;
    Duration::from_secs(secs - into)
        .saturating_sub(Duration::from_nanos(u64::from(now.subsec_nanos())))
        + Duration::from_millis(50)
}

/// Sweeps every `interval` until `stop`.
pub async fn run(
    reconciler: Arc<Reconciler>,
    provider: Arc<dyn PaymentProvider>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let replica = replica_name();
    tracing::info!(
        interval_secs = interval.as_secs(),
        replica = %replica,
        "reconciliation sweep scheduled"
    );
    loop {
        match reconciler
            .sweep(provider.as_ref(), interval, &replica)
            .await
        {
            Ok(Some(_)) | Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation sweep failed; next interval tries again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(until_next(interval)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
