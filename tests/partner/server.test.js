'use strict';
// Smoke and behaviour tests for the sandbox partner: `npm test` (node --test) in tests/partner.
// Starts server.js as the gateway's tests do (child process, one JSON ready line), with the
// development PKI from certs/make-dev-certs.sh in a temporary directory, client certificates
// required and a bearer token, and checks the FHIR behaviour the gateway relies on.

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const TOKEN = 'test-token-1';
let dir;
let child;
let ready;
let agent;

function tlsFiles(client = 'client') {
  return {
    ca: fs.readFileSync(path.join(dir, 'ca.crt')),
    cert: client ? fs.readFileSync(path.join(dir, `${client}.crt`)) : undefined,
    key: client ? fs.readFileSync(path.join(dir, `${client}.key`)) : undefined,
  };
}

// One HTTPS request. `path` is relative to the FHIR base unless it starts with "/".
function request(method, rel, body, { headers = {}, token = TOKEN, tls } = {}) {
  const url = new URL(rel.startsWith('/') ? rel : `${ready.base}/${rel}`.replace(/\/$/, ''), ready.base);
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ...(tls ? { ...tls, agent: false } : { agent }),
        headers: {
          accept: 'application/fhir+json',
          ...(text !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = raw ? JSON.parse(raw) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, body: json, raw });
        });
      }
    );
    req.on('error', reject);
    if (text !== undefined) req.write(text);
    req.end();
  });
}

const admin = (method, rel, body) => request(method, `/__admin/${rel}`, body, { token: undefined, headers: { 'content-type': 'application/json' } });

async function search(query) {
  const res = await request('GET', query);
  assert.equal(res.status, 200, res.raw);
  assert.equal(res.body.type, 'searchset');
  return (res.body.entry ?? []).map((e) => e.resource);
}

const PATIENT_URN = 'urn:uuid:6f1b3f4e-0c1d-4b7a-9f00-000000000001';
const MEDREQ_URN = 'urn:uuid:6f1b3f4e-0c1d-4b7a-9f00-000000000002';
const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const RXID = 'urn:oid:2.16.840.1.113883.3.999.2';

function patient(mrn, extra = {}) {
  return {
    resourceType: 'Patient',
    identifier: [{ system: MRN, value: mrn }],
    name: [{ family: 'Test', given: ['Sandbox'] }],
    gender: 'female',
    birthDate: '1984-03-12',
    ...extra,
  };
}

function medicationRequest(rx, subject) {
  return {
    resourceType: 'MedicationRequest',
    identifier: [{ system: RXID, value: rx }],
    status: 'active',
    intent: 'order',
    subject: { reference: subject },
    medicationCodeableConcept: {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010600' }],
      text: 'buprenorphine 8 MG / naloxone 2 MG',
    },
  };
}

// Conditional update (upsert by identifier) of a Patient and a MedicationRequest pointing at it.
function upsertBundle(mrn = 'MRN-1', rx = 'RX-1', patientExtra = {}) {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: PATIENT_URN,
        resource: patient(mrn, patientExtra),
        request: { method: 'PUT', url: `Patient?identifier=${MRN}|${mrn}` },
      },
      {
        fullUrl: MEDREQ_URN,
        resource: medicationRequest(rx, PATIENT_URN),
        request: { method: 'PUT', url: `MedicationRequest?identifier=${RXID}|${rx}` },
      },
    ],
  };
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'partner-test-'));
  execFileSync('bash', [path.resolve(__dirname, '../../certs/make-dev-certs.sh'), dir], { stdio: 'ignore' });
  child = spawn(
    process.execPath,
    [
      path.join(__dirname, 'server.js'),
      '--port', '0',
      '--cert', path.join(dir, 'partner.crt'),
      '--key', path.join(dir, 'partner.key'),
      '--ca', path.join(dir, 'ca.crt'),
      '--require-client-cert',
      '--token', TOKEN,
      '--exit-with-parent',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] }
  );
  const lines = readline.createInterface({ input: child.stdout });
  ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('partner did not print its ready line within 60 s')), 60000);
    child.once('exit', (code) => reject(new Error(`partner exited early (${code})`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
  });
  agent = new https.Agent({ keepAlive: true, ...tlsFiles('client') });
});

after(() => {
  agent?.destroy();
  child?.kill('SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  const res = await admin('POST', 'reset');
  assert.equal(res.status, 200);
});

test('prints one JSON ready line with the port and the FHIR base', () => {
  assert.equal(ready.ready, true);
  assert.ok(Number.isInteger(ready.port) && ready.port > 0);
  assert.equal(ready.base, `https://127.0.0.1:${ready.port}/fhir/R4`);
});

test('serves a CapabilityStatement at /metadata', async () => {
  const res = await request('GET', 'metadata');
  assert.equal(res.status, 200);
  assert.equal(res.body.resourceType, 'CapabilityStatement');
  assert.equal(res.body.fhirVersion, '4.0.1');
  assert.match(res.headers['content-type'], /^application\/fhir\+json/);
});

test('admin capability: the statement and the API refuse transactions, batches, conditional writes, types', async () => {
  try {
    const set = await admin('POST', 'capability', { transaction: false, conditional_update: false, types: ['Patient'] });
    assert.equal(set.status, 200, set.raw);
    const meta = (await request('GET', 'metadata')).body;
    assert.deepEqual(meta.rest[0].interaction.map((i) => i.code), ['batch']);
    assert.deepEqual(meta.rest[0].resource.map((r) => r.type), ['Patient']);
    assert.equal(meta.rest[0].resource[0].conditionalUpdate, false);
    const tx = await request('POST', '', upsertBundle());
    assert.equal(tx.status, 400);
    assert.equal(tx.body.issue[0].code, 'not-supported');
    const put = await request('PUT', `Patient?identifier=${MRN}|MRN-9`, patient('MRN-9'));
    assert.equal(put.status, 400);
    assert.match(put.body.issue[0].details.text, /Conditional update/);
    const med = await request('POST', 'MedicationRequest', medicationRequest('RX-9', 'Patient/x'));
    assert.equal(med.status, 400);
    assert.match(med.body.issue[0].details.text, /does not accept MedicationRequest/);
    const post = await request('POST', 'Patient', patient('MRN-9'), { headers: { 'if-none-exist': `identifier=${MRN}|MRN-9` } });
    assert.equal(post.status, 201, post.raw);
    assert.equal((await admin('POST', 'capability', { bogus: 1 })).status, 400);
  } finally {
    await admin('POST', 'reset');
  }
  assert.deepEqual((await request('GET', 'metadata')).body.rest[0].interaction.map((i) => i.code), ['transaction', 'batch']);
});

test('transaction: conditional update Patient + MedicationRequest by urn:uuid, idempotent on resend', async () => {
  const first = await request('POST', '', upsertBundle());
  assert.equal(first.status, 200, first.raw);
  assert.equal(first.body.resourceType, 'Bundle');
  assert.equal(first.body.type, 'transaction-response');
  assert.equal(first.body.entry.length, 2);
  for (const e of first.body.entry) {
    assert.equal(e.response.status, '201');
    assert.match(e.response.location, /^(Patient|MedicationRequest)\/[0-9a-f-]{36}$/);
    assert.match(e.response.etag, /^W\/"[0-9a-f-]{36}"$/);
  }
  const patientId = first.body.entry[0].response.location.split('/')[1];

  const patients = await search(`Patient?identifier=${MRN}|MRN-1`);
  assert.equal(patients.length, 1);
  assert.equal(patients[0].id, patientId);
  const meds = await search(`MedicationRequest?identifier=${RXID}|RX-1`);
  assert.equal(meds.length, 1);
  assert.equal(meds[0].subject.reference, `Patient/${patientId}`, 'urn:uuid reference rewritten');
  assert.equal((await search(`MedicationRequest?subject=Patient/${patientId}`)).length, 1);

  const again = await request('POST', '', upsertBundle());
  assert.equal(again.status, 200, again.raw);
  assert.deepEqual(again.body.entry.map((e) => e.response.status), ['200', '200']);
  assert.equal(again.body.entry[0].response.location, `Patient/${patientId}`);
  assert.notEqual(again.body.entry[0].response.etag, first.body.entry[0].response.etag, 'new version');
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-1`)).length, 1, 'no duplicate Patient');
  assert.equal((await search(`MedicationRequest?identifier=${RXID}|RX-1`)).length, 1, 'no duplicate MedicationRequest');

  const stats = (await admin('GET', 'stats')).body;
  assert.equal(stats.transactions, 2);
  assert.deepEqual(stats.resources, { Patient: 1, MedicationRequest: 1 });
});

test('invalid resource in a transaction: 400 OperationOutcome naming the entry, nothing stored', async () => {
  const bundle = upsertBundle('MRN-2', 'RX-2', { gender: 'bogus' });
  const res = await request('POST', '', bundle);
  assert.equal(res.status, 400, res.raw);
  assert.equal(res.body.resourceType, 'OperationOutcome');
  assert.ok(res.body.issue.some((i) => i.expression?.[0] === 'Bundle.entry[0].resource.gender'), res.raw);
  assert.ok(!res.raw.includes('bogus'), 'the outcome does not echo the (possibly PHI) value');
  assert.deepEqual((await admin('GET', 'stats')).body.resources, {});

  // Calendar dates and required bindings that Medplum's own validator lets through.
  const badDate = await request('POST', 'Patient', patient('MRN-3', { birthDate: '1990-02-30' }));
  assert.equal(badDate.status, 400, badDate.raw);
  const badStatus = await request('POST', 'MedicationRequest', { ...medicationRequest('RX-3', 'Patient/x'), status: 'nope' });
  assert.equal(badStatus.status, 400, badStatus.raw);
  assert.match(badStatus.body.issue[0].details.text, /medicationrequest-status/);
  assert.deepEqual((await admin('GET', 'stats')).body.resources, {});
});

test('transaction failing while it runs is rolled back: creates and updates undone', async () => {
  const first = await request('POST', '', upsertBundle());
  assert.equal(first.status, 200, first.raw);
  const patientId = first.body.entry[0].response.location.split('/')[1];
  const before = await request('GET', `Patient/${patientId}`);
  const other = await request('POST', 'Patient', patient('MRN-9'));
  assert.equal(other.status, 201, other.raw);

  // Medplum runs creates before updates; the If-Match on the last update fails (412) after
  // the Observation was created and the Patient updated.
  const res = await request('POST', '', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'UDS' }, subject: { reference: `Patient/${patientId}` } },
        request: { method: 'POST', url: 'Observation' },
      },
      {
        resource: patient('MRN-1', { gender: 'male' }),
        request: { method: 'PUT', url: `Patient?identifier=${MRN}|MRN-1` },
      },
      {
        resource: { ...patient('MRN-9', { gender: 'male' }), id: other.body.id },
        request: { method: 'PUT', url: `Patient/${other.body.id}`, ifMatch: 'W/"not-the-version"' },
      },
    ],
  });
  assert.equal(res.status, 412, res.raw);
  assert.equal((await search('Observation')).length, 0, 'created Observation rolled back');
  const after = await request('GET', `Patient/${patientId}`);
  assert.deepEqual(after.body, before.body, 'Patient update rolled back');
  const history = await request('GET', `Patient/${patientId}/_history`);
  assert.equal(history.body.entry.length, 1);
});

test('conditional create (ifNoneExist) of an existing Patient: references in the Bundle point to it', async () => {
  const created = await request('POST', 'Patient', patient('MRN-4'));
  assert.equal(created.status, 201, created.raw);
  const existingId = created.body.id;
  assert.match(created.headers.location, new RegExp(`/fhir/R4/Patient/${existingId}/_history/`));

  const res = await request('POST', '', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: PATIENT_URN,
        // The gateway's own deterministic id in the body must not matter.
        resource: patient('MRN-4', { id: '7d0c2a55-1111-5222-8333-944445555666' }),
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|MRN-4` },
      },
      {
        fullUrl: MEDREQ_URN,
        resource: medicationRequest('RX-4', PATIENT_URN),
        request: { method: 'POST', url: 'MedicationRequest', ifNoneExist: `identifier=${RXID}|RX-4` },
      },
    ],
  });
  assert.equal(res.status, 200, res.raw);
  assert.equal(res.body.entry[0].response.status, '200', 'existing Patient found, not created');
  assert.equal(res.body.entry[0].response.location, `Patient/${existingId}`);
  assert.equal(res.body.entry[1].response.status, '201');
  const meds = await search(`MedicationRequest?identifier=${RXID}|RX-4`);
  assert.equal(meds[0].subject.reference, `Patient/${existingId}`);
  assert.equal((await search('Patient')).length, 1);
});

test('conditional update bodies must not carry an id when nothing matches (Medplum: 400)', async () => {
  const inBundle = await request('POST', '', upsertBundle('MRN-5', 'RX-5', { id: 'abc' }));
  assert.equal(inBundle.status, 400, inBundle.raw);
  assert.match(inBundle.raw, /Cannot provide ID for create by update/);
  const single = await request('PUT', `Patient?identifier=${MRN}|MRN-5`, patient('MRN-5', { id: 'abc' }));
  assert.equal(single.status, 400, single.raw);
  assert.deepEqual((await admin('GET', 'stats')).body.resources, {});

  const ok = await request('PUT', `Patient?identifier=${MRN}|MRN-5`, patient('MRN-5'));
  assert.equal(ok.status, 201, ok.raw);
  const update = await request('PUT', `Patient?identifier=${MRN}|MRN-5`, patient('MRN-5', { gender: 'other' }));
  assert.equal(update.status, 200, update.raw);
  assert.equal(update.body.id, ok.body.id);
});

test('identifier search (indexed) follows updates and matches as Medplum does', async () => {
  const a = await request('POST', 'Patient', patient('MRN-A'));
  const id = a.body.id;
  const moved = await request('PUT', `Patient/${id}`, { ...patient('MRN-B'), id });
  assert.equal(moved.status, 200, moved.raw);
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-A`)).length, 0, 'old identifier gone');
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-B`)).length, 1);
  assert.equal((await search(`Patient?identifier=${MRN}|mrn-b`)).length, 1, 'Medplum compares tokens case-insensitively');
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-B&gender=female`)).length, 1);
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-B&gender=male`)).length, 0);
  assert.equal((await search('Patient?identifier=MRN-B')).length, 1, 'value-only token (full scan)');
  await request('DELETE', `Patient/${id}`);
  assert.equal((await search(`Patient?identifier=${MRN}|MRN-B`)).length, 0, 'deleted');
});

test('a plain create ignores a client id instead of overwriting that resource', async () => {
  const a = await request('POST', 'Patient', patient('MRN-6', { id: 'client-chosen' }));
  const b = await request('POST', 'Patient', patient('MRN-7', { id: 'client-chosen' }));
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  assert.notEqual(a.body.id, 'client-chosen');
  assert.notEqual(a.body.id, b.body.id);
  assert.equal((await search('Patient')).length, 2);
});

test('Medplum limit: a transaction with a conditional entry holds at most 8 entries', async () => {
  const entries = (n) =>
    Array.from({ length: n }, (_, i) => ({
      resource: patient(`MRN-L${i}`),
      request: { method: 'PUT', url: `Patient?identifier=${MRN}|MRN-L${i}` },
    }));
  const eight = await request('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries(8) });
  assert.equal(eight.status, 200, eight.raw);
  const nine = await request('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries(9) });
  assert.equal(nine.status, 400);
  assert.match(nine.raw, /strict isolation/);
});

test('unknown search parameters are rejected, so a misspelt conditional update cannot duplicate', async () => {
  const res = await request('PUT', `Patient?identifer=${MRN}|MRN-8`, patient('MRN-8'));
  assert.equal(res.status, 400, res.raw);
  assert.match(res.body.issue[0].details.text, /Unknown search parameter "identifer"/);
  assert.equal((await request('GET', 'Foo')).status, 404);
  assert.deepEqual((await admin('GET', 'stats')).body.resources, {});
});

test('content types: application/json accepted, others 415, broken JSON 400', async () => {
  const json = await request('POST', 'Patient', patient('MRN-9'), { headers: { 'content-type': 'application/json' } });
  assert.equal(json.status, 201, json.raw);
  const text = await request('POST', 'Patient', patient('MRN-9'), { headers: { 'content-type': 'text/plain' } });
  assert.equal(text.status, 415);
  const broken = await request('POST', 'Patient', '{"resourceType":');
  assert.equal(broken.status, 400);
  assert.equal(broken.body.resourceType, 'OperationOutcome');
});

test('bearer token: missing or wrong -> 401 with WWW-Authenticate', async () => {
  const none = await request('GET', 'Patient', undefined, { token: null });
  assert.equal(none.status, 401);
  assert.match(none.headers['www-authenticate'], /^Bearer/);
  assert.equal((await request('GET', 'Patient', undefined, { token: 'wrong' })).status, 401);
});

test('mutual TLS: no client certificate, a wrong-CA one, or TLS 1.1 are refused', async () => {
  await assert.rejects(request('GET', 'metadata', undefined, { tls: tlsFiles(null) }));
  await assert.rejects(request('GET', 'metadata', undefined, { tls: tlsFiles('rogue-client') }));
  await assert.rejects(request('GET', 'metadata', undefined, { tls: { ...tlsFiles('client'), maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } }));
  const ok = await request('GET', 'metadata', undefined, { tls: tlsFiles('client') });
  assert.equal(ok.status, 200);
  const log = (await admin('GET', 'requests')).body;
  assert.deepEqual(log.at(-1).client_cert, { subject_cn: 'clinic-c1', authorized: true });
});

test('fault injection: 503 twice with Retry-After, then normal; request log records it', async () => {
  const set = await admin('POST', 'faults', { status: 503, count: 2, headers: { 'Retry-After': '1' } });
  assert.equal(set.status, 200, set.raw);
  const a = await request('POST', '', upsertBundle());
  const b = await request('POST', '', upsertBundle());
  const c = await request('POST', '', upsertBundle());
  assert.deepEqual([a.status, b.status, c.status], [503, 503, 200]);
  assert.equal(a.body.resourceType, 'OperationOutcome');
  assert.equal(a.headers['retry-after'], '1');
  assert.equal((await search('Patient')).length, 1, 'faulted requests were not applied');
  const log = (await admin('GET', 'requests')).body;
  assert.deepEqual(log.slice(0, 3).map((r) => [r.method, r.url, r.status]), [
    ['POST', '/fhir/R4', 503],
    ['POST', '/fhir/R4', 503],
    ['POST', '/fhir/R4', 200],
  ]);
  assert.equal(log[0].entries, 2);
  assert.equal(log[0].headers.authorization, 'Bearer', 'the token itself is not logged');
  const stats = (await admin('GET', 'stats')).body;
  assert.equal(stats.faults_injected, 2);
});

test('fault injection: custom body, delay, dropped connection, and commit-then-drop', async () => {
  const body = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] };
  await admin('POST', 'faults', { status: 429, body });
  const throttled = await request('GET', 'Patient');
  assert.equal(throttled.status, 429);
  assert.deepEqual(throttled.body, body);

  await admin('POST', 'faults', { delay_ms: 300 });
  const t0 = Date.now();
  assert.equal((await request('GET', 'Patient')).status, 200);
  assert.ok(Date.now() - t0 >= 290);

  await admin('POST', 'faults', { drop: true });
  await assert.rejects(request('POST', '', upsertBundle()), /socket hang up|ECONNRESET/);
  assert.equal((await search('Patient')).length, 0);

  // The partner commits, then the answer is lost: a resend must not duplicate.
  await admin('POST', 'faults', { drop: true, commit: true });
  await assert.rejects(request('POST', '', upsertBundle()), /socket hang up|ECONNRESET/);
  assert.equal((await search('Patient')).length, 1);
  assert.equal((await request('POST', '', upsertBundle())).status, 200);
  assert.equal((await search('Patient')).length, 1);
  assert.equal((await search('MedicationRequest')).length, 1);

  const bad = await admin('POST', 'faults', { status: 503, cuont: 2 });
  assert.equal(bad.status, 400);
});

test('reset clears data, faults and the request log', async () => {
  await request('POST', 'Patient', patient('MRN-10'));
  await admin('POST', 'faults', { status: 500, count: 5 });
  await admin('POST', 'reset');
  assert.deepEqual((await admin('GET', 'requests')).body, []);
  assert.equal((await request('GET', 'Patient')).status, 200, 'fault cleared');
  assert.equal((await search('Patient')).length, 0);
});
