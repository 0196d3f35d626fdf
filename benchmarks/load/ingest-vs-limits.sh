#!/usr/bin/env bash
# Ingest against what this machine allows, measured side by side in one run (issue 14, point 4):
#   (a) nginx as a TLS responder answering 202 to the same POSTs (wrk -t2 -c64; TLS 1.2+, the
#       gateway's cipher suites and server preference), the ceiling for single-record POSTs;
#   (b) SQLite's own insert rate: WAL, synchronous=FULL, page_size 16384 as the gateway opens it,
#       rows of ROW_BYTES under a unique text key, 100 rows per commit (insert_limit.c);
#   (c) PostgreSQL's own insert rate the same way, on a cluster this script starts on 127.0.0.1
#       (durable defaults: fsync on, synchronous_commit on);
#   (d) the release gateway with two partners configured (both paused, so this measures ingest,
#       not delivery) and a consent per patient (to the first partner; the second is denied):
#       single-record POSTs (wrk -t2 -c64) and NDJSON batches of 1,000 records (two clients
#       posting at once), on SQLite and on PostgreSQL;
#   (e) the gateway's peak RSS (VmHWM) over each of its runs.
# Then a table of the figures and the ratios against the targets. With --runs N every phase runs
# N times, alternating, and the table shows medians.
#
#   benchmarks/load/ingest-vs-limits.sh [--seconds 10] [--runs 1] [--batches 20] [--patients 2000]
#                                       [--no-postgres] [--only nginx,sqlite,postgres,gw-sqlite,gw-postgres]
# GW_BIN: the fhir-gateway binary (default: the release build, built first).
# KEEP_WORK=1: keep the temporary folder (gateway logs, wrk output) and say where it is.
# GW_PERF=DIR: record `perf record --call-graph dwarf` of each gateway run's load into DIR (gw-sqlite-N.data ...).
# Needs: wrk, curl, python3, cc, libsqlite3-dev, libpq-dev, PostgreSQL 15 (all from
# gateway/scripts/install-deps.sh) and nginx, which install-deps.sh does not install: Debian's nginx
# package enables and starts a system web server on port 80 where systemd runs, which a dependency
# script must not do to a developer's machine for one benchmark. This script runs its own nginx
# instance (own config, a random 127.0.0.1 port, stopped at the end); install it yourself with
#   apt-get install -y --no-install-recommends nginx-light && systemctl disable --now nginx
# (the second command only where systemd started the service).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
seconds=10 runs=1 batches=20 patients=2000 postgres=1 only=nginx,sqlite,postgres,gw-sqlite,gw-postgres
row_bytes=${ROW_BYTES:-1600}
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --patients) patients=$2; shift 2 ;;
    --no-postgres) postgres=0; shift ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--runs N] [--batches B] [--patients P] [--no-postgres] [--only LIST]" >&2; exit 2 ;;
  esac
done
wants() { [[ ,$only, == *,$1,* ]]; }
for tool in wrk curl python3 cc; do
  command -v $tool >/dev/null || { echo "$0: $tool is missing (gateway/scripts/install-deps.sh installs it)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if wants nginx && [[ ! -x $nginx_bin ]]; then
  echo "$0: nginx is missing: apt-get install -y --no-install-recommends nginx-light, then (where systemd" \
    "started it) systemctl disable --now nginx; this script runs its own instance on a loopback port" >&2
  exit 1
fi
pg_bin=/usr/lib/postgresql/15/bin
if [[ $postgres == 1 && ! -x $pg_bin/initdb ]]; then
  echo "$0: PostgreSQL 15 is missing (apt-get install postgresql, or --no-postgres)" >&2; exit 1
fi
[[ $postgres == 1 ]] || only=${only//postgres/}

work=$(mktemp -d)
chmod 755 "$work"
pids=()
pg_dir=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $pg_dir ]]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
  if [[ -n ${KEEP_WORK:-} ]]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_https() { for _ in $(seq 1 200); do curl -sk -o /dev/null "https://127.0.0.1:$1${2:-/}" && return 0; sleep 0.1; done; return 1; }
# Until the process has used under 5% of a CPU over a second (at most 120 s).
wait_idle() {
  local ticks before after
  ticks=$(getconf CLK_TCK)
  for _ in $(seq 1 120); do
    before=$(awk '{print $14 + $15}' "/proc/$1/stat")
    sleep 1
    after=$(awk '{print $14 + $15}' "/proc/$1/stat")
    (( (after - before) * 20 < ticks )) && return 0
  done
  echo "$0: the gateway did not become idle after its consents" >&2
}
wrk_rate() { awk '/Requests\/sec/ {print $2}'; }

gw_bin=${GW_BIN:-$repo/build/release/gateway/main/fhir-gateway}
if [[ -z ${GW_BIN:-} ]] && { wants gw-sqlite || wants gw-postgres; }; then
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release --target fhir-gateway >/dev/null)
fi
cc -O2 -o "$work/insert_limit" "$repo/benchmarks/load/insert_limit.c" -lsqlite3 -lpq -I/usr/include/postgresql
"$repo/certs/make-dev-certs.sh" "$work/pki" >/dev/null
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; ${seconds} s per phase, $runs run(s)"

# --- (a) nginx: the gateway's TLS settings (http/tls_context.cpp), two workers like the gateway's
# two I/O threads, keep-alive without a request limit, 202 without reading further.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
tls12=$(grep -A3 "kTls12Ciphers =" "$repo/gateway/src/http/tls_context.hpp" | grep -o "\"[^\"]*\"" | tr -d "\"\n")
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy; fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/pki/server.crt;
    ssl_certificate_key $work/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${tls12:-HIGH};
    ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256;
    ssl_prefer_server_ciphers on;
    location / { return 202 '{"accepted":1}'; }
  }
}
CONF

run_nginx() {
  "$nginx_bin" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/error.log" &
  local pid=$!
  wait_https "$nginx_port" || { echo "nginx did not start: $(cat "$work/nginx/error.log")" >&2; exit 1; }
  wrk -t2 -c64 -d"${seconds}s" -s "$repo/benchmarks/load/post_consented.lua" "https://127.0.0.1:$nginx_port" -- "$patients" \
    > "$work/nginx/wrk.txt"
  kill -QUIT "$pid"; wait "$pid" 2>/dev/null || true
  wrk_rate < "$work/nginx/wrk.txt"
}

run_sqlite_limit() {
  local dir="$work/sqlite-limit"; rm -rf "$dir"; mkdir -p "$dir"
  "$work/insert_limit" sqlite "$dir/limit.db" "$seconds" "$row_bytes" 100
  rm -rf "$dir"
}

# --- PostgreSQL: one cluster for the run (as the user postgres when root: initdb refuses root).
pg_port=
start_postgres() {
  pg_dir=$(mktemp -d /tmp/pg-ingest.XXXXXX); chmod 755 "$pg_dir"
  [[ $(id -u) == 0 ]] && chown postgres "$pg_dir"
  pg_port=$(free_port)
  as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -N -E UTF8 --locale=C >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=100" start >/dev/null
  psql -qX -h "$pg_dir" -p "$pg_port" -U postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench'" >/dev/null
}
new_pg_database() {  # $1 = its name
  psql -qX -h "$pg_dir" -p "$pg_port" -U postgres -c "CREATE DATABASE $1 OWNER bench" >/dev/null
  echo "host=127.0.0.1 port=$pg_port dbname=$1 user=bench password=bench"
}
run_postgres_limit() {  # $1 = run number
  "$work/insert_limit" postgres "$(new_pg_database "limit$1")" "$seconds" "$row_bytes" 100
}

# --- (d) the gateway
gw_port=$(free_port)
python3 - "$work" "$patients" "$batches" <<'PY'
import json, sys, time
work, patients, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
day = lambda off: time.strftime('%Y-%m-%d', time.gmtime(time.time() + off * 86400))
with open(f'{work}/consents.ndjson', 'w') as out:
    for n in range(patients):
        out.write(json.dumps({
            'record_id': f'c1:cn:{n}', 'record_type': 'consent', 'clinic': 'c1', 'program': 'otp',
            'recorded_at': '2026-11-20T08:55:00-05:00', 'patient': {'mrn': f'M{n}'},
            'consent': {'id': str(n), 'recipient': 'hosp-a', 'purposes': ['TREAT'], 'categories': ['general', 'sud'],
                        'effective': {'start': day(-3), 'end': day(365)}, 'signed_on': day(-3), 'signed_by': 'patient',
                        'status': 'active'}}) + '\n')
tmpl = ('{"record_id":"c1:rx:%s","record_type":"mat_prescription","clinic":"c1","program":"otp",'
        '"recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"M%d"},"prescription":{"id":"%s",'
        '"medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},'
        '"dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,"days_supply":14,'
        '"refills":0,"status":"active","written_on":"2026-11-20","prescriber":{"npi":"1234567893","name":"Dr. Lee"},'
        '"diagnosis":{"system":"icd10","code":"F11.20"}}}')
for f in range(batches):
    with open(f'{work}/batch{f}.ndjson', 'w') as out:
        for i in range(1000):
            k = f'b{f}-{i}'
            out.write(tmpl % (k, (f * 1000 + i) % patients, k) + '\n')
PY

gateway_config() {  # $1 = storage JSON
  cat <<JSON
{
  "deployment": "development",
  "server": {"address": "127.0.0.1", "port": $gw_port, "threads": 2,
             "tls": {"cert_file": "$work/pki/server.crt", "key_file": "$work/pki/server.key", "client_cert": "none"}},
  "auth": {"tokens": [
    {"id": "clinic-c1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372", "roles": ["ingest"], "clinics": ["c1"]},
    {"id": "admin", "sha256": "de72d648e29b247c1875138a7140256dbe5df3e6c9f37d592b07d9de509d2878", "roles": ["admin"], "clinics": ["*"]}]},
  "storage": $1,
  "mapping": {"format_dir": "$repo/mappers/clinic-v1", "profiles_dir": "$repo/fhir-profiles"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/",
               "programs": [{"id": "otp", "part2": true}]}],
  "partners": [
    {"id": "hosp-a", "fhir_base_url": "https://127.0.0.1:9/fhir/R4", "ca_file": "$work/pki/ca.crt"},
    {"id": "hosp-b", "fhir_base_url": "https://127.0.0.1:9/fhir/R4", "ca_file": "$work/pki/ca.crt"}],
  "privacy": {"master_key_file": "$work/pki/dev-master.key"},
  "logging": {"level": "warn"}
}
JSON
}

post_ndjson() {  # $1 = file; fails unless 202
  local status
  status=$(curl -sk -o "$work/last-answer.json" -w '%{http_code}' -H 'Authorization: Bearer dev-ingest-c1' \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$1" "https://127.0.0.1:$gw_port/v1/records")
  [[ $status == 202 ]] || { echo "POST $1: $status $(head -c 300 "$work/last-answer.json")" >&2; return 1; }
}

# One gateway run: prints "single ndjson rss_mb"
run_gateway() {  # $1 = label, $2 = storage JSON, $3 = run number
  local dir="$work/$1-$3"; mkdir -p "$dir/db"
  gateway_config "$2" > "$dir/gw.json"
  GATEWAY_POSTGRES_DSN=${4:-} "$gw_bin" serve --config "$dir/gw.json" 2> "$dir/gateway.log" &
  local gw=$!
  pids+=("$gw")
  wait_https "$gw_port" /healthz || { echo "gateway did not start: $(tail -5 "$dir/gateway.log")" >&2; exit 1; }
  for p in hosp-a hosp-b; do
    curl -sfk -o /dev/null -X POST -H 'Authorization: Bearer dev-admin' \
      "https://127.0.0.1:$gw_port/v1/partners/$p/pause?reason=benchmark" || { echo "pausing $p failed" >&2; exit 1; }
  done
  post_ndjson "$work/consents.ndjson"
  wait_idle "$gw"  # each new consent's reconciliation runs on the jobs thread after the answer
  local perf=
  if [[ -n ${GW_PERF:-} ]]; then
    mkdir -p "$GW_PERF"
    # DWARF unwinding: the release build keeps no frame pointers, so -g alone loses the callers.
    perf record --call-graph dwarf,16384 -F 199 -o "$GW_PERF/$1-$3.data" -p "$gw" 2>/dev/null &
    perf=$!
  fi
  wrk -t2 -c64 -d"${seconds}s" -s "$repo/benchmarks/load/post_consented.lua" "https://127.0.0.1:$gw_port" -- "$patients" \
    > "$dir/wrk.txt"
  grep -q '^status' "$dir/wrk.txt" && { echo "$1: single POSTs not all 202:" >&2; grep '^status' "$dir/wrk.txt" >&2; }
  local single; single=$(wrk_rate < "$dir/wrk.txt")
  # NDJSON: two clients, each posting every other batch, one request at a time.
  local start end
  start=$(date +%s.%N)
  for half in 0 1; do
    (for f in $(seq $half 2 $((batches - 1))); do post_ndjson "$work/batch$f.ndjson"; done) &
    pids+=("$!")
  done
  wait "${pids[@]: -2}"
  end=$(date +%s.%N)
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf" 2>/dev/null || true; }
  local rss_kb; rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$gw/status")
  kill "$gw"; wait "$gw" 2>/dev/null || true
  # What one record costs the database: the rows ingest wrote (the record, its version, its
  # resources, outbox items, decisions and log entries) per record stored.
  local rows_per_record
  if [[ -n ${4:-} ]]; then
    rows_per_record=$(psql -qXtA "$4" -c "SELECT ((SELECT COUNT(*) FROM records) + (SELECT COUNT(*) FROM record_versions) +
      (SELECT COUNT(*) FROM resources) + (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM resource_decisions) +
      (SELECT COUNT(*) FROM audit_log))::float / GREATEST((SELECT COUNT(*) FROM records), 1)")
  else
    rows_per_record=$(python3 - "$dir/db/gateway.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True)
n = lambda t: db.execute(f'SELECT COUNT(*) FROM {t}').fetchone()[0]
print(sum(n(t) for t in ('records', 'record_versions', 'resources', 'outbox', 'resource_decisions', 'audit_log')) / max(n('records'), 1))
PY
)
  fi
  python3 -c "print('%s %.0f %.1f %.2f' % ('$single', $batches * 1000 / ($end - $start), $rss_kb / 1024, $rows_per_record))"
}

declare -A results
add() { results[$1]="${results[$1]:-} $2"; }
[[ $postgres == 1 ]] && { wants postgres || wants gw-postgres; } && start_postgres
for run in $(seq 1 "$runs"); do
  if wants nginx; then v=$(run_nginx); add nginx "$v"; echo "run $run: nginx TLS 202: $v req/s"; fi
  if wants sqlite; then v=$(run_sqlite_limit); add sqlite "$v"; echo "run $run: SQLite insert: $v rows/s"; fi
  if wants postgres; then v=$(run_postgres_limit "$run"); add postgres "$v"; echo "run $run: PostgreSQL insert: $v rows/s"; fi
  if wants gw-sqlite; then
    read -r s n r k < <(run_gateway gw-sqlite "{\"sqlite_path\": \"$work/gw-sqlite-$run/db/gateway.db\"}" "$run")
    add gw-sqlite-single "$s"; add gw-sqlite-ndjson "$n"; add gw-sqlite-rss "$r"; add gw-sqlite-rows "$k"
    echo "run $run: gateway/SQLite: single $s req/s, NDJSON $n records/s, peak RSS $r MB, $k rows per record"
  fi
  if wants gw-postgres; then
    dsn=$(new_pg_database "gateway$run")
    read -r s n r k < <(run_gateway gw-postgres '{"postgres": {"dsn_env": "GATEWAY_POSTGRES_DSN", "sslmode": "disable"}}' "$run" "$dsn")
    add gw-postgres-single "$s"; add gw-postgres-ndjson "$n"; add gw-postgres-rss "$r"; add gw-postgres-rows "$k"
    echo "run $run: gateway/PostgreSQL: single $s req/s, NDJSON $n records/s, peak RSS $r MB, $k rows per record"
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - <<PY
import statistics
raw = {$(for k in "${!results[@]}"; do printf "'%s': [%s], " "$k" "$(echo ${results[$k]} | tr ' ' ',')"; done)}
med = {k: statistics.median(v) for k, v in raw.items() if v}
runs = $runs
def fmt(k, unit):
    return f"{med[k]:>10,.0f} {unit}" if k in med else f"{'-':>10} {unit}"
print()
print(f"medians of {runs} run(s)" if runs > 1 else "one run")
print(f"{'measure':44} {'absolute':>22}   {'ratio':>6}   target")
def row(name, k, unit, ref=None, target=None, fmt_ratio=True):
    ratio = f"{med[k] / med[ref]:6.2f}x" if ref and k in med and ref in med else " " * 7
    tgt = f">= {target}x" if target else ("(information)" if ref else "")
    ok = ""
    if target and ref and k in med and ref in med:
        ok = "  met" if med[k] / med[ref] >= target else "  NOT met"
    print(f"{name:44} {fmt(k, unit):>22}   {ratio}   {tgt}{ok}")
row("(a) nginx TLS responder, 202", "nginx", "req/s")
row("(b) SQLite insert, WAL+FULL, 100/commit", "sqlite", "rows/s")
row("(c) PostgreSQL insert, 100/commit", "postgres", "rows/s")
row("(d) gateway/SQLite single POSTs vs (a)", "gw-sqlite-single", "req/s", "nginx", 0.25)
row("    gateway/SQLite NDJSON 1000 vs (b)", "gw-sqlite-ndjson", "rec/s", "sqlite", 0.5)
row("    gateway/PostgreSQL single POSTs vs (a)", "gw-postgres-single", "req/s", "nginx", 0.25)
row("    gateway/PostgreSQL NDJSON 1000 vs (c)", "gw-postgres-ndjson", "rec/s", "postgres", 0.5)
# The targets compare records to rows; a record is several rows. The same runs as rows written
# per second, against the same limits (no target: for reading the ones above).
for db, ref, name in (("sqlite", "sqlite", "SQLite"), ("postgres", "postgres", "PostgreSQL")):
    n, k = f"gw-{db}-ndjson", f"gw-{db}-rows"
    if n in med and k in med:
        med[f"gw-{db}-rowrate"] = med[n] * med[k]
        row(f"    as rows: NDJSON x {med[k]:.1f} rows/record vs ({'b' if db == 'sqlite' else 'c'})",
            f"gw-{db}-rowrate", "rows/s", ref)
for k, name in (("gw-sqlite-rss", "(e) peak RSS, gateway/SQLite"), ("gw-postgres-rss", "    peak RSS, gateway/PostgreSQL")):
    if k in med:
        print(f"{name:44} {med[k]:>16.1f} MB   {'':7}   < 150 MB  {'met' if med[k] < 150 else 'NOT met'}")
PY
