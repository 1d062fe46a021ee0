//! The metrics as this crate sees them: the domain's observability port
//! ([`BillingMetrics`]), through which the middleware reports every request and the
//! webhook handler every delivery, plus the exposition `GET /metrics` serves. The
//! registry itself (families, labels, help texts) is the server's.

use billing_domain::metrics::{BillingMetrics, NoMetrics};

/// A metrics sink that can also render itself for `GET /metrics`.
pub trait MetricsEndpoint: BillingMetrics {
    /// The media type of [`MetricsEndpoint::scrape`]'s output.
    fn content_type(&self) -> &'static str;

    /// Samples whatever is sampled at scrape time, then renders every metric.
    fn scrape(&self) -> String;
}

/// Nothing to render: for apps (tests, tools) that observe nothing.
impl MetricsEndpoint for NoMetrics {
    fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    fn scrape(&self) -> String {
        String::new()
    }
}

/// Reports to nobody when the app was built without metrics (no `web::Data` of them).
pub(crate) fn report(req: &actix_web::HttpRequest, f: impl FnOnce(&dyn MetricsEndpoint)) {
    if let Some(metrics) = req.app_data::<actix_web::web::Data<dyn MetricsEndpoint>>() {
        f(metrics.get_ref());
    }
}
