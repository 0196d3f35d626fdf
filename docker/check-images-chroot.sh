#!/usr/bin/env bash
# Manual check of the images where no Docker engine runs (not CI: it needs root, the images built
# with buildah, Debian's PostgreSQL 15 and a few minutes). What compose would do, by hand, each
# container's root run with `buildah run --isolation chroot` (which shares the host's network):
#   1. PostgreSQL 15 with TLS on 127.0.0.1:$PGPORT (the development certificate of "postgres"),
#      database and user "gateway", password in the connection-string file as compose's certs
#      job writes it;
#   2. the gateway image with docker/gateway.compose.jsonc unchanged: serve, then
#      `fhir-gateway health` (the HEALTHCHECK) until it reports ready;
#   3. the partner image, and two gateway containers on the one database (gateway-a on
#      127.0.0.1, gateway-b on 127.0.0.2: the only edit of the config, since compose gives each
#      container its own address), then compose's demo service's script unchanged in a
#      debian:12.15 container: consent to gateway-a, records to gateway-b, delivered to the partner.
# Host names compose's DNS would answer (partner, gateway-a, gateway-b) are in each container's
# /etc/hosts. Ports used on the host: 8443, 9443, 9464 and $PGPORT (default 55432).
#
#   docker/check-images-chroot.sh          (after building fhir-gateway:dev and fhir-partner:dev)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
pgport=${PGPORT:-55432}
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/gw-chroot.XXXXXX)
chmod 755 "$work"
containers=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  [[ -d $work/pg/data ]] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1
  echo "(logs kept in $work; rm -rf it when done)"
}
trap cleanup EXIT

echo "== development PKI and the database password (as compose's certs job)"
certs/make-dev-certs.sh "$work/certs" >/dev/null
password=$(openssl rand -hex 24)
# The same line as compose's certs job writes, but host 127.0.0.1: there is no "postgres" here.
(umask 077 && echo "host=127.0.0.1 port=$pgport dbname=gateway user=gateway password=$password" > "$work/certs/postgres.dsn")

echo "== PostgreSQL 15 on 127.0.0.1:$pgport with TLS"
mkdir -p "$work/pg"
cp "$work/certs/postgres.crt" "$work/certs/postgres.key" "$work/pg/"
chown -R postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -N -E UTF8 --locale=C >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o \
  "-c listen_addresses=127.0.0.1 -p $pgport -k $work/pg -c ssl=on -c ssl_cert_file=$work/pg/postgres.crt -c ssl_key_file=$work/pg/postgres.key" \
  start >/dev/null
psql -X -q -h "$work/pg" -p "$pgport" -U postgres -c "CREATE ROLE gateway LOGIN PASSWORD '$password'" \
  -c "CREATE DATABASE gateway OWNER gateway"

# container IMAGE NAME HOSTS_LINES: a working container with the PKI at /certs, owned as compose's
# certs job leaves it, and the compose config at /etc/fhir-gateway/gateway.json. Its root in $mnt.
container() {
  local image=$1 name=$2 hosts=$3 ctr
  ctr=$(buildah from --name "$name" "$image")
  containers+=("$ctr")
  mnt=$(buildah mount "$ctr")
  mkdir -p "$mnt/certs"
  cp -a "$work/certs/." "$mnt/certs/"
  chown 10001 "$mnt/certs/server.key" "$mnt/certs/gateway-client.key" "$mnt/certs/dev-master.key" "$mnt/certs/postgres.dsn"
  chown 10002 "$mnt/certs/partner.key"
  if [[ -d $mnt/etc/fhir-gateway ]]; then cp docker/gateway.compose.jsonc "$mnt/etc/fhir-gateway/gateway.json"; fi
  printf '127.0.0.1 localhost\n%s\n' "$hosts" > "$mnt/etc/hosts"
}

# health CONTAINER: the image's HEALTHCHECK command, until ready (60 s).
wait_healthy() {
  local ctr=$1 out
  for _ in $(seq 1 60); do
    if out=$(buildah run --isolation chroot --no-hosts "$ctr" fhir-gateway health --config /etc/fhir-gateway/gateway.json); then
      echo "   $ctr: fhir-gateway health: $out (exit 0)"
      return 0
    fi
    sleep 1
  done
  echo "   $ctr: not healthy after 60 s: $out"
  return 1
}

echo "== gateway image, docker/gateway.compose.jsonc unchanged"
container fhir-gateway:dev gw-exact "127.0.0.1 partner"
echo "   runs as: $(buildah run --isolation chroot --no-hosts gw-exact id)"
set +e
buildah run --isolation chroot --no-hosts gw-exact fhir-gateway health --config /etc/fhir-gateway/gateway.json
echo "   health before serve: exit $?"
set -e
buildah run --isolation chroot --no-hosts gw-exact fhir-gateway check-config --config /etc/fhir-gateway/gateway.json \
  > "$work/check-config.out" 2> "$work/check-config.err"
tail -1 "$work/check-config.err"
buildah run --isolation chroot --no-hosts --hostname gateway-a gw-exact \
  fhir-gateway serve --config /etc/fhir-gateway/gateway.json 2> "$work/gw-exact.log" &
pids+=($!)
wait_healthy gw-exact
grep -o 'started .*' "$work/gw-exact.log" | head -1 | sed 's/^/   log: /'
kill "${pids[-1]}"
wait "${pids[-1]}" || true
unset 'pids[-1]'
# buildah run's child keeps running a moment after buildah itself was stopped.
for _ in $(seq 1 50); do ss -ltn | grep -q ':8443 ' || break; sleep 0.2; done

echo "== partner image on 127.0.0.1:9443"
container fhir-partner:dev partner ""
buildah run --isolation chroot --no-hosts partner node /opt/fhir-partner/server.js --port 9443 --host 127.0.0.1 \
  --cert /certs/partner.crt --key /certs/partner.key --ca /certs/ca.crt --require-client-cert \
  > "$work/partner.out" 2> "$work/partner.log" &
pids+=($!)
for _ in $(seq 1 300); do grep -q '"ready":true' "$work/partner.out" 2>/dev/null && break; sleep 0.2; done
cat "$work/partner.out"

echo "== two gateways on the one database: gateway-a (127.0.0.1), gateway-b (127.0.0.2)"
for pair in gateway-a:127.0.0.1 gateway-b:127.0.0.2; do
  name=${pair%%:*} address=${pair#*:}
  container fhir-gateway:dev "$name" "127.0.0.1 partner"
  sed -i -e "s/\"address\": \"0.0.0.0\"/\"address\": \"$address\"/" \
    -e "s/\"metrics_listen\": \"127.0.0.1:9464\"/\"metrics_listen\": \"$address:9464\"/" "$mnt/etc/fhir-gateway/gateway.json"
  buildah run --isolation chroot --no-hosts --hostname "$name" "$name" \
    fhir-gateway serve --config /etc/fhir-gateway/gateway.json 2> "$work/$name.log" &
  pids+=($!)
done
wait_healthy gateway-a
wait_healthy gateway-b

echo "== compose's demo service, its script unchanged, in debian:12.15"
container docker.io/library/debian:12.15 demo "127.0.0.1 gateway-a
127.0.0.2 gateway-b"
mkdir -p "$mnt/demo"
cp mappers/clinic-v1/examples/demo.ndjson "$mnt/demo/demo.ndjson"
python3 - > "$mnt/demo/run.sh" <<'PY'
import yaml
service = yaml.safe_load(open("docker/compose.yaml"))["services"]["demo"]
assert service["entrypoint"] == ["bash", "-euc"]
print(service["command"][0].replace("$$", "$"))  # compose's escape for a literal $
PY
buildah run --isolation chroot --no-hosts demo bash -euc "$(cat "$mnt/demo/run.sh")" | tee "$work/demo.out"
grep -q '^== delivered' "$work/demo.out"

echo "== what the partner holds"
curl -sS --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt" --key "$work/certs/client.key" \
  "https://127.0.0.1:9443/fhir/R4/MedicationRequest?identifier=https://ids.c1.example.org/prescription|9001" |
  python3 -c 'import json,sys; b=json.load(sys.stdin); [print("   MedicationRequest", e["resource"]["id"], e["resource"]["status"]) for e in b.get("entry",[])]; sys.exit(0 if b.get("entry") else 1)'
echo "== instances in the database's sessions"
psql -X -At -h "$work/pg" -p "$pgport" -U postgres -d gateway \
  -c "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = 'gateway' ORDER BY 1" | sed 's/^/   /'
echo "== OK"
