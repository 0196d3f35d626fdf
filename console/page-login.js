import { post } from './api.js';
import { h, field, pageHeading, errorBox, put } from './dom.js';

export function renderLogin(main, message, signedIn) {
  const token = field('Access token', { type: 'password', name: 'token', autocomplete: 'off', required: true },
    'The compliance token your gateway administrator gave you. It is exchanged for a session and not kept by the browser.');
  const errors = h('div', { id: 'login-errors' });
  const form = h('form', { class: 'card', id: 'login-form', 'aria-labelledby': 'page-heading' },
    token.wrap, h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    try {
      const session = await post('/console/login', { token: token.input.value });
      token.input.value = '';
      await signedIn(session);
    } catch (e) {
      errors.appendChild(errorBox(`Sign-in failed: ${e.message}`));
      token.input.focus();
    }
  });
  put(main, pageHeading('Sign in'), message ? h('p', { class: 'notice', role: 'alert' }, message) : null, errors, form);
  token.input.focus();
}
