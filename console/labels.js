// Plain-language names for the gateway's codes, so a compliance officer reads words, not codes.
import { badge, h } from './dom.js';

const CLASSES = {
  general: 'general medical data',
  sud: 'substance-use treatment data (42 CFR Part 2)',
  mh: 'mental-health data',
};
const PURPOSES = {
  TREAT: 'treatment',
  ETREAT: 'emergency treatment',
  HPAYMT: 'payment',
  HOPERAT: 'health care operations',
  HRESCH: 'research',
  PUBHLTH: 'public health',
};
const OUTCOMES = {
  disclosed: ['Sent', 'ok'],
  denied: ['Not sent', 'deny'],
  redacted: ['Sent in part', 'warn'],
  cancelled: ['Cancelled', 'muted'],
  emergency: ['Sent in an emergency (break-glass)', 'emergency'],
  failed: ['Sending failed', 'deny'],
  permitted: ['Cleared to send', 'muted'],
  decided: ['Decided', 'muted'],
};

export function className(code) { return CLASSES[code] || code; }
export function classList(codes) {
  const list = Array.isArray(codes) ? codes : String(codes || '').split(/[ ,]+/).filter(Boolean);
  return list.length ? list.map(className).join(', ') : '—';
}
export function purposeName(code) { return PURPOSES[code] || code; }
export function purposeList(codes) {
  const list = Array.isArray(codes) ? codes : String(codes || '').split(/[ ,]+/).filter(Boolean);
  return list.length ? list.map(purposeName).join(', ') : '—';
}
export function outcomeBadge(outcome) {
  const [text, kind] = OUTCOMES[outcome] || [outcome || 'unknown', 'muted'];
  return badge(text, kind);
}
export function outcomeName(outcome) { return (OUTCOMES[outcome] || [outcome])[0]; }
export function emergencyBadge() { return badge('EMERGENCY (break-glass)', 'emergency'); }
// A log row's number, and which gateway wrote it when several share the database.
export function logEntry(row) {
  return h('span', {}, `#${row.seq}`, row.instance_id ? h('span', { class: 'sub' }, `by gateway ${row.instance_id}`) : null);
}
export const OUTCOME_CHOICES = [['', 'Any outcome'], ...Object.entries(OUTCOMES).map(([k, [t]]) => [k, t])];
export const CLASS_CHOICES = [['', 'Any data class'], ...Object.entries(CLASSES).map(([k, t]) => [k, t])];

/** "2026-12-07T10:03:00.000Z" -> local date and time, as the officer's browser shows them. */
export function when(text) {
  if (!text) return '—';
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return String(text);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
export function day(text) {
  if (!text) return '—';
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const [y, m, d] = text.split('-').map(Number);
    return new Date(y, m - 1, d).toLocaleDateString(undefined, { dateStyle: 'medium' });
  }
  return when(text);
}
export function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
