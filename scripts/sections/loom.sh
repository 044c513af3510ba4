#!/usr/bin/env bash
# loom models (loom-tests/tests/*.rs) with bounded preemptions, in release mode
# with debug assertions. Extra arguments go to `cargo test` (e.g. a test-name
# filter). The build gets a target directory of its own (<target>/loom): the
# `--cfg smcd_loom` RUSTFLAGS would otherwise invalidate every host build.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$SMCD_ROOT/target}")/loom"
export CARGO_TARGET_DIR
export RUSTFLAGS="--cfg smcd_loom -C debug-assertions ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

smcd_run cargo test --locked -p loom-tests --release "$@"
