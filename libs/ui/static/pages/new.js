// @ts-check
// Creating a cron: its assistant, schedule (with the live description and preview), input and
// options, sent as POST /runs/crons (or /threads/{id}/runs/crons for a thread-bound cron).
import { api } from '../api.js';
import { h, put } from '../dom.js';
import { actionButton, flash } from '../ui.js';
import { scheduleEditor } from './schedule-editor.js';

/** @typedef {import('../../types.ts').Assistant} Assistant */
/** @typedef {import('../../types.ts').Cron} Cron */
/** @typedef {import('../../types.ts').CronCreate} CronCreate */

/**
 * @param {string} id
 * @param {string} label
 * @param {string} placeholder
 */
function jsonField(id, label, placeholder) {
  const area = h('textarea', { id, name: id, rows: 3, placeholder, spellcheck: 'false' });
  return {
    element: h('label', { class: 'field wide' }, h('span', {}, label), area),
    value() {
      const text = area.value.trim();
      if (!text) return undefined;
      let v;
      try {
        v = JSON.parse(text);
      } catch (err) {
        throw new Error(`${label}: not JSON (${/** @type {Error} */ (err).message})`, { cause: err });
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${label}: must be a JSON object`);
      return v;
    },
  };
}

/** @param {HTMLElement} view */
export async function renderNewCron(view) {
  /** @type {Assistant[]} */
  const assistants = await api('POST', '/assistants/search', { limit: 1000 }).catch(() => []);
  const assistant = h(
    'select',
    { id: 'assistant', name: 'assistant' },
    assistants.map((a) => h('option', { value: a.assistant_id }, `${a.name || a.graph_id} (${a.graph_id})`)),
  );
  const editor = scheduleEditor({ schedule: '0 9 * * 1-5', timezone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? '' });
  const input = jsonField('input', 'Input (JSON)', '{"topic": "news"}');
  const metadata = jsonField('metadata', 'Metadata (JSON)', '{"team": "ops"}');
  const thread = h('input', { id: 'thread', name: 'thread', placeholder: 'empty: a fresh thread per run', autocomplete: 'off' });
  const paused = h('input', { type: 'checkbox', id: 'paused', name: 'paused' });
  const keep = h(
    'select',
    { id: 'on-run-completed' },
    h('option', { value: 'delete' }, 'delete the thread'),
    h('option', { value: 'keep' }, 'keep the thread'),
  );
  const overlap = h(
    'select',
    { id: 'overlap' },
    ['allow', 'skip', 'buffer_one'].map((v) => h('option', { value: v }, v)),
  );
  const missed = h(
    'select',
    { id: 'missed' },
    ['latest', 'all', 'none'].map((v) => h('option', { value: v }, v)),
  );
  // Empty: the assistant's or graph's policy (else up to 3 attempts for retryable errors).
  const attempts = h('input', {
    type: 'number',
    id: 'retry-max-attempts',
    name: 'retry-max-attempts',
    min: 1,
    max: 100,
    step: 1,
    placeholder: 'default (3)',
    inputmode: 'numeric',
  });
  const jitter = h('input', { type: 'number', id: 'jitter', name: 'jitter', min: 0, max: 3600, step: 1, placeholder: '0', inputmode: 'numeric' });
  const error = h('p', { class: 'error', id: 'create-error' });
  // Name, webhook, end time and pause note (issue 19): what the create API takes besides the above.
  const name = h('input', { id: 'name', name: 'name', maxlength: 100, placeholder: 'e.g. morning news (unique among your crons)', autocomplete: 'off' });
  const webhook = h('input', {
    id: 'webhook',
    name: 'webhook',
    type: 'url',
    maxlength: 2048,
    placeholder: 'https://example.com/hook (POSTed each run when it ends)',
    autocomplete: 'off',
  });
  const endTime = h('input', { id: 'end-time', name: 'end-time', type: 'datetime-local', step: 1 });
  const pauseNote = h('input', {
    id: 'create-pause-note',
    name: 'pause-note',
    maxlength: 280,
    placeholder: 'why it is paused (with "Create paused")',
    disabled: true,
  });
  paused.addEventListener('change', () => {
    pauseNote.disabled = !paused.checked;
  });

  const create = actionButton(
    'Create cron',
    async () => {
      error.textContent = '';
      const { schedule, timezone } = editor.value();
      const threadId = thread.value.trim();
      /** @type {CronCreate} */
      const body = {
        assistant_id: assistant.value,
        schedule,
        timezone: timezone || null,
        enabled: !paused.checked,
        missed_policy: /** @type {CronCreate['missed_policy']} */ (missed.value),
      };
      try {
        const i = input.value();
        const m = metadata.value();
        if (i !== undefined) body.input = i;
        if (m !== undefined) body.metadata = m;
        if (name.value.trim()) body.metadata = { ...(body.metadata ?? {}), name: name.value.trim() };
        if (webhook.value.trim()) body.webhook = webhook.value.trim();
        // datetime-local is read in UTC, as the backfill form reads its range.
        if (endTime.value) body.end_time = `${endTime.value.length === 16 ? `${endTime.value}:00` : endTime.value}Z`;
        if (paused.checked && pauseNote.value.trim()) body.paused_reason = pauseNote.value.trim();
      } catch (err) {
        error.textContent = /** @type {Error} */ (err).message;
        return;
      }
      // Sent as typed: the API names the field if it is out of range.
      if (attempts.value.trim() !== '') body.retry_policy = { max_attempts: Number(attempts.value) };
      if (jitter.value.trim() !== '') body.jitter_seconds = Number(jitter.value);
      if (!threadId) {
        body.on_run_completed = /** @type {CronCreate['on_run_completed']} */ (keep.value);
        body.overlap_policy = /** @type {CronCreate['overlap_policy']} */ (overlap.value);
      }
      const path = threadId ? `/threads/${encodeURIComponent(threadId)}/runs/crons` : '/runs/crons';
      try {
        /** @type {Cron} */
        const answer = await api('POST', path, body);
        flash(body.enabled ? 'Cron created; its first run started' : 'Cron created, paused');
        location.hash = `#/crons/${answer.cron_id}`;
      } catch (err) {
        error.textContent = /** @type {Error} */ (err).message;
      }
    },
    { id: 'create' },
  );

  put(
    view,
    h('p', { class: 'crumbs' }, h('a', { href: '#/crons' }, '← Crons')),
    h('h1', {}, 'New cron'),
    h(
      'form',
      { class: 'card form', id: 'new-cron-form', onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
      h('label', { class: 'field' }, h('span', {}, 'Name (optional)'), name),
      h('label', { class: 'field' }, h('span', {}, 'Assistant'), assistant),
      editor.element,
      input.element,
      metadata.element,
      h('label', { class: 'field' }, h('span', {}, 'Thread (optional)'), thread),
      h('label', { class: 'field' }, h('span', {}, 'After each run (stateless)'), keep),
      h('label', { class: 'field' }, h('span', {}, 'When the last run is still going (stateless)'), overlap),
      h('label', { class: 'field' }, h('span', {}, 'Missed occurrences after downtime'), missed),
      h('label', { class: 'field' }, h('span', {}, 'Webhook (optional)'), webhook),
      h('label', { class: 'field' }, h('span', {}, 'End time, UTC (optional: nothing fires after it)'), endTime),
      h('label', { class: 'field' }, h('span', {}, 'Retry: max attempts (1 = no retry)'), attempts),
      h('label', { class: 'field' }, h('span', {}, 'Jitter: start up to N seconds late'), jitter),
      h('label', { class: 'check' }, paused, ' Create paused (no first run)'),
      h('label', { class: 'field' }, h('span', {}, 'Pause note (up to 280 characters)'), pauseNote),
      h('p', { class: 'muted' }, 'An active cron starts its first run at once, then follows its schedule.'),
      h('div', { class: 'actions' }, create),
      error,
    ),
  );
}
