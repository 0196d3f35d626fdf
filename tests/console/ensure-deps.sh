#!/usr/bin/env bash
# Installs the console tests' npm packages (playwright-core, axe-core; no browser download:
# the tests use Debian's chromium) exactly as package-lock.json pins them, unless the installed
# tree already matches it (so repeated test runs do not reinstall, and a running partner is not
# pulled from under itself).
set -euo pipefail
cd "$(dirname "$0")"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f node_modules/.gw-lock-sha256 && "$(cat node_modules/.gw-lock-sha256)" == "$want" ]]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > node_modules/.gw-lock-sha256
