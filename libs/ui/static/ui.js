// @ts-check
// What every page shares: the flash message and how an error reads.
import { ApiError } from './api.js';
import { h, put } from './dom.js';

/** @type {ReturnType<typeof setTimeout> | undefined} */
let flashTimer;
/**
 * A message at the top of the page (kind: ok | error).
 * @param {string} message
 * @param {'ok' | 'error'} [kind]
 */
export function flash(message, kind = 'ok') {
  const box = /** @type {HTMLElement} */ (document.getElementById('flash'));
  clearTimeout(flashTimer);
  put(box, h('div', { class: `flash flash-${kind}` }, message));
  flashTimer = setTimeout(() => put(box), kind === 'error' ? 10_000 : 4000);
}

/**
 * The message of a failed call, as the API said it.
 * @param {unknown} err
 * @returns {string}
 */
export const messageOf = (err) =>
  err instanceof ApiError
    ? `${err.status ? `${err.status}: ` : ''}${err.message}`
    : String(/** @type {{ message?: unknown } | null | undefined} */ (err)?.message ?? err);

/**
 * A button that runs `action` once at a time (disabled meanwhile) and flashes its failure.
 * @param {string} label
 * @param {(button: HTMLButtonElement) => unknown} action
 * @param {import('./dom.js').Attrs} [attrs]
 */
export function actionButton(label, action, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  const run = async () => {
    button.disabled = true;
    try {
      await action(button);
    } catch (err) {
      flash(messageOf(err), 'error');
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  };
  // run() never rejects: a failure is flashed.
  button.addEventListener('click', () => void run());
  return button;
}

/**
 * A table whose rows scroll sideways on narrow screens. Headers: text, a node, or { label, class }.
 * @param {(string | Node | { label: string, class?: string })[]} headers
 * @param {import('./dom.js').Child} rows
 * @param {import('./dom.js').Attrs} [attrs]
 */
export function table(headers, rows, attrs = {}) {
  /** @param {string | Node | { label: string, class?: string }} x */
  const th = (x) => (typeof x === 'string' || x instanceof Node ? h('th', {}, x) : h('th', { class: x.class }, x.label));
  return h('div', { class: 'table-wrap' }, h('table', attrs, h('thead', {}, h('tr', {}, headers.map(th))), h('tbody', {}, rows)));
}

/** How often live pages refresh, in ms (5 s; a test may set localStorage agentcron.pollMs). */
export function pollInterval() {
  const set = Number(globalThis.localStorage?.getItem('agentcron.pollMs'));
  return Number.isFinite(set) && set >= 100 ? set : 5000;
}

/**
 * Calls `refresh` every few seconds while the page is visible, one call at a time; a hidden tab
 * polls nothing, and becoming visible again refreshes at once. A failed refresh is flashed once
 * and polling goes on. Answers the function that stops it (a page's cleanup).
 * @param {() => unknown} refresh
 * @param {number} [ms]
 * @returns {() => void}
 */
export function poll(refresh, ms = pollInterval()) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let stopped = false;
  let failed = false;
  // tick() never rejects: a failed refresh is flashed.
  const tick = async () => {
    timer = undefined;
    if (stopped || document.visibilityState !== 'visible') return;
    try {
      await refresh();
      failed = false;
    } catch (err) {
      if (!failed) flash(`Refresh failed: ${messageOf(err)}`, 'error');
      failed = true;
    }
    if (!stopped && document.visibilityState === 'visible') timer = setTimeout(() => void tick(), ms);
  };
  const onVisibility = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = undefined;
    if (document.visibilityState === 'visible') void tick();
  };
  document.addEventListener('visibilitychange', onVisibility);
  timer = setTimeout(() => void tick(), ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

/**
 * For a live page's section: whether to redraw it with this data. Only when the data changed, or
 * once the last drawing is 30 s old (its relative times move on): an unchanged table is not
 * replaced under the pointer of someone about to click in it.
 * @param {number} [maxAgeMs]
 * @returns {(data: unknown) => boolean}
 */
export function redrawGate(maxAgeMs = 30_000) {
  /** @type {string | null} */
  let last = null;
  let at = 0;
  return (data) => {
    const signature = JSON.stringify(data);
    const now = Date.now();
    if (signature === last && now - at < maxAgeMs) return false;
    last = signature;
    at = now;
    return true;
  };
}
