// Partners and periods: what went to (or was kept from) one partner over a period, counted by
// outcome, data class and reason, filterable, with a way into each patient's view.
import { get, url } from './api.js';
import { h, field, pageHeading, table, errorBox, announce, put } from './dom.js';
import { classList, className, outcomeName, outcomeBadge, emergencyBadge, logEntry, when, OUTCOME_CHOICES, CLASS_CHOICES } from './labels.js';
import { defaultClinic, rememberClinic } from './common.js';
import { go } from './app.js';

function counts(caption, map, label) {
  const entries = Object.entries(map || {});
  if (!entries.length) return null;
  return table(caption, ['', 'Count'], entries.map(([k, v]) => [label ? label(k) : k, String(v)]));
}

export async function renderPartner(main, params, session) {
  const p = (name, fallback = '') => params.get(name) || fallback;
  rememberClinic(params.get('clinic'));
  const monthAgo = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
  const fields = {
    clinic: field('Clinic', { name: 'clinic', required: true, value: p('clinic', defaultClinic(session)), autocomplete: 'off' }),
    partner: field('Partner id', { name: 'partner', required: true, value: p('partner'), autocomplete: 'off' }, 'e.g. st-mary'),
    from: field('From', { type: 'date', name: 'from', value: p('from', monthAgo) }),
    to: field('To', { type: 'date', name: 'to', value: p('to', new Date(Date.now() + 86400000).toISOString().slice(0, 10)) }),
    outcome: field('Outcome', { tag: 'select', name: 'outcome', options: OUTCOME_CHOICES, value: p('outcome') }),
    class: field('Data class', { tag: 'select', name: 'class', options: CLASS_CHOICES, value: p('class') }),
    reason: field('Reason', { name: 'reason', value: p('reason'), autocomplete: 'off' }, 'A reason code from the counts, e.g. class-not-covered:mh'),
  };
  const form = h('form', { class: 'card', id: 'partner-form' },
    h('fieldset', {}, h('legend', {}, 'Partner and period'), h('div', { class: 'row' }, Object.values(fields).map((f) => f.wrap))),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = {};
    for (const [k, f] of Object.entries(fields)) if (f.input.value.trim()) q[k] = f.input.value.trim();
    go('partner', q);
  });
  const results = h('div', { id: 'partner-results' });
  main.append(pageHeading('Partners and periods'),
    h('p', { class: 'lead' }, 'Disclosures and refusals for one partner over a period, with counts; open a row to see that patient.'),
    form, results);
  if (!p('clinic') || !p('partner')) return;
  const query = Object.fromEntries(['clinic', 'partner', 'from', 'to', 'outcome', 'class', 'reason', 'after_seq'].map((k) => [k, p(k)]));
  try {
    const data = await get(url('/v1/compliance/partner', query));
    const rows = data.rows || [];
    put(results,
      h('h2', {}, `${data.partner_name || data.partner_id}: ${data.total} log entries`),
      h('div', { class: 'counts' },
        counts('By outcome', data.counts && data.counts.by_outcome, outcomeName),
        counts('By data class', data.counts && data.counts.by_class, className),
        counts('By reason', data.counts && data.counts.by_reason)),
      rows.length === 0 ? h('p', {}, 'No entries match.') : table('Entries, newest page first',
        ['When', 'Outcome', 'What happened', 'Data', 'Log entry', 'Patient'],
        rows.map((r) => [
          when(r.time),
          h('span', {}, outcomeBadge(r.outcome), r.break_glass_id ? [' ', emergencyBadge()] : null),
          r.text || r.reason || '',
          classList(r.classes),
          logEntry(r),
          h('button', { type: 'button', class: 'small', onclick: () => go('patient', { clinic: query.clinic, patient_key: r.patient_key }), 'aria-label': `View patient of log entry ${r.seq}` }, 'View patient'),
        ]),
        (i) => (rows[i].break_glass_id ? 'flag-emergency' : undefined)),
      data.next_after_seq ? h('button', { type: 'button', id: 'next-page', onclick: () => go('partner', { ...Object.fromEntries(Object.entries(query).filter(([, v]) => v)), after_seq: data.next_after_seq }) }, 'Next page') : null);
    announce(`${data.total} entries for this partner in the period.`);
  } catch (e) {
    results.appendChild(errorBox(`Could not load the partner view: ${e.message}`));
  }
}
