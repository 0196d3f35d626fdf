#!/usr/bin/env bash
# Builds fhir-gateway and runs every test: unit tests, the fuzz seed corpora, and the integration
# tests that start the real gateway and a real FHIR server (tests/partner) on 127.0.0.1.
#   gateway/scripts/test.sh [PRESET]     PRESET: debug (default), release, asan (gcc ASan+UBSan)
#                                         or fuzz (clang ASan+UBSan, also builds the fuzz targets)
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:-debug}

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
# ctest's own set-up fixtures make the test PKI and install the partner's npm packages.
# The sanitizer builds (asan, fuzz) skip the tests labelled `node`: they run no C++ of ours, so
# they would only repeat what the debug suite ran.
exclude=()
if [[ $preset == asan || $preset == fuzz ]]; then exclude=(-LE '^node$'); fi
ctest --preset "$preset" --output-on-failure --timeout 600 -j2 "${exclude[@]}"
