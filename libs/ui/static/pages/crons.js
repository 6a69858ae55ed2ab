// @ts-check
// The crons page: search and filter (assistant, metadata, enabled on the API; text and last
// status on what was loaded), one row per cron titled by its name, pause/resume, trigger and
// delete of a selection. It refreshes itself every few seconds while visible: only the list is
// redrawn, so the filters being typed, the selection and the scroll position stay.
import { api, mapLimit, session } from '../api.js';
import { badge, h, put, shortId } from '../dom.js';
import { describeSchedule, formatTime, jsonLine, relative } from '../format.js';
import { actionButton, flash, messageOf, poll, redrawGate, table } from '../ui.js';
import { apiFilters, cronName, cronStateBadge, filterForm, filtersOf, go, matchesText } from './crons-filters.js';

const PAGE = 50;
/** With a text or last-status filter the page filters what it loaded: it loads up to the API's maximum. */
const FILTER_WINDOW = 1000;
/** @typedef {import('../../types.ts').Assistant} Assistant */
/** @typedef {import('../../types.ts').Cron} Cron */

/**
 * @param {HTMLElement} view
 * @param {URLSearchParams} query
 */
export async function renderCrons(view, query) {
  const f = filtersOf(query);
  const base = session.everyUser ? '/admin/crons' : '/runs/crons';
  const clientSide = Boolean(f.q || f.status);
  /** @type {Record<string, unknown>} */
  let filters;
  let filterError = null;
  try {
    filters = apiFilters(f);
  } catch (err) {
    filterError = `metadata filter: ${/** @type {Error} */ (err).message}`;
    filters = apiFilters({ ...f, metadata: '' });
  }
  const sort = f.sort === 'next_run_date' ? { sort_by: 'next_run_date', sort_order: 'asc' } : { sort_by: f.sort, sort_order: 'desc' };
  const paging = clientSide ? { limit: FILTER_WINDOW, offset: 0 } : { limit: PAGE, offset: f.offset };
  /** @type {Assistant[]} */
  const assistants = await api('POST', '/assistants/search', { limit: 1000 }).catch(() => []);
  const names = new Map(assistants.map((a) => [a.assistant_id, a.name || a.graph_id]));
  /** The crons last loaded and how many match the API's filters. @type {Cron[]} */
  let crons = [];
  let total = 0;

  const form = filterForm(f, assistants);

  // ---- selection and bulk actions (the selection outlives each refresh) ----
  /** @type {Set<string>} */
  const selected = new Set();
  const selectionInfo = h('span', { class: 'muted', id: 'selection' });
  const noteField = session.features.pauseNote;
  const note = noteField ? h('input', { id: 'bulk-note', placeholder: 'pause note (optional)', maxlength: 280, 'aria-label': 'Pause note' }) : null;
  const noteValue = () => note?.value.trim() || null;
  const pauseBtn = actionButton('Pause selected', () => setEnabled(false), { id: 'bulk-pause', disabled: true });
  const resumeBtn = actionButton('Resume selected', () => setEnabled(true), { id: 'bulk-resume', disabled: true });
  const triggerBtn = h(
    'button',
    { type: 'button', class: 'secondary', id: 'bulk-trigger', disabled: true, onclick: () => confirmSelection('trigger') },
    'Trigger selected…',
  );
  const deleteBtn = h(
    'button',
    { type: 'button', class: 'danger', id: 'bulk-delete', disabled: true, onclick: () => confirmSelection('delete') },
    'Delete selected…',
  );
  const confirmBox = h('div', { class: 'action-panel', id: 'bulk-confirm' });
  const updateSelection = () => {
    selectionInfo.textContent = selected.size ? `${selected.size} selected` : '';
    pauseBtn.disabled = resumeBtn.disabled = triggerBtn.disabled = deleteBtn.disabled = selected.size === 0;
  };
  /** @param {boolean} on */
  async function setEnabled(on) {
    const ids = [...selected];
    /** @type {Record<string, unknown>} */
    const body = { enabled: on };
    if (noteField && !on && noteValue()) body[noteField] = noteValue();
    const results = await mapLimit(ids, 6, (id) => api('PATCH', `${base}/${id}`, body));
    const failed = results.filter((r) => r && r.error);
    if (failed.length) flash(`${ids.length - failed.length} ${on ? 'resumed' : 'paused'}, ${failed.length} failed: ${messageOf(failed[0].error)}`, 'error');
    else flash(`${ids.length} cron${ids.length === 1 ? '' : 's'} ${on ? 'resumed' : 'paused'}`);
    go(f);
  }
  /**
   * Trigger or delete the selection, after saying what it will do (both act on each cron at once).
   * @param {'trigger' | 'delete'} action
   */
  function confirmSelection(action) {
    const ids = [...selected];
    const n = `${ids.length} cron${ids.length === 1 ? '' : 's'}`;
    const labels = ids.map((id) => {
      const c = crons.find((x) => x.cron_id === id);
      return c ? (cronName(c) ?? describeSchedule(c.schedule) ?? c.schedule) : id.slice(0, 8);
    });
    const go2 = actionButton(
      action === 'delete' ? `Delete ${n}` : `Trigger ${n}`,
      async () => {
        const results = await mapLimit(ids, 6, (id) => api(action === 'delete' ? 'DELETE' : 'POST', `${base}/${id}${action === 'delete' ? '' : '/trigger'}`));
        const failed = results.filter((r) => r && r.error);
        const verb = action === 'delete' ? 'deleted' : 'triggered';
        if (failed.length) flash(`${ids.length - failed.length} ${verb}, ${failed.length} failed: ${messageOf(failed[0].error)}`, 'error');
        else flash(`${n} ${verb}`);
        if (action === 'delete') for (const id of ids) selected.delete(id);
        put(confirmBox);
        updateSelection();
        await load();
      },
      { id: 'bulk-confirm-go', class: action === 'delete' ? 'danger' : '' },
    );
    put(
      confirmBox,
      h(
        'div',
        { class: `card ${action === 'delete' ? 'confirm' : ''}` },
        h(
          'p',
          {},
          action === 'delete'
            ? `Delete ${n} and their occurrence ledgers? They fire nothing more; runs already started finish. This cannot be undone.`
            : `Start a run of each of ${n} now, outside their schedules (their overlap rules apply)?`,
        ),
        h('p', { class: 'muted' }, labels.slice(0, 10).join(' · '), labels.length > 10 ? ` and ${labels.length - 10} more` : ''),
        h(
          'div',
          { class: 'actions' },
          go2,
          h('button', { type: 'button', class: 'secondary', id: 'bulk-confirm-cancel', onclick: () => put(confirmBox) }, 'Cancel'),
        ),
      ),
    );
  }
  // Every cron the API filters match, in one request (not only the loaded or selected ones).
  const serverFiltered = Object.keys(filters).some((k) => k !== 'user_id') || Boolean(session.everyUser && f.user);
  const bulkAllBox = h('span', { class: 'bulk-all' });
  const drawBulkAll = () =>
    put(
      bulkAllBox,
      session.features.bulk && serverFiltered && !clientSide && total > 0
        ? [false, true].map((on) =>
            actionButton(
              `${on ? 'Resume' : 'Pause'} all ${total} matching`,
              async () => {
                /** @type {Record<string, unknown>} */
                const body = { action: on ? 'enable' : 'disable', ...filters };
                if (noteField && !on && noteValue()) body[noteField] = noteValue();
                const done = await api('POST', `${base}/bulk`, body);
                flash(`${done.count} cron${done.count === 1 ? '' : 's'} ${on ? 'resumed' : 'paused'}`);
                go(f);
              },
              { class: 'secondary', id: on ? 'bulk-resume-all' : 'bulk-pause-all' },
            ),
          )
        : null,
    );

  // ---- rows ----
  const listBox = h('div', { id: 'crons-list' });
  const summaryBox = h('p', { class: 'muted', id: 'summary' });
  const pagerBox = h('div', { class: 'pager' });

  function draw() {
    const shown = crons.filter(
      (c) =>
        matchesText(c, f.q, names.get(c.assistant_id)) && (!f.status || (f.status === 'none' ? c.last_run_status === null : c.last_run_status === f.status)),
    );
    // A selected cron no longer listed (deleted elsewhere, filtered out) leaves the selection.
    const present = new Set(shown.map((c) => c.cron_id));
    for (const id of selected) if (!present.has(id)) selected.delete(id);
    const all = h('input', {
      type: 'checkbox',
      title: 'Select all shown',
      'aria-label': 'Select all shown',
      checked: shown.length > 0 && shown.every((c) => selected.has(c.cron_id)),
      onchange: (/** @type {Event} */ e) => {
        for (const box of /** @type {NodeListOf<HTMLInputElement>} */ (view.querySelectorAll('input[data-select]'))) {
          box.checked = /** @type {HTMLInputElement} */ (e.target).checked;
          if (box.checked) selected.add(/** @type {string} */ (box.dataset.select));
          else selected.delete(/** @type {string} */ (box.dataset.select));
        }
        updateSelection();
      },
    });
    const now = Date.now();
    const rows = shown.map((c) => {
      const description = describeSchedule(c.schedule);
      const name = cronName(c);
      // The pause note, under the name this server gives it (a string, or null when none).
      const cronNote = session.features.pauseNote ? c[session.features.pauseNote] : null;
      const box = h('input', {
        type: 'checkbox',
        'aria-label': `Select cron ${c.cron_id}`,
        dataset: { select: c.cron_id },
        checked: selected.has(c.cron_id),
        onchange: (/** @type {Event} */ e) => {
          if (/** @type {HTMLInputElement} */ (e.target).checked) selected.add(c.cron_id);
          else selected.delete(c.cron_id);
          updateSelection();
        },
      });
      const meta = Object.keys(c.metadata ?? {}).filter((k) => k !== 'name').length
        ? h('div', { class: 'meta' }, jsonLine(Object.fromEntries(Object.entries(c.metadata).filter(([k]) => k !== 'name')), 60))
        : null;
      return h(
        'tr',
        { dataset: { cronId: c.cron_id }, class: c.enabled ? '' : 'paused' },
        h('td', { class: 'sel' }, box),
        h(
          'td',
          { class: 'cron' },
          h('a', { href: `#/crons/${c.cron_id}`, class: 'cron-link' }, name ?? description ?? c.schedule),
          h(
            'div',
            { class: 'sub' },
            name && description ? `${description} · ` : '',
            h('code', {}, c.schedule),
            ' · ',
            shortId(c.cron_id),
            c.thread_id ? ' · thread' : '',
          ),
          meta,
        ),
        h('td', { class: 'tz' }, c.timezone ?? 'UTC'),
        h(
          'td',
          { class: 'next' },
          c.next_run_date
            ? [h('div', {}, relative(c.next_run_date, now)), h('div', { class: 'sub' }, formatTime(c.next_run_date, c.timezone))]
            : c.finished_at
              ? 'finished'
              : '—',
          !c.enabled && c.next_run_date ? h('div', { class: 'sub' }, 'if resumed') : null,
        ),
        h('td', { class: 'state' }, cronStateBadge(c), cronNote ? h('div', { class: 'sub note' }, cronNote) : null),
        h(
          'td',
          { class: 'last' },
          badge(c.last_run_status, c.last_run_status ?? 'never ran'),
          c.last_run_at ? h('div', { class: 'sub' }, relative(c.last_run_at, now)) : null,
          c.last_run_error ? h('div', { class: 'error-text', title: c.last_run_error }, jsonLine(c.last_run_error, 120)) : null,
        ),
        h('td', { class: 'assistant' }, names.get(c.assistant_id) ?? shortId(c.assistant_id)),
        session.everyUser ? h('td', { class: 'owner' }, c.user_id) : null,
      );
    });
    const headers = [
      h('span', {}, all),
      'Cron',
      { label: 'Timezone', class: 'tz' },
      'Next fire',
      'State',
      'Last run',
      { label: 'Assistant', class: 'assistant' },
      ...(session.everyUser ? [{ label: 'Owner', class: 'owner' }] : []),
    ];
    summaryBox.textContent = clientSide
      ? `${shown.length} shown of ${crons.length} ` +
        `loaded${total > crons.length ? ` (${total} match the API filters; text and last-run filters look at the first ${FILTER_WINDOW})` : ''}`
      : total === 0
        ? 'No crons'
        : `${f.offset + 1}–${f.offset + crons.length} of ${total}`;
    put(
      pagerBox,
      clientSide
        ? null
        : f.offset > 0
          ? h('button', { type: 'button', class: 'secondary', onclick: () => go({ ...f, offset: Math.max(0, f.offset - PAGE) }) }, '← Previous')
          : null,
      clientSide
        ? null
        : f.offset + crons.length < total
          ? h('button', { type: 'button', class: 'secondary', onclick: () => go({ ...f, offset: f.offset + PAGE }) }, 'Next →')
          : null,
    );
    put(
      listBox,
      rows.length
        ? table(headers, rows, { id: 'crons-table', class: 'crons' })
        : h(
            'p',
            { class: 'empty', id: 'no-crons' },
            total === 0 && !serverFiltered ? 'No crons yet: create one with "New cron", the SDK or the CLI.' : 'No cron matches these filters.',
          ),
    );
    drawBulkAll();
    updateSelection();
  }

  const changed = redrawGate();
  async function load() {
    [crons, total] = await Promise.all([api('POST', `${base}/search`, { ...filters, ...sort, ...paging }), api('POST', `${base}/count`, filters)]);
    if (changed([crons, total])) draw();
  }

  await load();
  put(
    view,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, session.everyUser ? 'Crons of every user' : 'Crons'),
      h('a', { class: 'button', href: '#/new', id: 'new-cron' }, 'New cron'),
    ),
    form,
    filterError ? h('p', { class: 'error' }, filterError) : null,
    h('div', { class: 'toolbar' }, note, pauseBtn, resumeBtn, triggerBtn, deleteBtn, selectionInfo, h('span', { class: 'spacer' }), bulkAllBox),
    confirmBox,
    summaryBox,
    listBox,
    pagerBox,
  );
  return poll(load);
}
