// Calls to the gateway from the console: same origin, the session cookie goes by itself; every
// change carries the anti-forgery token the sign-in returned (X-CSRF-Token).

let csrfToken = '';
const listeners = { signedOut: () => {} };

export function setCsrf(token) { csrfToken = token || ''; }
export function onSignedOut(fn) { listeners.signedOut = fn; }

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The gateway's errors are FHIR OperationOutcomes (or {"error":{...}}); say what it said.
function messageOf(status, body) {
  try {
    const doc = JSON.parse(body);
    if (doc.issue && doc.issue[0] && doc.issue[0].diagnostics) return doc.issue[0].diagnostics;
    if (doc.error && doc.error.message) return doc.error.message + (doc.error.hint ? ` (${doc.error.hint})` : '');
  } catch (e) { /* not JSON */ }
  if (status === 403) return 'You are not allowed to see this (your token does not cover it).';
  if (status === 404) return 'Nothing was found.';
  return `The gateway answered ${status}.`;
}

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = csrfToken;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(path, init);
  const text = await response.text();
  if (response.status === 401 && path !== '/console/login') {
    listeners.signedOut('Your session has ended. Please sign in again.');
  }
  if (!response.ok) throw new ApiError(response.status, messageOf(response.status, text));
  return text ? JSON.parse(text) : {};
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);

/** "/v1/x" + {a: 1, b: ''} -> "/v1/x?a=1" (empty values left out). */
export function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
