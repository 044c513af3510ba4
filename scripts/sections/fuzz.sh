#!/usr/bin/env bash
# Fuzz the wire parsers, the CLC engine and the CDC receive path: every
# cargo-fuzz target of fuzz/ runs for ${FUZZ_SECONDS:-60} s on nightly; a
# crash fails the section (its input is
# left in fuzz/artifacts/<target>/). The corpus of each target is seeded from
# the test vectors in smcd-core/tests/vectors/ (decoded from hex) and grows in
# fuzz/corpus/<target>/, which git ignores.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

seconds="${FUZZ_SECONDS:-60}"
vectors="smcd-core/tests/vectors"

# target:vector-glob:max-input-bytes (CLC: beyond Linux's 652-byte buffer).
targets=(
    "clc_parse:clc-* bad-* declined-*:1024"
    "cdc_header:cdc-*:64"
    "clc_engine::2048"
    "conn_rx::4096"
)

smcd_ensure_nightly
if ! cargo "+$SMCD_NIGHTLY" fuzz --version >/dev/null 2>&1; then
    smcd_log "installing cargo-fuzz"
    smcd_run cargo "+$SMCD_NIGHTLY" install cargo-fuzz --locked
fi

# seed TARGET GLOB...: decode the matching vectors into the target's corpus.
seed() {
    local target="$1"
    shift
    local corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    local glob file
    # Hand-made seeds (e.g. whole handshake streams for clc_engine).
    if [[ -d "fuzz/seeds/$target" ]]; then
        cp fuzz/seeds/"$target"/* "$corpus"/
    fi
    for glob in "$@"; do
        for file in "$vectors"/$glob; do
            [[ -e "$file" ]] || continue
            perl -0777 -ne 's/#[^\n]*//g; s/\s+//g; print pack("H*", $_)' \
                "$file" >"$corpus/vector-$(basename "$file" .hex)"
        done
    done
}

for entry in "${targets[@]}"; do
    IFS=: read -r target globs max_len <<<"$entry"
    # shellcheck disable=SC2086 # globs is a word list by design
    seed "$target" $globs
    smcd_run cargo "+$SMCD_NIGHTLY" fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1
done
