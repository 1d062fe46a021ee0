//! The one place that installs a tracing subscriber: readable on a terminal, JSON lines
//! with `LOG_FORMAT=json`. Libraries only emit events. `RUST_LOG` filters (default `info`).

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call is a
/// no-op), which keeps tests that start several servers simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,h2=warn,hyper=warn"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _already_set = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
