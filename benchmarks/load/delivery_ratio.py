#!/usr/bin/env python3
"""Delivery throughput through the gateway against posting the same requests directly.

Run by delivery-ratio.sh (see benchmarks/load/README.md). For each write mode (transaction,
per-resource) it:
  1. starts a gateway (fresh database) whose partner is the loopback Medplum partner
     (tests/partner/server.js), write_mode forced, max_concurrent_requests C;
  2. ingests P patients' consents, then SIGSTOPs the partner and ingests N prescriptions (the
     gateway's first requests wait on the stopped partner, nothing fails or backs off);
  3. SIGCONTs the partner and times until it holds all N MedicationRequests: gateway throughput;
  4. resets the partner and sends the same writes directly with C client threads (one keep-alive
     TLS connection each): the transaction Bundles the gateway posted, or, for per-resource,
     their entries one request each, Patient first, references resolved like the gateway does;
  5. prints items/s of both and the ratio gateway/direct.
Everything stays on 127.0.0.1.
"""
import argparse
import http.client
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

TEMPLATE_RX = ('{"record_id":"c1:rx:%(id)s","record_type":"mat_prescription","clinic":"c1","program":"otp",'
               '"recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"%(mrn)s"},"prescription":{"id":"%(id)s",'
               '"medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},'
               '"dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,'
               '"days_supply":14,"refills":0,"status":"active","written_on":"2026-11-20",'
               '"prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}}')


def day(offset):
    return time.strftime('%Y-%m-%d', time.gmtime(time.time() + offset * 86400))


def consent(mrn, n):
    return json.dumps({
        'record_id': f'c1:cn:{n}', 'record_type': 'consent', 'clinic': 'c1', 'program': 'otp',
        'recorded_at': '2026-11-20T08:55:00-05:00', 'patient': {'mrn': mrn},
        'consent': {'id': str(n), 'recipient': 'partner', 'purposes': ['TREAT'], 'categories': ['general', 'sud'],
                    'effective': {'start': day(-3), 'end': day(365)}, 'signed_on': day(-3), 'signed_by': 'patient',
                    'status': 'active'}})


class Https:
    """One keep-alive TLS connection (not thread-safe)."""

    def __init__(self, port, ca, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        self.conn = http.client.HTTPSConnection('127.0.0.1', port, context=ctx, timeout=300)

    def request(self, method, path, body=None, headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.conn.request(method, path, body=data, headers=headers or {})
        res = self.conn.getresponse()
        return res.status, dict((k.lower(), v) for k, v in res.getheaders()), res.read()


def start_partner(repo, pki):
    proc = subprocess.Popen(['node', f'{repo}/tests/partner/server.js', '--port', '0', '--cert', f'{pki}/partner.crt',
                             '--key', f'{pki}/partner.key', '--exit-with-parent'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = json.loads(proc.stdout.readline())
    return proc, ready['port']


def gateway_config(work, repo, pki, partner_port, mode, concurrency, gw_port):
    return {
        'deployment': 'development',
        'server': {'address': '127.0.0.1', 'port': gw_port, 'threads': 2,
                   'tls': {'cert_file': f'{pki}/server.crt', 'key_file': f'{pki}/server.key', 'client_cert': 'none'}},
        'auth': {'tokens': [{'id': 'clinic-c1', 'sha256': '16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372',
                             'roles': ['ingest'], 'clinics': ['c1']}]},
        'storage': {'sqlite_path': f'{work}/db/gateway.db'},
        'mapping': {'format_dir': f'{repo}/mappers/clinic-v1', 'profiles_dir': f'{repo}/fhir-profiles'},
        'clinics': [{'id': 'c1', 'time_zone': 'America/New_York', 'identifier_system_base': 'https://ids.c1.example.org/',
                     'programs': [{'id': 'otp', 'part2': True}]}],
        'partners': [{'id': 'partner', 'fhir_base_url': f'https://127.0.0.1:{partner_port}/fhir/R4',
                      'ca_file': f'{pki}/ca.crt', 'write_mode': mode, 'max_concurrent_requests': concurrency,
                      'connect_timeout_ms': 300000, 'request_timeout_ms': 300000,
                      'circuit_breaker': {'failure_threshold': 1000}}],
        'delivery': {'poll_interval_ms': 50, 'batch_size': 64},
        'privacy': {'master_key_file': f'{pki}/dev-master.key'},
        'logging': {'level': 'warn'},
    }


def partner_count(admin, resource='MedicationRequest'):
    _, _, body = admin.request('GET', '/__admin/stats')
    return json.loads(body).get('resources', {}).get(resource, 0)


def run_gateway(args, partner, partner_port, mode, mrns, rx, run):
    work = f'{args.work}/{run}'
    os.makedirs(f'{work}/db', mode=0o700)
    gw_port = args.gateway_port
    with open(f'{work}/gw.json', 'w') as f:
        json.dump(gateway_config(work, args.repo, args.pki, partner_port, mode, args.concurrency, gw_port), f)
    log = open(f'{work}/gateway.log', 'w')
    gw = subprocess.Popen([args.gateway, 'serve', '--config', f'{work}/gw.json'], stderr=log, stdout=log)
    try:
        for _ in range(200):
            try:
                client = Https(gw_port, f'{args.pki}/ca.crt')
                client.request('GET', '/healthz')
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f'gateway did not start, see {work}/gateway.log')
        time.sleep(0.5)  # the partner's statement read at start
        headers = {'Authorization': 'Bearer dev-ingest-c1', 'Content-Type': 'application/x-ndjson'}
        consents = '\n'.join(consent(m, i) for i, m in enumerate(mrns)) + '\n'
        status, _, body = client.request('POST', '/v1/records', consents, headers)
        assert status == 202, body
        os.kill(partner.pid, signal.SIGSTOP)
        try:
            for i in range(0, len(rx), 1000):
                status, _, body = client.request('POST', '/v1/records', '\n'.join(rx[i:i + 1000]) + '\n', headers)
                assert status == 202, body
        finally:
            os.kill(partner.pid, signal.SIGCONT)
        started = time.monotonic()
        admin = Https(partner_port, f'{args.pki}/ca.crt')
        while partner_count(admin) < len(rx):
            if time.monotonic() - started > args.timeout:
                sys.exit(f'{mode}: gateway delivered {partner_count(admin)} of {len(rx)} in {args.timeout} s; '
                         f'see {work}/gateway.log')
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        gw.terminate()
        gw.wait()


def captured_bundles(partner_port, pki):
    admin = Https(partner_port, f'{pki}/ca.crt')
    _, _, body = admin.request('GET', '/__admin/requests?bodies=1')
    return [r['body'] for r in json.loads(body)
            if r['method'] == 'POST' and r.get('bundle_type') == 'transaction' and r.get('status') == 200]


def per_resource_writes(bundle_text):
    """The Bundle's entries as the gateway's per-resource mode sends them: in order (the Patient
    first), conditional, urn:uuid references replaced by where the partner put the earlier ones."""
    bundle = json.loads(bundle_text)
    writes = []
    for e in bundle['entry']:
        req = e['request']
        writes.append((req['method'], req['url'], e.get('fullUrl'), json.dumps(e.get('resource')) if 'resource' in e else None,
                       req.get('ifNoneExist')))
    return writes


def direct(args, partner_port, items, mode):
    work = queue.Queue()
    for item in items:
        work.put(item)
    errors = []

    def sender():
        client = Https(partner_port, f'{args.pki}/ca.crt')
        fhir = {'Content-Type': 'application/fhir+json', 'Accept': 'application/fhir+json'}
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            if mode == 'transaction':
                status, _, body = client.request('POST', '/fhir/R4', item, fhir)
                if status != 200:
                    errors.append(f'{status} {body[:200]!r}')
                continue
            resolved = {}
            for method, url, full_url, resource, if_none_exist in per_resource_writes(item):
                for placeholder, ref in resolved.items():
                    resource = resource.replace(f'"{placeholder}"', f'"{ref}"')
                headers = dict(fhir)
                if if_none_exist:
                    headers['If-None-Exist'] = if_none_exist
                path = '/fhir/R4/' + urllib.parse.quote(url, safe='/?=&|:%')
                status, res_headers, body = client.request(method, path, resource, headers)
                if not 200 <= status < 300:
                    errors.append(f'{status} {body[:200]!r}')
                    break
                location = res_headers.get('location') or res_headers.get('content-location') or ''
                parts = location.split('/_history')[0].split('/')
                ref = '/'.join(parts[-2:]) if len(parts) >= 2 else ''
                if not ref and body:
                    doc = json.loads(body)
                    ref = f"{doc['resourceType']}/{doc['id']}"
                if full_url:
                    resolved[full_url] = ref

    threads = [threading.Thread(target=sender) for _ in range(args.concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        sys.exit(f'direct {mode}: {len(errors)} failed requests, first: {errors[0]}')
    return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--repo', required=True)
    p.add_argument('--gateway', required=True)
    p.add_argument('--pki', required=True)
    p.add_argument('--work', required=True)
    p.add_argument('--patients', type=int, default=500)
    p.add_argument('--per-patient', type=int, default=4)
    p.add_argument('--concurrency', type=int, default=4)
    p.add_argument('--modes', default='transaction,per-resource')
    p.add_argument('--gateway-port', type=int, default=8445)
    p.add_argument('--timeout', type=float, default=600)
    args = p.parse_args()

    mrns = [f'M{i:05d}' for i in range(args.patients)]
    rx = [TEMPLATE_RX % {'id': f'{n}{i:05d}', 'mrn': m} for n in range(args.per_patient) for i, m in enumerate(mrns)]
    if len(rx) > 9000:
        sys.exit('at most 9000 items: the partner logs the last 10,000 requests, which the direct run replays')
    partner, partner_port = start_partner(args.repo, args.pki)
    admin = Https(partner_port, f'{args.pki}/ca.crt')
    bundles = None
    results = []
    try:
        for run, mode in enumerate(args.modes.split(',')):
            admin.request('POST', '/__admin/reset')
            gw_seconds = run_gateway(args, partner, partner_port, mode, mrns, rx, f'run{run}-{mode}')
            if bundles is None:
                if mode != 'transaction':
                    sys.exit('--modes must start with transaction: its Bundles are what the direct runs send')
                bundles = captured_bundles(partner_port, args.pki)
                if len(bundles) != len(rx):
                    sys.exit(f'captured {len(bundles)} Bundles for {len(rx)} items')
            admin.request('POST', '/__admin/reset')
            direct_seconds = direct(args, partner_port, bundles, mode)
            count = partner_count(admin)
            if count != len(rx):
                sys.exit(f'direct {mode}: the partner holds {count} MedicationRequests, expected {len(rx)}')
            results.append((mode, len(rx) / gw_seconds, len(rx) / direct_seconds))
    finally:
        partner.terminate()
    print(f'items: {len(rx)} ({args.patients} patients x {args.per_patient}), concurrency {args.concurrency}')
    print(f'{"write mode":<14}{"gateway items/s":>17}{"direct items/s":>16}{"ratio":>8}')
    for mode, gw_rate, direct_rate in results:
        print(f'{mode:<14}{gw_rate:>17.1f}{direct_rate:>16.1f}{gw_rate / direct_rate:>8.2f}')


if __name__ == '__main__':
    main()
