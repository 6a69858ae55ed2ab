// Runs in progress: the runs going on the caller's busy threads (a cron's run included), found
// with the public API (threads with status busy, then their runs).
import { api, mapLimit, session } from '../api.js';
import { badge, formatDuration, formatTime, h, put, relative, shortId, waitingText } from '../format.js';
import { actionButton, flash, table } from '../ui.js';

const ACTIVE = new Set(['pending', 'running']);

export async function renderRuns(view) {
  const threads = await api('POST', '/threads/search', { status: 'busy', limit: 100, sort_by: 'updated_at', sort_order: 'desc' });
  const perThread = await mapLimit(threads, 6, (t) => api('GET', `/threads/${t.thread_id}/runs?limit=20`));
  const runs = perThread
    .filter((r) => Array.isArray(r))
    .flat()
    .filter((r) => ACTIVE.has(r.status))
    .sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
  const now = Date.now();
  const rows = runs.map((r) =>
    h(
      'tr',
      { dataset: { runId: r.run_id } },
      h('td', {}, shortId(r.run_id)),
      h(
        'td',
        {},
        badge(r.status),
        // A retry backing off or a limit without room (docs/flow-control.md); attempts after the first.
        r.status === 'pending' && r.waiting ? h('div', { class: 'sub waiting' }, `waiting for ${waitingText(r)}`) : null,
        r.attempts > 1 || r.attempt_log?.length ? h('div', { class: 'sub' }, `attempt ${Math.max(r.attempts, (r.attempt_log?.length ?? 0) + 1)}`) : null,
      ),
      h(
        'td',
        {},
        r.cron_id
          ? [h('a', { href: `#/crons/${r.cron_id}` }, shortId(r.cron_id)), r.scheduled_for ? h('div', { class: 'sub' }, formatTime(r.scheduled_for)) : null]
          : 'none',
      ),
      h('td', {}, shortId(r.assistant_id)),
      h(
        'td',
        {},
        r.run_started_at ? `${formatDuration(now - new Date(r.run_started_at).getTime())}` : `waiting ${relative(r.created_at, now).replace(' ago', '')}`,
      ),
      h('td', {}, shortId(r.thread_id)),
      h(
        'td',
        {},
        actionButton(
          'Cancel',
          async () => {
            await api('POST', `/threads/${r.thread_id}/runs/${r.run_id}/cancel`);
            flash(`Cancelled run ${r.run_id.slice(0, 8)}`);
            await renderRuns(view);
          },
          { class: 'secondary small' },
        ),
      ),
    ),
  );
  put(
    view,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Runs in progress'),
      actionButton('Refresh', () => renderRuns(view), { class: 'secondary', id: 'runs-refresh' }),
    ),
    h(
      'p',
      { class: 'muted' },
      `Runs going on your threads${session.everyUser ? " (this admin key's own threads: the API has no cross-user run search)" : ''}; runs still waiting on an idle thread show on their cron's ledger as enqueued.`,
    ),
    rows.length
      ? table(['Run', 'Status', 'Cron', 'Assistant', 'For', 'Thread', ''], rows, { id: 'runs-table' })
      : h('p', { class: 'empty', id: 'no-runs' }, 'No run is going now.'),
  );
}
