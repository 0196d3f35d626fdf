#!/usr/bin/env bash
# `fhir-gateway check-config` on every config the repository ships, so that none can fall behind
# the code (a required key added, a key renamed) without this test failing:
#   gateway/config/gateway.example.jsonc   paths relative to its folder (certs/out, mappers, ...)
#   docker/gateway.compose.jsonc           the image's and compose's absolute paths
# Each config is copied with its paths rewritten to where the same files are in this checkout (or
# in a scratch folder, for what only exists at run time: the PKI, the database folder), then
# checked. The image's paths come from docker/Dockerfile and docker/compose.yaml; the script
# fails if the lines it relies on there change, so the map cannot silently go stale.
#
#   tests/config/check-shipped-configs.sh FHIR_GATEWAY_BINARY [REPO_DIR]
set -euo pipefail
bin=${1:?usage: check-shipped-configs.sh FHIR_GATEWAY_BINARY [REPO_DIR]}
repo=${2:-"$(cd "$(dirname "$0")/../.." && pwd)"}
scratch=$(mktemp -d /tmp/gw-shipped-configs.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failures=0

# The development PKI the shipped configs name (certs/out, and /certs in compose), made afresh.
"$repo/certs/make-dev-certs.sh" "$scratch/certs" >/dev/null
mkdir -p "$scratch/var" "$scratch/etc"

# What the map below assumes about the image and compose, checked against the files themselves.
require_line() { # FILE TEXT
  if ! grep -qF -- "$2" "$repo/$1"; then
    echo "FAIL: $1 no longer contains '$2': update the path map in $0" >&2
    failures=$((failures + 1))
  fi
}
require_line docker/Dockerfile 'cp -r mappers /out/share/mappers'
require_line docker/Dockerfile 'cp -r console /out/share/console'
require_line docker/Dockerfile 'cp -r fhir-profiles /out/share/fhir-profiles'
require_line docker/Dockerfile 'COPY --from=build /out/share /usr/share/fhir-gateway'
require_line docker/Dockerfile 'VOLUME ["/var/lib/fhir-gateway"]'
require_line docker/compose.yaml './gateway.compose.jsonc:/etc/fhir-gateway/gateway.json:ro'
require_line docker/compose.yaml 'certs:/certs'
# The compose certs job writes the PostgreSQL connection string at run time; here a stand-in of
# the same form (check-config reads it and checks its mode, it does not connect).
require_line docker/compose.yaml '> /certs/postgres.dsn'
(umask 077 && echo "host=postgres port=5432 dbname=gateway user=gateway password=check" > "$scratch/certs/postgres.dsn")

# rewrite FILE OUT FROM=TO...: literal replacements, in order.
rewrite() {
  local file=$1 out=$2 text pair
  shift 2
  text=$(<"$file")
  for pair in "$@"; do text=${text//"${pair%%=*}"/"${pair#*=}"}; done
  printf '%s\n' "$text" > "$out"
}

check() { # NAME REWRITTEN_CONFIG LEFTOVER_PREFIX...
  local name=$1 config=$2 prefix
  shift 2
  for prefix in "$@"; do
    if grep -qF "\"$prefix" "$config"; then
      echo "FAIL: $name: a path under $prefix is not mapped by $0:" >&2
      grep -nF "\"$prefix" "$config" >&2
      failures=$((failures + 1))
    fi
  done
  if "$bin" check-config --config "$config" > "$scratch/out" 2> "$scratch/err"; then
    echo "ok: $name"
  else
    echo "FAIL: $name: check-config exit $? (paths mapped as in $config):" >&2
    grep -v '^warning: ' "$scratch/err" >&2 || true
    failures=$((failures + 1))
  fi
}

# The example: relative to gateway/config/, i.e. ../../ is the repository root.
rewrite "$repo/gateway/config/gateway.example.jsonc" "$scratch/gateway.example.jsonc" \
  "../../certs/out/=$scratch/certs/" "../../var/=$scratch/var/" "../../=$repo/"
check gateway/config/gateway.example.jsonc "$scratch/gateway.example.jsonc" "../"

# Compose: the image's /usr/share/fhir-gateway holds the repository's mappers, fhir-profiles and
# console (docker/Dockerfile); /certs is the certs volume; /var/lib/fhir-gateway the data volume.
rewrite "$repo/docker/gateway.compose.jsonc" "$scratch/gateway.compose.jsonc" \
  "/usr/share/fhir-gateway/=$repo/" "/certs/=$scratch/certs/" "/var/lib/fhir-gateway/=$scratch/var/" \
  "/etc/fhir-gateway/=$scratch/etc/"
check docker/gateway.compose.jsonc "$scratch/gateway.compose.jsonc" /usr/share/ /certs/ /var/lib/ /etc/

if ((failures > 0)); then
  echo "$failures problem(s) in the shipped configs" >&2
  exit 1
fi
