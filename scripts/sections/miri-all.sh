#!/usr/bin/env bash
# Every unit and integration test of smcd-core and smcd-lo under Miri (the
# `miri` section leaves out smcd-lo's data-transfer e2e tests for time).
# Runs only when named: `scripts/test miri-all`.
set -euo pipefail
SMCD_MIRI_ALL=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/miri.sh" "$@"
