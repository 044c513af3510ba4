#!/usr/bin/env bash
# Mutation check (explicit-only, `scripts/test mutants`; about an hour on a
# shared 2-core machine): cargo-mutants rewrites the connection state machine
# (smcd-core/src/conn/) and the cursor arithmetic (smcd-core/src/cursor.rs)
# one mutant at a time and runs smcd-core's tests that drive them; every
# mutant must be caught. The report (mutants.out/: caught.txt, missed.txt,
# timeout.txt, unviable.txt, outcomes.json) lands in <target>/mutants/.
# Which surviving mutants are equivalent and why: docs/reliability.md,
# "Verification gaps". Extra arguments go to cargo-mutants (e.g. `--list`,
# `--file smcd-core/src/cursor.rs` to narrow it, `-j 2` on a quiet machine).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_ensure_cargo_tool cargo-mutants cargo-mutants --version 27.1.0

out="$(realpath -m "${CARGO_TARGET_DIR:-$SMCD_ROOT/target}")/mutants"
mkdir -p "$out/tmp"
# Each mutant is built in a copy of the tree (under TMPDIR, removed after the
# run) with its own target directory; a shared CARGO_TARGET_DIR would have
# the mutated and the clean crate overwrite each other's artefacts.
unset CARGO_TARGET_DIR
export TMPDIR="$out/tmp"
# No debug info: each mutant relinks the test binaries, and links dominate.
export CARGO_PROFILE_DEV_DEBUG=0
# smcd-core's unit tests and the integration tests over connections (the
# CLC, wire and vector tests never reach conn/ or cursor.rs).
tests=(--lib --test conn_data --test conn_hostile --test conn_close --test endpoint --test blocking)
args=()
for t in "${tests[@]}"; do args+=(--cargo-test-arg="$t"); done

smcd_run cargo mutants --no-shuffle -j "${MUTANTS_JOBS:-1}" \
    --file 'smcd-core/src/conn/*.rs' --file smcd-core/src/cursor.rs \
    --output "$out" "${args[@]}" "$@"
