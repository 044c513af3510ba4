#!/usr/bin/env bash
# The CLC + CDC wire layer on its own: smcd-core's wire unit tests, the
# spec-vector and round-trip tests, and the `smcd clc` CLI tests. Runs only
# when named (`scripts/test wire`); a full run covers it in `test`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

smcd_run cargo test --locked -p smcd-core --lib wire::
smcd_run cargo test --locked -p smcd-core --test vectors --test wire_clc --test wire_proptest
smcd_run cargo test --locked -p smcd-cli
