#!/usr/bin/env bash
# Delivery throughput to the loopback Medplum partner through the gateway, against posting the
# same requests directly at the same concurrency, for write_mode transaction and per-resource
# (issue 11's goal: at least 0.9x direct). See benchmarks/load/README.md.
#   benchmarks/load/delivery-ratio.sh [--patients N] [--per-patient K] [--concurrency C] [--modes transaction,per-resource]
# GW_BIN: the fhir-gateway binary (default: a release build, made if missing).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gw_bin=${GW_BIN:-$repo/build/release/gateway/main/fhir-gateway}
if [[ ! -x $gw_bin ]]; then
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release --target fhir-gateway >/dev/null)
fi
"$repo/tests/partner/ensure-deps.sh" >/dev/null
"$repo/certs/make-dev-certs.sh" "$work/pki" >/dev/null
python3 "$repo/benchmarks/load/delivery_ratio.py" --repo "$repo" --gateway "$gw_bin" --pki "$work/pki" --work "$work" "$@"
