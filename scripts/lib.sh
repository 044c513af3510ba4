# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/sections/*.sh.
#
# Source it from a section script with:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# Sourcing is idempotent and changes the working directory to the
# repository root.

if [[ -z "${SMCD_LIB_LOADED:-}" ]]; then
    SMCD_LIB_LOADED=1

    SMCD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    export SMCD_ROOT
    cd "$SMCD_ROOT" || exit 1

    # The pinned toolchain, read from rust-toolchain.toml so there is one source of truth.
    SMCD_TOOLCHAIN="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
    # The bare-metal targets every no_std build is checked against.
    SMCD_NOSTD_TARGETS=(
        thumbv7em-none-eabihf
        thumbv6m-none-eabi
        riscv64gc-unknown-none-elf
        x86_64-unknown-none
        aarch64-unknown-none
    )
    export SMCD_TOOLCHAIN

    # Never let rustup pick or update a toolchain behind our back.
    export RUSTUP_AUTO_INSTALL=0
fi

# Print a progress line to stderr.
smcd_log() {
    printf '==> %s\n' "$*" >&2
}

# Print an error line to stderr and exit 1.
smcd_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Print a command, then run it.
smcd_run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

# smcd_ensure_toolchain TOOLCHAIN [component...] [-t target...]
# Make sure TOOLCHAIN with the given components and targets is installed. Quiet
# when nothing is missing. An installed toolchain is never updated (`rustup
# toolchain install` would move a channel such as nightly to its newest build):
# only the missing components and targets are added to it.
smcd_ensure_toolchain() {
    local toolchain="$1"
    shift
    local -a components=() targets=()
    local mode=c
    local item
    for item in "$@"; do
        case "$item" in
            -t) mode=t ;;
            *) if [[ "$mode" == c ]]; then components+=("$item"); else targets+=("$item"); fi ;;
        esac
    done

    if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
        smcd_log "installing toolchain $toolchain (components: ${components[*]:-none}; targets: ${targets[*]:-host})"
        local -a args=(toolchain install "$toolchain" --profile minimal --no-self-update)
        for item in "${components[@]}"; do args+=(-c "$item"); done
        for item in "${targets[@]}"; do args+=(-t "$item"); done
        rustup "${args[@]}"
        return
    fi

    local have_components have_targets
    local -a missing_components=() missing_targets=()
    have_components="$(rustup component list --installed --toolchain "$toolchain")"
    have_targets="$(rustup target list --installed --toolchain "$toolchain")"
    for item in "${components[@]}"; do
        grep -q "^${item}\(-\|$\)" <<<"$have_components" || missing_components+=("$item")
    done
    for item in "${targets[@]}"; do
        grep -qx "$item" <<<"$have_targets" || missing_targets+=("$item")
    done
    if [[ ${#missing_components[@]} -gt 0 ]]; then
        smcd_log "adding to $toolchain: ${missing_components[*]}"
        rustup component add --toolchain "$toolchain" "${missing_components[@]}"
    fi
    if [[ ${#missing_targets[@]} -gt 0 ]]; then
        smcd_log "adding to $toolchain: ${missing_targets[*]}"
        rustup target add --toolchain "$toolchain" "${missing_targets[@]}"
    fi
}

# The pinned toolchain with everything the default sections need.
smcd_ensure_pinned() {
    smcd_ensure_toolchain "$SMCD_TOOLCHAIN" clippy rustfmt rust-src llvm-tools \
        -t "${SMCD_NOSTD_TARGETS[@]}"
}

# The nightly the miri and fuzz sections use, pinned so that local runs and CI
# agree: the build a fresh machine of ours carries as `nightly` (1.97.0,
# e50aa6fba), whose dist has miri. Override with SMCD_NIGHTLY.
SMCD_NIGHTLY="${SMCD_NIGHTLY:-nightly-2026-05-20}"

# smcd_ensure_nightly [component...]
# For the sections that need nightly (miri, fuzz): installs $SMCD_NIGHTLY if it
# is missing; otherwise adds just the missing components to it.
smcd_ensure_nightly() {
    smcd_ensure_toolchain "$SMCD_NIGHTLY" "$@"
}

# smcd_ensure_cargo_tool BINARY CRATE [cargo install args...]
# Install a cargo subcommand or tool from crates.io with the pinned toolchain
# unless BINARY is already on PATH.
smcd_ensure_cargo_tool() {
    local binary="$1" crate="$2"
    shift 2
    command -v "$binary" >/dev/null 2>&1 && return 0
    smcd_log "installing $crate"
    cargo install --locked --quiet "$crate" "$@"
}
