//! `billing_build_info`: which build is running, as the usual constant-1 gauge whose
//! labels carry the facts (`version` from Cargo, `git_commit` from the `GIT_COMMIT`
//! environment variable at build time, `unknown` without it). Dashboards join on it
//! to show the version of each pod; a rollout shows as the label changing.

use prometheus::{IntGaugeVec, Opts, Registry};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from (`GIT_COMMIT` at build time), or `unknown`.
#[must_use]
pub fn git_commit() -> &'static str {
    match option_env!("GIT_COMMIT") {
        Some(commit) if !commit.trim().is_empty() => commit,
        _ => "unknown",
    }
}

/// Registers `billing_build_info{version,git_commit} 1` in `registry`.
///
/// # Errors
/// When the registry already holds a family of that name.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    let info = IntGaugeVec::new(
        Opts::new(
            "billing_build_info",
            "The running build: version and git commit (always 1).",
        ),
        &["version", "git_commit"],
    )?;
    info.with_label_values(&[VERSION, git_commit()]).set(1);
    registry.register(Box::new(info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    #[test]
    fn build_info_is_one_gauge_with_version_and_commit() {
        let registry = Registry::new();
        register(&registry).unwrap();

        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();

        assert!(text.contains("# TYPE billing_build_info gauge"), "{text}");
        assert!(
            text.contains(&format!(
                "billing_build_info{{git_commit=\"{}\",version=\"{VERSION}\"}} 1",
                git_commit()
            )),
            "{text}"
        );
        assert!(register(&registry).is_err(), "a second family of the name");
    }
}
