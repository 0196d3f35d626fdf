#!/usr/bin/env bash
# Makes a throw-away development PKI: never use these keys outside a developer machine or test.
#
#   certs/make-dev-certs.sh [OUT_DIR]       (default: certs/out)
#
# Writes, all PEM:
#   ca.crt ca.key                 development CA (signs everything below)
#   server.crt server.key         gateway server cert, SAN localhost + 127.0.0.1
#   partner.crt partner.key       sandbox FHIR partner server cert, same SANs and DNS:partner
#                                 (its host name in docker/compose.yaml)
#   postgres.crt postgres.key     PostgreSQL server cert for docker/compose.yaml, SAN DNS:postgres,
#                                 localhost + 127.0.0.1
#   client.crt client.key         clinic client cert (CN=clinic-c1)
#   client-c2.crt client-c2.key   clinic client cert (CN=clinic-c2)
#   revoked-client.crt/.key       client cert signed by the CA, then revoked (CN=clinic-c1-revoked)
#   ca-crl.pem                    the development CA's CRL, listing revoked-client.crt
#   gateway-client.crt/.key       the gateway's own client cert towards partners (CN=fhir-gateway)
#   expired-client.crt/.key       client cert signed by the CA but already expired
#   rogue-ca.crt rogue-ca.key     an unrelated CA
#   rogue-client.crt/.key         client cert signed by the rogue CA (wrong CA)
#   rogue-server.crt/.key         server cert with the right SANs but signed by the rogue CA
#   other-host.crt/.key           server cert from the dev CA for other.example / 10.0.0.1 only
# and dev-master.key, a development master key for data at rest (privacy.master_key_file: 64 hex
# digits, mode 0600), and DEVELOPMENT-ONLY, the marker by which the gateway knows this folder.
# Every private key is written with mode 0600: the gateway refuses a server key or master key
# that group or others may read.
# Existing files are kept unless FORCE=1, so repeated runs are cheap. dev-master.key is kept even
# with FORCE=1 (a new one would make databases written with the old one unreadable): delete it
# to get a new one.
set -euo pipefail

out=${1:-"$(cd "$(dirname "$0")" && pwd)/out"}
mkdir -p "$out"
cd "$out"
umask 077

if [[ ! -f dev-master.key ]]; then
  openssl rand -hex 32 > dev-master.key.tmp
  chmod 600 dev-master.key.tmp
  mv dev-master.key.tmp dev-master.key
fi

# The gateway recognises this folder's keys as development material: it refuses the master key
# unless the config says "deployment": "development", and warns about the PKI at every start.
cat > DEVELOPMENT-ONLY <<'TXT'
Throw-away development keys and certificates made by certs/make-dev-certs.sh.
Never use them for real patient data: fhir-gateway refuses dev-master.key unless the config
says "deployment": "development", and warns at every start while any file here is in use.
TXT

if [[ -f ca.crt && -f rogue-client.crt && -f other-host.crt && -f client-c2.crt && -f ca-crl.pem && -f postgres.crt &&
      "${FORCE:-0}" != 1 ]]; then
  chmod 600 ./*.key  # a copy made under umask 022 would be refused by the gateway
  echo "certs: using existing development PKI in $out"
  exit 0
fi

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 825 -subj "$2" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# sign NAME SUBJECT CA EXT_FILE_CONTENT [DAYS]
sign() {
  local name=$1 subject=$2 ca=$3 ext=$4 days=${5:-825}
  key "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 \
    -days "$days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

# Expired certificate through a throw-away `openssl ca` database, which accepts explicit dates.
make_expired() {
  local name=$1 subject=$2 ca=$3 ext=$4 db
  db=$(mktemp -d)
  touch "$db/index.txt"
  echo 01 > "$db/serial"
  cat > "$db/ca.cnf" <<CNF
[ca]
default_ca = dev
[dev]
database = $db/index.txt
serial = $db/serial
new_certs_dir = $db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
  openssl req -new -key "$name.key" -subj "$subject" -out "$db/req.csr"
  openssl ca -batch -config "$db/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" -in "$db/req.csr" \
    -startdate 20200101000000Z -enddate 20200102000000Z -extfile "$ext" -out "$name.crt" >/dev/null 2>&1
  rm -rf "$db"
}

# CRL of CA listing the certificates given after it, valid for 825 days, through a throw-away
# `openssl ca` database.
# make_crl OUT CA CERT...
make_crl() {
  local out=$1 ca=$2 db cert
  shift 2
  db=$(mktemp -d)
  touch "$db/index.txt"
  echo 1000 > "$db/crlnumber"
  cat > "$db/ca.cnf" <<CNF
[ca]
default_ca = dev
[dev]
database = $db/index.txt
crlnumber = $db/crlnumber
default_md = sha256
default_crl_days = 825
CNF
  for cert in "$@"; do
    openssl ca -config "$db/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" -revoke "$cert" -crl_reason keyCompromise \
      >/dev/null 2>&1
  done
  openssl ca -config "$db/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" -gencrl -out "$out" >/dev/null 2>&1
  rm -rf "$db"
}

server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

make_ca ca "/O=fhir-gateway development/CN=fhir-gateway dev CA"
make_ca rogue-ca "/O=Somebody else/CN=rogue CA"
sign server "/O=fhir-gateway development/CN=localhost" ca "$server_ext"
sign partner "/O=Sandbox partner/CN=localhost" ca "${server_ext},DNS:partner"
sign postgres "/O=fhir-gateway development/CN=postgres" ca "${server_ext},DNS:postgres"
sign client "/O=fhir-gateway development/CN=clinic-c1" ca "$client_ext"
sign client-c2 "/O=fhir-gateway development/CN=clinic-c2" ca "$client_ext"
sign revoked-client "/O=fhir-gateway development/CN=clinic-c1-revoked" ca "$client_ext"
make_crl ca-crl.pem ca revoked-client.crt
sign gateway-client "/O=fhir-gateway development/CN=fhir-gateway" ca "$client_ext"
key expired-client.key
printf '%s\n' "$client_ext" > expired-client.ext
make_expired expired-client "/CN=clinic-c1-expired" ca expired-client.ext
rm -f expired-client.ext
sign rogue-client "/O=Somebody else/CN=clinic-c1" rogue-ca "$client_ext"
sign rogue-server "/O=Somebody else/CN=localhost" rogue-ca "$server_ext"
sign other-host "/O=fhir-gateway development/CN=other.example" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:other.example,IP:10.0.0.1"
rm -f ./*.srl
chmod 600 ./*.key
chmod 644 ./*.crt ca-crl.pem
echo "certs: wrote development PKI to $out"
