#!/usr/bin/env bash
# Runs the service like production and checks it from the outside. CI runs it; so can
# anyone with the local PostgreSQL:
#
#   bash scripts/api-check.sh
#
# Needs: cargo, python3 (3.9+) with venv, coreutils' timeout, PyPI for the first run (schemathesis goes into
# a venv under target/api-check-venv and is reused afterwards), PostgreSQL on
# 127.0.0.1:5432 (user postgres, trust auth). No other network.
#
# What it does, in order (any failure makes the exit status non-zero; every phase runs
# as far as it can, and a summary closes the output):
#   1. builds billing-server and the Stripe fake (debug profile)
#   2. installs schemathesis (pinned) into the venv
#   3. creates a database with a random name, starts the Stripe fake, a notification
#      receiver that answers 503, and the server with a NON-dev configuration (every
#      required setting given, fresh random secrets), and waits for /health/ready
#   4. a scripted workload (scripts/api-check/helper.py): seeds a plan and an invoice,
#      a checkout and a PaymentIntent through the fake, signed and badly signed webhooks,
#      X-Request-Id echo/generation, then every metric family on /metrics with the
#      values that workload must have produced; then every metric name the alerts
#      (deploy/components/monitoring/prometheusrule.yaml) and the Grafana dashboard
#      (grafana-dashboard.json) name must be a family of that /metrics
#      (scripts/deploy/metric_families.py; `_bucket`/`_sum`/`_count` of a histogram count
#      as the histogram)
#   5. schemathesis against /api-docs/openapi.json with an admin token: no 5xx, only
#      documented statuses, documented content types, bodies matching their schemas
#   6. the server is still ready, its own metrics count no 5xx answer, its log no panic
# Processes it started are stopped and the database is dropped on every exit.
#
# Knobs (environment): API_CHECK_MAX_EXAMPLES (25), API_CHECK_SEED (20260729),
# API_CHECK_TIME_LIMIT (seconds for schemathesis, 420), API_CHECK_KEEP_DB=1 (keep the
# database for a post-mortem), API_CHECK_NO_BUILD=1 (use the binaries already built in
# target/debug), PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STARTED=$SECONDS

SCHEMATHESIS=schemathesis==4.32.5 # 4.x: OpenAPI 3.1 support and the --checks names below
VENV=${API_CHECK_VENV:-$ROOT/target/api-check-venv}
WORK=$ROOT/target/api-check
HELPER=$ROOT/scripts/api-check/helper.py
EVENTS=$ROOT/crates/billing-stripe/tests/fixtures/events
MAX_EXAMPLES=${API_CHECK_MAX_EXAMPLES:-25}
SEED=${API_CHECK_SEED:-20260729}
TIME_LIMIT=${API_CHECK_TIME_LIMIT:-420}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

CURRENT="setup"
step() { CURRENT=$*; printf '\n==> %s\n' "$*"; }
RESULTS=()
FAILED=0
pass() { RESULTS+=("ok   $*"); }
fail() { RESULTS+=("FAIL $*"); FAILED=1; }

SUMMARISED=0
summary() {
  SUMMARISED=1
  step "Summary ($((SECONDS - STARTED)) s)"
  printf '%s\n' "${RESULTS[@]}"
  if [[ $FAILED == 0 ]]; then
    echo "api-check: all checks passed"
  else
    echo "api-check: FAILED (logs in ${WORK#"$ROOT"/})"
  fi
}

# Stops what this script started, by pid: SIGTERM (the server drains), then SIGKILL.
PIDS=()
DB=""
# shellcheck disable=SC2329 # invoked by the EXIT trap below
cleanup() {
  local status=$?
  set +e
  if [[ $SUMMARISED == 0 && $status != 0 ]]; then
    fail "stopped during step \"$CURRENT\" (exit $status)"
    summary
  fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n $DB && ${API_CHECK_KEEP_DB:-0} != 1 ]]; then
    dropdb --if-exists --force "$DB" || echo "warning: could not drop database $DB" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints the end of a log, to explain a failure.
show_log() {
  echo "--- last lines of ${1#"$ROOT"/}:"
  tail -n "${2:-40}" "$1" || true
  echo "---"
}

rm -rf "$WORK"
mkdir -p "$WORK"

step "1. Build"
BIN=$ROOT/target/debug
if [[ ${API_CHECK_NO_BUILD:-0} == 1 ]]; then
  echo "API_CHECK_NO_BUILD=1: using the binaries already in ${BIN#"$ROOT"/}"
  [[ -x $BIN/billing-server && -x $BIN/stripe-emulator ]] || { echo "no binaries in $BIN" >&2; exit 1; }
else
  cargo build --locked -p billing-server -p billing-stripe-emulator --bins
  pass "build"
fi

step "2. Tools (venv at ${VENV#"$ROOT"/})"
stamp="$VENV/.installed-$(printf '%s' "$SCHEMATHESIS" | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS"
  touch "$stamp"
fi
PY=$VENV/bin/python
"$VENV/bin/schemathesis" --version
pass "tools: $("$VENV/bin/schemathesis" --version)"

step "3. Start the Stripe fake, a notification receiver and the server (non-dev)"
random_hex() { "$PY" -c "import secrets; print(secrets.token_hex($1))"; }
db_name="billing_apicheck_$(random_hex 6)"
createdb "$db_name"
DB=$db_name # dropped by cleanup from here on
echo "database $DB"

FAKE_PORT=$("$PY" "$HELPER" free-port)
"$BIN/stripe-emulator" --lenient --port "$FAKE_PORT" >"$WORK/stripe-emulator.log" 2>&1 &
PIDS+=($!)
SINK_PORT=$("$PY" "$HELPER" free-port)
"$PY" "$HELPER" sink --port "$SINK_PORT" >"$WORK/sink.log" 2>&1 &
PIDS+=($!)

PORT=$("$PY" "$HELPER" free-port)
BASE=http://127.0.0.1:$PORT
# Every required setting, as production gives them; secrets are fresh for this run only.
export PORT
export DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
export STRIPE_API_KEY="sk_test_apicheck_placeholder"
export STRIPE_API_BASE="http://127.0.0.1:$FAKE_PORT"
STRIPE_WEBHOOK_SECRET="whsec_$(random_hex 24)"
export STRIPE_WEBHOOK_SECRET
export JWT_SECRET
JWT_SECRET=$(random_hex 32)
export CHECKOUT_SUCCESS_URL="https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
export CHECKOUT_CANCEL_URL="https://app.example.com/billing/cancel"
export PORTAL_RETURN_URL="https://app.example.com/billing"
export NOTIFICATIONS_URL="http://127.0.0.1:$SINK_PORT/notifications"
export LOG_FORMAT=json RUST_LOG=${RUST_LOG:-info}
"$BIN/billing-server" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
if "$PY" "$HELPER" wait "$BASE/health/ready" --timeout 90 && "$PY" "$HELPER" wait "http://127.0.0.1:$FAKE_PORT/v1/customers" --timeout 10 --any-status; then
  echo "server on $BASE, Stripe fake on :$FAKE_PORT, notification receiver on :$SINK_PORT"
  pass "the server starts with a non-dev configuration and is ready"
else
  show_log "$WORK/server.log"
  show_log "$WORK/stripe-emulator.log" 10
  fail "the server starts with a non-dev configuration and is ready"
  summary
  exit 1
fi
API_CHECK_ADMIN_TOKEN=$("$BIN/billing-server" dev-token --admin --sub api-check --hours 1)
export API_CHECK_ADMIN_TOKEN

step "4. Scripted workload, /metrics and X-Request-Id"
if "$PY" "$HELPER" workload --base "$BASE" --events-dir "$EVENTS" --save-metrics "$WORK/metrics.txt" | tee "$WORK/workload.log"; then
  pass "workload, metrics and request ids ($(tail -n1 "$WORK/workload.log" | sed 's/^workload: //'))"
else
  grep '^FAIL' "$WORK/workload.log" || true
  show_log "$WORK/server.log" 30
  fail "workload, metrics and request ids: $(grep -c '^FAIL' "$WORK/workload.log" || true) failed check(s)"
fi

step "4b. The alerts and the dashboard name only families /metrics exposes"
if [[ -s $WORK/metrics.txt ]] && "$PY" "$ROOT/scripts/deploy/metric_families.py" check "$WORK/metrics.txt"; then
  pass "every metric name of the alerts and the dashboard is a family of /metrics after the workload"
else
  fail "the alerts or the dashboard name a metric family /metrics does not expose (see above; /metrics saved in ${WORK#"$ROOT"/}/metrics.txt)"
fi

step "5. schemathesis against $BASE/api-docs/openapi.json"
# Nothing is excluded. The webhook operation is tested like the others: generated bodies
# carry no valid signature, so it answers 400 invalid_signature (documented) every time.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
ST_ARGS=(
  --checks "$CHECKS"
  -H "Authorization: Bearer $API_CHECK_ADMIN_TOKEN"
  # All four phases (examples, coverage, fuzzing, stateful), bounded per operation and
  # reproducible; NUL characters included, since PostgreSQL refuses them in text.
  --max-examples "$MAX_EXAMPLES"
  --seed "$SEED"
  --generation-allow-x00 true
  # One worker: with threads, hypothesis's ast.parse hit a SystemError (AST recursion
  # depth mismatch) on CPython 3.11.7; one worker keeps the run reliable and still short.
  --workers 1
  --request-timeout 20
  --no-color
  --report "junit,har"
  --report-dir "$WORK/schemathesis"
)
set +e
timeout --signal=INT --kill-after=30 "$TIME_LIMIT" \
  "$VENV/bin/schemathesis" run "$BASE/api-docs/openapi.json" "${ST_ARGS[@]}" 2>&1 |
  tee "$WORK/schemathesis.log"
st_status=${PIPESTATUS[0]}
set -e
if [[ $st_status == 0 ]]; then
  pass "schemathesis ($CHECKS; $MAX_EXAMPLES examples per operation, seed $SEED)"
elif [[ $st_status == 124 || $st_status == 130 ]]; then
  fail "schemathesis did not finish within ${TIME_LIMIT}s"
else
  fail "schemathesis found problems (exit $st_status; see above and ${WORK#"$ROOT"/}/schemathesis)"
fi

step "6. The server is still healthy, answered no 5xx and logged no panic"
if kill -0 "$SERVER_PID" 2>/dev/null && "$PY" "$HELPER" wait "$BASE/health/ready" --timeout 10; then
  pass "the server is still up and ready"
else
  show_log "$WORK/server.log"
  fail "the server is still up and ready"
fi
if "$PY" "$HELPER" server-errors --base "$BASE"; then
  pass "no 5xx answer in the server's own metrics (workload and schemathesis)"
else
  fail "the server's metrics count 5xx answers"
fi
if grep -q 'panicked' "$WORK/server.log"; then
  grep 'panicked' "$WORK/server.log" | head -n 5
  fail "the server logged a panic"
else
  pass "the server logged no panic"
fi

summary
exit "$FAILED"
