// One cron: its name, what it does in words, its next fire times, its occurrence ledger as a
// timeline, and its actions (pause/resume, trigger now, edit the schedule, edit input, metadata
// and policies, backfill, retry, delete). It refreshes itself every few seconds while visible
// (the cron, its next fire times and the ledger rows loaded), leaving open forms alone.
import { api, cronPath, ownsCron, session } from '../api.js';
import {
  attemptText,
  badge,
  describeSchedule,
  fireTimeMarks,
  formatDuration,
  formatTime,
  h,
  jsonLine,
  occurrenceTimings,
  offsetOf,
  put,
  relative,
  shortId,
  statusClass,
  waitingText,
} from '../format.js';
import { actionButton, flash, messageOf, poll, redrawGate, table } from '../ui.js';
import { scheduleEditor } from './schedule-editor.js';

const LEDGER_PAGE = 50;
const RETRYABLE = new Set(['error', 'timeout', 'interrupted']);

export async function renderCron(view, cronId) {
  let cron = await api('GET', cronPath(cronId));
  const own = ownsCron(cron);
  const tz = cron.timezone ?? 'UTC';

  const header = h('div', { class: 'cron-head' });
  const actions = h('div', { class: 'actions', id: 'cron-actions' });
  const panel = h('div', { class: 'action-panel' });
  const details = h('section', { class: 'card' });
  const nextBox = h('section', { class: 'card', id: 'next-times' });
  const ledgerBox = h('section', { class: 'card', id: 'ledger' });

  async function reloadCron() {
    cron = await api('GET', cronPath(cronId));
    drawHeader();
    drawDetails();
    drawActions();
  }

  /** The periodic refresh: the actions (and a pause note being typed) are redrawn only when the state changed. */
  const cronChanged = redrawGate();
  const nextChanged = redrawGate();
  const ledgerChanged = redrawGate();
  async function refresh() {
    const before = cron.enabled;
    cron = await api('GET', cronPath(cronId));
    if (cronChanged(cron)) {
      drawHeader();
      drawDetails();
    }
    if (cron.enabled !== before) drawActions();
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
    const row = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
    const input = cron.payload?.input;
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
        cron.thread_id ? row('Overlap', `multitask_strategy ${cron.payload?.multitask_strategy ?? 'enqueue'}`) : row('Overlap', cron.overlap_policy),
        cron.payload?.webhook ? row('Webhook', h('code', {}, cron.payload.webhook)) : null,
        cron.jitter_seconds ? row('Jitter', `each occurrence starts up to ${cron.jitter_seconds} s after its time (a fixed offset per occurrence)`) : null,
        row('Retry policy', retryPolicyText(cron.payload?.retry_policy ?? cron.payload?.config?.retry_policy)),
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
        const run = await api('POST', cronPath(cronId, '/trigger'));
        flash(`Started run ${run.run_id.slice(0, 8)}`);
        await Promise.all([reloadCron(), drawLedger(true)]);
      },
      { id: 'trigger' },
    );
    const edit = h('button', { type: 'button', id: 'edit', class: 'secondary', onclick: () => openEditor() }, 'Edit schedule');
    const editFields = h('button', { type: 'button', id: 'edit-fields', class: 'secondary', onclick: () => openFieldsEditor() }, 'Edit input, metadata…');
    const backfill =
      session.features.backfill && own ? h('button', { type: 'button', id: 'backfill', class: 'secondary', onclick: () => openBackfill() }, 'Backfill…') : null;
    const del = h('button', { type: 'button', id: 'delete', class: 'danger', onclick: () => openDelete() }, 'Delete…');
    put(actions, noteInput, toggle, trigger, edit, editFields, backfill, del);
  }

  function openEditor() {
    const editor = scheduleEditor({ schedule: cron.schedule, timezone: cron.timezone ?? '' });
    const save = actionButton(
      'Save schedule',
      async () => {
        const { schedule, timezone } = editor.value();
        await api('PATCH', cronPath(cronId), { schedule, timezone: timezone || null });
        flash('Schedule saved');
        put(panel);
        await reloadCron();
        await drawNext();
      },
      { id: 'save-schedule' },
    );
    put(
      panel,
      h(
        'div',
        { class: 'card', id: 'edit-panel' },
        h('h2', {}, 'Edit the schedule'),
        editor.element,
        h('div', { class: 'actions' }, save, h('button', { type: 'button', class: 'secondary', onclick: () => put(panel) }, 'Cancel')),
      ),
    );
  }

  /** Name, input, metadata and policies: PATCH sends input and metadata whole (metadata replaces the old). */
  function openFieldsEditor() {
    const json = (v) => (v === undefined || v === null ? '' : JSON.stringify(v, null, 2));
    const { name: currentName, ...rest } = cron.metadata ?? {};
    const name = h('input', { id: 'edit-name', value: typeof currentName === 'string' ? currentName : '', maxlength: 100, placeholder: 'none' });
    const input = h('textarea', { id: 'edit-input', rows: 4, spellcheck: 'false' });
    input.value = json(cron.payload?.input);
    const metadata = h('textarea', { id: 'edit-metadata', rows: 4, spellcheck: 'false' });
    metadata.value = Object.keys(rest).length ? json(rest) : '';
    const select = (id, value, options) =>
      h(
        'select',
        { id },
        options.map((v) => h('option', { value: v, selected: v === value }, v)),
      );
    const missed = select('edit-missed', cron.missed_policy, ['latest', 'all', 'none']);
    const overlap = cron.thread_id ? null : select('edit-overlap', cron.overlap_policy, ['allow', 'skip', 'buffer_one']);
    const error = h('p', { class: 'error', id: 'edit-fields-error' });
    const parse = (label, area) => {
      const text = area.value.trim();
      if (!text) return null;
      const v = JSON.parse(text);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${label} must be a JSON object`);
      return v;
    };
    const save = actionButton(
      'Save',
      async () => {
        error.textContent = '';
        let body;
        try {
          const meta = parse('Metadata', metadata) ?? {};
          if (name.value.trim()) meta.name = name.value.trim();
          body = { input: parse('Input', input), metadata: meta, missed_policy: missed.value };
          if (overlap) body.overlap_policy = overlap.value;
        } catch (err) {
          error.textContent = err.message;
          return;
        }
        try {
          await api('PATCH', cronPath(cronId), body);
        } catch (err) {
          error.textContent = messageOf(err);
          return;
        }
        flash('Saved');
        put(panel);
        await reloadCron();
      },
      { id: 'save-fields' },
    );
    const field = (label, el) => h('label', { class: 'field wide' }, h('span', {}, label), el);
    put(
      panel,
      h(
        'div',
        { class: 'card form', id: 'fields-panel' },
        h('h2', {}, 'Edit name, input, metadata and policies'),
        field('Name (unique among your crons, up to 100 characters)', name),
        field('Input of every run (JSON object; empty: none)', input),
        field('Metadata (JSON object; replaces the current one)', metadata),
        h('label', { class: 'field' }, h('span', {}, 'Missed occurrences'), missed),
        overlap ? h('label', { class: 'field' }, h('span', {}, 'When the last run is still going'), overlap) : null,
        h('div', { class: 'actions' }, save, h('button', { type: 'button', class: 'secondary', onclick: () => put(panel) }, 'Cancel')),
        error,
      ),
    );
  }

  function openBackfill() {
    const from = h('input', { type: 'datetime-local', id: 'backfill-from', step: 1, required: true });
    const to = h('input', { type: 'datetime-local', id: 'backfill-to', step: 1, required: true });
    const utc = (v) => `${v.length === 16 ? `${v}:00` : v}Z`;
    // The overlap rule: the cron's own (a stateless cron's skip / buffer_one fire only what it allows now), or every occurrence.
    const overlap = cron.thread_id
      ? null
      : h(
          'select',
          { id: 'backfill-overlap' },
          h('option', { value: 'cron' }, `the cron's rule (${cron.overlap_policy})`),
          h('option', { value: 'allow' }, 'fire every occurrence'),
        );
    const count = h('p', { class: 'muted', id: 'backfill-count' }, 'Choose a range to see how many occurrences it holds.');
    /** The fire button names the count only while it is the current range's. */
    const label = (within) => {
      go.textContent = within === null || within >= 1000 ? 'Fire these occurrences' : `Fire ${within} occurrence${within === 1 ? '' : 's'}`;
    };
    /** How many occurrences the range holds, from the server's preview (at most 1,000 counted). */
    async function countRange() {
      label(null);
      if (!from.value || !to.value) return;
      const start = new Date(utc(from.value));
      const end = new Date(utc(to.value));
      if (!(end >= start)) {
        count.textContent = 'The end is before the start.';
        return;
      }
      const preview = await api('POST', '/runs/crons/preview', {
        schedule: cron.schedule,
        timezone: cron.timezone,
        from: new Date(start.getTime() - 1).toISOString(),
        count: 1000,
      });
      const limit = cron.end_time && new Date(cron.end_time) < end ? new Date(cron.end_time) : end;
      const within = (preview.next ?? []).filter((t) => new Date(t.utc) <= limit).length;
      count.textContent =
        within >= 1000
          ? 'This range holds 1,000 occurrences or more.'
          : `This range holds ${within} occurrence${within === 1 ? '' : 's'}; each already in the ledger is not fired again.`;
      label(within);
    }
    for (const input of [from, to]) input.addEventListener('change', () => void countRange().catch((err) => (count.textContent = messageOf(err))));
    const go = actionButton(
      'Fire these occurrences',
      async () => {
        if (!from.value || !to.value) throw new Error('give both ends of the range');
        const body = { from: utc(from.value), to: utc(to.value) };
        if (overlap && overlap.value !== 'cron') body.overlap = overlap.value;
        const answer = await api('POST', `/runs/crons/${cronId}/backfill`, body);
        const held = [
          answer.skipped_existing ? `${answer.skipped_existing} already in the ledger` : null,
          answer.skipped_overlap ? `${answer.skipped_overlap} held back by the overlap rule` : null,
        ].filter(Boolean);
        flash(
          `Backfill: fired ${answer.fired ?? 0} of ${answer.occurrences ?? 0} occurrence${answer.occurrences === 1 ? '' : 's'}${held.length ? ` (${held.join(', ')})` : ''}`,
        );
        put(panel);
        await drawLedger(true);
      },
      { id: 'backfill-go' },
    );
    put(
      panel,
      h(
        'div',
        { class: 'card', id: 'backfill-panel' },
        h('h2', {}, 'Backfill a past range'),
        h('p', { class: 'muted' }, 'Every occurrence of the schedule in the range (UTC) fires once; one already in the ledger is not fired again.'),
        h('label', { class: 'field' }, h('span', {}, 'From (UTC)'), from),
        h('label', { class: 'field' }, h('span', {}, 'To (UTC)'), to),
        overlap ? h('label', { class: 'field' }, h('span', {}, 'Overlap'), overlap) : null,
        count,
        h('div', { class: 'actions' }, go, h('button', { type: 'button', class: 'secondary', onclick: () => put(panel) }, 'Cancel')),
      ),
    );
  }

  function openDelete() {
    const confirm = actionButton(
      'Delete this cron',
      async () => {
        await api('DELETE', cronPath(cronId));
        flash('Cron deleted');
        location.hash = '#/crons';
      },
      { id: 'confirm-delete', class: 'danger' },
    );
    put(
      panel,
      h(
        'div',
        { class: 'card confirm', id: 'delete-panel' },
        h('p', {}, 'Delete this cron and its occurrence ledger? It fires nothing more; runs already started finish. This cannot be undone.'),
        h('div', { class: 'actions' }, confirm, h('button', { type: 'button', class: 'secondary', id: 'cancel-delete', onclick: () => put(panel) }, 'Cancel')),
      ),
    );
  }

  /** refresh: redrawn only when the times changed (see redrawGate). */
  async function drawNext(mode) {
    if (!own) {
      put(
        nextBox,
        h('h2', {}, 'Next fire times'),
        h('p', { class: 'muted' }, `Shown to the owner's key (${cron.user_id}): the API answers a cron's fire times and ledger to its owner.`),
      );
      return;
    }
    const answer = await api('GET', `/runs/crons/${cronId}/next?count=10`);
    if (!nextChanged([answer, cron.enabled, cron.finished_at]) && mode === 'refresh') return;
    const times = answer.next ?? [];
    // With jitter each occurrence starts at its own offset after its fire time.
    const jittered = times.some((t) => typeof t.planned_for === 'string' && t.planned_for !== t.utc);
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
        jittered ? h('td', { class: 'planned' }, t.planned_for ? `+${formatDuration(new Date(t.planned_for) - new Date(t.utc))}` : '—') : null,
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

  let ledgerRows = [];
  /** reset: the first page again; false: the next older page; 'refresh': the rows loaded so far, afresh. */
  async function drawLedger(reset = false) {
    if (!own) {
      put(ledgerBox, h('h2', {}, 'Occurrences'), h('p', { class: 'muted' }, `Shown to the owner's key (${cron.user_id}).`));
      return;
    }
    let page;
    if (reset === 'refresh') {
      const limit = Math.min(1000, Math.max(LEDGER_PAGE, ledgerRows.length));
      page = await api('GET', `/runs/crons/${cronId}/occurrences?limit=${limit}&offset=0`);
      if (!ledgerChanged(page)) return;
      ledgerRows = page;
      page = page.length >= limit ? new Array(LEDGER_PAGE) : [];
    } else {
      if (reset) ledgerRows = [];
      page = await api('GET', `/runs/crons/${cronId}/occurrences?limit=${LEDGER_PAGE}&offset=${ledgerRows.length}`);
      ledgerRows = ledgerRows.concat(page);
      ledgerChanged(ledgerRows);
    }
    const more = page.length === LEDGER_PAGE ? actionButton('Load older', () => drawLedger(false), { class: 'secondary', id: 'ledger-more' }) : null;
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

  async function retry(o) {
    const run = await api('POST', `/runs/crons/${cronId}/occurrences/${encodeURIComponent(o.scheduled_for)}/retry`);
    flash(
      `Retrying the occurrence of ${formatTime(o.scheduled_for, tz)}: run ${String(run?.run_id ?? '').slice(0, 8)}${run?.retries ? `, attempt ${run.retries + 1}` : ''}`,
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

/** A retry policy in words (the defaults for fields left out), or how runs are retried without one. */
function retryPolicyText(p) {
  if (!p || typeof p !== 'object') return "the assistant's or graph's, else up to 3 attempts for retryable errors";
  const parts = [`up to ${p.max_attempts ?? 3} attempts`, `backoff from ${p.initial_interval_seconds ?? 1} s ×${p.backoff_coefficient ?? 2}`];
  if (p.maximum_interval_seconds !== undefined) parts.push(`at most ${p.maximum_interval_seconds} s apart`);
  if (p.non_retryable_errors?.length) parts.push(`never for ${p.non_retryable_errors.join(', ')}`);
  return parts.join(', ');
}

/** The ledger, oldest to newest, as one coloured block per occurrence. */
function timelineStrip(rows, tz) {
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

function ledgerTable(rows, tz, retry) {
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
          ? h('div', { class: 'sub planned' }, `planned start +${formatDuration(new Date(o.planned_for) - new Date(o.scheduled_for))}`)
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
        (o.attempt_log ?? []).map((a, i) => h('div', { class: 'error-text attempt', title: JSON.stringify(a) }, jsonLine(attemptText(a, i), 160))),
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
