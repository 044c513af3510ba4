#!/usr/bin/env bash
# Section `targets`: the bare-metal and unikernel images of targets/, booted in QEMU.
#
#   bash scripts/sections/targets.sh              both of the following
#   bash scripts/sections/targets.sh boot         lint, build and boot every image; print sizes
#   bash scripts/sections/targets.sh fail-paths   prove that a broken image fails its boot
#
# Each image (targets/<name>) runs the shared scenario (targets/scenario) and
# exits QEMU with its verdict; the QEMU exit status (under `timeout`) is the
# only thing that decides pass or fail. Images are built with the release
# profile at opt-level "z" with one codegen unit (firmware-style, no LTO); the
# size figures of the Cortex-M4
# image come from the same build (docs/embedding.md explains them).
#
# Build-time fault injection: SMCD_TARGETS_INJECT=checksum|panic|fault makes
# every image fail (see targets/scenario/src/inject.rs), so
# `SMCD_TARGETS_INJECT=checksum bash scripts/sections/targets.sh boot` must
# fail. `fail-paths` builds and boots each image with each injection and fails
# unless every boot fails promptly (non-zero, not the timeout's 124), then
# rebuilds the normal images.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Seconds one QEMU boot may take before it counts as hung (runs take < 1 s).
QEMU_TIMEOUT_S="${SMCD_QEMU_TIMEOUT_S:-60}"
# Status `timeout` returns when it had to kill QEMU.
TIMEOUT_STATUS=124

export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}"
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-$SMCD_ROOT/target}")"
export CARGO_TARGET_DIR="$target_dir"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# name, Rust target, boot function (run with the ELF path; returns the verdict).
IMAGES=(
    "riscv64-virt riscv64gc-unknown-none-elf boot_riscv64_virt"
    "cortex-m4 thumbv7em-none-eabihf boot_cortex_m4"
    "cortex-m0 thumbv6m-none-eabi boot_cortex_m0"
    "aarch64-virt aarch64-unknown-none boot_aarch64_virt"
    "x86_64-none x86_64-unknown-none boot_x86_64_none"
)

# QEMU binary -> Debian package.
declare -A QEMU_PACKAGES=(
    [qemu-system-riscv64]=qemu-system-misc
    [qemu-system-arm]=qemu-system-arm
    [qemu-system-aarch64]=qemu-system-arm
    [qemu-system-x86_64]=qemu-system-x86
)

ensure_qemu() {
    local bin
    local -A missing=()
    for bin in "${!QEMU_PACKAGES[@]}"; do
        command -v "$bin" >/dev/null 2>&1 || missing["${QEMU_PACKAGES[$bin]}"]=1
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    smcd_log "installing ${!missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${!missing[@]}"
}

# Every boot under a timeout, stdin closed. The virt and q35 machines also
# get `-nic none`: their default NIC wants option ROMs we do not install.
qemu() {
    timeout "$QEMU_TIMEOUT_S" "$@" </dev/null
}

boot_riscv64_virt() {
    qemu qemu-system-riscv64 -machine virt -bios none -m 128M -nographic -nic none -kernel "$1"
}

# QEMU's stdout carries defmt frames; pipefail keeps QEMU's status.
boot_cortex_m4() {
    qemu qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
        -semihosting-config enable=on,target=native -kernel "$1" | defmt-print -e "$1"
}

boot_cortex_m0() {
    qemu qemu-system-arm -machine mps2-an385 -nographic \
        -semihosting-config enable=on,target=native -kernel "$1"
}

boot_aarch64_virt() {
    qemu qemu-system-aarch64 -machine virt -cpu cortex-a53 -m 128M -nographic -nic none \
        -semihosting-config enable=on,target=native -kernel "$1"
}

# isa-debug-exit makes QEMU exit with (v << 1) | 1: the image writes 0x10 on
# pass (33). A plain 0 means QEMU stopped for another reason (a triple fault
# under -no-reboot): failure.
boot_x86_64_none() {
    local status=0
    qemu qemu-system-x86_64 -machine q35 -m 128M -display none -vga none -serial stdio -nic none \
        -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$1" || status=$?
    case "$status" in
        33) return 0 ;;
        0) return 125 ;;
        *) return "$status" ;;
    esac
}

elf_of() { # NAME TARGET
    echo "$target_dir/$2/release/smcd-target-$1"
}

build_image() { # NAME TARGET [cargo args...]
    local name="$1" target="$2"
    shift 2
    smcd_run cargo build --locked --quiet --release -p "smcd-target-$name" --target "$target" "$@"
}

# Boot one image; prints its output and verdict, returns QEMU's status.
boot_image() { # NAME TARGET BOOT_FN
    local elf status=0 start
    elf="$(elf_of "$1" "$2")"
    start="$EPOCHREALTIME"
    smcd_log "booting $1 ($2)"
    "$3" "$elf" || status=$?
    awk -v n="$1" -v s="$status" -v t0="$start" -v t1="$EPOCHREALTIME" \
        'BEGIN { printf "%s: QEMU exit status %d in %.2f s\n", n, s, t1 - t0 }'
    return "$status"
}

llvm_tool() {
    local path
    path="$(compgen -G "$(rustc --print sysroot)/lib/rustlib/*/bin/$1" | head -n 1)"
    [[ -n "$path" ]] || smcd_die "$1 not found: the llvm-tools component is missing"
    echo "$path"
}

# Sum symbol sizes of the crates matching $2 (regex on the demangled crate
# name) by kind: "text data bss defmt", where defmt is the part of text in
# `defmt::Format` impls (present because the image enables the defmt feature).
# Anonymous constants carry no crate name, so .rodata is not attributed.
crate_sizes() { # ELF CRATE_REGEX
    "$(llvm_tool llvm-nm)" --print-size --size-sort --radix=d --demangle "$1" | awk -v re="$2" '
        function crate_of(path) {
            sub(/^(_\$LT\$|[<&*])+/, "", path)
            return match(path, /^[A-Za-z0-9_]+/) ? substr(path, 1, RLENGTH) : ""
        }
        # Owner crate of "<Type as Trait>::f" (or "_$LT$Type$u20$as$u20$Trait..."
        # when llvm-nm leaves a legacy-mangled impl path half demangled): the
        # crate of Type if it is a path, else (a generic parameter or a
        # primitive: `<T as smcd_core::X>`) the crate of Trait.
        function impl_crate(path,    at, skip) {
            at = index(path, " as "); skip = 4
            if (!at) { at = index(path, "$u20$as$u20$"); skip = 12 }
            if (!at || substr(path, 1, at) ~ /::|\.\./) return crate_of(path)
            return crate_of(substr(path, at + skip))
        }
        # Identical code folded to one address is counted once.
        seen[$1]++ { next }
        {
            name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
            owner = (name ~ /^(_\$LT\$|<)/) ? impl_crate(name) : crate_of(name)
            if (owner !~ re) next
            kind = tolower($3); size = $2 + 0
            if (kind == "t") { text += size; if (name ~ /defmt/) fmt += size }
            else if (kind == "d") data += size
            else if (kind == "b") bss += size
        }
        END { printf "%d %d %d %d\n", text, data, bss, fmt }'
}

berkeley() { # ELF -> "text data bss"
    "$(llvm_tool llvm-size)" "$1" | awk 'NR == 2 { print $1, $2, $3 }'
}

report_sizes() { # ELF BASELINE_ELF
    local text data bss btext bdata bbss ctext cdata cbss cdefmt
    read -r text data bss < <(berkeley "$1")
    read -r btext bdata bbss < <(berkeley "$2")
    read -r ctext cdata cbss cdefmt < <(crate_sizes "$1" '^smcd_(core|lo)$')
    echo
    echo "Cortex-M4 image sizes (thumbv7em-none-eabihf, release, opt-level $CARGO_PROFILE_RELEASE_OPT_LEVEL, codegen-units $CARGO_PROFILE_RELEASE_CODEGEN_UNITS), bytes:"
    printf '  %-52s %8s %8s %8s\n' "" .text .data .bss
    printf '  %-52s %8d %8d %8d\n' "whole image (llvm-size; .text incl. .rodata)" "$text" "$data" "$bss"
    printf '  %-52s %8d %8d %8d\n' "runtime only (--features baseline)" "$btext" "$bdata" "$bbss"
    printf '  %-52s %8d %8d %8d\n' "image - runtime (smcd + scenario + what they pull)" \
        "$((text - btext))" "$((data - bdata))" "$((bss - bbss))"
    printf '  %-52s %8d %8d %8d\n' "smcd-core + smcd-lo symbols (llvm-nm by crate)" \
        "$ctext" "$cdata" "$cbss"
    printf '  %-52s %8d\n' "  of which defmt::Format impls" "$cdefmt"
    local goal=$((32 * 1024))
    if ((ctext <= goal)); then
        echo "  goal smcd-core + smcd-lo .text <= $goal: met ($ctext)"
    else
        echo "  goal smcd-core + smcd-lo .text <= $goal: NOT met ($ctext)"
    fi
}

run_boot() {
    # The scenario's host unit tests (not a default workspace member).
    smcd_run cargo test --locked --quiet -p smcd-scenario

    local -a failed=()
    local entry name target boot
    for entry in "${IMAGES[@]}"; do
        read -r name target boot <<<"$entry"
        smcd_run cargo clippy --locked --quiet -p "smcd-target-$name" -p smcd-scenario \
            --target "$target" -- -D warnings
        if [[ "$name" == cortex-m4 ]]; then
            build_image "$name" "$target" --features baseline
            cp "$(elf_of "$name" "$target")" "$target_dir/$target/release/cortex-m4-baseline.elf"
        fi
        build_image "$name" "$target"
        boot_image "$name" "$target" "$boot" || failed+=("$name")
    done
    report_sizes "$(elf_of cortex-m4 thumbv7em-none-eabihf)" \
        "$target_dir/thumbv7em-none-eabihf/release/cortex-m4-baseline.elf"
    if [[ ${#failed[@]} -gt 0 ]]; then
        smcd_die "images failed: ${failed[*]}"
    fi
    echo "targets: all ${#IMAGES[@]} images passed in QEMU"
}

# Every image built with every injection must fail its boot, without hanging.
run_fail_paths() {
    local -a wrong=()
    local inject entry name target boot status
    for inject in checksum panic fault; do
        for entry in "${IMAGES[@]}"; do
            read -r name target boot <<<"$entry"
            SMCD_TARGETS_INJECT="$inject" build_image "$name" "$target"
            status=0
            boot_image "$name" "$target" "$boot" || status=$?
            if [[ "$status" -eq 0 || "$status" -eq "$TIMEOUT_STATUS" ]]; then
                wrong+=("$name/$inject (status $status)")
            fi
        done
    done
    # Leave normal builds behind.
    for entry in "${IMAGES[@]}"; do
        read -r name target boot <<<"$entry"
        build_image "$name" "$target"
    done
    if [[ ${#wrong[@]} -gt 0 ]]; then
        smcd_die "injected failures not reported as failures: ${wrong[*]}"
    fi
    echo "targets fail-paths: every injected failure failed its boot promptly"
}

ensure_qemu
# Installed with cargo's defaults, not this section's target dir and profile.
(
    unset CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_OPT_LEVEL
    smcd_ensure_cargo_tool defmt-print defmt-print
)
# Called as plain commands (never in `&&`/`||`/`if`), so that `set -e` stays
# in force inside them and a failed build never boots a stale image.
case "${1:-}" in
    "")
        run_boot
        run_fail_paths
        ;;
    boot) run_boot ;;
    fail-paths) run_fail_paths ;;
    *) smcd_die "usage: $0 [boot|fail-paths]" ;;
esac
