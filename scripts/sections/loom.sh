#!/usr/bin/env bash
# loom models (loom-tests/tests/*.rs) with bounded preemptions, in release mode.
# Extra arguments go to `cargo test` (e.g. a test-name filter).
# A target dir of its own: the --cfg smcd_loom RUSTFLAGS would otherwise
# invalidate every host build.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-$PWD/target/loom}"
export RUSTFLAGS="--cfg smcd_loom ${LOOM_RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

cargo test -p loom-tests --release "$@"
