//! Billing events out (SPEC §9) end to end: written in the webhook's transaction, delivered
//! at least once to every subscriber in each tenant's order across a restart, signed with
//! every secret; and the admin outbox.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{admin_token, problem, sample_event, spawn_app_with, TestApp};

const NEW_SECRET: &str = "bes_test_newest_secret";
const OLD_SECRET: &str = "bes_test_older_secret";

/// One request a receiver accepted: its raw body and headers.
#[derive(Debug, Clone)]
struct Accepted {
    body: Vec<u8>,
    event_id: String,
    signature: String,
}

impl Accepted {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A subscriber that answers 500 to the first `failures` requests about `failing_tenant`
/// (none if `None`) and 200 to everything else, keeping what it accepted in order.
#[derive(Clone)]
struct Receiver {
    failing_tenant: Option<String>,
    failures: Arc<Mutex<u32>>,
    refused: Arc<Mutex<u32>>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

impl Receiver {
    fn new(failing_tenant: Option<TenantId>, failures: u32) -> Self {
        Self {
            failing_tenant: failing_tenant.map(|t| t.to_string()),
            failures: Arc::new(Mutex::new(failures)),
            refused: Arc::new(Mutex::new(0)),
            accepted: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().unwrap().clone()
    }

    fn refused(&self) -> u32 {
        *self.refused.lock().unwrap()
    }
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if let Some(tenant) = &self.failing_tenant {
            let mut failures = self.failures.lock().unwrap();
            if body["tenantId"] == tenant.as_str() && *failures > 0 {
                *failures -= 1;
                *self.refused.lock().unwrap() += 1;
                return ResponseTemplate::new(500);
            }
        }
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        self.accepted.lock().unwrap().push(Accepted {
            body: request.body.clone(),
            event_id: header("billing-event-id"),
            signature: header("billing-signature"),
        });
        ResponseTemplate::new(200)
    }
}

/// HMAC-SHA256 of `"<t>.<body>"` under `secret`, in hex.
fn hmac_hex(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `t=<unix>,v1=<hex>,v1=<hex>`: one `v1` per secret, newest first, recent `t`.
fn assert_signed(accepted: &Accepted) {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in accepted.signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let t = t.expect("t= in Billing-Signature");
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..600).contains(&age), "t is now: {}", accepted.signature);
    assert_eq!(
        v1,
        vec![
            hmac_hex(NEW_SECRET, &t, &accepted.body),
            hmac_hex(OLD_SECRET, &t, &accepted.body)
        ],
        "one v1 per secret, newest first"
    );
    assert_ne!(
        v1[0],
        hmac_hex(NEW_SECRET, &t, b"{\"tampered\":true}"),
        "the signature covers the body"
    );
}

/// A Stripe subscription event for `tenant`, under ids of its own (`tag`).
fn subscription_event(kind: &str, tenant: TenantId, tag: &str) -> String {
    sample_event(kind, |e| {
        let id = e["id"].as_str().unwrap().to_owned();
        e["id"] = json!(format!("{id}{tag}"));
        let object = &mut e["data"]["object"];
        object["id"] = json!(format!("sub_1RqjwsHx4KpL29aT{tag}"));
        object["customer"] = json!(format!("cus_t9FXeM4p{tag}"));
        object["metadata"] = json!({"tenantId": tenant.to_string()});
        if kind == "customer.subscription.created" {
            object["status"] = json!("active");
        }
    })
}

async fn outcome(app: &TestApp, body: &str) -> String {
    let response = app.webhook(body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["outcome"].as_str().unwrap().to_owned()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service with two subscribers and two secrets, and the plan the fixtures name.
async fn app_with(first: &MockServer, second: Option<&MockServer>) -> TestApp {
    let mut urls = format!("{}/billing-events", first.uri());
    if let Some(second) = second {
        urls.push_str(&format!(",{}/hooks/billing", second.uri()));
    }
    let app = spawn_app_with(|env| {
        env.insert("BILLING_EVENTS_URL", urls);
        env.insert(
            "BILLING_EVENTS_SECRET",
            format!("{NEW_SECRET},{OLD_SECRET}"),
        );
    })
    .await;
    app.create_plan("plan-basic", "price_1Rq3oaHx4KpL29aTqhCv4Gt4", None)
        .await;
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    app
}

/// The sequences `accepted` shows for `tenant`, in the order received.
fn sequences(accepted: &[Accepted], tenant: TenantId) -> Vec<i64> {
    accepted
        .iter()
        .map(Accepted::json)
        .filter(|e| e["tenantId"] == tenant.to_string())
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn each_tenant_is_delivered_once_in_order_to_every_subscriber_across_a_restart() {
    let held = TenantId::new();
    let flowing = TenantId::new();
    let failing = Receiver::new(Some(held), 2);
    let healthy = Receiver::new(None, 0);
    let first = failing.serve().await;
    let second = healthy.serve().await;
    let mut app = app_with(&first, Some(&second)).await;

    let held_events = [
        subscription_event("customer.subscription.created", held, "HELD"),
        subscription_event("customer.subscription.paused", held, "HELD"),
        subscription_event("customer.subscription.resumed", held, "HELD"),
    ];
    let flowing_created = subscription_event("customer.subscription.created", flowing, "FLOW");
    assert_eq!(outcome(&app, &held_events[0]).await, "processed");
    assert_eq!(outcome(&app, &flowing_created).await, "processed");

    // The held tenant's chain on the first subscriber fails once; restart meanwhile.
    wait_for("the first refusal", || failing.refused() >= 1).await;
    app.restart().await;
    for body in &held_events[1..] {
        assert_eq!(outcome(&app, body).await, "processed");
    }
    // A redelivered Stripe event emits nothing new.
    let emitted = app.count("select count(*) from billing_events");
    for body in held_events.iter().chain([&flowing_created]) {
        assert_eq!(outcome(&app, body).await, "duplicate");
    }
    assert_eq!(app.count("select count(*) from billing_events"), emitted);

    let of = |tenant: TenantId| {
        app.count(&format!(
            "select count(*) from billing_events where tenant_id = '{tenant}'"
        ))
    };
    let (n_held, n_flowing) = (of(held), of(flowing));
    assert!(
        n_held >= 5,
        "created, activated, paused, suspended, resumed...: {n_held}"
    );
    assert!(n_flowing >= 2, "created and activated: {n_flowing}");
    let total = usize::try_from(n_held + n_flowing).unwrap();
    wait_for("every event at both subscribers", || {
        failing.accepted().len() >= total && healthy.accepted().len() >= total
    })
    .await;
    // Nothing more arrives (no duplicate after the restart).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(failing.refused(), 2, "two refusals, retried");

    for receiver in [&failing, &healthy] {
        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), total, "each event exactly once");
        assert_eq!(sequences(&accepted, held), (1..=n_held).collect::<Vec<_>>());
        assert_eq!(
            sequences(&accepted, flowing),
            (1..=n_flowing).collect::<Vec<_>>()
        );
        for a in &accepted {
            let event = a.json();
            let mut keys: Vec<_> = event.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(
                keys,
                ["createdAt", "data", "id", "sequence", "tenantId", "type"],
                "{event}"
            );
            assert_eq!(event["id"], a.event_id.as_str(), "Billing-Event-Id");
            assert!(event["type"].as_str().unwrap().contains('.'), "{event}");
            assert!(event["data"].is_object(), "{event}");
            chrono::DateTime::parse_from_rfc3339(event["createdAt"].as_str().unwrap()).unwrap();
            assert_signed(a);
        }
    }
    // What the held tenant's changes made, at the subscriber that refused it.
    let held_types: Vec<_> = failing
        .accepted()
        .iter()
        .map(Accepted::json)
        .filter(|e| e["tenantId"] == held.to_string())
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "subscription.created",
        "tenant.activated",
        "tenant.suspended",
    ] {
        assert!(
            held_types.contains(&kind.to_owned()),
            "{kind}: {held_types:?}"
        );
    }

    // The admin outbox: every delivery delivered, none to retry.
    let response = app
        .get(
            "/api/v1/billing/outbox?status=delivered&limit=100",
            &admin_token(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    let entries = page["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2 * total, "{page}");
    assert!(entries.iter().all(|e| e["status"] == "delivered"), "{page}");
    let refused_one = entries
        .iter()
        .find(|e| {
            e["tenantId"] == held.to_string()
                && e["sequence"] == 1
                && e["subscriber"]
                    .as_str()
                    .unwrap()
                    .ends_with("/billing-events")
        })
        .unwrap();
    assert!(
        refused_one["attempts"].as_u64().unwrap() >= 2,
        "{refused_one}"
    );
    let response = app
        .get("/api/v1/billing/outbox?status=dead", &admin_token())
        .await;
    let dead: Value = response.json().await.unwrap();
    assert_eq!(dead["data"], json!([]), "{dead}");

    let retry = |id: String| {
        let app = &app;
        async move {
            problem(
                app.post_empty(
                    &format!("/api/v1/billing/outbox/{id}/retry"),
                    &admin_token(),
                )
                .await,
            )
            .await
        }
    };
    let (status, body) = retry(entries[0]["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("outbox_entry_not_dead")),
        "{body}"
    );
    let (status, body) = retry(uuid_like()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("outbox_entry_not_found")),
        "{body}"
    );
}

/// A UUID no delivery has.
fn uuid_like() -> String {
    TenantId::new().to_string()
}

/// Runs `program` with `args`; whether it exited 0 (its output shown on failure).
fn runs_ok(program: &str, args: &[&str]) -> bool {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect(program);
    if !out.status.success() {
        eprintln!(
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// A directory of its own under the system's temporary directory.
fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("billing-events-out-{}", TenantId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn stripes_official_verifier_accepts_a_delivered_event_and_rejects_a_tampered_one() {
    let receivers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receivers");
    if !std::path::Path::new(receivers)
        .join("node_modules")
        .is_dir()
    {
        println!(
            "skipped: {receivers}/node_modules is missing \
             (run `npm ci --no-audit --no-fund` there)"
        );
        return;
    }
    let receiver = Receiver::new(None, 0);
    let server = receiver.serve().await;
    let app = app_with(&server, None).await;
    let tenant = TenantId::new();
    let created = subscription_event("customer.subscription.created", tenant, "NODE");
    assert_eq!(outcome(&app, &created).await, "processed");
    wait_for("a delivered event", || !receiver.accepted().is_empty()).await;
    let delivered = receiver.accepted().remove(0);
    assert_signed(&delivered);

    let dir = scratch_dir();
    let body = write(&dir, "body.json", &delivered.body);
    let mut tampered = delivered.body.clone();
    tampered.extend_from_slice(b" ");
    let tampered = write(&dir, "tampered.json", &tampered);
    let verify = format!("{receivers}/verify.js");
    let header = delivered.signature.as_str();
    assert!(runs_ok("node", &[&verify, &body, header, NEW_SECRET]));
    assert!(
        runs_ok("node", &[&verify, &body, header, OLD_SECRET]),
        "the older secret's v1 during a rotation"
    );
    assert!(!runs_ok("node", &[&verify, &tampered, header, NEW_SECRET]));
    assert!(!runs_ok(
        "node",
        &[&verify, &body, header, "bes_not_the_secret"]
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The first fenced block of `language` in README.md's "Receiving billing events".
fn readme_block(language: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split_once("\n## Receiving billing events\n")
        .expect("README.md has the section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let fence = format!("```{language}\n");
    let start = section.find(&fence).expect("the code block") + fence.len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

#[test]
fn the_readmes_python_and_node_verifiers_accept_our_signature_and_reject_a_tampered_body() {
    let python = readme_block("python")
        + "\nimport sys\n\
           body = open(sys.argv[1], 'rb').read()\n\
           sys.exit(0 if verify(body, sys.argv[2], sys.argv[3]) else 1)\n";
    let node = readme_block("js")
        + "\nconst body = require(\"node:fs\").readFileSync(process.argv[2]);\n\
           process.exit(verify(body, process.argv[3], process.argv[4]) ? 0 : 1);\n";
    let dir = scratch_dir();
    let python = write(&dir, "verify.py", python.as_bytes());
    let node = write(&dir, "verify.js", node.as_bytes());
    let body = json!({
        "id": "0193a0c4-7f6e-7b1a-9c3d-2f1e0a9b8c7d",
        "type": "invoice.paid",
        "createdAt": "2026-12-08T01:00:00Z",
        "tenantId": TenantId::new().to_string(),
        "sequence": 7,
        "data": {"number": "INV-0007", "description": "Beratung für Zoë"},
    })
    .to_string();
    let secrets = [NEW_SECRET.to_owned(), OLD_SECRET.to_owned()];
    let now = chrono::Utc::now().timestamp();
    let header = billing_notifier::events::signature(&secrets, now, &body);
    let old = billing_notifier::events::signature(&secrets, now - 3600, &body);
    let signed = write(&dir, "body.json", body.as_bytes());
    let tampered = write(&dir, "tampered.json", body.replace("7,", "8,").as_bytes());

    for (program, script) in [("python3", &python), ("node", &node)] {
        let run = |file: &str, header: &str, secret: &str| {
            runs_ok(program, &[script, file, header, secret])
        };
        assert!(
            run(&signed, &header, NEW_SECRET),
            "{program}: newest secret"
        );
        assert!(run(&signed, &header, OLD_SECRET), "{program}: older secret");
        assert!(
            !run(&tampered, &header, NEW_SECRET),
            "{program}: tampered body"
        );
        assert!(
            !run(&signed, &header, "bes_wrong"),
            "{program}: wrong secret"
        );
        assert!(!run(&signed, &old, NEW_SECRET), "{program}: an hour-old t");
        assert!(!run(&signed, "v1=00", NEW_SECRET), "{program}: no t");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
