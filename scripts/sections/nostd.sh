#!/usr/bin/env bash
# no_std builds: smcd-core and smcd-lo for every bare-metal target, then a proof
# that neither pulls in the `alloc` crate: a tiny `#![no_std] #![no_main]` probe
# binary without a global allocator links both for each target. rustc refuses to
# link such a binary ("no global memory allocator found") as soon as any crate in
# its graph depends on `alloc`, so the probe fails exactly when alloc creeps in.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Crates that must stay no_std without alloc (with default features).
NOSTD_CRATES=(smcd-core smcd-lo)

# Extra cargo arguments per target: thumbv6m has no native compare-and-swap.
target_args() {
    case "$1" in
        thumbv6m-none-eabi) echo "--features smcd-core/critical-section" ;;
    esac
}

target_dir="$(realpath -m "${CARGO_TARGET_DIR:-$SMCD_ROOT/target}")"
export CARGO_TARGET_DIR="$target_dir"

package_args=()
for crate in "${NOSTD_CRATES[@]}"; do package_args+=(-p "$crate"); done

for target in "${SMCD_NOSTD_TARGETS[@]}"; do
    # shellcheck disable=SC2046 # target_args is a word list by design
    smcd_run cargo build --locked "${package_args[@]}" --target "$target" $(target_args "$target")
done

# The probe lives in the target directory, as its own workspace, so it is
# never part of the repository's workspace.
probe="$target_dir/nostd-probe"
mkdir -p "$probe/src"
{
    echo '[package]'
    echo 'name = "nostd-probe"'
    echo 'version = "0.0.0"'
    echo 'edition = "2024"'
    echo 'publish = false'
    echo
    echo '[workspace]'
    echo
    echo '[dependencies]'
    for crate in "${NOSTD_CRATES[@]}"; do
        echo "$crate = { path = \"$SMCD_ROOT/$crate\", default-features = false }"
    done
    echo
    echo '[profile.dev]'
    echo 'panic = "abort"'
} >"$probe/Cargo.toml"
{
    echo '//! Links the no_std crates into a binary that has no global allocator.'
    echo '#![no_std]'
    echo '#![no_main]'
    for crate in "${NOSTD_CRATES[@]}"; do echo "use ${crate//-/_} as _;"; done
    echo '#[panic_handler]'
    echo 'fn panic(_: &core::panic::PanicInfo<'"'"'_>) -> ! {'
    echo '    loop {}'
    echo '}'
} >"$probe/src/main.rs"
# Same dependency versions as the workspace.
cp Cargo.lock "$probe/Cargo.lock"

for target in "${SMCD_NOSTD_TARGETS[@]}"; do
    # shellcheck disable=SC2046
    if ! (cd "$probe" && smcd_run cargo "+$SMCD_TOOLCHAIN" build --quiet --target "$target" \
        $(target_args "$target")); then
        smcd_die "the no-allocator probe failed for $target: ${NOSTD_CRATES[*]} must link without the alloc crate (see the rustc error above)"
    fi
    echo "no alloc: ${NOSTD_CRATES[*]} link into an allocator-free $target binary"
done
