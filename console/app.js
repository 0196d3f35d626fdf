// The console's shell: the session (sign-in, sign-out, expiry), the page navigation (#/page) and
// focus handling, so every page is reachable and usable by keyboard.
import { get, post, setCsrf, onSignedOut } from './api.js';
import { announce, clear } from './dom.js';
import { renderLogin } from './page-login.js';
import { renderPatient } from './page-patient.js';
import { renderAccounting } from './page-accounting.js';
import { renderPartner } from './page-partner.js';
import { renderIntegrity } from './page-integrity.js';
import { renderBreakGlass } from './page-breakglass.js';

const PAGES = {
  patient: renderPatient,
  accounting: renderAccounting,
  partner: renderPartner,
  integrity: renderIntegrity,
  'break-glass': renderBreakGlass,
};

export const state = { session: null };

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, query] = hash.split('?');
  return { name: PAGES[name] ? name : 'patient', params: new URLSearchParams(query || '') };
}

/** Goes to another page, e.g. go('patient', {clinic: 'c1', patient_key: 'k'}). */
export function go(name, params = {}) {
  const q = new URLSearchParams(params).toString();
  location.hash = `#/${name}${q ? `?${q}` : ''}`;
}

function showSignedIn(session) {
  state.session = session;
  setCsrf(session.csrf_token);
  const who = document.getElementById('session-who');
  const clinics = session.clinics.includes('*') ? 'all clinics' : `clinic ${session.clinics.join(', ')}`;
  who.textContent = `Signed in as ${session.token_id} (${session.roles.join(', ')}; ${clinics})`;
  document.getElementById('session-info').hidden = false;
  document.getElementById('site-nav').hidden = false;
}

function showSignedOut(message) {
  state.session = null;
  setCsrf('');
  document.getElementById('session-info').hidden = true;
  document.getElementById('site-nav').hidden = true;
  const main = clear(document.getElementById('main'));
  renderLogin(main, message, async (session) => {
    showSignedIn(session);
    await render();
  });
}

async function render() {
  if (!state.session) return;
  // Every page change asks whether the session still holds, so an ended one shows as the sign-in
  // at once, not at the first data request (a page may make none until the officer asks).
  try {
    showSignedIn(await get('/console/session'));
  } catch (e) {
    // 401: the signed-out handler has put up the sign-in. Anything else: say so and stop.
    if (e.status !== 401) announce(`The gateway cannot be reached: ${e.message}`, 'error');
    return;
  }
  const { name, params } = route();
  for (const link of document.querySelectorAll('#site-nav a')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  announce('');
  const main = clear(document.getElementById('main'));
  document.title = `${document.querySelector(`#site-nav a[data-page="${name}"]`).textContent} — Compliance console`;
  // Each page puts its heading and form in place at once, then loads its data: focus moves to the
  // heading right away (keyboard and screen-reader users start there), not when the data arrives,
  // which would pull focus away from someone already typing.
  const loaded = PAGES[name](main, params, state.session);
  const heading = document.getElementById('page-heading');
  if (heading) heading.focus();
  await loaded;
}

async function start() {
  onSignedOut((message) => { if (state.session) showSignedOut(message); });
  document.getElementById('logout-button').addEventListener('click', async () => {
    try { await post('/console/logout'); } catch (e) { /* ended already */ }
    showSignedOut('You have signed out.');
  });
  window.addEventListener('hashchange', () => { render(); });
  try {
    showSignedIn(await get('/console/session'));
    await render();
  } catch (e) {
    showSignedOut('');
  }
}

start();
