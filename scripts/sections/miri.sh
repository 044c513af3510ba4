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
# Every unit and integration test of smcd-core, and of smcd-lo its unit tests
# and the integration tests about who owns DMB memory (forged handles, every
# path a DMB leaves by). smcd-lo's data-transfer e2e tests (e2e_smcd,
# e2e_threads, e2e_send, e2e_stats, e2e_fallback, e2e_errors) exercise the
# same unsafe code with more bytes and take the interpreter over 10 minutes:
# they run under Miri in the `miri-all` section, only when named.
if [[ "${SMCD_MIRI_ALL:-0}" == 1 ]]; then
    smcd_run cargo "+$SMCD_NIGHTLY" miri test --locked -p smcd-core -p smcd-lo --lib --tests "$@"
else
    smcd_run cargo "+$SMCD_NIGHTLY" miri test --locked -p smcd-core --lib --tests "$@"
    smcd_run cargo "+$SMCD_NIGHTLY" miri test --locked -p smcd-lo --lib \
        --test e2e_hostile --test e2e_release "$@"
fi
