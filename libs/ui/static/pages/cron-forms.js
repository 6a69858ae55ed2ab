// @ts-check
// The cron page's forms, each opened in the page's action panel: edit the schedule; edit name,
// input, metadata and policies; backfill a past range; delete. `page` is the cron page: its
// current cron (read when used, as the page refreshes it), cron id, panel and redraws.
import { api, cronPath } from '../api.js';
import { h, put } from '../dom.js';
import { actionButton, flash, messageOf } from '../ui.js';
import { scheduleEditor } from './schedule-editor.js';

/** @typedef {import('../../types.ts').Cron} Cron */
/** @typedef {import('../../types.ts').CronUpdate} CronUpdate */
/** @typedef {import('../../types.ts').Preview} Preview */
/** @typedef {import('../../types.ts').Backfill} Backfill */
/** @typedef {import('../../types.ts').BackfillResult} BackfillResult */
/**
 * The cron page as its forms use it (pages/cron.js): `cron` is read when used, as the page refreshes it.
 * @typedef {object} CronPage
 * @property {Cron} cron
 * @property {string} cronId
 * @property {HTMLElement} panel
 * @property {() => Promise<void>} reloadCron
 * @property {(mode?: 'refresh') => Promise<void>} drawNext
 * @property {(reset?: boolean | 'refresh') => Promise<void>} drawLedger
 */

/** @param {CronPage} page */
export function openEditor(page) {
  const { cronId, panel } = page;
  const editor = scheduleEditor({ schedule: page.cron.schedule, timezone: page.cron.timezone ?? '' });
  const save = actionButton(
    'Save schedule',
    async () => {
      const { schedule, timezone } = editor.value();
      await api('PATCH', cronPath(cronId), { schedule, timezone: timezone || null });
      flash('Schedule saved');
      put(panel);
      await page.reloadCron();
      await page.drawNext();
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

/**
 * Name, input, metadata and policies: PATCH sends input and metadata whole (metadata replaces the old).
 * @param {CronPage} page
 */
export function openFieldsEditor(page) {
  const { cronId, panel } = page;
  /** @param {unknown} v */
  const json = (v) => (v === undefined || v === null ? '' : JSON.stringify(v, null, 2));
  const { name: currentName, ...rest } = page.cron.metadata;
  const name = h('input', { id: 'edit-name', value: typeof currentName === 'string' ? currentName : '', maxlength: 100, placeholder: 'none' });
  const input = h('textarea', { id: 'edit-input', rows: 4, spellcheck: 'false' });
  input.value = json(page.cron.payload.input);
  const metadata = h('textarea', { id: 'edit-metadata', rows: 4, spellcheck: 'false' });
  metadata.value = Object.keys(rest).length ? json(rest) : '';
  /** @type {(id: string, value: string, options: string[]) => HTMLSelectElement} */
  const select = (id, value, options) =>
    h(
      'select',
      { id },
      options.map((v) => h('option', { value: v, selected: v === value }, v)),
    );
  const missed = select('edit-missed', page.cron.missed_policy, ['latest', 'all', 'none']);
  const overlap = page.cron.thread_id ? null : select('edit-overlap', page.cron.overlap_policy, ['allow', 'skip', 'buffer_one']);
  const error = h('p', { class: 'error', id: 'edit-fields-error' });
  /** @type {(label: string, area: HTMLTextAreaElement) => Record<string, unknown> | null} */
  const parse = (label, area) => {
    const text = area.value.trim();
    if (!text) return null;
    /** @type {unknown} */
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${label} must be a JSON object`);
    return /** @type {Record<string, unknown>} */ (v);
  };
  const save = actionButton(
    'Save',
    async () => {
      error.textContent = '';
      /** @type {CronUpdate} */
      let body;
      try {
        const meta = parse('Metadata', metadata) ?? {};
        if (name.value.trim()) meta.name = name.value.trim();
        // The API takes no null input on an update (a 422): an empty field leaves the input as it is.
        body = { input: parse('Input', input) ?? undefined, metadata: meta, missed_policy: /** @type {Cron['missed_policy']} */ (missed.value) };
        if (overlap) body.overlap_policy = /** @type {Cron['overlap_policy']} */ (overlap.value);
      } catch (err) {
        error.textContent = /** @type {Error} */ (err).message;
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
      await page.reloadCron();
    },
    { id: 'save-fields' },
  );
  /** @type {(label: string, el: HTMLElement) => HTMLLabelElement} */
  const field = (label, el) => h('label', { class: 'field wide' }, h('span', {}, label), el);
  put(
    panel,
    h(
      'div',
      { class: 'card form', id: 'fields-panel' },
      h('h2', {}, 'Edit name, input, metadata and policies'),
      field('Name (unique among your crons, up to 100 characters)', name),
      field('Input of every run (JSON object; empty: left as it is)', input),
      field('Metadata (JSON object; replaces the current one)', metadata),
      h('label', { class: 'field' }, h('span', {}, 'Missed occurrences'), missed),
      overlap ? h('label', { class: 'field' }, h('span', {}, 'When the last run is still going'), overlap) : null,
      h('div', { class: 'actions' }, save, h('button', { type: 'button', class: 'secondary', onclick: () => put(panel) }, 'Cancel')),
      error,
    ),
  );
}

/** @param {CronPage} page */
export function openBackfill(page) {
  const { cronId, panel } = page;
  const from = h('input', { type: 'datetime-local', id: 'backfill-from', step: 1, required: true });
  const to = h('input', { type: 'datetime-local', id: 'backfill-to', step: 1, required: true });
  /** @param {string} v */
  const utc = (v) => `${v.length === 16 ? `${v}:00` : v}Z`;
  // The overlap rule: the cron's own (a stateless cron's skip / buffer_one fire only what it allows now), or every occurrence.
  const overlap = page.cron.thread_id
    ? null
    : h(
        'select',
        { id: 'backfill-overlap' },
        h('option', { value: 'cron' }, `the cron's rule (${page.cron.overlap_policy})`),
        h('option', { value: 'allow' }, 'fire every occurrence'),
      );
  const count = h('p', { class: 'muted', id: 'backfill-count' }, 'Choose a range to see how many occurrences it holds.');
  /**
   * The fire button names the count only while it is the current range's.
   * @param {number | null} within
   */
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
    /** @type {Preview} */
    const preview = await api('POST', '/runs/crons/preview', {
      schedule: page.cron.schedule,
      timezone: page.cron.timezone,
      from: new Date(start.getTime() - 1).toISOString(),
      count: 1000,
    });
    const limit = page.cron.end_time && new Date(page.cron.end_time) < end ? new Date(page.cron.end_time) : end;
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
      /** @type {Backfill} */
      const body = { from: utc(from.value), to: utc(to.value) };
      if (overlap && overlap.value !== 'cron') body.overlap = /** @type {Backfill['overlap']} */ (overlap.value);
      /** @type {BackfillResult} */
      const answer = await api('POST', `/runs/crons/${cronId}/backfill`, body);
      const held = [
        answer.skipped_existing ? `${answer.skipped_existing} already in the ledger` : null,
        answer.skipped_overlap ? `${answer.skipped_overlap} held back by the overlap rule` : null,
      ].filter(Boolean);
      flash(
        `Backfill: fired ${answer.fired ?? 0} of ${answer.occurrences ?? 0} ` +
          `occurrence${answer.occurrences === 1 ? '' : 's'}${held.length ? ` (${held.join(', ')})` : ''}`,
      );
      put(panel);
      await page.drawLedger(true);
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

/** @param {CronPage} page */
export function openDelete(page) {
  const { cronId, panel } = page;
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
