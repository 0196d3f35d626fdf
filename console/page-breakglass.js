// Break-glass (42 CFR 2.51): an emergency disclosure for one patient to one partner, with the
// record the rule requires, ending by itself after its duration.
import { get, post, url } from './api.js';
import { h, field, pageHeading, table, errorBox, announce } from './dom.js';
import { when, emergencyBadge } from './labels.js';
import { defaultClinic, rememberClinic } from './common.js';

export async function renderBreakGlass(main, params, session) {
  rememberClinic(params.get('clinic'));
  const clinicValue = params.get('clinic') || defaultClinic(session);
  const f = {
    clinic: field('Clinic', { name: 'clinic', required: true, value: clinicValue, autocomplete: 'off' }),
    mrn: field('Patient MRN', { name: 'mrn', required: true, autocomplete: 'off' }),
    partner: field('Partner (hospital) id', { name: 'partner', required: true, autocomplete: 'off' }, 'e.g. st-mary'),
    recipient: field('Medical personnel receiving the information', { name: 'recipient', required: true, autocomplete: 'off' }, 'Name and role, e.g. Dr. Ana Lopez, ED attending'),
    authorised_by: field('Authorised by', { name: 'authorised_by', required: true, autocomplete: 'off' }, 'The person at the clinic who authorises this disclosure'),
    nature: field('Nature of the emergency', { tag: 'textarea', name: 'nature', required: true, rows: '3' }),
    minutes: field('Duration in minutes', { type: 'number', name: 'minutes', required: true, min: '1', max: '1440', value: '60' }, 'At most 24 hours (1440 minutes). It ends by itself.'),
  };
  const result = h('div', { id: 'break-glass-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'break-glass-form' },
    h('fieldset', {}, h('legend', {}, 'Open an emergency disclosure'), h('div', { class: 'row' }, Object.values(f).map((x) => x.wrap))),
    h('button', { type: 'submit', class: 'danger' }, 'Open break-glass'), result);
  const list = h('div', { id: 'break-glass-list' });

  async function refresh() {
    const clinic = f.clinic.input.value.trim();
    rememberClinic(clinic);
    list.replaceChildren();
    if (!clinic) return;
    try {
      const data = await get(url('/v1/compliance/break-glass', { clinic }));
      const rows = data.break_glass || [];
      const active = rows.filter((r) => r.active);
      list.append(h('h2', { id: 'active-heading' }, `Active emergencies at clinic ${clinic}: ${active.length}`));
      if (!rows.length) { list.appendChild(h('p', {}, 'None recorded.')); return; }
      list.appendChild(table(`Break-glass records of clinic ${clinic}`,
        ['State', 'Patient', 'Partner', 'Received by', 'Authorised by', 'Nature', 'Opened', 'Ends', 'Action'],
        rows.map((r) => [
          r.active ? emergencyBadge() : (r.ended_at ? 'ended' : 'expired'),
          h('a', { href: `#/patient?${new URLSearchParams({ clinic, patient_key: r.patient_key })}` }, `key ${String(r.patient_key).slice(0, 12)}…`),
          r.partner_name || r.partner_id,
          r.recipient,
          r.authorised_by,
          r.nature,
          when(r.opened_at),
          when(r.ended_at || r.expires_at),
          r.active ? h('button', {
            type: 'button', class: 'small', 'data-break-glass-id': r.id, 'aria-label': `End now: the emergency for ${r.partner_name || r.partner_id} opened ${when(r.opened_at)}`,
            onclick: async () => {
              try {
                await post(url(`/v1/compliance/break-glass/${encodeURIComponent(r.id)}/end`, { clinic }));
                announce('The emergency disclosure has ended.');
                await refresh();
              } catch (e) { list.prepend(errorBox(`Could not end it: ${e.message}`)); }
            },
          }, 'End now') : '—',
        ]),
        (i) => (rows[i].active ? 'flag-emergency' : undefined)));
    } catch (e) {
      list.appendChild(errorBox(`Could not list break-glass records: ${e.message}`));
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren();
    const body = Object.fromEntries(Object.entries(f).map(([k, x]) => [k, x.input.value.trim()]));
    body.minutes = Number(body.minutes);
    try {
      const opened = await post(url('/v1/compliance/break-glass', { clinic: body.clinic }), body);
      result.appendChild(h('p', { class: 'notice emergency' }, emergencyBadge(), ` Opened. Disclosures to ${opened.partner_name || body.partner} for this patient are allowed as an emergency until ${when(opened.expires_at)}, and are flagged as such everywhere.`));
      await refresh();
    } catch (e) {
      result.appendChild(errorBox(`Could not open the emergency disclosure: ${e.message}`));
    }
  });
  f.clinic.input.addEventListener('change', refresh);
  main.append(pageHeading('Break-glass: medical emergencies'),
    h('p', { class: 'lead' }, 'Under 42 CFR 2.51 a patient\'s information may go to medical personnel in a bona fide medical emergency without consent. Record who receives it, who authorised it and why; it ends by itself when its time runs out.'),
    form, h('button', { type: 'button', id: 'refresh-break-glass', onclick: refresh }, 'Refresh list'), list);
  await refresh();
}
