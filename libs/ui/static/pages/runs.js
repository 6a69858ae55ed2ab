// @ts-check
// Runs: what is running, waiting and failing now across every thread and cron, stateless runs
// included (GET /runs), each with a page of its own (#/runs/<run_id>: output, error, attempts,
// timings, cancel). Both refresh themselves every few seconds while visible. Three list calls
// (running, pending, failed) whatever the number of threads.
import { api, session } from '../api.js';
import { badge, h, put, shortId } from '../dom.js';
import { formatDuration, formatTime, jsonLine, relative, waitingText } from '../format.js';
import { actionButton, flash, poll, redrawGate, table } from '../ui.js';

/** @typedef {import('../../types.ts').ListedRun} ListedRun */
/** @typedef {import('../../types.ts').RunDetail} RunDetail */
/** A run as GET /runs lists it (with its owner). @typedef {ListedRun} Run */

/** @type {Set<string>} */
const ACTIVE = new Set(['pending', 'running']);
const FAILED = 'error,timeout,interrupted';

/**
 * A run's error in one line.
 * @param {unknown} e
 */
const errorText = (e) => {
  if (!e) return '';
  if (typeof e !== 'object' || !('error' in e)) return jsonLine(e, 400);
  const { error, message } = /** @type {{ error: unknown, message?: unknown }} */ (e);
  return `${String(error)}${message ? `: ${String(message)}` : ''}`;
};

/**
 * @param {Run} r
 * @param {() => Promise<unknown>} after
 */
function cancelButton(r, after) {
  return actionButton(
    'Cancel',
    async () => {
      await api('POST', `/threads/${r.thread_id}/runs/${r.run_id}/cancel`);
      flash(`Cancelled run ${r.run_id.slice(0, 8)}`);
      await after();
    },
    { class: 'secondary small', dataset: { cancel: r.run_id } },
  );
}

/**
 * A run that has not ended, on a thread the key's own routes reach (an admin key lists every user's runs, but cancels its own).
 * @param {Run} r
 */
const cancellable = (r) => ACTIVE.has(r.status) && (!session.everyUser || !r.user_id || r.user_id === session.me);

/**
 * @param {Run} r
 * @param {number} now
 * @param {() => Promise<unknown>} after
 */
function runRow(r, now, after) {
  const link = session.features.runGet ? h('a', { href: `#/runs/${r.run_id}`, class: 'run-link' }, shortId(r.run_id)) : shortId(r.run_id);
  const forHow = r.run_started_at
    ? r.run_ended_at
      ? formatDuration(new Date(r.run_ended_at).getTime() - new Date(r.run_started_at).getTime())
      : formatDuration(now - new Date(r.run_started_at).getTime())
    : `waiting ${relative(r.created_at, now).replace(' ago', '')}`;
  return h(
    'tr',
    { dataset: { runId: r.run_id } },
    h('td', {}, link),
    h(
      'td',
      {},
      badge(r.status),
      // A retry backing off or a limit without room (docs/flow-control.md); attempts after the first.
      r.status === 'pending' && r.waiting ? h('div', { class: 'sub waiting' }, `waiting for ${waitingText(r)}`) : null,
      r.attempts > 1 || r.attempt_log?.length ? h('div', { class: 'sub' }, `attempt ${Math.max(r.attempts ?? 1, (r.attempt_log?.length ?? 0) + 1)}`) : null,
    ),
    h(
      'td',
      {},
      r.cron_id
        ? [h('a', { href: `#/crons/${r.cron_id}` }, shortId(r.cron_id)), r.scheduled_for ? h('div', { class: 'sub' }, formatTime(r.scheduled_for)) : null]
        : 'none',
    ),
    h('td', { class: 'assistant' }, shortId(r.assistant_id)),
    h('td', {}, forHow, h('div', { class: 'sub' }, relative(r.created_at, now))),
    h('td', { class: 'error-text' }, jsonLine(errorText(r.error), 160)),
    session.everyUser ? h('td', { class: 'owner' }, r.user_id ?? '') : null,
    h('td', {}, cancellable(r) ? cancelButton(r, after) : null),
  );
}

const HEADERS = () => [
  'Run',
  'Status',
  'Cron',
  { label: 'Assistant', class: 'assistant' },
  'For',
  'Error',
  ...(session.everyUser ? [{ label: 'Owner', class: 'owner' }] : []),
  '',
];

/** @param {HTMLElement} view */
export async function renderRuns(view) {
  const running = h('section', { class: 'card', id: 'runs-running' });
  const pending = h('section', { class: 'card', id: 'runs-pending' });
  const failures = h('section', { class: 'card', id: 'runs-failed' });
  /**
   * @param {HTMLElement} box
   * @param {string} title
   * @param {string} id
   * @param {Run[]} runs
   * @param {string} empty
   * @param {number} now
   */
  const section = (box, title, id, runs, empty, now) =>
    put(
      box,
      h('h2', {}, `${title} (${runs.length}${runs.length === 100 ? '+' : ''})`),
      runs.length
        ? table(
            HEADERS(),
            runs.map((r) => runRow(r, now, load)),
            { id },
          )
        : h('p', { class: 'muted empty-line' }, empty),
    );
  const changed = redrawGate();
  async function load() {
    const since = new Date(Date.now() - 24 * 3600_000).toISOString();
    /** @type {[ListedRun[], ListedRun[], ListedRun[]]} */
    const [r, p, f] = await Promise.all([
      api('GET', '/runs?status=running&limit=100'),
      api('GET', '/runs?status=pending&limit=100'),
      api('GET', `/runs?status=${FAILED}&created_after=${encodeURIComponent(since)}&limit=50`),
    ]);
    if (!changed([r, p, f])) return;
    const now = Date.now();
    section(running, 'Running', 'runs-table', r, 'No run is going now.', now);
    section(pending, 'Pending', 'pending-table', p, 'No run is waiting.', now);
    section(failures, 'Failed in the last 24 hours', 'failed-table', f, 'No run failed in the last 24 hours.', now);
  }
  await load();
  put(
    view,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Runs'),
      actionButton('Refresh', () => load(), { class: 'secondary', id: 'runs-refresh' }),
    ),
    h(
      'p',
      { class: 'muted' },
      `Runs of every thread and cron${session.everyUser ? ", every user's" : ''}, stateless ones included, newest first; this page refreshes itself.`,
    ),
    running,
    pending,
    failures,
  );
  return poll(load);
}

/**
 * One run: status, timings, attempts, the full error and output, and Cancel while it has not ended.
 * @param {HTMLElement} view
 * @param {string} runId
 */
export async function renderRun(view, runId) {
  const box = h('div', { id: 'run-page' });
  const changed = redrawGate();
  async function load() {
    /** @type {RunDetail} */
    const r = await api('GET', `/runs/${encodeURIComponent(runId)}`);
    if (!changed(r)) return;
    const now = Date.now();
    /**
     * @param {string} label
     * @param {import('../dom.js').Child} value
     */
    const row = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
    /**
     * @param {string | null} a
     * @param {string | null} b
     */
    const ms = (a, b) => (a && b ? new Date(b).getTime() - new Date(a).getTime() : null);
    const attempts = Array.isArray(r.attempt_log) ? r.attempt_log : [];
    put(
      box,
      h('p', { class: 'crumbs' }, h('a', { href: '#/runs' }, '← Runs')),
      h('div', { class: 'title-row' }, h('h1', {}, 'Run ', h('code', {}, r.run_id)), cancellable(r) ? cancelButton(r, load) : null),
      h(
        'section',
        { class: 'card' },
        h(
          'dl',
          { class: 'facts', id: 'run-facts' },
          row('Status', [badge(r.status), r.status === 'pending' && r.waiting ? ` waiting for ${waitingText(r)}` : '']),
          row(
            'Cron',
            r.cron_id
              ? [h('a', { href: `#/crons/${r.cron_id}` }, h('code', {}, r.cron_id)), r.scheduled_for ? ` for ${formatTime(r.scheduled_for)}` : '']
              : 'none',
          ),
          row('Thread', h('code', {}, r.thread_id)),
          row('Assistant', h('code', {}, r.assistant_id)),
          session.everyUser && r.user_id ? row('Owner', r.user_id) : null,
          row('Created', `${formatTime(r.created_at)} (${relative(r.created_at, now)})`),
          row('Started', r.run_started_at ? formatTime(r.run_started_at) : 'not yet'),
          row('Ended', r.run_ended_at ? formatTime(r.run_ended_at) : 'not yet'),
          row('Queue wait', formatDuration(ms(r.created_at, r.run_started_at))),
          row(
            'Duration',
            r.run_started_at ? formatDuration(ms(r.run_started_at, r.run_ended_at ?? new Date(now).toISOString())) + (r.run_ended_at ? '' : ' so far') : '—',
          ),
          r.attempts !== undefined ? row('Attempts', String(r.attempts)) : null,
        ),
      ),
      r.error
        ? h(
            'section',
            { class: 'card' },
            h('h2', {}, 'Error'),
            h('pre', { class: 'json error-text', id: 'run-error' }, typeof r.error === 'string' ? r.error : JSON.stringify(r.error, null, 2)),
          )
        : null,
      attempts.length
        ? h(
            'section',
            { class: 'card' },
            h('h2', {}, 'Earlier attempts'),
            table(
              ['Attempt', 'Status', 'Started', 'Ended', 'Error'],
              attempts.map((a) =>
                h(
                  'tr',
                  {},
                  h('td', {}, String(a.attempt ?? '')),
                  h('td', {}, badge(/** @type {string | null | undefined} */ (a.status))),
                  h('td', {}, formatTime(/** @type {string | null | undefined} */ (a.started_at))),
                  h('td', {}, formatTime(/** @type {string | null | undefined} */ (a.ended_at))),
                  h('td', { class: 'error-text' }, errorText(a.error)),
                ),
              ),
              { id: 'attempts-table' },
            ),
          )
        : null,
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Output'),
        r.output === null || r.output === undefined
          ? h('p', { class: 'muted', id: 'run-output' }, r.status === 'success' ? 'none' : 'none yet (kept once the run ends with success)')
          : h('pre', { class: 'json', id: 'run-output' }, JSON.stringify(r.output, null, 2)),
        h('h2', {}, 'Input'),
        h('pre', { class: 'json', id: 'run-input' }, JSON.stringify(r.kwargs?.input ?? null, null, 2)),
      ),
    );
  }
  await load();
  put(view, box);
  return poll(load);
}
