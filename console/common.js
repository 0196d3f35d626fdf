// Pieces several pages share: the clinic + MRN form, the default clinic of the session.
import { h, field } from './dom.js';

// The clinic last asked about, so the next page starts with it (officers work one clinic at a time).
let lastClinic = '';
export function rememberClinic(clinic) { if (clinic) lastClinic = clinic; }

export function defaultClinic(session) {
  if (lastClinic) return lastClinic;
  const own = (session.clinics || []).filter((c) => c !== '*');
  return own.length ? own[0] : '';
}

/** A clinic + MRN lookup form; onSubmit({clinic, mrn}). */
export function patientForm({ id, legend, button, session, params, onSubmit, extra = [] }) {
  rememberClinic(params.get('clinic'));
  const clinic = field('Clinic', { name: 'clinic', required: true, value: params.get('clinic') || defaultClinic(session), autocomplete: 'off' },
    'The clinic id, e.g. c1.');
  const mrn = field('Medical record number (MRN)', { name: 'mrn', required: !params.get('patient_key'), value: params.get('mrn') || '', autocomplete: 'off' });
  const form = h('form', { class: 'card', id },
    h('fieldset', {}, h('legend', {}, legend), h('div', { class: 'row' }, clinic.wrap, mrn.wrap, extra.map((f) => f.wrap))),
    h('button', { type: 'submit' }, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    rememberClinic(clinic.input.value.trim());
    onSubmit({ clinic: clinic.input.value.trim(), mrn: mrn.input.value.trim() });
  });
  return { form, clinic: clinic.input, mrn: mrn.input };
}
