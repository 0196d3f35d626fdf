'use strict';
// The partner's OAuth 2.0 authorization server, as a hospital runs one for system clients:
//  - SMART Backend Services (RFC 7523 private_key_jwt): the client assertion is verified with
//    `jose` (an implementation independent of the gateway's) against the client's JWKS, fetched
//    over HTTPS from its registered JWKS URL; replayed jti, wrong aud, expired, too long-lived and
//    wrongly signed assertions are refused;
//  - client credentials with a client secret (client_secret_basic / client_secret_post).
// Issued tokens are short-lived; the FHIR endpoint then requires one. Revocation drops them all.
const crypto = require('node:crypto');

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_ASSERTION_LIFETIME_S = 300; // SMART: exp no more than five minutes ahead
const SKEW_S = 5;

let josePromise;
function jose() {
  // ESM-only package: import() works on every Node 20.
  josePromise ??= import('jose');
  return josePromise;
}

class AuthServer {
  constructor() {
    this.config = null;
    this.reset();
  }

  reset() {
    this.tokens = new Map(); // token -> { exp (ms), client_id, scope }
    this.seenJti = new Map(); // jti -> exp (ms), for replay detection within the assertion's life
    this.stats = { issued: 0, refused: {}, kids: {}, fhir_rejected: 0 };
  }

  // {mode: "smart"|"client-secret", client_id, jwks_url?, client_secret?, auth_method?,
  //  token_lifetime_s?, jwks_cache_ms?, advertise?}. null disables auth.
  async configure(config, tokenUrl) {
    if (config === null) {
      this.config = null;
      this.reset();
      return;
    }
    if (!['smart', 'client-secret'].includes(config.mode)) throw new Error('mode must be "smart" or "client-secret"');
    if (typeof config.client_id !== 'string' || !config.client_id) throw new Error('client_id is required');
    if (config.mode === 'smart' && typeof config.jwks_url !== 'string') throw new Error('jwks_url is required');
    if (config.mode === 'client-secret' && typeof config.client_secret !== 'string') {
      throw new Error('client_secret is required');
    }
    const { createRemoteJWKSet } = await jose();
    this.config = {
      token_lifetime_s: 60,
      auth_method: 'client_secret_basic',
      ...config,
    };
    this.tokenUrl = tokenUrl;
    this.jwks = config.mode === 'smart'
      ? createRemoteJWKSet(new URL(config.jwks_url), {
        cacheMaxAge: config.jwks_cache_ms ?? 600000,
        cooldownDuration: 0, // an unknown kid (a rotated key) refetches at once
      })
      : null;
    this.reset();
  }

  enabled() {
    return this.config !== null;
  }

  smartConfiguration() {
    return {
      token_endpoint: this.tokenUrl,
      token_endpoint_auth_methods_supported: this.config?.mode === 'client-secret'
        ? [this.config.auth_method]
        : ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['client_credentials'],
      scopes_supported: ['system/*.rs', 'system/*.cu', 'system/Patient.u', 'system/MedicationRequest.u'],
      capabilities: ['client-confidential-asymmetric', 'permission-v2'],
    };
  }

  refuse(reason, status = 401, error = 'invalid_client') {
    this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
    return { status, body: { error, error_description: reason } };
  }

  // POST token endpoint: form body. Returns {status, body}.
  async token(headers, rawBody) {
    if (!this.config) return this.refuse('no client is registered', 400, 'unauthorized_client');
    if (!/^application\/x-www-form-urlencoded/i.test(headers['content-type'] ?? '')) {
      return this.refuse('the token request must be form-encoded', 400, 'invalid_request');
    }
    const form = new URLSearchParams(rawBody.toString('utf8'));
    if (form.get('grant_type') !== 'client_credentials') {
      return this.refuse('grant_type must be client_credentials', 400, 'unsupported_grant_type');
    }
    const scope = form.get('scope') ?? '';
    if (!scope.split(' ').every((s) => /^system\//.test(s))) return this.refuse('only system scopes', 400, 'invalid_scope');

    if (this.config.mode === 'smart') {
      if (form.get('client_assertion_type') !== ASSERTION_TYPE) return this.refuse('client_assertion_type');
      const assertion = form.get('client_assertion');
      if (!assertion) return this.refuse('client_assertion missing');
      const refused = await this.verifyAssertion(assertion);
      if (refused) return refused;
    } else {
      let id;
      let secret;
      const basic = /^Basic (.+)$/.exec(headers.authorization ?? '');
      if (this.config.auth_method === 'client_secret_basic') {
        if (!basic || form.has('client_secret')) return this.refuse('client_secret_basic expected');
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const unform = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
        id = unform(decoded.slice(0, colon));
        secret = unform(decoded.slice(colon + 1));
      } else {
        if (basic) return this.refuse('client_secret_post expected');
        id = form.get('client_id');
        secret = form.get('client_secret');
      }
      const expected = Buffer.from(this.config.client_secret);
      const given = Buffer.from(secret ?? '');
      if (id !== this.config.client_id || given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
        return this.refuse('wrong client id or secret');
      }
    }
    const token = crypto.randomBytes(24).toString('base64url');
    const lifetime = this.config.token_lifetime_s;
    this.tokens.set(token, { exp: Date.now() + lifetime * 1000, client_id: this.config.client_id, scope });
    this.stats.issued++;
    return { status: 200, body: { access_token: token, token_type: 'bearer', expires_in: lifetime, scope } };
  }

  async verifyAssertion(assertion) {
    const { jwtVerify, decodeProtectedHeader } = await jose();
    let header;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      return this.refuse('the assertion is not a JWS');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, this.jwks, {
        issuer: this.config.client_id,
        subject: this.config.client_id,
        audience: this.tokenUrl,
        algorithms: ['RS384', 'ES384'],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: SKEW_S,
      }));
    } catch (err) {
      const reasons = {
        ERR_JWT_EXPIRED: 'expired',
        ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad_signature',
        ERR_JWKS_NO_MATCHING_KEY: 'unknown_kid',
        ERR_JOSE_ALG_NOT_ALLOWED: 'alg_not_allowed',
      };
      let reason = reasons[err.code] ?? err.code ?? 'invalid';
      if (err.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') reason = `wrong_${err.claim}`;
      if (reason === 'invalid' || !err.code) process.stderr.write(`partner: assertion refused: ${err.message}\n`);
      return this.refuse(reason);
    }
    const now = Date.now() / 1000;
    if (payload.exp > now + MAX_ASSERTION_LIFETIME_S + SKEW_S) return this.refuse('exp_too_far');
    for (const [jti, exp] of this.seenJti) if (exp < now) this.seenJti.delete(jti);
    if (this.seenJti.has(payload.jti)) return this.refuse('replayed_jti');
    this.seenJti.set(payload.jti, payload.exp);
    this.stats.kids[header.kid] = (this.stats.kids[header.kid] ?? 0) + 1;
    return null;
  }

  // Whether the Authorization header carries a live token this server issued. The configured
  // inspector_token (tests reading back what arrived) is good for reads only, never writes.
  accepts(authorization, method) {
    const m = /^Bearer (.+)$/.exec(authorization ?? '');
    if (m && this.config.inspector_token && m[1] === this.config.inspector_token && method === 'GET') return true;
    const token = m && this.tokens.get(m[1]);
    if (!token || token.exp <= Date.now()) {
      this.stats.fhir_rejected++;
      return false;
    }
    return true;
  }

  revokeAll() {
    const now = Date.now();
    const n = [...this.tokens.values()].filter((t) => t.exp > now).length; // live ones
    this.tokens.clear();
    return n;
  }

  statistics() {
    const live = [...this.tokens.values()].filter((t) => t.exp > Date.now()).length;
    return { ...this.stats, live_tokens: live, mode: this.config?.mode ?? null };
  }
}

module.exports = { AuthServer };
