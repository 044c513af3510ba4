#!/usr/bin/env bash
# smcd-core and smcd-lo unit and integration tests under Miri (nightly):
# undefined behaviour (use after free, data races, aliasing) in the `unsafe`
# of `mem`, the spin lock, the memory providers and everything built on them.
# Tests shrink their sizes under `cfg(miri)` (docs/testing.md, "miri"); the
# property tests of safe-only code are `cfg_attr(miri, ignore)`.
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
miri=(cargo "+$SMCD_NIGHTLY" miri test --locked)

if [[ "${SMCD_MIRI_ALL:-0}" == 1 ]]; then
    smcd_run "${miri[@]}" -p smcd-core -p smcd-lo --lib --tests "$@"
    exit 0
fi

# Every unit and integration test of smcd-core, and of smcd-lo its unit tests
# and the integration tests about who owns DMB memory (forged handles, every
# path a DMB leaves by). smcd-lo's data-transfer e2e tests (e2e_smcd,
# e2e_threads, e2e_send, e2e_stats, e2e_fallback, e2e_errors) exercise the
# same unsafe code with more bytes and take the interpreter over 10 minutes:
# they run under Miri in the `miri-all` section, only when named.
#
# The interpreter runs one test at a time, so the test binaries are split
# into two lanes that run side by side on CI's two cores, after one build of
# all of them. Lane 2 is the integration tests named below (the slow half,
# measured in docs/testing.md); lane 1 is smcd-core's unit tests, smcd-lo's
# tests and every other smcd-core integration test, so that a new test file
# lands in a lane without anyone listing it.
lane2=(clc_fallback conn_data conn_hostile endpoint vectors)
lane1=()
for file in smcd-core/tests/*.rs; do
    name="$(basename "$file" .rs)"
    [[ " ${lane2[*]} " == *" $name "* ]] || lane1+=("$name")
done
core_tests() {
    local name
    for name in "$@"; do printf -- '--test\n%s\n' "$name"; done
}
mapfile -t lane1_args < <(core_tests "${lane1[@]}")
mapfile -t lane2_args < <(core_tests "${lane2[@]}")
lo_args=(-p smcd-lo --lib --test e2e_hostile --test e2e_release)

smcd_run "${miri[@]}" --no-run -p smcd-core --lib --tests
smcd_run "${miri[@]}" --no-run "${lo_args[@]}"

logs="$CARGO_TARGET_DIR/lanes"
mkdir -p "$logs"
run_lane1() {
    smcd_run "${miri[@]}" -p smcd-core --lib "${lane1_args[@]}" "$@" &&
        smcd_run "${miri[@]}" "${lo_args[@]}" "$@"
}
run_lane2() {
    smcd_run "${miri[@]}" -p smcd-core "${lane2_args[@]}" "$@"
}
# lane N ARGS...: run lane N into its log, ending with its wall time.
lane() {
    local n="$1" start=$SECONDS rc=0
    shift
    "run_lane$n" "$@" >"$logs/lane$n.log" 2>&1 || rc=$?
    echo "lane $n: exit $rc after $((SECONDS - start)) s" >>"$logs/lane$n.log"
    return "$rc"
}
lane 1 "$@" &
pid1=$!
lane 2 "$@" &
pid2=$!
status=0
wait "$pid1" || status=1
wait "$pid2" || status=1
for n in 1 2; do
    smcd_log "miri lane $n"
    cat "$logs/lane$n.log"
done
exit "$status"
