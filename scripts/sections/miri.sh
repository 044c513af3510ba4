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
miri=(cargo "+$SMCD_NIGHTLY" miri test --locked --no-fail-fast)

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
# all of them. Lane 2 is the smcd-core integration tests named below and
# smcd-lo's e2e_hostile (about half of the CPU time, docs/reliability.md
# "Verification gaps" has the split); lane 1 is smcd-core's unit tests,
# every other smcd-core integration test (a new test file lands there
# unlisted) and smcd-lo's unit tests and e2e_release.
lane2=(clc_fallback conn_data conn_hostile endpoint vectors wire_clc)
lane1=()
for file in smcd-core/tests/*.rs; do
    name="$(basename "$file" .rs)"
    [[ " ${lane2[*]} " == *" $name "* ]] || lane1+=("$name")
done

smcd_run "${miri[@]}" --no-run -p smcd-core --lib --tests
smcd_run "${miri[@]}" --no-run -p smcd-lo --lib --test e2e_hostile --test e2e_release

logs="$CARGO_TARGET_DIR/lanes"
mkdir -p "$logs"

# cpu_ms: set CPU_MS to the user + system CPU time of this shell's finished
# children, in ms (`times` must run in this shell, not in a subshell).
cpu_ms() {
    local file="$logs/times.$BASHPID"
    times >"$file"
    CPU_MS="$(awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000
    }' "$file")"
}

# one NAME CARGO-ARGS...: one test binary; logs its wall and CPU seconds
# (CPU time is what CI's idle cores will take, whatever the load here).
one() {
    local name="$1" t0=$SECONDS c0 rc=0
    shift
    cpu_ms
    c0=$CPU_MS
    smcd_run "${miri[@]}" "$@" || rc=$?
    cpu_ms
    printf 'miri binary %-28s wall %4d s  cpu %6.1f s  exit %d\n' "$name" \
        $((SECONDS - t0)) "$((CPU_MS - c0))e-3" "$rc" >>"$logs/summary.$BASHPID"
    return "$rc"
}

# lane N BINARY...: run the binaries of lane N one after the other into its
# log (every one, even after a failure), ending with the lane's figures.
lane() {
    local n="$1" t0=$SECONDS rc=0 name
    shift
    : >"$logs/summary.$BASHPID"
    {
        for name in "$@"; do
            case "$name" in
                core-lib) one "$name" -p smcd-core --lib "${extra[@]}" || rc=1 ;;
                lo-lib) one "$name" -p smcd-lo --lib "${extra[@]}" || rc=1 ;;
                e2e_*) one "$name" -p smcd-lo --test "$name" "${extra[@]}" || rc=1 ;;
                *) one "$name" -p smcd-core --test "$name" "${extra[@]}" || rc=1 ;;
            esac
        done
        cat "$logs/summary.$BASHPID"
        cpu_ms
        echo "miri lane $n: exit $rc, wall $((SECONDS - t0)) s, cpu $((CPU_MS / 1000)) s"
    } >"$logs/lane$n.log" 2>&1
    rm -f "$logs/summary.$BASHPID" "$logs/times.$BASHPID"
    return "$rc"
}

extra=("$@")
lane 1 core-lib "${lane1[@]}" lo-lib e2e_release &
pid1=$!
lane 2 "${lane2[@]}" e2e_hostile &
pid2=$!
status=0
wait "$pid1" || status=1
wait "$pid2" || status=1
for n in 1 2; do
    smcd_log "miri lane $n"
    cat "$logs/lane$n.log"
done
grep -h '^miri ' "$logs/lane1.log" "$logs/lane2.log"
exit "$status"
