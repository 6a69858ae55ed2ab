// @ts-check
// The cron page's occurrence ledger: the timeline strip and the table (with retry buttons).
import { session } from '../api.js';
import { badge, h, shortId, statusClass } from '../dom.js';
import { attemptText, between, formatDuration, formatTime, jsonLine, occurrenceTimings, relative, waitingText } from '../format.js';
import { actionButton, table } from '../ui.js';

/** @typedef {import('../../types.ts').Occurrence} Occurrence */

const RETRYABLE = new Set(['error', 'timeout', 'interrupted']);

/**
 * The ledger, oldest to newest, as one coloured block per occurrence.
 * @param {Occurrence[]} rows newest first, as the API answers them
 * @param {string} tz
 */
export function timelineStrip(rows, tz) {
  const blocks = [...rows]
    .reverse()
    .map((o) =>
      h('span', { class: `tick ${statusClass(o.status)}`, title: `${formatTime(o.scheduled_for, tz)}: ${o.status}${o.reason ? ` (${o.reason})` : ''}` }),
    );
  return h(
    'div',
    { class: 'timeline', id: 'timeline', 'aria-label': 'Occurrences, oldest to newest' },
    blocks,
    h(
      'div',
      { class: 'legend' },
      ['success', 'error', 'skipped', 'running', 'enqueued', 'interrupted'].map((s) => h('span', {}, h('span', { class: `tick ${statusClass(s)}` }), s)),
    ),
  );
}

/**
 * @param {Occurrence[]} rows
 * @param {string} tz
 * @param {((o: Occurrence) => Promise<void>) | null} retry offered on a failed row when given
 */
export function ledgerTable(rows, tz, retry) {
  const outputField = session.features.output;
  const body = rows.map((o) => {
    const t = occurrenceTimings(o);
    const output = outputField ? o[outputField] : null;
    // The ledger's own error, or the excerpt it kept of the run's error.
    const error = o.error ?? o.error_excerpt ?? null;
    const waiting = waitingText(o, tz);
    const webhook = o.webhook_status
      ? [
          badge(o.webhook_status),
          o.webhook_attempts > 1 ? ` ×${o.webhook_attempts}` : '',
          o.webhook_error ? h('div', { class: 'error-text' }, jsonLine(o.webhook_error, 120)) : null,
        ]
      : '—';
    return h(
      'tr',
      { dataset: { status: o.status }, class: `occ ${statusClass(o.status)}` },
      h(
        'td',
        { class: 'when' },
        h('span', { class: `dot ${statusClass(o.status)}` }),
        formatTime(o.scheduled_for, tz),
        h('div', { class: 'sub' }, relative(o.scheduled_for)),
        o.planned_for && o.planned_for !== o.scheduled_for
          ? h('div', { class: 'sub planned' }, `planned start +${formatDuration(between(o.scheduled_for, o.planned_for))}`)
          : null,
      ),
      h('td', {}, o.trigger),
      h(
        'td',
        {},
        badge(o.status),
        o.reason ? h('div', { class: 'sub reason' }, `reason: ${o.reason}`) : null,
        o.skipped_count ? h('div', { class: 'sub' }, `${o.skipped_count} missed before it`) : null,
        o.retries ? h('div', { class: 'sub' }, `retried ${o.retries}×`) : null,
        waiting ? h('div', { class: 'sub waiting' }, `waiting for ${waiting}`) : null,
      ),
      h(
        'td',
        { class: 'num lag' },
        t.age === null ? formatDuration(t.lag) : '—',
        t.age !== null ? h('div', { class: 'sub age' }, `${o.trigger}, ${formatDuration(t.age)} after`) : null,
      ),
      h('td', { class: 'num' }, formatDuration(t.wait)),
      h('td', { class: 'num' }, formatDuration(t.duration)),
      h(
        'td',
        { class: 'attempts' },
        o.attempts === undefined || o.status === 'skipped' ? '—' : String(o.attempts),
        (o.attempt_log ?? []).map((/** @type {Parameters<typeof attemptText>[0]} */ a, i) =>
          h('div', { class: 'error-text attempt', title: JSON.stringify(a) }, jsonLine(attemptText(a, i), 160)),
        ),
      ),
      h(
        'td',
        { class: 'outcome' },
        error ? h('div', { class: 'error-text', title: error }, jsonLine(error, 200)) : null,
        output !== null && output !== undefined
          ? h(
              'code',
              { class: 'json output', title: typeof output === 'string' ? output : JSON.stringify(output) },
              jsonLine(output, 200),
              o.output_truncated ? ' (cut)' : '',
            )
          : null,
      ),
      h('td', {}, webhook),
      h('td', {}, o.run_id ? shortId(o.run_id) : '—'),
      retry
        ? h('td', {}, RETRYABLE.has(o.status) ? actionButton('Retry', () => retry(o), { class: 'secondary small', dataset: { retry: o.scheduled_for } }) : null)
        : null,
    );
  });
  const headers = [
    'Scheduled for',
    'Trigger',
    'Status',
    { label: 'Fire lag', class: 'num' },
    { label: 'Queue wait', class: 'num' },
    { label: 'Duration', class: 'num' },
    'Attempts',
    outputField ? 'Output / error' : 'Error',
    'Webhook',
    'Run',
    ...(retry ? [''] : []),
  ];
  return table(headers, body, { id: 'ledger-table' });
}
