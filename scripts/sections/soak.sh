#!/usr/bin/env bash
# The soak (explicit only: `scripts/test soak`): for SMCD_SOAK_SECS seconds
# (default 600), at the same time,
#   - smcd-std's crash suite in soak mode: API processes connect, transfer,
#     close and get killed with SIGKILL, case after case, while one steady
#     connection to a child that is never killed echoes checked bytes;
#   - smcd-preload's crash suite in soak mode: the same under `smcd run`
#     (a plain std::net survivor program and killed peer programs).
# Zero failed iterations, zero wrong or missing bytes on the steady
# connection, and fds back at their start; RSS and fds are sampled (start,
# end, max are printed). Everything binds 127.0.0.1; every wait is bounded.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export SMCD_SOAK_SECS="${SMCD_SOAK_SECS:-600}"
# Each case of the smcd run suite runs this many kills per turn.
export SMCD_CRASH_ITERS="${SMCD_CRASH_ITERS:-10}"
limit=$((SMCD_SOAK_SECS + 300))

# Build first (so that the two runs start together), then run both.
smcd_run cargo build --locked -p smcd-cli -p smcd-preload
log="$(mktemp -d /tmp/smcd-soak.XXXXXX)"
trap 'rm -rf "$log"' EXIT
# The two test binaries, run directly (two cargo processes would wait for
# each other's lock on the target directory).
cargo test --locked --no-run -p smcd-std --test crash -p smcd-preload --test crash_run 2>&1 | tee "$log/build"
binary() { sed -n "s|.*Executable tests/$1.rs (\(.*\))|\1|p" "$log/build" | tail -1; }
api_bin="$(binary crash)"
run_bin="$(binary crash_run)"
[[ -x "$api_bin" && -x "$run_bin" ]] || smcd_die "the crash test binaries were not built"
smcd_log "soak for ${SMCD_SOAK_SECS}s: API processes and programs under smcd run together"
(cd smcd-std && exec timeout "$limit" "$api_bin") >"$log/api" 2>&1 &
api=$!
(cd smcd-preload && exec timeout "$limit" "$run_bin" --nocapture) >"$log/run" 2>&1 &
run=$!
status=0
wait "$api" || status=1
wait "$run" || status=1
grep '^soak' "$log/api" || true
grep -E '^crash_run: ([0-9]+ kills|all:|the survivor)' "$log/run" || true
if [[ $status != 0 ]]; then
    grep -h 'FAILED' "$log/api" "$log/run" | head -20 || true
    smcd_die "soak failed"
fi
smcd_log "soak: passed"
