//! The browser (chromedriver on a free port driving headless Chromium) and the test's time
//! bound; the service with its in-process emulator and bounded polling come from
//! `common::dev_service`, shared with the API tests.

use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

pub use crate::common::dev_service::{eventually, DevService as Service};

/// The most one test may take, browser start included (nextest's `slow-timeout` for the
/// binary ends it too, see `.config/nextest.toml`).
pub const TEST_LIMIT: Duration = Duration::from_secs(110);

/// Runs a test's body within [`TEST_LIMIT`].
pub async fn bounded(body: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("the test took longer than {TEST_LIMIT:?}");
    }
}

/// An executable: `var` if set, else the first of `names` on `PATH`.
fn executable(var: &str, names: &[&str]) -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os(var) {
        Some(path) => vec![PathBuf::from(path)],
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .collect(),
    };
    if let Some(found) = candidates.into_iter().find(|c| c.is_file()) {
        return found;
    }
    panic!(
        "the browser tests need {} (not found as {var}, nor on PATH): install Debian's \
         packages with `apt-get install -y --no-install-recommends chromium chromium-driver` \
         (.ci/run does when they are missing)",
        names.join(" or ")
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver process, leader of a process group of its own that the Chromium it
/// starts joins: dropping it kills the whole group, so no browser outlives a failed test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// One WebDriver session of headless Chromium, through its own chromedriver.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Self {
        let chromium = executable("CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = executable("CHROMEDRIVER", &["chromedriver"]);
        let port = free_port();
        let driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", chromedriver.display())),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually("chromedriver ready", || async {
            let status: Value = http
                .get(format!("{webdriver}/status"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if status["value"]["ready"] == true {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
        .await;

        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        Self {
            client,
            _driver: driver,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page's text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        eventually(&format!("a page showing {needle:?}"), || async {
            let text = self.text().await;
            if text.contains(needle) {
                Ok(text)
            } else {
                let url = self.client.current_url().await.map_err(|e| e.to_string())?;
                Err(format!("{url}: {text}"))
            }
        })
        .await
    }

    /// Replaces the value of the input `css`.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Clicks the button whose text is `label`.
    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("a button {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Saves a screenshot of the window as `name.png` in `BILLING_SCREENSHOTS_DIR`, when
    /// that is set.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("BILLING_SCREENSHOTS_DIR") else {
            return;
        };
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = Path::new(&dir).join(format!("{name}.png"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, png).unwrap();
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn quit(self) {
        let Self { client, _driver } = self;
        let _ = client.close().await;
    }
}
