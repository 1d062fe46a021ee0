//! Browser tests: headless Chromium, driven through WebDriver (chromedriver, with
//! `fantoccini`), clicks through the Stripe emulator's hosted pages (Checkout with the test
//! cards and the 3-D Secure step, the Customer Portal) of a service wired as `--dev` wires
//! it, and opens the `/api-docs` viewer; the API then shows each expected state.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing;
//! `CHROMIUM` and `CHROMEDRIVER` name other binaries). Without them every test fails and
//! says so: they never pass silently. With `BILLING_SCREENSHOTS_DIR` set, the tests save
//! the screenshots of `docs/screenshots/` there (`scripts/screenshots.sh`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly on broken fixtures"
)]

#[path = "../common/mod.rs"]
mod common;

mod api_docs;
mod checkout;
mod harness;
mod portal;
