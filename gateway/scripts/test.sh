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
# The sanitizer builds (asan, fuzz) skip the tests labelled `node`, which run no C++ of ours, and
# the console's browser suite, whose subject is the pages' own code (the console's handlers run
# under the sanitizers in ConsoleTest's other test and ComplianceEndToEnd): both would only repeat
# what the debug suite ran, at a minute and a half of CI.
exclude=()
if [[ $preset == asan || $preset == fuzz ]]; then exclude=(-LE '^node$' -E '^ConsoleTest\.BrowserSuite$'); fi
ctest --preset "$preset" --output-on-failure --timeout 600 -j2 "${exclude[@]}"
