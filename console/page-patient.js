// Patient view: every version of every consent as a timeline, and what happened to the
// patient's data (sent, not sent and why, sent in part, cancelled, emergency), oldest first.
import { get, url } from './api.js';
import { h, pageHeading, table, errorBox, announce, badge, put } from './dom.js';
import { classList, purposeList, outcomeBadge, emergencyBadge, logEntry, when, day } from './labels.js';
import { patientForm } from './common.js';
import { go } from './app.js';

function recipients(consent) {
  const list = consent.recipients && consent.recipients.length ? consent.recipients
    : [{ partner_id: consent.partner_id, partner_name: consent.partner_name }];
  return list.map((r) => r.partner_name || r.partner_id).join(', ');
}

// Where a consent version sits in the timeline, so each event can lead to the version it was decided under.
function versionAnchor(consentId, version) {
  return `consent-${String(consentId).replace(/[^A-Za-z0-9_-]/g, '_')}-v${version}`;
}

function versionLink(e) {
  if (!e.consent_version) return '—';
  const label = e.consent_id ? `consent ${e.consent_id}, version ${e.consent_version}` : `version ${e.consent_version}`;
  return h('button', {
    type: 'button', class: 'link',
    onclick: () => {
      const target = document.getElementById(versionAnchor(e.consent_id, e.consent_version));
      if (target) { target.scrollIntoView({ block: 'center' }); target.focus(); }
    },
  }, label);
}

function consentTimeline(consents) {
  if (!consents.length) return h('p', {}, 'No consent is on file for this patient.');
  const sorted = [...consents].sort((a, b) => String(a.consent_id).localeCompare(String(b.consent_id)) || a.version - b.version);
  return h('ol', { class: 'timeline', 'aria-label': 'Consent versions, oldest first' }, sorted.map((c) => {
    const revoked = c.revoked_on || c.status === 'revoked' || c.status === 'inactive';
    return h('li', { class: `timeline-item${revoked ? ' revoked' : ''}`, id: versionAnchor(c.consent_id, c.version), tabindex: '-1' },
      h('h3', {}, `Consent ${c.consent_id}, version ${c.version} `, badge(revoked ? 'Revoked / not in force' : (c.status || 'unknown'), revoked ? 'deny' : 'ok')),
      h('dl', { class: 'facts' },
        h('dt', {}, 'May be sent to'), h('dd', {}, recipients(c)),
        h('dt', {}, 'Data it covers'), h('dd', {}, classList(c.classes)),
        h('dt', {}, 'For'), h('dd', {}, purposeList(c.purposes)),
        h('dt', {}, 'In force'), h('dd', {}, `${day(c.period && c.period.start)} to ${c.period && c.period.end ? day(c.period.end) : 'no end date'}`),
        h('dt', {}, 'Signed'), h('dd', {}, c.signed_on ? day(c.signed_on) : 'no signature date recorded'),
        h('dt', {}, 'Revoked'), h('dd', {}, c.revoked_on ? day(c.revoked_on) : 'no'),
        c.recorded_at ? [h('dt', {}, 'Recorded by the gateway'), h('dd', {}, when(c.recorded_at))] : null));
  }));
}

function eventsTable(events) {
  if (!events.length) return h('p', {}, 'Nothing has been sent or refused for this patient.');
  return table('What happened to this patient\'s data, oldest first',
    ['When', 'Outcome', 'What happened', 'Data', 'Decided under', 'Log entry'],
    events.map((e) => [
      when(e.time),
      h('span', {}, outcomeBadge(e.outcome), e.break_glass_id ? [' ', emergencyBadge()] : null),
      h('span', {}, e.text || e.description || '', e.description && e.text ? h('span', { class: 'sub' }, e.description) : null),
      classList(e.classes),
      versionLink(e),
      logEntry(e),
    ]),
    (i) => (events[i].break_glass_id || events[i].outcome === 'emergency' ? 'flag-emergency' : undefined));
}

export async function renderPatient(main, params, session) {
  const results = h('div', { id: 'patient-results' });
  const { form } = patientForm({
    id: 'patient-form', legend: 'Find a patient', button: 'Look up', session, params,
    onSubmit: ({ clinic, mrn }) => go('patient', { clinic, mrn }),
  });
  main.append(pageHeading('Patient: consents and disclosures'),
    h('p', { class: 'lead' }, 'Who received what about a patient, when, and under which consent.'), form, results);
  const clinic = params.get('clinic');
  const mrn = params.get('mrn');
  const patientKey = params.get('patient_key');
  if (!clinic || (!mrn && !patientKey)) return;
  try {
    const data = await get(url('/v1/compliance/patient', { clinic, mrn, patient_key: mrn ? '' : patientKey }));
    const events = data.events || [];
    const emergencies = events.filter((e) => e.break_glass_id || e.outcome === 'emergency').length;
    put(results,
      h('section', { 'aria-labelledby': 'consents-heading' },
        h('h2', { id: 'consents-heading' }, 'Consent history'), consentTimeline(data.consents || [])),
      h('section', { 'aria-labelledby': 'events-heading' },
        h('h2', { id: 'events-heading' }, 'Disclosures, refusals and cancellations'),
        emergencies ? h('p', { class: 'notice emergency' }, emergencyBadge(), ` ${emergencies} entr${emergencies === 1 ? 'y was' : 'ies were'} sent under a medical emergency (42 CFR 2.51).`) : null,
        eventsTable(events)),
      h('p', {}, h('a', { href: `#/accounting?${new URLSearchParams(mrn ? { clinic, mrn } : { clinic, patient_key: patientKey })}` }, 'Accounting of disclosures for this patient')),
      h('p', { class: 'sub' }, `Patient key in the log: ${data.patient_key}`));
    announce(`Found ${(data.consents || []).length} consent versions and ${events.length} log entries.`);
  } catch (e) {
    results.appendChild(errorBox(`Could not look up the patient: ${e.message}`));
  }
}
