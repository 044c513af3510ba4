#!/usr/bin/env bash
# Host tests of the workspace's default members: unit, integration and doc tests.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_run cargo test --locked
# smcd-std's optional features (mio, tokio): their integration and doc tests.
smcd_run cargo test --locked -p smcd-std --all-features
