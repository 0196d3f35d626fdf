// Accounting of disclosures (42 CFR 2.24 and 2.25): the list a patient may ask for, printable and
// downloadable, and the workflow of written requests (received, due in 30 days, delivered).
import { get, post, url } from './api.js';
import { h, field, pageHeading, table, errorBox, announce, badge } from './dom.js';
import { classList, purposeList, emergencyBadge, when, day, today } from './labels.js';
import { patientForm } from './common.js';
import { go } from './app.js';

function report(data, who) {
  const rows = data.disclosures || [];
  const produced = new Date().toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' });
  return h('section', { id: 'accounting-report', class: 'report', 'aria-labelledby': 'report-heading' },
    h('h2', { id: 'report-heading' }, 'Accounting of disclosures'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Patient'), h('dd', {}, who),
      h('dt', {}, 'Clinic'), h('dd', {}, data.clinic || ''),
      h('dt', {}, 'Period'), h('dd', {}, `${day(data.from)} to ${day(data.to)} (the last ${data.years} years)`),
      h('dt', {}, 'Produced'), h('dd', {}, produced),
      h('dt', {}, 'Disclosures'), h('dd', {}, String(rows.length))),
    rows.length === 0 ? h('p', {}, 'No information about this patient was disclosed in this period.')
      : table('Every disclosure in the period, oldest first',
        ['Date', 'Recipient', 'Information disclosed', 'Purpose', 'Consent', 'Emergency'],
        rows.map((r) => [
          when(r.date),
          h('span', { class: 'nowrap' }, r.recipient || r.partner_id),
          h('span', {}, r.description || r.resource_type || '', r.classes && r.classes.length ? h('span', { class: 'sub' }, classList(r.classes)) : null),
          purposeList(r.purpose),
          r.break_glass ? 'none: medical emergency' : `${r.consent_id || '—'}${r.consent_version ? `, version ${r.consent_version}` : ''}`,
          r.break_glass ? emergencyBadge() : 'no',
        ]),
        (i) => (rows[i].break_glass ? 'flag-emergency' : undefined)),
    h('p', { class: 'print-only' }, 'Produced by the fhir-gateway compliance console from the gateway\'s tamper-evident log.'));
}

async function requestsSection(clinic, mrn, patientKey) {
  const section = h('section', { id: 'requests', 'aria-labelledby': 'requests-heading', class: 'no-print' },
    h('h2', { id: 'requests-heading' }, 'Written requests'));
  const list = h('div', { id: 'requests-list' });
  const received = field('Date the written request was received', { type: 'date', name: 'received_on', required: true, value: today() });
  const note = field('Note', { name: 'note', autocomplete: 'off' }, 'Optional, e.g. how it arrived. Do not write clinical details here.');
  const result = h('div', { id: 'request-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'request-form' },
    h('fieldset', {}, h('legend', {}, 'Record a patient\'s written request for this accounting'), h('div', { class: 'row' }, received.wrap, note.wrap)),
    h('button', { type: 'submit' }, 'Record request'), result);

  async function refresh() {
    list.replaceChildren();
    try {
      const data = await get(url('/v1/compliance/accounting-requests', { clinic }));
      const rows = data.requests || [];
      if (!rows.length) { list.appendChild(h('p', {}, 'No requests recorded for this clinic.')); return; }
      list.appendChild(table(`Requests for clinic ${clinic}`,
        ['Received', 'Due by', 'State', 'Patient', 'Note', 'Action'],
        rows.map((r) => [
          day(r.received_on),
          h('span', {}, day(r.due_on), r.overdue ? [' ', badge('overdue', 'deny')] : null),
          r.state === 'delivered' ? `delivered ${day(r.delivered_on)}` : r.state,
          h('a', { href: `#/accounting?${new URLSearchParams({ clinic, patient_key: r.patient_key })}` }, `key ${String(r.patient_key).slice(0, 12)}…`),
          r.note || '',
          r.state === 'delivered' ? '—' : h('button', {
            type: 'button', class: 'small', 'data-request-id': r.id,
            'aria-label': `Mark delivered: the request received ${r.received_on}`,
            onclick: async () => {
              try {
                await post(url(`/v1/compliance/accounting-requests/${encodeURIComponent(r.id)}/delivered`, { clinic }), { delivered_on: today() });
                announce('The request is marked as delivered.');
                await refresh();
              } catch (e) { list.prepend(errorBox(`Could not mark it delivered: ${e.message}`)); }
            },
          }, 'Mark delivered'),
        ])));
    } catch (e) {
      list.appendChild(errorBox(`Could not list requests: ${e.message}`));
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren();
    try {
      const body = { clinic, received_on: received.input.value, note: note.input.value };
      if (mrn) body.mrn = mrn; else body.patient_key = patientKey;
      const created = await post(url('/v1/compliance/accounting-requests', { clinic }), body);
      result.appendChild(h('p', { class: 'ok' }, `Request recorded. The accounting is due by ${day(created.due_on)} (30 days after ${day(created.received_on || received.input.value)}).`));
      await refresh();
    } catch (e) {
      result.appendChild(errorBox(`Could not record the request: ${e.message}`));
    }
  });
  section.append(mrn || patientKey ? form : h('p', {}, 'Look up a patient above to record a request for them.'), list);
  if (clinic) await refresh();
  return section;
}

export async function renderAccounting(main, params, session) {
  const years = field('Years back', { type: 'number', name: 'years', min: '1', max: '10', value: params.get('years') || '3' });
  const results = h('div', { id: 'accounting-results' });
  const { form } = patientForm({
    id: 'accounting-form', legend: 'Produce the accounting for a patient', button: 'Produce accounting', session, params, extra: [years],
    onSubmit: ({ clinic, mrn }) => go('accounting', { clinic, mrn, years: years.input.value }),
  });
  form.classList.add('no-print');
  main.append(pageHeading('Accounting of disclosures'),
    h('p', { class: 'lead no-print' }, 'Every disclosure of a patient\'s information: who received it, when, what it was, why, and under which consent.'),
    form, results);
  const clinic = params.get('clinic');
  const mrn = params.get('mrn') || '';
  const patientKey = mrn ? '' : params.get('patient_key') || '';
  if (!clinic) return;
  if (mrn || patientKey) {
    const query = { clinic, mrn, patient_key: patientKey, years: params.get('years') || '' };
    try {
      const data = await get(url('/v1/compliance/accounting', query));
      const who = mrn ? `MRN ${mrn}` : `patient key ${patientKey}`;
      const actions = h('div', { class: 'actions no-print' },
        h('button', { type: 'button', id: 'print-button', onclick: () => window.print() }, 'Print or save as PDF'),
        h('a', { class: 'button', id: 'csv-link', href: url('/v1/compliance/accounting', { ...query, format: 'csv' }), download: 'accounting-of-disclosures.csv' }, 'Download CSV'),
        h('a', { class: 'button', id: 'fhir-link', href: url('/v1/compliance/accounting', { ...query, format: 'fhir' }), download: 'accounting-auditevents.json' }, 'Download FHIR AuditEvents'));
      results.append(actions, report(data, who));
      announce(`The accounting lists ${(data.disclosures || []).length} disclosures.`);
    } catch (e) {
      results.appendChild(errorBox(`Could not produce the accounting: ${e.message}`));
    }
  }
  results.appendChild(await requestsSection(clinic, mrn, patientKey));
}
