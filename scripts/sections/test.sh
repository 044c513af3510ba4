#!/usr/bin/env bash
# Host tests of the workspace's default members: unit, integration and doc tests.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_run cargo test --locked
# The process tests once more in release, where they move 1 GiB each way
# (debug builds move 8 MiB: the unoptimised data path is slow).
smcd_run cargo test --locked --release -p smcd-cli --test echo
# smcd-std's optional features (mio, tokio): their integration and doc tests.
smcd_run cargo test --locked -p smcd-std --all-features
