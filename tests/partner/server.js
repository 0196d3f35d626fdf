#!/usr/bin/env node
'use strict';
// Sandbox FHIR R4 partner for fhir-gateway tests and the demo: Medplum's FhirRouter over an
// in-memory store, behind HTTPS, with strict validation, all-or-nothing transactions, and an
// admin API (/__admin) to inject faults and see what was received. See README.md.
//
//   node server.js --port 0 [--host 127.0.0.1] --cert F --key F [--ca F [--require-client-cert]]
//                  [--base /fhir/R4] [--token T] [--exit-with-parent] [--verbose]
//
// When listening it prints one line to stdout:
//   {"ready":true,"port":N,"base":"https://127.0.0.1:N/fhir/R4"}

const fs = require('node:fs');
const https = require('node:https');
const { parseArgs } = require('node:util');
const { FhirRouter } = require('@medplum/fhir-router');
const { getStatus, globalSchema, normalizeOperationOutcome, parseSearchRequest } = require('@medplum/core');
const { FhirValidator } = require('./lib/validator');
const { StrictMemoryRepository } = require('./lib/repo');
const { AuthServer } = require('./lib/auth');

const MAX_BODY_BYTES = 50 * 1024 * 1024;
const MAX_LOGGED_REQUESTS = 10000;
const MAX_LOGGED_BODY_BYTES = 1024 * 1024;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const SOFTWARE = 'fhir-gateway sandbox partner (@medplum/fhir-router 4.5.2, MemoryRepository)';

function outcome(code, text, diagnostics) {
  const issue = { severity: 'error', code, details: { text } };
  if (diagnostics) issue.diagnostics = diagnostics;
  return { resourceType: 'OperationOutcome', issue: [issue] };
}

function faultCode(status) {
  if (status === 429) return 'throttled';
  if (status === 503 || status === 502 || status === 504) return 'transient';
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409 || status === 412) return 'conflict';
  return status >= 500 ? 'exception' : 'invalid';
}

function mediaType(header) {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Partner {
  constructor(options) {
    this.base = options.base;
    this.token = options.token;
    this.verbose = options.verbose;
    this.validator = options.validator ?? new FhirValidator();
    this.repo = new StrictMemoryRepository(this.validator);
    this.router = new FhirRouter();
    this.queue = Promise.resolve(); // one FHIR request at a time: see lib/repo.js
    this.auth = new AuthServer(); // OAuth 2.0 (SMART Backend Services); off until configured
    this.reset();
  }

  reset() {
    // What this partner accepts (POST /__admin/capability): its CapabilityStatement says so and
    // the FHIR API refuses the rest, as a server without those features would.
    this.accepts = { transaction: true, batch: true, conditional_create: true, conditional_update: true, types: null };
    this.capability = this.buildCapabilityStatement();
    this.repo.clear();
    this.faults = [];
    this.requests = [];
    this.seq = 0;
    this.stats = {
      requests: 0, transactions: 0, batches: 0, creates: 0, updates: 0, patches: 0, deletes: 0,
      reads: 0, searches: 0, faults_injected: 0, dropped: 0, by_status: {},
      // FHIR requests in progress at once (from the request to the answer), overall and for one
      // patient: what a client's flow control allows through (tests of max_concurrent_requests).
      concurrency: { in_flight: 0, max_in_flight: 0, max_same_patient: 0, same_patient_overlaps: 0 },
    };
    this.inFlightByPatient = new Map();
  }

  // The patient a FHIR request is about, as far as the request shows it: the identifier (else
  // the id) of the Patient it carries, else the Patient its resources refer to (subject, patient).
  static patientOf(url, body) {
    let doc;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!doc || typeof doc !== 'object') return undefined;
    const resources = doc.resourceType === 'Bundle'
      ? (Array.isArray(doc.entry) ? doc.entry : []).map((e) => e?.resource).filter(Boolean)
      : [doc];
    const patient = resources.find((r) => r.resourceType === 'Patient');
    const identifier = Array.isArray(patient?.identifier) ? patient.identifier[0] : undefined;
    if (identifier?.value) return `${identifier.system}|${identifier.value}`;
    if (patient?.id) return `Patient/${patient.id}`;
    for (const r of resources) {
      const ref = r.subject?.reference ?? r.patient?.reference;
      if (typeof ref === 'string' && ref.startsWith('Patient/')) return ref;
    }
    return undefined;
  }

  tokenUrl() {
    return `https://127.0.0.1:${this.port}/oauth2/token`;
  }

  publicBase(port) {
    return `https://127.0.0.1:${port}${this.base}`;
  }

  // ---- HTTP entry point ----------------------------------------------------------------------

  async handle(req, res) {
    const started = process.hrtime.bigint();
    const url = new URL(req.url, 'https://127.0.0.1');
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      return this.send(res, 413, outcome('too-costly', err.message));
    }
    if (url.pathname === '/__admin' || url.pathname.startsWith('/__admin/')) {
      return this.handleAdmin(req, res, url, body);
    }
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/oauth2/token' && req.method === 'POST') {
      const answer = await this.auth.token(req.headers, body);
      if (this.verbose) process.stderr.write(`partner: POST /oauth2/token -> ${answer.status}\n`);
      return this.send(res, answer.status, answer.body, { 'Cache-Control': 'no-store' }, 'application/json');
    }
    if (req.method === 'GET' && path === `${this.base}/.well-known/smart-configuration`) {
      if (!this.auth.enabled()) return this.send(res, 404, outcome('not-found', 'No SMART authorization here'));
      return this.send(res, 200, this.auth.smartConfiguration(), undefined, 'application/json');
    }

    const entry = this.logRequest(req, url, body);
    const concurrency = this.stats.concurrency;
    const patient = Partner.patientOf(url, body);
    concurrency.in_flight++;
    concurrency.max_in_flight = Math.max(concurrency.max_in_flight, concurrency.in_flight);
    if (patient !== undefined) {
      const same = (this.inFlightByPatient.get(patient) ?? 0) + 1;
      this.inFlightByPatient.set(patient, same);
      if (same > 1) concurrency.same_patient_overlaps++;
      concurrency.max_same_patient = Math.max(concurrency.max_same_patient, same);
    }
    if (req.method === 'POST' && url.pathname.replace(/\/+$/, '') === this.base) {
      // Bundle size in the log even when a fault answers before the Bundle is processed.
      try {
        req.parsedBody = JSON.parse(body.toString('utf8'));
        entry.bundle_type = req.parsedBody?.type;
        entry.entries = Array.isArray(req.parsedBody?.entry) ? req.parsedBody.entry.length : 0;
      } catch {
        // answered as 400 when processed
      }
    }
    const finish = (status) => {
      concurrency.in_flight--;
      if (patient !== undefined) {
        const left = this.inFlightByPatient.get(patient) - 1;
        if (left > 0) this.inFlightByPatient.set(patient, left);
        else this.inFlightByPatient.delete(patient);
      }
      entry.status = status;
      entry.duration_ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.stats.by_status[status] = (this.stats.by_status[status] ?? 0) + 1;
      if (this.verbose) process.stderr.write(`partner: ${req.method} ${url.pathname} -> ${status}\n`);
    };

    // Faults stand for a partner failing the gateway's writes and searches; the CapabilityStatement
    // read (at the gateway's start, racing a test's fault set-up) is answered as it is.
    const isMetadataRead = req.method === 'GET' && path === `${this.base}/metadata`;
    const fault = isMetadataRead ? undefined : this.takeFault();
    if (fault) {
      entry.fault = { status: fault.status, drop: fault.drop, delay_ms: fault.delay_ms, commit: fault.commit };
      this.stats.faults_injected++;
      if (fault.delay_ms > 0) await sleep(fault.delay_ms);
    }
    // A fault answers instead of the server unless `commit` is set: then the request is applied
    // first and only its answer is replaced (or lost, with drop), like a response lost in transit.
    const answer = !fault || fault.commit || (!fault.drop && !fault.status)
      ? await this.computeFhir(req, url, body, entry)
      : undefined;
    if (fault?.drop) {
      this.stats.dropped++;
      finish('dropped');
      req.socket.destroy();
      return undefined;
    }
    if (fault?.status) {
      finish(fault.status);
      const faultBody = fault.body ?? outcome(faultCode(fault.status), `Injected fault (HTTP ${fault.status})`);
      return this.send(res, fault.status, faultBody, fault.headers);
    }
    finish(answer.status);
    // close: the answer asks the client to close the connection, so its next request reconnects.
    const headers = fault?.close ? { ...(answer.headers ?? {}), Connection: 'close' } : answer.headers;
    return this.send(res, answer.status, answer.body, headers);
  }

  async computeFhir(req, url, rawBody, entry) {
    if (url.pathname !== this.base && !url.pathname.startsWith(this.base + '/')) {
      return { status: 404, body: outcome('not-found', `No FHIR endpoint here; the base is ${this.base}`) };
    }
    this.stats.requests++;
    if (this.auth.enabled() && !this.auth.accepts(req.headers.authorization, req.method)) {
      return {
        status: 401,
        body: outcome('login', req.headers.authorization ? 'Access token not valid (expired or revoked)' : 'Missing bearer token'),
        headers: { 'WWW-Authenticate': 'Bearer realm="fhir", error="invalid_token"' },
      };
    }
    if (this.token) {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${this.token}`) {
        return {
          status: 401,
          body: outcome('login', auth ? 'Bearer token not accepted' : 'Missing bearer token'),
          headers: { 'WWW-Authenticate': 'Bearer realm="fhir"' },
        };
      }
    }
    const accept = req.headers.accept;
    if (accept && !/json|\*\/\*/i.test(accept)) {
      return { status: 406, body: outcome('not-supported', 'Only JSON is served: accept application/fhir+json') };
    }

    const method = req.method;
    const rel = url.pathname.slice(this.base.length).replace(/^\/+/, '').replace(/\/+$/, '');
    let body;
    const formSearch = method === 'POST' && /\/_search$/.test(rel);
    if (formSearch && mediaType(req.headers['content-type']) === 'application/x-www-form-urlencoded') {
      const query = rawBody.toString('utf8');
      const problem = checkSearch(rel.split('/')[0], query);
      if (problem) return { status: 400, body: outcome('not-supported', problem) };
      body = Object.fromEntries(new URLSearchParams(query));
    } else if (rawBody.length > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') {
      const type = mediaType(req.headers['content-type']);
      const allowed = method === 'PATCH'
        ? ['application/json-patch+json', 'application/fhir+json', 'application/json']
        : ['application/fhir+json', 'application/json'];
      if (!allowed.includes(type)) {
        return {
          status: 415,
          body: outcome('not-supported', `Content-Type must be one of ${allowed.join(', ')}`),
        };
      }
      try {
        body = req.parsedBody ?? JSON.parse(rawBody.toString('utf8'));
        delete req.parsedBody; // a commit fault may process the same request only once anyway
      } catch (err) {
        return { status: 400, body: outcome('structure', 'Body is not valid JSON', err.message) };
      }
    }

    if (method === 'GET' && rel === 'metadata') return { status: 200, body: this.capability };

    return this.serialized(() => this.route(req, url, rel, body, entry));
  }

  serialized(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async route(req, url, rel, body, entry) {
    const method = req.method;
    const segments = rel ? rel.split('/') : [];
    let kind = classify(method, segments, url.search);
    if (kind === 'batch' && body?.type === 'transaction') kind = 'transaction';
    this.count(kind);
    const refused = this.refusal(kind, method, rel, url.search, req.headers['if-none-exist'], body);
    if (refused) return { status: 400, body: outcome('not-supported', refused) };
    const urlProblem = this.checkUrl(method, rel + url.search, req.headers['if-none-exist']);
    if (urlProblem) return { status: urlProblem.status, body: outcome(urlProblem.code, urlProblem.text) };

    // Validate request bodies up front: errors then name the Bundle entry, and a body that
    // would not be written (conditional create of an existing resource) is still checked, as a
    // validating server does. Batches and patches are validated per write in the repository.
    let issues = [];
    if (kind === 'create' || kind === 'update') {
      if (kind === 'create' && body && typeof body === 'object') delete body.id; // spec: ignore
      issues = this.validator.validate(body);
    } else if (kind === 'transaction' || kind === 'batch') {
      issues = this.checkBundle(body, kind === 'transaction');
    }
    if (issues.length) {
      return { status: 400, body: { resourceType: 'OperationOutcome', issue: issues } };
    }

    this.repo.prevalidated = kind === 'create' || kind === 'update' || kind === 'transaction';
    let result;
    try {
      result = await this.router.handleRequest(
        {
          method,
          url: rel + url.search,
          pathname: '',
          body,
          params: {},
          query: {},
          headers: req.headers,
          config: { transactions: true },
        },
        this.repo
      );
    } catch (err) {
      result = [normalizeOperationOutcome(err)];
    } finally {
      this.repo.prevalidated = false;
    }
    return this.toAnswer(req, result, url);
  }

  // Why this partner, as configured by /__admin/capability, does not take the request, or undefined.
  refusal(kind, method, rel, search, ifNoneExist, body) {
    const a = this.accepts;
    if (kind === 'transaction' && !a.transaction) return 'This server does not support transaction Bundles';
    if (kind === 'batch' && !a.batch) return 'This server does not support batch Bundles';
    const one = (m, url, inx) => {
      const type = String(url ?? '').replace(/^\/+/, '').split(/[/?]/)[0];
      if (a.types && type && !a.types.includes(type)) return `This server does not accept ${type}`;
      if (m === 'PUT' && String(url).includes('?') && !a.conditional_update) return 'Conditional update is not supported';
      if (m === 'POST' && inx && !a.conditional_create) return 'Conditional create is not supported';
      return undefined;
    };
    if (kind === 'transaction' || kind === 'batch') {
      for (const e of Array.isArray(body?.entry) ? body.entry : []) {
        const problem = one(e?.request?.method, e?.request?.url, e?.request?.ifNoneExist);
        if (problem) return problem;
      }
      return undefined;
    }
    if (method === 'PUT' || method === 'POST') return one(method, rel + (search ?? ''), ifNoneExist);
    return undefined;
  }

  // Checks the Bundle's entry URLs (both kinds) and validates the resources written by a
  // transaction. Returns OperationOutcome issues.
  checkBundle(bundle, transaction) {
    if (!bundle || bundle.resourceType !== 'Bundle') {
      return [{ severity: 'error', code: 'structure', details: { text: 'Body must be a Bundle' }, expression: ['Bundle'] }];
    }
    const issues = [];
    (Array.isArray(bundle.entry) ? bundle.entry : []).forEach((e, i) => {
      const request = e?.request;
      if (typeof request?.url === 'string' && typeof request.method === 'string') {
        const problem = this.checkUrl(request.method, request.url, request.ifNoneExist);
        if (problem && (transaction || problem.status !== 404)) {
          issues.push({
            severity: 'error',
            code: problem.code,
            details: { text: problem.text },
            expression: [`Bundle.entry[${i}].request.${problem.where ?? 'url'}`],
          });
        }
      }
      const m = request?.method;
      if (transaction && e?.resource && (m === 'POST' || m === 'PUT')) {
        issues.push(...this.validator.validate(e.resource, `Bundle.entry[${i}].resource`));
      }
    });
    if (transaction) issues.push(...placeholderIssues(bundle));
    return issues;
  }

  // A real server rejects what it does not understand; Medplum's in-memory search instead
  // matches nothing for an unknown search parameter, so a misspelt conditional update
  // ("identifer=") would silently create a duplicate every time. Returns {status, code, text}
  // or undefined.
  checkUrl(method, relUrl, ifNoneExist) {
    const q = relUrl.indexOf('?');
    const path = (q >= 0 ? relUrl.slice(0, q) : relUrl).replace(/^\/+|\/+$/g, '');
    const type = path.split('/')[0];
    if (!type || type === 'metadata') return undefined;
    if (!this.validator.resourceTypes.has(type)) {
      return { status: 404, code: 'not-supported', text: `Unknown resource type "${type}" (not an R4 resource)` };
    }
    if (q >= 0) {
      const problem = checkSearch(type, relUrl.slice(q + 1));
      if (problem) return { status: 400, code: 'not-supported', text: problem };
    }
    if (ifNoneExist && method === 'POST') {
      const problem = checkSearch(type, String(ifNoneExist).replace(/^.*\?/, ''));
      if (problem) return { status: 400, code: 'not-supported', text: `If-None-Exist: ${problem}`, where: 'ifNoneExist' };
    }
    return undefined;
  }

  toAnswer(req, [result, resource], url) {
    const status = getStatus(result);
    const port = req.socket.localPort;
    const base = this.publicBase(port);
    if (status >= 400 || !resource) {
      return { status, body: result };
    }
    const headers = {};
    if (resource.resourceType === 'Bundle' && /-response$/.test(resource.type ?? '')) {
      for (const e of resource.entry ?? []) {
        const meta = e?.resource?.meta;
        if (e?.response && meta?.versionId) {
          e.response.etag = `W/"${meta.versionId}"`;
          if (meta.lastUpdated) e.response.lastModified = meta.lastUpdated;
        }
      }
    } else if (resource.resourceType === 'Bundle' && resource.type === 'searchset') {
      resource.link = [{ relation: 'self', url: base + url.pathname.slice(this.base.length) + url.search }];
      for (const e of resource.entry ?? []) {
        if (e.resource?.id) e.fullUrl = `${base}/${e.resource.resourceType}/${e.resource.id}`;
        e.search = { mode: 'match' };
      }
    } else if (resource.meta?.versionId) {
      headers.ETag = `W/"${resource.meta.versionId}"`;
      if (resource.meta.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
      if (status === 201 && resource.id) {
        headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
      }
    }
    const prefer = /return=([A-Za-z]+)/.exec(req.headers.prefer ?? '')?.[1];
    if ((req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') && resource.resourceType !== 'Bundle') {
      if (prefer === 'minimal') return { status, body: undefined, headers };
      if (prefer === 'OperationOutcome') return { status, body: result, headers };
    }
    return { status, body: resource, headers };
  }

  count(kind) {
    const key = {
      transaction: 'transactions', batch: 'batches', create: 'creates', update: 'updates', patch: 'patches',
      delete: 'deletes', read: 'reads', search: 'searches',
    }[kind];
    if (key) this.stats[key]++;
  }

  // ---- request log and faults ----------------------------------------------------------------

  logRequest(req, url, body) {
    const cert = req.socket.getPeerCertificate?.();
    const entry = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      method: req.method,
      url: url.pathname + url.search,
      status: null,
      headers: {
        'content-type': req.headers['content-type'],
        accept: req.headers.accept,
        prefer: req.headers.prefer,
        'if-none-exist': req.headers['if-none-exist'],
        'if-match': req.headers['if-match'],
        'x-request-id': req.headers['x-request-id'],
        authorization: req.headers.authorization ? req.headers.authorization.split(' ')[0] : undefined,
      },
      client_cert: cert && cert.subject ? { subject_cn: cert.subject.CN ?? null, authorized: req.socket.authorized } : null,
      body: body.length > MAX_LOGGED_BODY_BYTES ? undefined : body.toString('utf8'),
    };
    this.requests.push(entry);
    if (this.requests.length > MAX_LOGGED_REQUESTS) this.requests.shift();
    return entry;
  }

  takeFault() {
    const fault = this.faults[0];
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) this.faults.shift();
    return fault;
  }

  handleAdmin(req, res, url, raw) {
    const json = (status, value) => this.send(res, status, value, undefined, 'application/json');
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
    switch (route) {
      case 'GET /__admin/requests': {
        const withBodies = url.searchParams.get('bodies') === '1';
        return json(200, this.requests.map(({ body, ...rest }) => (withBodies ? { ...rest, body } : rest)));
      }
      case 'GET /__admin/stats':
        return json(200, { ...this.stats, resources: this.repo.counts(), pending_faults: this.faults.length });
      case 'POST /__admin/reset':
        this.reset();
        return json(200, { reset: true });
      case 'GET /__admin/faults':
        return json(200, { faults: this.faults });
      case 'DELETE /__admin/faults':
        this.faults = [];
        return json(200, { faults: [] });
      case 'GET /__admin/auth':
        return json(200, this.auth.statistics());
      case 'POST /__admin/auth': {
        let config;
        try {
          config = JSON.parse(raw.toString('utf8') || 'null');
        } catch {
          return json(400, { error: 'body must be JSON: {"mode":"smart","client_id":...,"jwks_url":...} or null' });
        }
        return this.auth.configure(config, this.tokenUrl())
          .then(() => json(200, { auth: this.auth.statistics(), token_url: this.tokenUrl() }))
          .catch((err) => json(400, { error: err.message }));
      }
      case 'GET /__admin/capability':
        return json(200, { accepts: this.accepts, statement: this.capability });
      case 'POST /__admin/capability': {
        // {"transaction":false,"batch":true,"conditional_update":true,"conditional_create":true,"types":["Patient",...]}
        let spec;
        try {
          spec = JSON.parse(raw.toString('utf8') || '{}');
        } catch {
          return json(400, { error: 'body must be JSON, e.g. {"transaction":false}' });
        }
        const keys = ['transaction', 'batch', 'conditional_update', 'conditional_create', 'types'];
        const unknown = Object.keys(spec ?? {}).filter((k) => !keys.includes(k));
        if (!spec || typeof spec !== 'object' || unknown.length) {
          return json(400, { error: `known keys: ${keys.join(', ')}` });
        }
        if (spec.types !== undefined && spec.types !== null && !Array.isArray(spec.types)) {
          return json(400, { error: 'types must be an array of resource types or null' });
        }
        this.accepts = { ...this.accepts, ...spec };
        this.capability = this.buildCapabilityStatement();
        return json(200, { accepts: this.accepts });
      }
      case 'POST /__admin/auth/revoke':
        return json(200, { revoked: this.auth.revokeAll() });
      case 'POST /__admin/faults': {
        let spec;
        try {
          spec = JSON.parse(raw.toString('utf8') || '{}');
        } catch {
          return json(400, { error: 'body must be JSON, e.g. {"status":503,"count":2}' });
        }
        const problem = checkFault(spec);
        if (problem) return json(400, { error: problem });
        this.faults.push({
          status: spec.status ?? null,
          count: spec.count ?? 1,
          remaining: spec.count ?? 1,
          body: spec.body,
          headers: spec.headers,
          delay_ms: spec.delay_ms ?? 0,
          drop: Boolean(spec.drop),
          commit: Boolean(spec.commit),
          close: Boolean(spec.close),
        });
        return json(200, { faults: this.faults });
      }
      default:
        return json(404, {
          error: `unknown admin route ${route}`,
          routes: ['POST /__admin/faults', 'GET /__admin/faults', 'DELETE /__admin/faults', 'POST /__admin/auth',
            'GET /__admin/auth', 'POST /__admin/auth/revoke', 'GET /__admin/capability', 'POST /__admin/capability',
            'GET /__admin/requests[?bodies=1]', 'POST /__admin/reset', 'GET /__admin/stats'],
        });
    }
  }

  send(res, status, body, headers, contentType = FHIR_JSON) {
    if (res.destroyed) return;
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(text ? { 'Content-Type': contentType } : {}),
      'Content-Length': Buffer.byteLength(text),
      ...(headers ?? {}),
    });
    res.end(text);
  }

  buildCapabilityStatement() {
    const a = this.accepts;
    const types = [...this.validator.resourceTypes].filter((t) => !a.types || a.types.includes(t)).sort();
    return {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: '2026-11-22',
      kind: 'instance',
      software: { name: SOFTWARE },
      fhirVersion: '4.0.1',
      format: ['json'],
      rest: [{
        mode: 'server',
        resource: types.map((type) => ({
          type,
          interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type']
            .map((code) => ({ code })),
          versioning: 'versioned',
          updateCreate: true,
          conditionalCreate: a.conditional_create,
          conditionalUpdate: a.conditional_update,
          conditionalDelete: 'single',
        })),
        interaction: [...(a.transaction ? [{ code: 'transaction' }] : []), ...(a.batch ? [{ code: 'batch' }] : [])],
      }],
    };
  }
}

function classify(method, segments, search) {
  const n = segments.length;
  if (method === 'POST' && n === 0) return 'batch'; // or transaction: decided from the Bundle
  if (method === 'POST' && n === 1) return 'create';
  if (method === 'POST' && n === 2 && segments[1] === '_search') return 'search';
  if (method === 'PUT' && (n === 2 || (n === 1 && search))) return 'update';
  if (method === 'PATCH') return 'patch';
  if (method === 'DELETE') return 'delete';
  if (method === 'GET' && n <= 1) return 'search';
  if (method === 'GET') return 'read';
  return 'other';
}

function checkFault(spec) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return 'fault must be a JSON object';
  const known = ['status', 'count', 'body', 'headers', 'delay_ms', 'drop', 'commit', 'close'];
  const unknown = Object.keys(spec).filter((k) => !known.includes(k));
  if (unknown.length) return `unknown fault keys: ${unknown.join(', ')} (known: ${known.join(', ')})`;
  if (spec.status !== undefined && !(Number.isInteger(spec.status) && spec.status >= 100 && spec.status <= 599)) {
    return 'status must be an HTTP status code (100-599)';
  }
  if (spec.count !== undefined && !(Number.isInteger(spec.count) && spec.count >= 1)) return 'count must be an integer >= 1';
  if (spec.delay_ms !== undefined && !(Number.isInteger(spec.delay_ms) && spec.delay_ms >= 0)) return 'delay_ms must be an integer >= 0';
  if (spec.status === undefined && !spec.drop && !spec.delay_ms && !spec.commit && !spec.close) {
    return 'a fault needs status, drop, delay_ms or close';
  }
  return undefined;
}

const LOCAL_PLACEHOLDER = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Medplum rewrites a urn:uuid reference only when it is lowercase and names the fullUrl of an
// entry it creates or updates; any other urn:uuid reference is stored as is, dangling, without
// an error. Real servers (HAPI: "Unable to satisfy placeholder ID") refuse the transaction.
function placeholderIssues(bundle) {
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const targets = new Set(
    entries.filter((e) => ['POST', 'PUT'].includes(e?.request?.method) && e?.fullUrl).map((e) => e.fullUrl)
  );
  const issues = [];
  const walk = (value, at) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${at}[${i}]`));
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k === 'reference' && typeof v === 'string' && /^urn:uuid:/i.test(v)) {
          if (!LOCAL_PLACEHOLDER.test(v) || !targets.has(v)) {
            const why = LOCAL_PLACEHOLDER.test(v)
              ? 'matches no fullUrl of an entry created or updated in this transaction'
              : 'is not urn:uuid:<lowercase UUID>, so it would not be resolved';
            issues.push({
              severity: 'error',
              code: 'not-found',
              details: { text: `Placeholder reference ${why}` },
              expression: [`${at}.reference`],
            });
          }
        } else {
          walk(v, `${at}.${k}`);
        }
      }
    }
  };
  entries.forEach((e, i) => walk(e?.resource, `Bundle.entry[${i}].resource`));
  return issues;
}

const SEARCHABLE_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);

// Returns why the sandbox cannot answer this search faithfully, or undefined.
function checkSearch(resourceType, query) {
  let request;
  try {
    request = parseSearchRequest(`${resourceType}?${query}`);
  } catch (err) {
    return err?.outcome?.issue?.[0]?.details?.text ?? err.message;
  }
  if (request.include || request.revInclude) return '_include and _revinclude are not supported by the sandbox partner';
  for (const filter of request.filters ?? []) {
    const param = globalSchema.types[resourceType]?.searchParams?.[filter.code];
    if (filter.code.includes('.') || filter.code.startsWith('_has')) {
      return `Chained and _has search ("${filter.code}") are not supported by the sandbox partner`;
    }
    if (!param) return `Unknown search parameter "${filter.code}" for ${resourceType}`;
    if (!SEARCHABLE_TYPES.has(param.type)) {
      return `Search parameter "${filter.code}" (${param.type}) is not supported by the sandbox partner`;
    }
  }
  return undefined;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`Body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// Starts the partner; resolves once it listens. Used by the CLI below and by in-process tests.
async function startPartner(options) {
  const base = '/' + (options.base ?? '/fhir/R4').replace(/^\/+|\/+$/g, '');
  const partner = new Partner({ ...options, base });
  const tlsOptions = {
    key: fs.readFileSync(options.key),
    cert: fs.readFileSync(options.cert),
    minVersion: 'TLSv1.2',
  };
  if (options.ca) {
    tlsOptions.ca = fs.readFileSync(options.ca);
    tlsOptions.requestCert = true;
    tlsOptions.rejectUnauthorized = Boolean(options.requireClientCert);
  } else if (options.requireClientCert) {
    throw new Error('--require-client-cert needs --ca FILE (the CA that signs client certificates)');
  }
  const server = https.createServer(tlsOptions, (req, res) => {
    partner.handle(req, res).catch((err) => {
      process.stderr.write(`partner: internal error: ${err.stack}\n`);
      if (!res.headersSent) partner.send(res, 500, outcome('exception', 'Internal error in the sandbox partner'));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    // Loopback unless told otherwise (docker/compose.yaml: 0.0.0.0 inside the partner's own container).
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const port = server.address().port;
  partner.port = port;
  if (options.auth) await partner.auth.configure(options.auth, partner.tokenUrl());
  return { partner, server, port, base: partner.publicBase(port), close: () => new Promise((r) => server.close(r)) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      'require-client-cert': { type: 'boolean', default: false },
      base: { type: 'string', default: '/fhir/R4' },
      token: { type: 'string' },
      'smart-client-id': { type: 'string' },
      'smart-jwks-url': { type: 'string' },
      'token-lifetime': { type: 'string', default: '60' },
      'inspector-token': { type: 'string' },
      'exit-with-parent': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.cert || !values.key) {
    process.stderr.write(
      'usage: node server.js --cert FILE --key FILE [--port N] [--host ADDRESS] [--ca FILE [--require-client-cert]]\n' +
        '                      [--base /fhir/R4] [--token T] [--exit-with-parent] [--verbose]\n' +
        '                      [--smart-client-id ID --smart-jwks-url URL [--token-lifetime SECONDS]\n' +
        '                       [--inspector-token T]]\n'
    );
    process.exit(values.help ? 0 : 2);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`partner: --port must be 0..65535, got "${values.port}"\n`);
    process.exit(2);
  }
  let started;
  try {
    started = await startPartner({
      port,
      host: values.host,
      cert: values.cert,
      key: values.key,
      ca: values.ca,
      requireClientCert: values['require-client-cert'],
      base: values.base,
      token: values.token,
      verbose: values.verbose,
      auth: values['smart-client-id']
        ? {
          mode: 'smart',
          client_id: values['smart-client-id'],
          jwks_url: values['smart-jwks-url'],
          token_lifetime_s: Number(values['token-lifetime']),
          inspector_token: values['inspector-token'],
        }
        : undefined,
    });
  } catch (err) {
    process.stderr.write(`partner: cannot start: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ ready: true, port: started.port, base: started.base }) + '\n');
  const stop = () => {
    started.server.closeAllConnections?.();
    started.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (values['exit-with-parent']) {
    // The parent holds our stdin open; EOF means it went away, so do not linger as an orphan.
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}

if (require.main === module) main();

module.exports = { startPartner, Partner };
