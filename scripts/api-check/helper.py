#!/usr/bin/env python3
"""Helpers of scripts/api-check.sh (standard library only).

    helper.py free-port                      print a free TCP port on 127.0.0.1
    helper.py sink --port P                  a notification receiver that answers 503
    helper.py wait URL [--timeout S] [--any-status]
                                             wait until URL answers 200 (or anything)
    helper.py server-errors --base URL       fail if /metrics counted any 5xx answer
    helper.py workload --base URL ...        seed data, run the scripted workload, check
                                             /metrics and X-Request-Id; exit 1 on a failure

The workload talks to a running billing-server (non-dev configuration, Stripe fake
behind it). Each check prints one `ok` or `FAIL` line; the last line is
`workload: N passed, N failed`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

# The README's sample tenant, plan and invoice: the OpenAPI document uses the same values
# as examples, so schemathesis's example phase finds them and gets real 200 answers.
SEED_TENANT = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
SEED_PLAN = "plan-pro"
SEED_INVOICE = "inv-001"

# Every metric family the service promises (README, dashboards, alerts).
FAMILIES = [
    "http_request_duration_seconds",
    "billing_webhook_events_total",
    "billing_webhook_rejections_total",
    "billing_webhook_event_lag_seconds",
    "billing_stripe_api_calls_total",
    "billing_stripe_api_call_duration_seconds",
    "billing_stripe_api_retries_total",
    "billing_outbox_backlog",
    "billing_outbox_delivery_failures_total",
    "billing_db_pool_connections",
    "billing_db_pool_waiting",
    "billing_build_info",
]


# --------------------------------------------------------------------------- small tools


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Response:
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """`Stripe-Signature` for `body` (docs/stripe.md, Signatures): HMAC-SHA256 of `<t>.<body>` keyed
    with the whole `whsec_…` string."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# --------------------------------------------------------------------------- subcommands


def cmd_free_port(_args) -> int:
    print(free_port())
    return 0


def cmd_sink(args) -> int:
    """Answers every POST with 503: the outbox must count a failed delivery and keep
    the notification for a retry."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b'{"error":"api-check sink refuses every notification"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            sys.stderr.write("sink: " + (fmt % a) + "\n")

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()
    return 0


def cmd_wait(args) -> int:
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = request("GET", args.url, timeout=2)
            if r.status == 200 or args.any_status:
                return 0
            last = f"HTTP {r.status}: {r.text()[:200]}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.25)
    print(f"timed out after {args.timeout}s waiting for {args.url}: {last}", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- workload


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed.append(what)
            print(f"FAIL {what}" + (f": {detail}" if detail else ""))
        return ok

    def expect(self, r: Response, status: int, what: str) -> bool:
        return self.check(
            r.status == status,
            f"{what} -> {status}",
            f"got {r.status}: {r.text()[:500]}",
        )


# name, then optional {labels} (a quoted value may hold braces, e.g. a route pattern), value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def family_samples(samples, family: str):
    """Samples of a family: the name itself or, for histograms, its _bucket/_sum/_count."""
    names = {family, f"{family}_bucket", f"{family}_sum", f"{family}_count"}
    return [s for s in samples if s[0] in names]


def value(samples, name: str, **labels) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items()))


def event(events_dir: Path, kind: str, tenant: str, **meta) -> tuple[str, bytes]:
    """A sample event of `kind`, with a fresh id, `created` now and `tenantId` (plus
    `meta`) in its object's metadata."""
    doc = json.loads((events_dir / f"{kind}.json").read_text())
    doc["id"] = "evt_apicheck" + uuid.uuid4().hex[:16]
    doc["created"] = int(time.time())
    obj = doc["data"]["object"]
    obj["metadata"] = {**(obj.get("metadata") or {}), "tenantId": tenant, **meta}
    return doc["id"], json.dumps(doc).encode()


def metrics_until(base: str, ready, timeout: float):
    """Scrapes /metrics until `ready(samples)` holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        r = request("GET", f"{base}/metrics")
        samples = parse_metrics(r.text()) if r.status == 200 else []
        if ready(samples) or time.monotonic() > deadline:
            return r, samples
        time.sleep(0.5)


def cmd_workload(args) -> int:
    if not args.admin_token or not args.webhook_secret:
        print("API_CHECK_ADMIN_TOKEN and STRIPE_WEBHOOK_SECRET must be set", file=sys.stderr)
        return 2
    base = args.base.rstrip("/")
    api = f"{base}/api/v1/billing"
    admin = args.admin_token
    events_dir = Path(args.events_dir)
    c = Checks()

    print("-- seed data")
    plan = {
        "code": SEED_PLAN,
        "name": "Pro",
        "stripePriceId": "price_apicheck_pro",
        "amount": 4900,
        "currency": "usd",
        "interval": "month",
        "trialDays": 14,
    }
    r = request("POST", f"{api}/plans", token=admin, body=json.dumps(plan).encode())
    c.expect(r, 201, f"POST /plans ({SEED_PLAN})")
    c.check(
        r.headers.get("location", "").startswith("/api/v1/billing/plans/"),
        "a created plan has a Location header",
        repr(r.headers.get("location")),
    )
    invoice = {
        "tenantId": SEED_TENANT,
        "number": SEED_INVOICE,
        "amountDue": 12500,
        "currency": "usd",
        "dueDate": "2030-12-31",
    }
    r = request("POST", f"{api}/invoices", token=admin, body=json.dumps(invoice).encode())
    c.expect(r, 201, f"POST /invoices ({SEED_INVOICE})")
    invoice_id = r.json().get("id") if r.status == 201 else None
    c.expect(request("GET", f"{api}/plans/{SEED_PLAN}", token=admin), 200, f"GET /plans/{SEED_PLAN}")
    c.expect(request("GET", f"{api}/invoices/{SEED_INVOICE}", token=admin), 200, f"GET /invoices/{SEED_INVOICE}")
    if invoice_id:
        c.expect(request("GET", f"{api}/invoices/{invoice_id}", token=admin), 200, "GET /invoices/<uuid>")
    c.expect(request("GET", f"{api}/tenants/{SEED_TENANT}", token=admin), 200, "GET /tenants/<seed tenant>")

    print("-- Stripe calls through the fake")
    checkout_tenant = str(uuid.uuid4())
    r = request("POST", f"{api}/stripe/checkout?tenantId={checkout_tenant}&planId={SEED_PLAN}", token=admin)
    if c.expect(r, 200, "POST /stripe/checkout"):
        body = r.json()
        c.check(
            str(body.get("sessionId", "")).startswith("cs_") and bool(body.get("sessionUrl")),
            "checkout answers a session id and URL",
            r.text()[:300],
        )
    r = request("POST", f"{api}/invoices/{SEED_INVOICE}/payment-intent", token=admin)
    if c.expect(r, 200, "POST /invoices/{id}/payment-intent"):
        secret = r.json().get("clientSecret", "")
        c.check("_secret_" in secret, "payment-intent answers a client secret", r.text()[:300])
        again = request("POST", f"{api}/invoices/{SEED_INVOICE}/payment-intent", token=admin)
        c.check(
            again.status == 200 and again.json().get("clientSecret") == secret,
            "a second payment-intent call answers the same PaymentIntent",
            again.text()[:300],
        )

    print("-- webhooks")
    hook = f"{api}/stripe/webhook"
    # The seed tenant: once subscribed, GET .../tenants/{example}/subscription answers 200
    # and schemathesis checks that body against its schema too.
    webhook_tenant = SEED_TENANT
    evt, body = event(events_dir, "checkout.session.completed", webhook_tenant, planId=SEED_PLAN)
    r = request("POST", hook, body=body, headers={"Stripe-Signature": sign(args.webhook_secret, body)})
    if c.expect(r, 200, "a correctly signed checkout.session.completed"):
        ack = r.json()
        c.check(
            ack.get("eventId") == evt and ack.get("outcome") == "processed",
            "the event is processed",
            r.text()[:300],
        )
    r = request("POST", hook, body=body, headers={"Stripe-Signature": sign(args.webhook_secret, body)})
    c.check(
        r.status == 200 and r.json().get("outcome") == "duplicate",
        "its redelivery is a duplicate",
        f"{r.status} {r.text()[:300]}",
    )
    r = request("GET", f"{api}/tenants/{webhook_tenant}/subscription", token=admin)
    if c.expect(r, 200, "the webhook's tenant has a subscription"):
        c.check(r.json().get("status") == "trialing", "it is trialing (the plan has a trial)", r.text()[:300])

    _, failed_body = event(events_dir, "invoice.payment_failed", webhook_tenant)
    r = request("POST", hook, body=failed_body, headers={"Stripe-Signature": sign(args.webhook_secret, failed_body)})
    c.check(
        r.status == 200 and r.json().get("outcome") == "processed",
        "a signed invoice.payment_failed is processed (and queues a notification)",
        f"{r.status} {r.text()[:300]}",
    )

    bad = sign("whsec_not_the_configured_secret", body)
    r = request("POST", hook, body=body, headers={"Stripe-Signature": bad})
    c.expect(r, 400, "a webhook signed with another secret")
    c.check(
        r.headers.get("content-type", "").startswith("application/problem+json")
        and r.status == 400
        and r.json().get("code") == "invalid_signature",
        "it is refused as invalid_signature (problem+json)",
        r.text()[:300],
    )
    r = request("POST", hook, body=body)
    c.expect(r, 400, "a webhook without Stripe-Signature")

    print("-- X-Request-Id")
    sent = "api-check-" + uuid.uuid4().hex
    r = request("GET", f"{base}/health/live", headers={"X-Request-Id": sent})
    c.check(r.headers.get("x-request-id") == sent, "a caller's X-Request-Id is echoed", repr(r.headers.get("x-request-id")))
    r = request("GET", f"{api}/plans/no-such-plan", token=admin, headers={"X-Request-Id": sent})
    c.check(
        r.status == 404 and r.headers.get("x-request-id") == sent,
        "it is echoed on an error answer too",
        f"{r.status} {r.headers.get('x-request-id')!r}",
    )
    r = request("GET", f"{base}/health/live")
    generated = r.headers.get("x-request-id", "")
    c.check(bool(generated), "an X-Request-Id is generated when none is sent", repr(generated))
    r2 = request("GET", f"{base}/health/live")
    c.check(
        bool(generated) and r2.headers.get("x-request-id") not in ("", None, generated),
        "each request gets its own generated id",
        f"{generated!r} then {r2.headers.get('x-request-id')!r}",
    )
    r = request("GET", f"{base}/health/live", headers={"X-Request-Id": "bad id\twith spaces"})
    c.check(
        r.headers.get("x-request-id") not in (None, "", "bad id\twith spaces"),
        "an unsafe X-Request-Id is replaced by a generated one",
        repr(r.headers.get("x-request-id")),
    )

    print("-- /metrics")

    def settled(samples) -> bool:
        # The outbox dispatcher polls every second; the failed delivery shows shortly,
        # with the backlog it leaves (the message waits for its retry).
        return (
            value(samples, "billing_outbox_delivery_failures_total") >= 1
            and value(samples, "billing_outbox_backlog") >= 1
        )

    r, samples = metrics_until(base, settled, args.metrics_timeout)
    c.expect(r, 200, "GET /metrics")
    c.check(
        r.headers.get("content-type", "").startswith("text/plain"),
        "metrics are text/plain",
        repr(r.headers.get("content-type")),
    )
    if args.save_metrics:
        # The exposition after the workload, for the alerts' and dashboard's names check.
        Path(args.save_metrics).write_text(r.text(), encoding="utf-8")
    for family in FAMILIES:
        n = len(family_samples(samples, family))
        c.check(n >= 1, f"family {family} has samples ({n})", "no sample")

    def at_least(what: str, name: str, minimum: float, **labels):
        got = value(samples, name, **labels)
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        c.check(got >= minimum, f"{what}: {name}{{{sel}}} = {got:g} >= {minimum:g}", "too low")

    at_least("HTTP requests counted by route pattern", "http_request_duration_seconds_count", 1,
             route="/api/v1/billing/plans/{planId}", method="GET", status="200")
    at_least("unknown paths labelled unmatched, not by raw path", "http_request_duration_seconds_count", 0,
             route="unmatched")
    c.check(
        not any("no-such-plan" in json.dumps(ls) for _, ls, _ in samples),
        "no raw path appears in a label",
    )
    at_least("processed webhook", "billing_webhook_events_total", 1,
             type="checkout.session.completed", outcome="processed")
    at_least("duplicate webhook", "billing_webhook_events_total", 1,
             type="checkout.session.completed", outcome="duplicate")
    at_least("webhook lag observed", "billing_webhook_event_lag_seconds_count", 2,
             type="checkout.session.completed")
    at_least("bad signature rejected", "billing_webhook_rejections_total", 1, reason="mismatch")
    at_least("missing signature rejected", "billing_webhook_rejections_total", 1, reason="missing_header")
    at_least("checkout call", "billing_stripe_api_calls_total", 1,
             operation="create_checkout_session", outcome="success")
    at_least("checkout call duration", "billing_stripe_api_call_duration_seconds_count", 1,
             operation="create_checkout_session")
    at_least("retries sampled for the checkout operation", "billing_stripe_api_retries_total", 0,
             operation="create_checkout_session")
    c.check(
        any(n == "billing_stripe_api_retries_total" and ls.get("operation") == "create_checkout_session"
            for n, ls, _ in samples),
        "billing_stripe_api_retries_total{operation=\"create_checkout_session\"} is exported",
    )
    at_least("notification delivery failed (the sink answers 503)", "billing_outbox_delivery_failures_total", 1)
    at_least("the failed notification waits in the outbox", "billing_outbox_backlog", 1)
    at_least("the pool's size", "billing_db_pool_connections", 1, state="max")
    info = [ls for n, ls, v in samples if n == "billing_build_info" and v == 1]
    c.check(
        len(info) == 1 and info[0].get("version") and info[0].get("git_commit"),
        "billing_build_info{version,git_commit} 1",
        repr(info),
    )

    print(f"workload: {c.passed} passed, {len(c.failed)} failed")
    for what in c.failed:
        print(f"  failed: {what}")
    return 1 if c.failed else 0


def cmd_server_errors(args) -> int:
    """Fails when /metrics counted any 5xx answer: the server's own record of the run."""
    r = request("GET", f"{args.base.rstrip('/')}/metrics")
    if r.status != 200:
        print(f"GET /metrics -> {r.status}", file=sys.stderr)
        return 1
    errors = [
        (ls, v)
        for n, ls, v in parse_metrics(r.text())
        if n == "http_request_duration_seconds_count" and ls.get("status", "").startswith("5") and v > 0
    ]
    total = sum(
        v for n, ls, v in parse_metrics(r.text()) if n == "http_request_duration_seconds_count"
    )
    for ls, v in errors:
        print(f"  {v:g} x {ls.get('method')} {ls.get('route')} -> {ls.get('status')}")
    print(f"{total:g} requests served, {sum(v for _, v in errors):g} with a 5xx status")
    return 1 if errors else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port").set_defaults(func=cmd_free_port)
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, required=True)
    s.set_defaults(func=cmd_sink)
    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=60)
    w.add_argument("--any-status", action="store_true", help="any HTTP answer will do")
    w.set_defaults(func=cmd_wait)
    k = sub.add_parser("workload")
    k.add_argument("--base", required=True)
    # Secrets come from the environment, not the command line (visible in `ps`).
    k.set_defaults(admin_token=os.environ.get("API_CHECK_ADMIN_TOKEN", ""))
    k.set_defaults(webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET", ""))
    k.add_argument("--events-dir", required=True)
    k.add_argument("--metrics-timeout", type=float, default=15)
    k.add_argument("--save-metrics", help="write the /metrics text scraped after the workload here")
    k.set_defaults(func=cmd_workload)
    e = sub.add_parser("server-errors")
    e.add_argument("--base", required=True)
    e.set_defaults(func=cmd_server_errors)
    args = p.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
