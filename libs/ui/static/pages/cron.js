// @ts-check
// One cron: its name, what it does in words, its next fire times, its occurrence ledger as a
// timeline, and its actions (pause/resume, trigger now, edit the schedule, edit input, metadata
// and policies, backfill, retry, delete). It refreshes itself every few seconds while visible
// (the cron, its next fire times and the ledger rows loaded), leaving open forms alone.
import { api, cronPath, ownsCron, session } from '../api.js';
import { badge, h, put } from '../dom.js';
import { between, describeSchedule, fireTimeMarks, formatDuration, formatTime, jsonLine, offsetOf, relative } from '../format.js';
import { actionButton, flash, messageOf, poll, redrawGate, table } from '../ui.js';
import { openBackfill, openDelete, openEditor, openFieldsEditor } from './cron-forms.js';
import { ledgerTable, timelineStrip } from './cron-ledger.js';

/** @typedef {import('../../types.ts').Cron} Cron */
/** @typedef {import('../../types.ts').CronUpdate} CronUpdate */
/** @typedef {import('../../types.ts').NextRuns} NextRuns */
/** @typedef {import('../../types.ts').Occurrence} Occurrence */
/** @typedef {import('../../types.ts').CronRun} CronRun */
/** @typedef {import('../../types.ts').RetryRun} RetryRun */
/** @typedef {import('../../types.ts').RetryPolicy} RetryPolicy */

const LEDGER_PAGE = 50;

/**
 * @param {HTMLElement} view
 * @param {string} cronId
 */
export async function renderCron(view, cronId) {
  /** @type {Cron} */
  let cron = await api('GET', cronPath(cronId));
  const own = ownsCron(cron);
  const tz = cron.timezone ?? 'UTC';

  const header = h('div', { class: 'cron-head' });
  const actions = h('div', { class: 'actions', id: 'cron-actions' });
  const panel = h('div', { class: 'action-panel' });
  const details = h('section', { class: 'card' });
  const nextBox = h('section', { class: 'card', id: 'next-times' });
  const ledgerBox = h('section', { class: 'card', id: 'ledger' });

  /** What the forms (cron-forms.js) use of this page: the cron as it is when they read it, and the redraws. @type {import('./cron-forms.js').CronPage} */
  const forms = {
    get cron() {
      return cron;
    },
    cronId,
    panel,
    reloadCron,
    drawNext,
    drawLedger,
  };

  /** The latest request for the cron: an older answer is dropped (a refresh asked before a pause would show it active again). */
  let cronRequest = 0;
  /** The cron as the API answers it, or null when a newer request was made meanwhile. */
  async function fetchCron() {
    const mine = ++cronRequest;
    /** @type {Cron} */
    const answer = await api('GET', cronPath(cronId));
    return mine === cronRequest ? answer : null;
  }

  async function reloadCron() {
    const answer = await fetchCron();
    if (!answer) return;
    cron = answer;
    drawHeader();
    drawDetails();
    drawActions();
  }

  /** The periodic refresh: the actions (and a pause note being typed) are redrawn only when the state changed. */
  const cronChanged = redrawGate();
  const nextChanged = redrawGate();
  const ledgerChanged = redrawGate();
  async function refresh() {
    const answer = await fetchCron();
    if (answer) {
      const before = cron.enabled;
      cron = answer;
      if (cronChanged(cron)) {
        drawHeader();
        drawDetails();
      }
      if (cron.enabled !== before) drawActions();
    }
    await Promise.all([drawNext('refresh'), drawLedger('refresh')]);
  }

  function drawHeader() {
    const description = describeSchedule(cron.schedule);
    const note = session.features.pauseNote ? cron[session.features.pauseNote] : null;
    const name = typeof cron.metadata?.name === 'string' && cron.metadata.name.trim() ? cron.metadata.name : null;
    put(
      header,
      h('p', { class: 'crumbs' }, h('a', { href: '#/crons' }, '← Crons')),
      name ? h('h1', { id: 'cron-name' }, name) : null,
      h(name ? 'p' : 'h1', { id: 'cron-description', class: name ? 'describe' : '' }, description ?? cron.schedule),
      h(
        'p',
        { class: 'sub' },
        h('code', { id: 'cron-schedule' }, cron.schedule),
        ` in ${tz} · `,
        h(
          'span',
          { id: 'cron-state' },
          cron.enabled ? badge('success', 'active') : cron.finished_at ? badge('skipped', 'finished') : badge('skipped', 'paused'),
        ),
        note ? h('span', { class: 'note' }, ` “${note}”`) : null,
      ),
    );
  }

  function drawDetails() {
    /** @type {(label: string, value: import('../dom.js').Child) => HTMLElement[]} */
    const row = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
    const input = cron.payload.input;
    const config = /** @type {{ retry_policy?: RetryPolicy } | null | undefined} */ (cron.payload.config);
    put(
      details,
      h('h2', {}, 'Details'),
      h(
        'dl',
        { class: 'facts' },
        row('Cron id', h('code', {}, cron.cron_id)),
        row('Assistant', h('code', {}, cron.assistant_id)),
        row(
          'Kind',
          cron.thread_id
            ? ['thread-bound: ', h('code', {}, cron.thread_id)]
            : `stateless (fresh thread per run, ${cron.on_run_completed === 'keep' ? 'kept' : 'deleted'} afterwards)`,
        ),
        session.everyUser ? row('Owner', cron.user_id) : null,
        row(
          'Next fire',
          cron.next_run_date
            ? `${formatTime(cron.next_run_date, tz)} (${relative(cron.next_run_date)})${cron.enabled ? '' : ', if resumed'}`
            : cron.finished_at
              ? 'finished'
              : '—',
        ),
        row(
          'Last run',
          cron.last_run_status
            ? [badge(cron.last_run_status), ' ', cron.last_run_at ? `${formatTime(cron.last_run_at, tz)} (${relative(cron.last_run_at)})` : '']
            : 'never ran',
        ),
        cron.last_run_error ? row('Last error', h('span', { class: 'error-text' }, cron.last_run_error)) : null,
        row('End time', cron.end_time ? formatTime(cron.end_time, tz) : 'none'),
        row('Missed occurrences', cron.missed_policy),
        cron.thread_id ? row('Overlap', `multitask_strategy ${String(cron.payload.multitask_strategy ?? 'enqueue')}`) : row('Overlap', cron.overlap_policy),
        typeof cron.payload.webhook === 'string' && cron.payload.webhook ? row('Webhook', h('code', {}, cron.payload.webhook)) : null,
        cron.jitter_seconds ? row('Jitter', `each occurrence starts up to ${cron.jitter_seconds} s after its time (a fixed offset per occurrence)`) : null,
        row('Retry policy', retryPolicyText(/** @type {RetryPolicy | null | undefined} */ (cron.payload.retry_policy) ?? config?.retry_policy)),
        row('Input', input === undefined || input === null ? 'none' : h('code', { class: 'json' }, jsonLine(input, 400))),
        row('Metadata', Object.keys(cron.metadata ?? {}).length ? h('code', { class: 'json' }, jsonLine(cron.metadata, 400)) : 'none'),
        row('Created', formatTime(cron.created_at, tz)),
        row('Updated', formatTime(cron.updated_at, tz)),
      ),
    );
  }

  function drawActions() {
    const noteField = session.features.pauseNote;
    const noteInput = noteField && cron.enabled ? h('input', { id: 'pause-note', placeholder: 'why (optional)', maxlength: 280 }) : null;
    const toggle = actionButton(
      cron.enabled ? 'Pause' : 'Resume',
      async () => {
        /** @type {CronUpdate} */
        const body = { enabled: !cron.enabled };
        if (noteField) body[noteField] = cron.enabled ? noteInput?.value.trim() || null : null;
        await api('PATCH', cronPath(cronId), body);
        flash(cron.enabled ? 'Paused: it fires nothing until resumed' : 'Resumed');
        await reloadCron();
        await drawNext();
      },
      { id: cron.enabled ? 'pause' : 'resume' },
    );
    const trigger = actionButton(
      'Trigger now',
      async () => {
        /** @type {CronRun} */
        const run = await api('POST', cronPath(cronId, '/trigger'));
        flash(`Started run ${run.run_id.slice(0, 8)}`);
        await Promise.all([reloadCron(), drawLedger(true)]);
      },
      { id: 'trigger' },
    );
    const edit = h('button', { type: 'button', id: 'edit', class: 'secondary', onclick: () => openEditor(forms) }, 'Edit schedule');
    const editFields = h('button', { type: 'button', id: 'edit-fields', class: 'secondary', onclick: () => openFieldsEditor(forms) }, 'Edit input, metadata…');
    const backfill =
      session.features.backfill && own
        ? h('button', { type: 'button', id: 'backfill', class: 'secondary', onclick: () => openBackfill(forms) }, 'Backfill…')
        : null;
    const del = h('button', { type: 'button', id: 'delete', class: 'danger', onclick: () => openDelete(forms) }, 'Delete…');
    put(actions, noteInput, toggle, trigger, edit, editFields, backfill, del);
  }

  /** The latest request for the fire times: an older answer is dropped (times of the schedule before a save). */
  let nextRequest = 0;
  /**
   * refresh: redrawn only when the times changed (see redrawGate).
   * @param {'refresh'} [mode]
   */
  async function drawNext(mode) {
    if (!own) {
      put(
        nextBox,
        h('h2', {}, 'Next fire times'),
        h('p', { class: 'muted' }, `Shown to the owner's key (${cron.user_id}): the API answers a cron's fire times and ledger to its owner.`),
      );
      return;
    }
    const mine = ++nextRequest;
    /** @type {NextRuns} */
    const answer = await api('GET', `/runs/crons/${cronId}/next?count=10`);
    if (mine !== nextRequest) return;
    if (!nextChanged([answer, cron.enabled, cron.finished_at]) && mode === 'refresh') return;
    const times = answer.next ?? [];
    // With jitter each occurrence starts at its own offset after its fire time.
    const jittered = times.some((t) => typeof t.planned_for === 'string' && t.planned_for !== t.utc);
    /** @type {string | null} */
    let previousOffset = null;
    const rows = times.map((t, i) => {
      const offset = offsetOf(t.local);
      const shifted = i > 0 && offset !== previousOffset;
      previousOffset = offset;
      const extra = fireTimeMarks(t);
      const marks = extra.length ? extra : shifted ? [`UTC offset now ${offset} (DST change)`] : [];
      return h(
        'tr',
        {},
        h('td', {}, formatTime(t.utc, answer.timezone ?? tz)),
        h('td', { class: 'muted' }, relative(t.utc)),
        h('td', { class: 'utc' }, formatTime(t.utc, 'UTC')),
        jittered ? h('td', { class: 'planned' }, t.planned_for ? `+${formatDuration(between(t.utc, t.planned_for))}` : '—') : null,
        h('td', {}, marks.length ? h('span', { class: 'badge st-warn' }, marks.join('; ')) : ''),
      );
    });
    const paused = !cron.enabled && !cron.finished_at;
    put(
      nextBox,
      h('h2', {}, 'Next 10 fire times'),
      paused
        ? h(
            'p',
            { class: 'muted', id: 'paused-next' },
            rows.length ? 'Paused: it fires nothing until resumed. If resumed now, it would fire at:' : 'Paused: it fires nothing until resumed.',
          )
        : null,
      rows.length
        ? table([`Local (${answer.timezone ?? tz})`, 'When', { label: 'UTC', class: 'utc' }, ...(jittered ? ['Starts (jitter)'] : []), ''], rows, {
            id: 'next-table',
            class: paused ? 'would-fire' : '',
          })
        : h('p', { class: 'muted', id: 'no-next' }, cron.finished_at ? 'Finished: end_time has passed.' : paused ? '' : 'No more fire times (end_time).'),
    );
  }

  /** @type {Occurrence[]} */
  let ledgerRows = [];
  /** The latest ledger request: an answer to an older one is dropped (it would draw over newer rows). */
  let ledgerRequest = 0;
  /** Ledger requests in flight; the section is aria-busy meanwhile. */
  let ledgerLoads = 0;
  /** Whether a "Load older" is in flight: a periodic refresh then waits for the next tick, not to drop it. */
  let loadingOlder = false;
  /**
   * reset: the first page again; false: the next older page; 'refresh': the rows loaded so far, afresh.
   * @param {boolean | 'refresh'} [reset]
   */
  async function drawLedger(reset = false) {
    if (!own) {
      put(ledgerBox, h('h2', {}, 'Occurrences'), h('p', { class: 'muted' }, `Shown to the owner's key (${cron.user_id}).`));
      return;
    }
    if (reset === 'refresh' && loadingOlder) return;
    const mine = ++ledgerRequest;
    ledgerLoads++;
    ledgerBox.setAttribute('aria-busy', 'true');
    try {
      await loadLedger(reset, mine);
    } finally {
      if (!reset) loadingOlder = false;
      if (--ledgerLoads === 0) ledgerBox.setAttribute('aria-busy', 'false');
    }
  }
  /**
   * @param {boolean | 'refresh'} reset
   * @param {number} mine this request's number
   */
  async function loadLedger(reset, mine) {
    /** Whether older rows may follow: the last request came back full. */
    let older;
    if (reset === 'refresh') {
      const limit = Math.min(1000, Math.max(LEDGER_PAGE, ledgerRows.length));
      /** @type {Occurrence[]} */
      const rows = await api('GET', `/runs/crons/${cronId}/occurrences?limit=${limit}&offset=0`);
      if (mine !== ledgerRequest || !ledgerChanged(rows)) return;
      ledgerRows = rows;
      older = rows.length >= limit;
    } else {
      if (!reset) loadingOlder = true;
      // The rows this page goes after, as they are now: none for the first page.
      const before = reset ? [] : ledgerRows;
      /** @type {Occurrence[]} */
      const page = await api('GET', `/runs/crons/${cronId}/occurrences?limit=${LEDGER_PAGE}&offset=${before.length}`);
      if (mine !== ledgerRequest) return;
      ledgerRows = before.concat(page);
      ledgerChanged(ledgerRows);
      older = page.length === LEDGER_PAGE;
    }
    const more = older ? actionButton('Load older', () => drawLedger(false), { class: 'secondary', id: 'ledger-more' }) : null;
    put(
      ledgerBox,
      h(
        'div',
        { class: 'title-row' },
        h('h2', {}, 'Occurrences'),
        actionButton('Refresh', () => Promise.all([reloadCron(), drawLedger(true)]), { class: 'secondary', id: 'ledger-refresh' }),
      ),
      ledgerRows.length ? timelineStrip(ledgerRows, tz) : null,
      ledgerRows.length
        ? ledgerTable(ledgerRows, tz, own && session.features.retry ? retry : null)
        : h('p', { class: 'muted', id: 'no-occurrences' }, 'No occurrence yet.'),
      more,
    );
  }

  /** @param {Occurrence} o */
  async function retry(o) {
    /** @type {RetryRun} */
    const run = await api('POST', `/runs/crons/${cronId}/occurrences/${encodeURIComponent(o.scheduled_for)}/retry`);
    flash(
      `Retrying the occurrence of ${formatTime(o.scheduled_for, tz)}: run ` +
        `${String(run?.run_id ?? '').slice(0, 8)}${run?.retries ? `, attempt ${run.retries + 1}` : ''}`,
    );
    await drawLedger(true);
  }

  drawHeader();
  drawActions();
  drawDetails();
  put(view, header, actions, panel, h('div', { class: 'columns' }, nextBox, details), ledgerBox);
  await Promise.all([drawNext(), drawLedger(true)]).catch((err) => flash(messageOf(err), 'error'));
  return poll(refresh);
}

/**
 * A retry policy in words (the defaults for fields left out), or how runs are retried without one.
 * @param {RetryPolicy | null | undefined} p
 */
function retryPolicyText(p) {
  if (!p || typeof p !== 'object') return "the assistant's or graph's, else up to 3 attempts for retryable errors";
  const parts = [`up to ${p.max_attempts ?? 3} attempts`, `backoff from ${p.initial_interval_seconds ?? 1} s ×${p.backoff_coefficient ?? 2}`];
  if (p.maximum_interval_seconds !== undefined) parts.push(`at most ${p.maximum_interval_seconds} s apart`);
  if (p.non_retryable_errors?.length) parts.push(`never for ${p.non_retryable_errors.join(', ')}`);
  return parts.join(', ');
}
