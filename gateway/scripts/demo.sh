#!/usr/bin/env bash
# Builds the gateway and shows its main job on the embedded defaults (SQLite, development PKI):
# start the sandbox FHIR partner and the gateway, post a patient and a MAT prescription over
# mutual TLS, and show them arriving at the partner. Ctrl-C stops both.
#   gateway/scripts/demo.sh            (runs until Ctrl-C)
#   DEMO_EXIT=1 gateway/scripts/demo.sh  (stops after showing the result)
#   DEMO_AUTH=smart gateway/scripts/demo.sh  (the partner requires SMART Backend Services tokens: the
#     gateway signs its client assertions with var/demo-signing.pem, and the partner verifies them
#     against the gateway's JWKS, https://127.0.0.1:8443/.well-known/jwks.json)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

echo "== building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release --target fhir-gateway
gateway_bin=$repo/build/release/gateway/main/fhir-gateway

echo "== development certificates (certs/out)"
certs/make-dev-certs.sh

echo "== sandbox FHIR partner (tests/partner, Medplum)"
tests/partner/ensure-deps.sh
mkdir -p var
# The sandbox partner keeps its data in memory, so the demo starts the gateway's database afresh
# too (else a second run would find every record "unchanged" and send nothing).
rm -f var/gateway.db var/gateway.db-wal var/gateway.db-shm
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
config=gateway/config/gateway.example.jsonc
partner_auth=()
partner_read=()
if [[ "${DEMO_AUTH:-}" == smart ]]; then
  echo "== SMART Backend Services: signing key var/demo-signing.pem (kid demo-gw), config var/gateway.smart.jsonc"
  [[ -f var/demo-signing.pem ]] ||
    "$gateway_bin" keys new-signing-key --alg ES384 --out var/demo-signing.pem --kid demo-gw
  # The example config with a smart-backend auth for st-mary, and client certificates optional on
  # the listener so the partner can fetch the JWKS as a hospital would (tokens still guard the API).
  python3 - > var/gateway.smart.jsonc <<'PY'
text = open("gateway/config/gateway.example.jsonc").read().replace('"../../', '"../')
text = text.replace('"client_cert": "required"', '"client_cert": "optional"', 1)
auth = ('"auth": {"type": "smart-backend", "token_url": "https://127.0.0.1:9443/oauth2/token", '
        '"client_id": "demo-gw-client", "scope": "system/Patient.u system/MedicationRequest.u system/Consent.u", '
        '"private_key_file": "demo-signing.pem", "alg": "ES384", "kid": "demo-gw"},\n')
marker = '"bearer_token_env": "",'
assert marker in text and '"client_cert": "optional"' in text
print(text.replace(marker, marker + "\n      " + auth, 1))
PY
  config=var/gateway.smart.jsonc
  partner_auth=(--smart-client-id demo-gw-client --smart-jwks-url https://127.0.0.1:8443/.well-known/jwks.json
    --token-lifetime 300 --inspector-token demo-inspector)
  partner_read=(-H "Authorization: Bearer demo-inspector")
fi
# NODE_EXTRA_CA_CERTS: the partner fetches the gateway's JWKS over HTTPS and must trust the dev CA.
NODE_EXTRA_CA_CERTS=certs/out/ca.crt node tests/partner/server.js --port 9443 --cert certs/out/partner.crt \
  --key certs/out/partner.key --ca certs/out/ca.crt --require-client-cert "${partner_auth[@]}" \
  > var/partner.out 2> var/partner.log &
pids+=($!)
for _ in $(seq 1 600); do grep -q '"ready":true' var/partner.out 2>/dev/null && break; sleep 0.1; done
grep -q '"ready":true' var/partner.out || { echo "partner did not start; see var/partner.log"; exit 1; }

echo "== gateway ($config)"
"$gateway_bin" check-config --config "$config" >/dev/null
"$gateway_bin" serve --config "$config" 2> var/gateway.log &
pids+=($!)
ready=0
for _ in $(seq 1 100); do
  if curl -sf --cacert certs/out/ca.crt --cert certs/out/client.crt --key certs/out/client.key \
    https://127.0.0.1:8443/readyz >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  echo "the gateway did not become ready (is port 8443 in use?); its log:"; cat var/gateway.log; exit 1
fi

gw() { curl -sS --cacert certs/out/ca.crt --cert certs/out/client.crt --key certs/out/client.key \
  -H "Authorization: Bearer dev-ingest-c1" "$@"; }

echo "== posting the patient's consent: st-mary may receive general and substance-use (Part 2) data for treatment"
# Dated around today, so the demo never runs on an expired consent.
python3 - > var/demo-consent.json <<'PY'
import datetime, json
today = datetime.date.today()
print(json.dumps({"record_id": "c1:cn:77", "record_type": "consent", "clinic": "c1", "program": "otp",
  "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  "patient": {"mrn": "A12345"},
  "consent": {"id": "77", "recipient": "st-mary", "purposes": ["TREAT"], "categories": ["general", "sud"],
              "effective": {"start": str(today - datetime.timedelta(days=1)), "end": str(today + datetime.timedelta(days=365))},
              "signed_on": str(today - datetime.timedelta(days=1)), "signed_by": "patient", "status": "active"}}))
PY
gw -H 'Content-Type: application/json' --data-binary @var/demo-consent.json https://127.0.0.1:8443/v1/records |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(" consent", r["record_id"], r["status"], "version", r.get("version"))'

echo "== posting a patient and a MAT prescription (NDJSON) to https://127.0.0.1:8443/v1/records"
gw -H 'Content-Type: application/x-ndjson' --data-binary @mappers/clinic-v1/examples/demo.ndjson \
  https://127.0.0.1:8443/v1/records | python3 -m json.tool

echo "== waiting for delivery"
for _ in $(seq 1 100); do
  state=$(gw "https://127.0.0.1:8443/v1/records/c1:rx:9001?clinic=c1" | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(",".join(x["state"] for x in d.get("deliveries",[])))')
  [[ "$state" == delivered ]] && break
  sleep 0.1
done
gw "https://127.0.0.1:8443/v1/records/c1:rx:9001?clinic=c1" | python3 -m json.tool

echo "== what the partner holds (searched back by business identifier)"
partner() { curl -sS --cacert certs/out/ca.crt --cert certs/out/client.crt --key certs/out/client.key "${partner_read[@]}" "$@"; }
partner "https://127.0.0.1:9443/fhir/R4/MedicationRequest?identifier=https://ids.c1.example.org/prescription|9001" |
  python3 -c 'import json,sys; b=json.load(sys.stdin); [print(" MedicationRequest", e["resource"]["id"], e["resource"]["status"], e["resource"]["medicationCodeableConcept"]["text"], "labels:", ",".join(c["code"] for c in e["resource"]["meta"].get("security",[]))) for e in b.get("entry",[])]'
partner "https://127.0.0.1:9443/fhir/R4/Consent?identifier=https://ids.c1.example.org/consent|77" |
  python3 -c 'import json,sys; b=json.load(sys.stdin); [print(" Consent", e["resource"]["id"], e["resource"]["status"], "(travels with the Part 2 data)") for e in b.get("entry",[])]'
partner "https://127.0.0.1:9443/fhir/R4/Patient?identifier=https://ids.c1.example.org/mrn|A12345" |
  python3 -c 'import json,sys; b=json.load(sys.stdin); [print(" Patient", e["resource"]["id"], e["resource"].get("gender")) for e in b.get("entry",[])]'

echo "== the decision and disclosure log, as a compliance officer sees it (GET /v1/audit/decisions)"
comp() { curl -sS --cacert certs/out/ca.crt --cert certs/out/client.crt --key certs/out/client.key \
  -H "Authorization: Bearer dev-compliance" "$@"; }
comp "https://127.0.0.1:8443/v1/audit/decisions?clinic=c1&mrn=A12345&limit=50" |
  python3 -c 'import json,sys; [print(" ", e["seq"], e["kind"], e["partner_id"] or "-", e["resource_type"] or "-", e["outcome"], e["reason"] or "", e["consent_id"] or "") for e in json.load(sys.stdin)["entries"]]'
comp "https://127.0.0.1:8443/v1/audit/verify" |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print(" chain intact:", r["ok"], "rows:", r["rows"], "anchor:", r.get("anchor"))'

if [[ "${DEMO_AUTH:-}" == smart ]]; then
  echo "== the partner's token endpoint (assertions verified with jose against the gateway's JWKS)"
  curl -sS --cacert certs/out/ca.crt --cert certs/out/client.crt --key certs/out/client.key \
    https://127.0.0.1:9443/__admin/auth | python3 -c 'import json,sys; a=json.load(sys.stdin); print(" tokens issued:", a["issued"], "kids:", a["kids"], "refused:", a["refused"])'
fi

echo "== logs: var/gateway.log (no PHI), var/partner.log; database: var/gateway.db (payloads encrypted per class)"
if [[ "${DEMO_EXIT:-0}" == 1 ]]; then exit 0; fi
echo "== running; Ctrl-C stops the gateway and the partner"
wait
