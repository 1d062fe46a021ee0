#!/usr/bin/env bash
# Benchmarks of the billing service (docs/benchmarks.md): builds the release binaries, then
#   1. billing-bench webhooks  — signed events at 1, 8 and 32 connections against a fresh
#      database given a history, the PostgreSQL ceiling (pgbench, same statements) and DB
#      checks per level;
#   2. billing-bench checkout  — the Stripe-calling endpoints' own overhead over the fake;
#   3. billing-bench lifecycle — events made by the Stripe emulator (checkouts paid, then a
#      test clock advanced a month) delivered to the service, and DB checks after;
#   4. billing-bench access    — the access check at 32 connections, p50/p99;
#   5. billing-bench lifecycle --catchup — the same history with every webhook dropped,
#      one catch-up pass over Stripe's Events API timed, without a limit and then with
#      the emulator refusing calls over 25/s, and DB checks after.
# Needs PostgreSQL (PG_URL, default postgres://postgres@127.0.0.1:5432, a superuser: the
# benchmark drops and creates the database `billing_bench`), psql and pgbench on PATH.
#
# Options are passed to the webhook benchmark, e.g.
#   bash scripts/bench.sh --duration-secs 10 --levels 8,32 --server-env HTTP_WORKERS=2
# BENCH_SKIP_CHECKOUT=1 skips the checkout benchmark; BENCH_CHECKOUT_SECS sets its phases.
# BENCH_SKIP_LIFECYCLE=1 skips the lifecycle benchmark; BENCH_LIFECYCLE_TENANTS sets its size.
# BENCH_SKIP_ACCESS=1 skips the access benchmark; BENCH_ACCESS_SECS sets its length.
# BENCH_SKIP_CATCHUP=1 skips the catch-up benchmark; BENCH_CATCHUP_TENANTS sets its size.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
# TLS to a PostgreSQL on the same machine only burns CPU (it was 40% of the throughput here);
# libpq's PG* variables reach both the service and pgbench, so both run without it.
export PGSSLMODE="${PGSSLMODE:-disable}"
for tool in psql pgbench; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is not on PATH" >&2; exit 1; }
done

# The service's pool is sized for the database it shares this machine with: about two
# connections per core of the database server, plus one (docs/benchmarks.md, fourth round:
# the default 10 queues more statements than 2 cores can run, and the tail grows). Pass
# --server-env DATABASE_MAX_CONNECTIONS=... to measure another size.
pool=()
case " $* " in
  *DATABASE_MAX_CONNECTIONS=*) ;;
  *) pool=(--server-env "DATABASE_MAX_CONNECTIONS=$(( 2 * $(nproc) + 1 ))") ;;
esac

cargo build --release -p billing-server -p billing-bench
mkdir -p target/bench
status=0
./target/release/billing-bench webhooks --pg "$PG_URL" \
  --markdown-out target/bench/webhooks.md "${pool[@]}" "$@" || status=$?
if [ "${BENCH_SKIP_CHECKOUT:-0}" != 1 ]; then
  ./target/release/billing-bench checkout --pg "$PG_URL" \
    --duration-secs "${BENCH_CHECKOUT_SECS:-8}" \
    --markdown-out target/bench/checkout.md || status=$?
fi
if [ "${BENCH_SKIP_LIFECYCLE:-0}" != 1 ]; then
  ./target/release/billing-bench lifecycle --pg "$PG_URL" \
    --tenants "${BENCH_LIFECYCLE_TENANTS:-300}" \
    --markdown-out target/bench/lifecycle.md || status=$?
fi
if [ "${BENCH_SKIP_ACCESS:-0}" != 1 ]; then
  ./target/release/billing-bench access --pg "$PG_URL" "${pool[@]}" \
    --duration-secs "${BENCH_ACCESS_SECS:-20}" \
    --markdown-out target/bench/access.md || status=$?
fi
if [ "${BENCH_SKIP_CATCHUP:-0}" != 1 ]; then
  ./target/release/billing-bench lifecycle --catchup --pg "$PG_URL" \
    --tenants "${BENCH_CATCHUP_TENANTS:-500}" \
    --markdown-out target/bench/catchup.md || status=$?
  ./target/release/billing-bench lifecycle --catchup --rate-limit 25 --pg "$PG_URL" \
    --tenants "${BENCH_CATCHUP_TENANTS:-500}" \
    --markdown-out target/bench/catchup-rate-limited.md || status=$?
fi
echo "tables written to target/bench/{webhooks,checkout,lifecycle,access,catchup,catchup-rate-limited}.md"
exit $status
