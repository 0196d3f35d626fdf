#!/usr/bin/env bash
# Load on loopback: single-record POSTs (wrk, keep-alive TLS) and NDJSON batches (curl), against
# a release gateway on 127.0.0.1:8444 with a throw-away database and no partners (ingest only).
# wrk cannot present client certificates, so this gateway runs with client_cert "none"; TLS
# handshakes are amortised over keep-alive connections either way.
#   benchmarks/load/ingest-load.sh [SECONDS]        (default 10)
# GW_SCRAPE_SECONDS=N: also scrape GET /metrics (the loopback metrics listener) every N seconds
# during the load, to measure what serving the metrics costs ingest (docs/operations.md §8).
# GW_BIN: the fhir-gateway binary (default: the release build, made first).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-10}
work=$(mktemp -d)
scraper=
trap 'kill $gw $scraper 2>/dev/null || true; rm -rf "$work"' EXIT
gw_bin=${GW_BIN:-$repo/build/release/gateway/main/fhir-gateway}
if [[ -z ${GW_BIN:-} ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target fhir-gateway >/dev/null
fi
"$repo/certs/make-dev-certs.sh" "$work/pki" >/dev/null
cat > "$work/gw.json" <<JSON
{
  "deployment": "development",
  "server": {"address": "127.0.0.1", "port": 8444, "threads": 2, "metrics_listen": "127.0.0.1:9464",
             "tls": {"cert_file": "$work/pki/server.crt", "key_file": "$work/pki/server.key", "client_cert": "none"}},
  "auth": {"tokens": [{"id": "clinic-c1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372",
                       "roles": ["ingest"], "clinics": ["c1"]}]},
  "storage": {"sqlite_path": "$work/db/gateway.db"},
  "mapping": {"format_dir": "$repo/mappers/clinic-v1", "profiles_dir": "$repo/fhir-profiles"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "otp", "part2": true}]}],
  "partners": [],
  "privacy": {"master_key_file": "$work/pki/dev-master.key"},
  "logging": {"level": "warn"}
}
JSON
"$gw_bin" serve --config "$work/gw.json" 2> "$work/gateway.log" &
gw=$!
for _ in $(seq 1 100); do curl -sk https://127.0.0.1:8444/healthz >/dev/null 2>&1 && break; sleep 0.1; done
if [[ -n ${GW_SCRAPE_SECONDS:-} ]]; then
  echo "== scraping /metrics every ${GW_SCRAPE_SECONDS} s"
  (while :; do
     curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:9464/metrics >> "$work/scrapes"
     sleep "$GW_SCRAPE_SECONDS"
   done) &
  scraper=$!
fi

echo "== single-record POSTs: wrk -t2 -c64 -d${seconds}s"
wrk -t2 -c64 -d"${seconds}s" -s "$repo/benchmarks/load/post_record.lua" https://127.0.0.1:8444 | grep -E "Requests/sec|Latency|requests in"

echo "== NDJSON batches: 20 x 1000 records, one request at a time"
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
tmpl = ('{"record_id":"c1:rx:%s","record_type":"mat_prescription","clinic":"c1","program":"otp",'
        '"recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"M%s"},"prescription":{"id":"%s",'
        '"medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},'
        '"dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,"days_supply":14,'
        '"refills":0,"status":"active","written_on":"2026-11-20","prescriber":{"npi":"1234567893","name":"Dr. Lee"},'
        '"diagnosis":{"system":"icd10","code":"F11.20"}}}')
for f in range(20):
    with open(f"{work}/batch{f}.ndjson", "w") as out:
        for i in range(1000):
            k = f"b{f}-{i}"
            out.write(tmpl % (k, k, k) + "\n")
PY
start=$(date +%s.%N)
for f in $(seq 0 19); do
  curl -sk -o /dev/null -H 'Authorization: Bearer dev-ingest-c1' -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$work/batch$f.ndjson" https://127.0.0.1:8444/v1/records
done
end=$(date +%s.%N)
python3 -c "print('records/s: %.0f' % (20000 / ($end - $start)))"
echo "== gateway RSS: $(ps -o rss= -p $gw | awk '{printf "%.0f MB", $1/1024}')"
if [[ -s $work/scrapes ]]; then
  sort -n "$work/scrapes" | awk '{a[NR]=$1} END {printf "== /metrics scrapes: %d, median %.1f ms, max %.1f ms\n", NR, a[int((NR+1)/2)]*1000, a[NR]*1000}'
  echo "== /metrics page: $(curl -s http://127.0.0.1:9464/metrics | wc -c) bytes"
fi
