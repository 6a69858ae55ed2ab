// @ts-check
// The crons page's filters: as the address holds them (#/crons?assistant=...), as the API takes
// them, the text search over what was loaded, and the form that sets them.
import { session } from '../api.js';
import { badge, h } from '../dom.js';
import { describeSchedule, parseMetadataFilter } from '../format.js';

/** @typedef {import('../../types.ts').Assistant} Assistant */
/** @typedef {import('../../types.ts').Cron} Cron */
/** @typedef {ReturnType<typeof filtersOf>} Filters */

const LAST_STATUSES = ['success', 'error', 'timeout', 'interrupted', 'running', 'pending', 'none'];

/**
 * The filters in the address (#/crons?assistant=...), so a filtered view can be shared and reloaded.
 * @param {URLSearchParams} query
 */
export function filtersOf(query) {
  return {
    q: query.get('q') ?? '',
    assistant: query.get('assistant') ?? '',
    metadata: query.get('metadata') ?? '',
    enabled: query.get('enabled') ?? '',
    status: query.get('status') ?? '',
    user: query.get('user') ?? '',
    sort: query.get('sort') ?? 'created_at',
    offset: Math.max(0, Number(query.get('offset') ?? 0) || 0),
  };
}

/** @param {Filters} filters */
export function go(filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== '' && v !== 0 && v !== 'created_at') q.set(k, String(v));
  const hash = `#/crons${q.size ? `?${q}` : ''}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/**
 * The API's filters (search, count and bulk take the same ones).
 * @param {Filters} f
 */
export function apiFilters(f) {
  /** @type {Record<string, unknown>} */
  const body = {};
  if (f.assistant) body.assistant_id = f.assistant;
  if (f.enabled === 'true' || f.enabled === 'false') body.enabled = f.enabled === 'true';
  const metadata = parseMetadataFilter(f.metadata);
  if (metadata) body.metadata = metadata;
  if (session.everyUser && f.user) body.user_id = f.user;
  return body;
}

/**
 * A cron's name (metadata.name), or null.
 * @param {Pick<Cron, 'metadata'> | null | undefined} cron
 */
export const cronName = (cron) => (typeof cron?.metadata?.name === 'string' && cron.metadata.name.trim() ? cron.metadata.name : null);

/**
 * A cron's state in one word: active, finished (its end_time passed) or paused.
 * @param {Pick<Cron, 'enabled' | 'finished_at'>} cron
 */
export const cronStateBadge = (cron) =>
  cron.enabled ? badge('success', 'active') : cron.finished_at ? badge('skipped', 'finished') : badge('skipped', 'paused');

/**
 * @param {Cron} cron
 * @param {string} text
 * @param {string | undefined} assistantName
 */
export function matchesText(cron, text, assistantName) {
  if (!text) return true;
  const hay = [
    cron.cron_id,
    cronName(cron),
    cron.schedule,
    describeSchedule(cron.schedule),
    cron.timezone,
    cron.assistant_id,
    assistantName,
    cron.user_id,
    cron.thread_id,
    JSON.stringify(cron.metadata),
    cron.last_run_error,
  ]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  return text
    .toLowerCase()
    .split(/\s+/)
    .every((word) => hay.includes(word));
}

/**
 * The filter form: submitting it (or changing a select) goes to the address of the filters set.
 * @param {Filters} f the filters shown
 * @param {Assistant[]} assistants offered in the assistant field
 */
export function filterForm(f, assistants) {
  /**
   * @param {string} name
   * @param {string} label
   * @param {HTMLElement} input
   */
  const field = (name, label, input) => h('label', { class: 'field' }, h('span', {}, label), input);
  const text = h('input', { type: 'search', name: 'q', value: f.q, placeholder: 'name, id, schedule, words…' });
  const assistant = h('input', { name: 'assistant', value: f.assistant, list: 'assistant-list', placeholder: 'id or graph' });
  const datalist = h(
    'datalist',
    { id: 'assistant-list' },
    assistants.map((a) => h('option', { value: a.assistant_id }, `${a.name || a.graph_id} (${a.graph_id})`)),
  );
  const metadata = h('input', { name: 'metadata', value: f.metadata, placeholder: 'team=ops or {"team":"ops"}' });
  /**
   * @param {string} name
   * @param {string} value
   * @param {string[][]} options [value, label] pairs
   */
  const select = (name, value, options) =>
    h(
      'select',
      { name },
      options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)),
    );
  const enabled = select('enabled', f.enabled, [
    ['', 'any'],
    ['true', 'active'],
    ['false', 'paused'],
  ]);
  const status = select('status', f.status, [['', 'any'], ...LAST_STATUSES.map((s) => [s, s === 'none' ? 'never ran' : s])]);
  const sortSel = select('sort', f.sort, [
    ['created_at', 'newest first'],
    ['next_run_date', 'next to fire'],
    ['updated_at', 'recently changed'],
  ]);
  const user = session.everyUser ? h('input', { name: 'user', value: f.user, placeholder: 'every user' }) : null;
  const form = h(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        go({
          q: text.value.trim(),
          assistant: assistant.value.trim(),
          metadata: metadata.value.trim(),
          enabled: enabled.value,
          status: status.value,
          user: user?.value.trim() ?? '',
          sort: sortSel.value,
          offset: 0,
        });
      },
    },
    field('q', 'Search', text),
    field('assistant', 'Assistant', assistant),
    datalist,
    field('metadata', 'Metadata', metadata),
    field('enabled', 'State', enabled),
    field('status', 'Last run', status),
    user && field('user', 'Owner', user),
    field('sort', 'Order', sortSel),
    h('div', { class: 'filter-buttons' }, h('button', { type: 'submit' }, 'Filter'), h('a', { class: 'button secondary', href: '#/crons' }, 'Clear')),
  );
  for (const s of [enabled, status, sortSel]) s.addEventListener('change', () => form.requestSubmit());
  return form;
}
