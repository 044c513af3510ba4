#!/usr/bin/env bash
# Formatting: rustfmt.toml at the root, no diff allowed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_run cargo fmt --all --check
