//! The browser (chromedriver on a free port driving headless Chromium), the service with
//! its in-process emulator, and bounded polling.

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::{
    dev_checkout_success_url, seed_dev_plans, start_dev_emulator, Application,
};
use billing_stripe_emulator::StripeEmulator;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::common::{admin_token, tenant_token};

/// How long one wait for a page or an API state may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The most one test may take, browser start included (nextest's `slow-timeout` for the
/// binary ends it too, see `.config/nextest.toml`).
pub const TEST_LIMIT: Duration = Duration::from_secs(110);

/// Runs a test's body within [`TEST_LIMIT`].
pub async fn bounded(body: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("the test took longer than {TEST_LIMIT:?}");
    }
}

/// Polls `probe` every 100 ms until it gives `Some`, for at most [`WAIT`]; then fails
/// naming `what` and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {WAIT:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
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

/// The service as `--dev` runs it without `STRIPE_API_KEY` (the in-process emulator, the
/// dev plans seeded), on random ports with a database of its own.
pub struct Service {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub emulator: StripeEmulator,
    pub http: reqwest::Client,
    handle: ServerHandle,
    _db: TestDatabase,
}

impl Service {
    pub async fn start() -> Self {
        let db = tokio::task::spawn_blocking(TestDatabase::create)
            .await
            .unwrap()
            .expect("test database");
        let mut env = crate::common::server_env(db.url(), "http://unused.invalid");
        for var in ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"] {
            env.remove(var);
        }
        let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (mut config, _) = Config::from_env(&view, true).expect("dev configuration");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let emulator = start_dev_emulator(
            &mut config,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            format!("{base}/api/v1/billing/stripe/webhook"),
        )
        .await
        .expect("emulator");
        // As `main` does in `--dev` without CHECKOUT_SUCCESS_URL: the browser comes back
        // to the emulator's page of the completed session, which shows its receipt.
        config.stripe.checkout_success_url = dev_checkout_success_url(&emulator);
        seed_dev_plans(&config).await.expect("seed");
        let app = Application::build(&config, listener).expect("application");
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            base,
            emulator,
            http,
            handle,
            _db: db,
        }
    }

    /// `GET /api/v1/billing{path}` with `token`: status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v1/billing{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/v1/billing{path}` with `token`; the 200 answer's JSON.
    pub async fn post(&self, path: &str, token: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/api/v1/billing{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// Starts a checkout of `plan` for a new tenant: the tenant, its token and the
    /// session's URL.
    pub async fn start_checkout(&self, plan: &str) -> (TenantId, String, String) {
        let tenant = TenantId::new();
        let token = tenant_token(tenant);
        let body = self
            .post(
                &format!("/stripe/checkout?tenantId={tenant}&planId={plan}"),
                &token,
            )
            .await;
        let url = body["sessionUrl"].as_str().expect("sessionUrl").to_owned();
        (tenant, token, url)
    }

    /// The tenant's view (`GET /tenants/{id}`).
    pub async fn tenant(&self, tenant: TenantId, token: &str) -> Value {
        self.get(&format!("/tenants/{tenant}"), token).await.1
    }

    /// Waits until the API shows `tenant` active with a subscription; returns the view.
    pub async fn wait_until_active(&self, tenant: TenantId, token: &str) -> Value {
        eventually("the tenant active with its subscription", || async {
            let view = self.tenant(tenant, token).await;
            if view["status"] == "active" && view["subscription"].is_object() {
                Ok(view)
            } else {
                Err(view.to_string())
            }
        })
        .await
    }

    /// The id (UUID) of the plan with `code`.
    pub async fn plan_id(&self, code: &str) -> String {
        let (status, plan) = self.get(&format!("/plans/{code}"), &admin_token()).await;
        assert_eq!(status, 200, "{plan}");
        plan["id"].as_str().unwrap().to_owned()
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.emulator.stop().await;
    }
}
