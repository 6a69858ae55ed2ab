// @ts-check
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
