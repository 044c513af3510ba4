#!/usr/bin/env bash
# smcd-core and smcd-lo unit and integration tests under Miri (nightly):
# undefined behaviour (use after free, data races, aliasing) in the `unsafe`
# of `mem`, the spin lock, the memory providers and everything built on them.
# Tests too slow for the interpreter carry `#[cfg_attr(miri, ignore)]`.
# Miri gets a target directory of its own (<target>/miri).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_ensure_nightly miri rust-src

CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$SMCD_ROOT/target}")/miri"
export CARGO_TARGET_DIR
# Proptest cases are slow under the interpreter: keep the properties, fewer cases.
export PROPTEST_CASES="${PROPTEST_CASES:-8}"
# proptest reads the working directory (failure persistence) and seeds from the OS.
# smcd-core itself never allocates (no_std, no alloc), so the only heap
# memory is test fixtures, some leaked on purpose for `DmbMem::from_static`.
# Weak-memory emulation is off: Miri cannot model mixed-size atomic accesses
# to one location (the byte-wise head and tail of a copy over a word that was
# stored as a 64-bit atomic) and aborts on them; data races are still found.
export MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-ignore-leaks -Zmiri-disable-weak-memory-emulation ${MIRIFLAGS:-}"

smcd_run cargo "+$SMCD_NIGHTLY" miri setup --quiet
smcd_run cargo "+$SMCD_NIGHTLY" miri test --locked -p smcd-core -p smcd-lo --lib --tests "$@"
