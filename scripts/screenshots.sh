#!/usr/bin/env bash
# Takes the screenshots of docs/screenshots/ anew: billing-server's browser tests (headless
# Chromium through chromedriver, the Stripe emulator's hosted pages and /api-docs) save
# them when BILLING_SCREENSHOTS_DIR is set.
#
#   scripts/screenshots.sh
#
# Needs Debian's chromium and chromium-driver (as .ci/run installs them) and the local
# PostgreSQL. Look at each PNG before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."

export BILLING_SCREENSHOTS_DIR="$PWD/docs/screenshots"
mkdir -p "$BILLING_SCREENSHOTS_DIR"
cargo nextest run -p billing-server --test browser --no-fail-fast
ls -l "$BILLING_SCREENSHOTS_DIR"
