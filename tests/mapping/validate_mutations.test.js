'use strict';
// Agreement on invalid input: every mutation in tests/validate/mutations/mutations.json (a golden
// output with one rule broken) must be rejected by the partner's independent validator, as
// tests/validate/mutations_test.cpp checks the gateway's own validator rejects it. The partner
// side is tests/partner/lib/validator.js: Medplum validateResource, the HL7 R4 JSON schema,
// required bindings, plus its opt-in strictIssues() (data type invariants and reference targets,
// which validateResource leaves out) and the invariants our profiles add (us-core-*), evaluated
// here with Medplum's FHIRPath engine. The few rules only the gateway checks are listed, with the
// reason, in the file's onlyGatewayRejects; for those the partner is asserted to still accept, so
// the list cannot go stale.
// Run: node --test tests/mapping/validate_mutations.test.js (needs tests/partner/node_modules).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { FhirValidator } = require('../partner/lib/validator.js');

const repo = path.resolve(__dirname, '..', '..');
const partnerDir = path.join(repo, 'tests', 'partner');
// The partner's copies (the same module instance validator.js indexed the R4 definitions into).
const core = require(require.resolve('@medplum/core', { paths: [partnerDir] }));
const { applyPatch } = require(require.resolve('rfc6902', { paths: [partnerDir] }));

const goldenDir = path.join(repo, 'mappers', 'clinic-v1', 'golden');
const sdDir = path.join(repo, 'fhir-profiles', 'StructureDefinition');
const mutationSet = JSON.parse(fs.readFileSync(path.join(repo, 'tests', 'validate', 'mutations', 'mutations.json'), 'utf8'));

const validator = new FhirValidator();

function describe(issues) {
  return issues.map((i) => `${(i.expression ?? []).join(',')}: ${i.details?.text ?? i.diagnostics ?? i.code}`).join('\n');
}

// The error invariants a project profile lists in its differential: [{path, key, human, expression}].
const profileInvariants = new Map();
function invariantsOf(profileId) {
  if (!profileInvariants.has(profileId)) {
    const sd = JSON.parse(fs.readFileSync(path.join(sdDir, `${profileId}.json`), 'utf8'));
    const list = [];
    for (const el of sd.differential.element) {
      for (const c of el.constraint ?? []) {
        if (c.severity === 'error') list.push({ path: el.path, key: c.key, human: c.human, expression: c.expression });
      }
    }
    profileInvariants.set(profileId, list);
  }
  return profileInvariants.get(profileId);
}

// Evaluates the profile's invariants with Medplum's FHIRPath engine. An empty result is not a
// failure (as in the HL7 validator).
function profileInvariantIssues(resource, profileId) {
  const issues = [];
  const root = core.toTypedValue(resource);
  const variables = { '%resource': root, '%rootResource': root, '%ucum': core.toTypedValue('http://unitsofmeasure.org') };
  for (const c of invariantsOf(profileId)) {
    const targets = c.path === resource.resourceType ? [root] : core.evalFhirPathTyped(c.path, [root], variables);
    for (const target of targets) {
      const result = core.evalFhirPathTyped(c.expression, [target], { ...variables, '%context': target });
      if (result.length > 0 && !(result.length === 1 && result[0].value === true)) {
        issues.push({ severity: 'error', code: 'invariant', details: { text: `Constraint ${c.key} not met: ${c.human}` }, expression: [c.path] });
      }
    }
  }
  return issues;
}

function partnerIssues(resource, profileId) {
  return [...validator.validate(resource), ...validator.strictIssues(resource), ...profileInvariantIssues(resource, profileId)];
}

function golden(name, index) {
  return JSON.parse(fs.readFileSync(path.join(goldenDir, `${name}.expected.json`), 'utf8'))[index];
}

// Golden files are named after their record type; the profile each record type's output meets.
const PROFILE_BY_PREFIX = [
  ['patient_', 'gw-patient'], ['prescription_', 'gw-medicationrequest'], ['lab_', 'gw-observation-lab'],
  ['screening_', 'gw-observation-screening'], ['harm_reduction_', 'gw-observation-harm-reduction'],
  ['overdose_', 'gw-observation-overdose'], ['treatment_plan_', 'gw-careplan'], ['consent_', 'gw-consent'],
  ['encounter_', 'gw-encounter'],
];

test('the partner checks used below accept every golden output', () => {
  // Otherwise a rejection below could be the extra checks failing on anything.
  let count = 0;
  for (const file of fs.readdirSync(goldenDir).filter((f) => f.endsWith('.expected.json'))) {
    const profile = PROFILE_BY_PREFIX.find(([prefix]) => file.startsWith(prefix))?.[1];
    assert.ok(profile, `no profile known for golden ${file}`);
    JSON.parse(fs.readFileSync(path.join(goldenDir, file), 'utf8')).forEach((resource, i) => {
      const issues = partnerIssues(resource, profile);
      assert.deepStrictEqual(issues, [], `${file}[${i}]:\n${describe(issues)}`);
      count += 1;
    });
  }
  assert.ok(count >= 20);
});

test('the mutation set is well formed', () => {
  const ids = mutationSet.mutations.map((m) => m.id);
  assert.ok(ids.length >= 20, 'expected at least 20 mutations');
  assert.strictEqual(new Set(ids).size, ids.length, 'mutation ids must be unique');
  for (const id of Object.keys(mutationSet.onlyGatewayRejects)) {
    assert.ok(ids.includes(id), `onlyGatewayRejects names unknown mutation ${id}`);
  }
  for (const m of mutationSet.mutations) {
    assert.ok(m.breaks && m.gateway?.code && m.gateway?.expression && m.profile, `${m.id}: breaks, profile and gateway are required`);
    assert.ok(fs.existsSync(path.join(sdDir, `${m.profile}.json`)), `${m.id}: unknown profile ${m.profile}`);
  }
});

for (const m of mutationSet.mutations) {
  const onlyGateway = mutationSet.onlyGatewayRejects[m.id];
  test(`mutation ${m.id} (${m.breaks}) is ${onlyGateway ? 'accepted by the partner (listed)' : 'rejected by the partner'}`, () => {
    const original = golden(m.golden, m.resource);
    const resource = structuredClone(original);
    const errors = applyPatch(resource, m.patch).filter(Boolean);
    assert.deepStrictEqual(errors, [], `${m.id}: patch does not apply`);
    assert.notDeepStrictEqual(resource, original);
    const issues = partnerIssues(resource, m.profile);
    if (onlyGateway) {
      assert.deepStrictEqual(issues, [], `the partner now rejects ${m.id}; remove it from onlyGatewayRejects:\n${describe(issues)}`);
    } else {
      assert.ok(issues.length > 0, `the partner accepts ${m.id}, which breaks: ${m.breaks}`);
    }
  });
}
