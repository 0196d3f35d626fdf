'use strict';
// Every golden output of every mapper must be valid FHIR R4 for an independent validator: the
// partner sandbox's (tests/partner/lib/validator.js: Medplum validateResource + the HL7 R4 JSON
// schema + required bindings). Also checks the local CodeSystems the mappers use: each is a valid
// CodeSystem, and every local code in a golden output is defined in the shipped CodeSystem.
// Run: node --test tests/mapping/validate_golden.test.js (needs tests/partner/node_modules).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { FhirValidator } = require('../partner/lib/validator.js');

const repo = path.resolve(__dirname, '..', '..');
const goldenDir = path.join(repo, 'mappers', 'clinic-v1', 'golden');
const codeSystemDir = path.join(repo, 'fhir-profiles', 'CodeSystem');
const LOCAL_PREFIX = 'https://fhir-gateway.dev/fhir/CodeSystem/';

const validator = new FhirValidator();

function describe(issues) {
  return issues.map((i) => `${(i.expression ?? []).join(',')}: ${i.details?.text ?? i.diagnostics ?? i.code}`).join('\n');
}

// Every {system, code} pair anywhere in a resource.
function codings(value, out = []) {
  if (Array.isArray(value)) {
    for (const v of value) codings(v, out);
  } else if (value && typeof value === 'object') {
    if (typeof value.system === 'string' && typeof value.code === 'string') out.push(value);
    for (const v of Object.values(value)) codings(v, out);
  }
  return out;
}

const cases = fs.readdirSync(goldenDir).filter((f) => f.endsWith('.expected.json')).sort();

test('there are golden cases for every record type', () => {
  const types = new Set();
  for (const f of fs.readdirSync(goldenDir).filter((n) => n.endsWith('.input.json'))) {
    types.add(JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8')).record_type);
  }
  const mappers = fs.readdirSync(path.join(repo, 'mappers', 'clinic-v1')).filter((f) => f.endsWith('.mapper.json'));
  for (const m of mappers) assert.ok(types.has(m.replace('.mapper.json', '')), `no golden case for ${m}`);
  assert.ok(cases.length >= mappers.length);
});

const localCodeSystems = new Map(); // url -> Set(code)
for (const f of fs.readdirSync(codeSystemDir).filter((n) => n.endsWith('.json'))) {
  const cs = JSON.parse(fs.readFileSync(path.join(codeSystemDir, f), 'utf8'));
  if (cs.resourceType !== 'CodeSystem' || !cs.url?.startsWith(LOCAL_PREFIX)) continue;
  const codes = new Set();
  const walk = (concepts) => (concepts ?? []).forEach((c) => { codes.add(c.code); walk(c.concept); });
  walk(cs.concept);
  localCodeSystems.set(cs.url, codes);
  test(`local CodeSystem ${f} is valid`, () => {
    assert.strictEqual(cs.url, LOCAL_PREFIX + cs.id, 'canonical url must be the base + id');
    assert.strictEqual(`${cs.id}.json`, f, 'file name must be the id');
    assert.strictEqual(cs.count, codes.size);
    const issues = validator.validate(cs);
    assert.deepStrictEqual(issues, [], describe(issues));
  });
}

for (const file of cases) {
  test(`golden ${file} is valid FHIR R4`, () => {
    const resources = JSON.parse(fs.readFileSync(path.join(goldenDir, file), 'utf8'));
    assert.ok(Array.isArray(resources) && resources.length > 0, 'expected a non-empty array of resources');
    resources.forEach((resource, i) => {
      const issues = validator.validate(resource, `${resource.resourceType}[${i}]`);
      assert.deepStrictEqual(issues, [], `${file} resource ${i}:\n${describe(issues)}`);
      for (const c of codings(resource)) {
        if (!c.system.startsWith(LOCAL_PREFIX)) continue;
        const codes = localCodeSystems.get(c.system);
        assert.ok(codes, `${file}: CodeSystem ${c.system} is not shipped in fhir-profiles/CodeSystem`);
        assert.ok(codes.has(c.code), `${file}: code ${c.code} is not defined in ${c.system}`);
      }
    });
  });
}

// The FHIR output pinned by CSV input mappers' golden cases (golden/<case>.fhir.json beside each
// *.csv-mapper.json): [{"line": N, "resources": [...]} or {"line": N, "error_where": ...}].
const csvFhirFiles = fs.readdirSync(path.join(repo, 'mappers'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(repo, 'mappers', d.name, 'golden')))
  .flatMap((d) => fs.readdirSync(path.join(repo, 'mappers', d.name, 'golden'))
    .filter((f) => f.endsWith('.fhir.json')).map((f) => path.join('mappers', d.name, 'golden', f)));

test('CSV golden cases pin FHIR output', () => assert.ok(csvFhirFiles.length >= 3));

for (const file of csvFhirFiles) {
  test(`CSV golden ${file} is valid FHIR R4`, () => {
    const rows = JSON.parse(fs.readFileSync(path.join(repo, file), 'utf8'));
    assert.ok(Array.isArray(rows) && rows.length > 0, 'expected a non-empty array of rows');
    for (const row of rows) {
      for (const [i, resource] of (row.resources ?? []).entries()) {
        const issues = validator.validate(resource, `${resource.resourceType}[${i}]`);
        assert.deepStrictEqual(issues, [], `${file} line ${row.line} resource ${i}:\n${describe(issues)}`);
        for (const c of codings(resource)) {
          if (!c.system.startsWith(LOCAL_PREFIX)) continue;
          assert.ok(localCodeSystems.get(c.system)?.has(c.code), `${file}: code ${c.code} is not defined in ${c.system}`);
        }
      }
    }
  });
}

// The validator must be able to fail, or the tests above prove nothing.
test('the validator rejects a broken golden resource', () => {
  const resource = JSON.parse(fs.readFileSync(path.join(goldenDir, 'consent_spec_example.expected.json'), 'utf8'))[0];
  resource.status = 'revoked'; // not an R4 Consent.status
  delete resource.scope;
  const issues = validator.validate(resource);
  assert.ok(issues.length >= 2, describe(issues));
});
