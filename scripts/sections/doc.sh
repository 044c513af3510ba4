#!/usr/bin/env bash
# API docs of the workspace's default members; any rustdoc warning (broken
# intra-doc link, missing docs, bad code block) fails.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

RUSTDOCFLAGS="-D warnings" smcd_run cargo doc --no-deps --locked
# smcd-std's feature-gated API (mio, tokio) too.
RUSTDOCFLAGS="-D warnings" smcd_run cargo doc --no-deps --locked -p smcd-std --all-features
