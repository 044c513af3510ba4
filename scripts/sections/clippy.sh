#!/usr/bin/env bash
# Lints: clippy on every target kind (lib, bins, tests, examples, benches) of the
# workspace's default members with all features; any warning fails.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_run cargo clippy --all-targets --all-features --locked -- -D warnings
