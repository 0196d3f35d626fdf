'use strict';
// MemoryRepository with the two things a real partner has and Medplum's in-memory store lacks:
// validation of every write and all-or-nothing transactions.
//
// - withTransaction keeps an undo log of every write made inside it and replays it backwards
//   when the callback throws. Medplum runs a `transactions: true` Bundle inside one
//   withTransaction call, and conditional create/update open nested ones, which join the
//   outer one. This is only safe because the server runs one FHIR request at a time
//   (see the request queue in server.js).
// - createResource (which update and patch also go through) validates the resource unless the
//   server has already validated the request bodies (then `prevalidated` is set for the request).
// - A client-supplied id on a plain create (POST) is ignored, as the FHIR spec requires and the
//   Medplum server does; MemoryRepository alone would store it and overwrite an existing resource.
// - Searches by identifier=system|value use an index. MemoryRepository evaluates the search
//   parameter's FHIRPath on every stored resource of the type, and Medplum's `identifier`
//   expression is a union over dozens of types, so every conditional entry cost O(stored
//   resources) at about 0.2 ms each: 22 transactions/s with 100 resources stored, and falling.
//   The index only narrows the candidates; each is still checked with Medplum's own
//   matchesSearchRequest, so results are exactly what Medplum returns.

const { MemoryRepository } = require('@medplum/fhir-router');
const { OperationOutcomeError, Operator, deepClone, globalSchema, matchesSearchRequest } = require('@medplum/core');

class StrictMemoryRepository extends MemoryRepository {
  constructor(validator) {
    super();
    this.validator = validator;
    this.undo = null; // array while a transaction is open
    this.prevalidated = false;
    // type -> "system|value" (lowercase, as Medplum compares tokens) -> Set<id>. Entries are only
    // ever added: stale ones (deleted, rolled back, identifier changed) fail the final match.
    this.identifierIndex = new Map();
  }

  clear() {
    super.clear();
    this.identifierIndex?.clear();
  }

  index(resource) {
    let byKey = this.identifierIndex.get(resource.resourceType);
    if (!byKey) this.identifierIndex.set(resource.resourceType, (byKey = new Map()));
    for (const key of identifierKeys(resource)) {
      if (!byKey.has(key)) byKey.set(key, new Set());
      byKey.get(key).add(resource.id);
    }
  }

  // Candidate ids for a search with an identifier=system|value filter, or undefined when the
  // request cannot use the index (then the full scan runs).
  candidates(searchRequest) {
    const type = searchRequest.resourceType;
    if (searchRequest.sortRules?.length || !indexable(type)) return undefined;
    for (const f of searchRequest.filters ?? []) {
      if (f.code !== 'identifier' || f.operator !== Operator.EQUALS) continue;
      if (typeof f.value !== 'string' || /[,\\]/.test(f.value)) continue;
      const bar = f.value.indexOf('|');
      if (bar <= 0 || bar === f.value.length - 1 || f.value.indexOf('|', bar + 1) >= 0) continue;
      const key = f.value.toLowerCase();
      return { key, ids: this.identifierIndex.get(type)?.get(key) ?? new Set() };
    }
    return undefined;
  }

  async search(searchRequest) {
    const hit = this.candidates(searchRequest);
    if (!hit) return super.search(searchRequest);
    const stored = this.resources.get(searchRequest.resourceType);
    // Only the identifier filter: the same comparison Medplum makes for an Identifier token
    // (system and value, both lowercased), without evaluating the long FHIRPath union.
    const onlyIdentifier = searchRequest.filters.length === 1;
    const matches = [];
    for (const id of hit.ids) {
      const resource = stored?.get(id);
      if (!resource) continue;
      const ok = onlyIdentifier
        ? identifierKeys(resource).includes(hit.key)
        : matchesSearchRequest(resource, searchRequest);
      if (ok) matches.push(resource);
    }
    let page = matches;
    if (searchRequest.offset !== undefined) page = page.slice(searchRequest.offset);
    if (searchRequest.count !== undefined) page = page.slice(0, searchRequest.count);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: page.length ? page.map((resource) => ({ resource: deepClone(resource) })) : undefined,
      total: matches.length,
    };
  }

  async createResource(resource, options) {
    if (options && !options.assignedId && resource.id) {
      resource = { ...resource };
      delete resource.id;
    }
    if (!this.prevalidated) {
      const issues = this.validator.validate(resource);
      if (issues.length) {
        throw new OperationOutcomeError({ resourceType: 'OperationOutcome', id: 'invalid', issue: issues });
      }
    }
    if (!resource.id) resource = { ...resource, id: this.generateId() };
    this.remember(resource.resourceType, resource.id);
    const result = await super.createResource(resource, options);
    this.index(result);
    return result;
  }

  async deleteResource(resourceType, id) {
    this.remember(resourceType, id);
    return super.deleteResource(resourceType, id);
  }

  remember(type, id) {
    if (!this.undo) return;
    const history = this.history.get(type)?.get(id);
    this.undo.push({ type, id, resource: this.resources.get(type)?.get(id), history: history?.slice() });
  }

  async withTransaction(callback) {
    if (this.undo) return callback(undefined); // nested: part of the outer transaction
    this.undo = [];
    try {
      const result = await callback(undefined);
      this.undo = null;
      return result;
    } catch (err) {
      this.rollback();
      throw err;
    }
  }

  rollback() {
    const log = this.undo ?? [];
    this.undo = null;
    for (let i = log.length - 1; i >= 0; i--) {
      const { type, id, resource, history } = log[i];
      if (resource) this.resources.get(type).set(id, resource);
      else this.resources.get(type)?.delete(id);
      if (history) this.history.get(type).set(id, history);
      else this.history.get(type)?.delete(id);
    }
  }

  // Resource counts per type, for /__admin/stats.
  counts() {
    const out = {};
    for (const [type, byId] of this.resources) if (byId.size) out[type] = byId.size;
    return out;
  }
}

function identifierKeys(resource) {
  const idents = Array.isArray(resource.identifier) ? resource.identifier : [resource.identifier];
  const keys = [];
  for (const ident of idents) {
    if (typeof ident?.system === 'string' && typeof ident?.value === 'string') {
      keys.push(`${ident.system.toLowerCase()}|${ident.value.toLowerCase()}`);
    }
  }
  return keys;
}

// True when the type's `identifier` search parameter is exactly Type.identifier, so that the
// index (built from resource.identifier) finds every resource Medplum would match.
const indexableCache = new Map();
function indexable(type) {
  if (!indexableCache.has(type)) {
    const expression = globalSchema.types[type]?.searchParams?.identifier?.expression ?? '';
    const mine = expression.split('|').map((e) => e.trim()).filter((e) => e.startsWith(`${type}.`));
    indexableCache.set(type, mine.length === 1 && mine[0] === `${type}.identifier`);
  }
  return indexableCache.get(type);
}

module.exports = { StrictMemoryRepository };
