#!/usr/bin/env bash
# Bounded fuzzing of the Stripe webhook surface (fuzz/, cargo-fuzz + libFuzzer).
#
#   scripts/fuzz.sh [seconds-per-target]     (default 60)
#
# Runs each target for that long, prints one summary line per target and exits non-zero
# if any target crashed (panic, failed property, timeout or OOM). Crash inputs are left in
# fuzz/artifacts/<target>/; turn each into a test in
# crates/billing-stripe/tests/fuzz_regressions.rs.
#
# Environment:
#   FUZZ_TARGETS    space-separated targets (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER  none (default) | address. The crates under test forbid `unsafe`, so the
#                   default trades AddressSanitizer for throughput and a shorter build.
#
# Works on a stable toolchain: cargo-fuzz passes -Z flags, which stable rustc accepts when
# RUSTC_BOOTSTRAP=1 (set here for the fuzz build only).
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi
SANITIZER="${FUZZ_SANITIZER:-none}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    started=$(date +%s)
    cargo install cargo-fuzz --locked
    echo "fuzz: cargo-fuzz installed in $(($(date +%s) - started)) s" >&2
fi

export RUSTC_BOOTSTRAP=1
FUZZ_ARGS=(--sanitizer "$SANITIZER")
if [[ "$SANITIZER" != none ]]; then
    # A separate target dir per sanitizer, so that switching does not rebuild everything.
    FUZZ_ARGS+=(--target-dir "$ROOT/fuzz/target/sanitizer-$SANITIZER")
fi

read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"

started=$(date +%s)
cargo fuzz build "${FUZZ_ARGS[@]}" >&2
echo "fuzz: build took $(($(date +%s) - started)) s (sanitizer: $SANITIZER)" >&2

LOG_DIR="$ROOT/fuzz/target/logs"
mkdir -p "$LOG_DIR"
failed=()
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$ROOT/fuzz/corpus/$target"
    mkdir -p "$corpus"
    # Seeds are versioned in fuzz/seeds; the corpus dir is a git-ignored working set.
    if [[ -d "$ROOT/fuzz/seeds/$target" ]]; then
        cp -f "$ROOT/fuzz/seeds/$target"/* "$corpus"/
        chmod u+w "$corpus"/*
    fi
    log="$LOG_DIR/$target.log"
    status=0
    # The outer timeout only guards against a wedged process; libFuzzer's own
    # -max_total_time and per-input -timeout end the run normally.
    timeout --kill-after=10 $((SECONDS_PER_TARGET + 120)) \
        cargo fuzz run "${FUZZ_ARGS[@]}" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -n1)
    entries=$(find "$corpus" -type f | wc -l)
    if [[ $status -eq 0 ]]; then
        line="fuzz: $target: ok, ${runs:-?} executions in ${secs:-?} s (${rate:-?} exec/s), coverage ${cov:-?}, corpus $entries"
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        base64=$(sed -n 's/^Base64: //p' "$log" | tail -n1)
        line="fuzz: $target: CRASH (exit $status) after ${runs:-?} executions; input ${artifact:-in fuzz/artifacts/$target/}${base64:+ (base64 $base64)}; log $log"
        failed+=("$target")
        echo "---- last 60 lines of $log ----" >&2
        tail -n 60 "$log" >&2
    fi
    summary+=("$line")
    echo "$line"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    printf '%s\n' "${summary[@]}" >&2
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
