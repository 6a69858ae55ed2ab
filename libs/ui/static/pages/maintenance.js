// @ts-check
// The built-in maintenance jobs (admin keys): schedule, last run and outcome, and trigger now.
import { api, session } from '../api.js';
import { badge, h, put } from '../dom.js';
import { describeSchedule, formatDuration, formatTime, jsonLine, relative } from '../format.js';
import { actionButton, flash, table } from '../ui.js';

/** @typedef {import('../../types.ts').MaintenanceJob} MaintenanceJob */

/** @param {HTMLElement} view */
export async function renderMaintenance(view) {
  if (!session.admin) {
    put(view, h('h1', {}, 'Maintenance'), h('p', { class: 'muted' }, 'The maintenance jobs are shown to admin keys (ADMIN_API_KEYS).'));
    return;
  }
  /** @type {MaintenanceJob[]} */
  const jobs = await api('GET', '/admin/maintenance');
  const rows = jobs.map((j) =>
    h(
      'tr',
      { dataset: { job: j.job } },
      h('td', {}, h('strong', {}, j.job), j.enabled ? null : h('div', { class: 'sub' }, 'disabled (runs when triggered)')),
      h('td', {}, describeSchedule(j.schedule) ?? j.schedule, h('div', { class: 'sub' }, h('code', {}, j.schedule), ` ${j.timezone}`)),
      h('td', {}, j.next_run_date ? [relative(j.next_run_date), h('div', { class: 'sub' }, formatTime(j.next_run_date, j.timezone))] : '—'),
      h('td', {}, badge(j.last_run_status, j.last_run_status ?? 'never ran'), j.last_run_at ? h('div', { class: 'sub' }, relative(j.last_run_at)) : null),
      h('td', { class: 'num' }, formatDuration(j.last_duration_ms)),
      h(
        'td',
        {},
        j.last_run_error
          ? h('span', { class: 'error-text' }, jsonLine(j.last_run_error, 160))
          : j.last_result
            ? h('code', { class: 'json' }, jsonLine(j.last_result, 160))
            : '',
      ),
      h('td', { class: 'num' }, `${j.runs_total} / ${j.failures_total} / ${j.missed_total}`),
      h(
        'td',
        {},
        actionButton(
          'Trigger',
          async () => {
            /** @type {{ state: string }} */
            const answer = await api('POST', `/admin/maintenance/${encodeURIComponent(j.job)}/trigger?wait_seconds=0`);
            flash(`${j.job}: ${answer.state}`);
          },
          { class: 'secondary small', dataset: { trigger: j.job } },
        ),
      ),
    ),
  );
  put(
    view,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Maintenance jobs'),
      actionButton('Refresh', () => renderMaintenance(view), { class: 'secondary' }),
    ),
    table(['Job', 'Schedule', 'Next', 'Last run', { label: 'Took', class: 'num' }, 'Result', { label: 'Runs / failures / missed', class: 'num' }, ''], rows, {
      id: 'maintenance-table',
    }),
  );
}
