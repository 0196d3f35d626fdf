// Log integrity: checks the whole log now and says, in words, whether it is intact and whether it
// still matches the last checkpoint the gateway published outside its database.
import { get } from './api.js';
import { h, pageHeading, errorBox, announce, clear, put } from './dom.js';
import { when } from './labels.js';

export function explain(report) {
  const lines = [];
  const check = report.anchor_check || {};
  if (report.ok) {
    lines.push(['ok', `The log is intact. All ${report.rows} entries are linked to each other, and none has been changed, removed or inserted since it was written.`]);
  } else {
    lines.push(['bad', `The log has been tampered with or damaged: ${report.break_count} problem${report.break_count === 1 ? '' : 's'} found. Do not rely on it; tell your security officer and keep this page's result.`]);
  }
  const published = check.published_at ? when(check.published_at) : null;
  switch (check.status) {
    case 'ok':
      lines.push(['ok', `It matches the checkpoint the gateway published${published ? ` on ${published}` : ''}${check.seq ? ` (entry #${check.seq})` : ''}: nothing written up to then has been cut off or rewritten.`]);
      break;
    case 'truncated':
      lines.push(['bad', `The log is shorter than the checkpoint published${published ? ` on ${published}` : ''}: entries written before then have been removed.`]);
      break;
    case 'rewritten':
      lines.push(['bad', `The log no longer matches the checkpoint published${published ? ` on ${published}` : ''}: entries written before then have been changed.`]);
      break;
    default:
      lines.push(['warn', 'No checkpoint has been published outside the database yet, so this check cannot tell whether the newest entries were cut off. Ask your administrator to set audit.anchor.file.']);
  }
  if (check.forged_lines > 0) {
    lines.push(['bad', `${check.forged_lines} line${check.forged_lines === 1 ? '' : 's'} of the checkpoint file were not written by this gateway (forged checkpoints) and were ignored.`]);
  }
  return lines;
}

export async function renderIntegrity(main) {
  const result = h('div', { id: 'integrity-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'verify-button' }, 'Check the log now');
  button.addEventListener('click', async () => {
    result.replaceChildren(h('p', {}, 'Checking every entry of the log…'));
    button.disabled = true;
    try {
      const report = await get('/v1/audit/verify');
      const check = report.anchor_check || {};
      put(clear(result),
        h('ul', { class: 'verdict' }, explain(report).map(([kind, text]) => h('li', { class: `verdict-${kind}` }, text))),
        h('h2', {}, 'Details'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Checked'), h('dd', {}, when(new Date().toISOString())),
          h('dt', {}, 'Entries in the log'), h('dd', {}, String(report.rows)),
          h('dt', {}, 'Last published checkpoint'), h('dd', {}, check.seq ? `entry #${check.seq}` : 'none'),
          h('dt', {}, 'Published'), h('dd', {}, check.published_at ? when(check.published_at) : '—'),
          h('dt', {}, 'Result against it'), h('dd', {}, { ok: 'matches', truncated: 'entries removed', rewritten: 'entries changed', none: 'no checkpoint' }[check.status] || String(check.status || '—')),
          h('dt', {}, 'Fingerprint of the newest entry'), h('dd', { class: 'mono' }, report.head_hash || '—')),
        report.breaks && report.breaks.length ? h('ul', { class: 'breaks' }, report.breaks.map((b) => h('li', {}, `Entry #${b.seq}: ${b.message}`))) : null);
      announce(report.ok ? 'The log is intact.' : 'The log check found problems.', report.ok ? 'info' : 'error');
    } catch (e) {
      result.replaceChildren(errorBox(`The check could not run: ${e.message}`));
    } finally {
      button.disabled = false;
    }
  });
  main.append(pageHeading('Log integrity'),
    h('p', { class: 'lead' }, 'The gateway records every decision and disclosure in a chained log: each entry carries a fingerprint of the one before, and the newest fingerprint is published regularly outside the database. This page checks both.'),
    button, result);
}
