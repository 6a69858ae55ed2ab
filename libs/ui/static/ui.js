// What every page shares: the flash message and how an error reads.
import { ApiError } from './api.js';
import { h, put } from './format.js';

let flashTimer;
/** A message at the top of the page (kind: ok | error). */
export function flash(message, kind = 'ok') {
  const box = document.getElementById('flash');
  clearTimeout(flashTimer);
  put(box, h('div', { class: `flash flash-${kind}` }, message));
  flashTimer = setTimeout(() => put(box), kind === 'error' ? 10_000 : 4000);
}

/** The message of a failed call, as the API said it. */
export const messageOf = (err) => (err instanceof ApiError ? `${err.status ? `${err.status}: ` : ''}${err.message}` : String(err?.message ?? err));

/** A button that runs `action` once at a time (disabled meanwhile) and flashes its failure. */
export function actionButton(label, action, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action(button);
    } catch (err) {
      flash(messageOf(err), 'error');
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

/** A table whose rows scroll sideways on narrow screens. Headers: text, a node, or { label, class }. */
export function table(headers, rows, attrs = {}) {
  const th = (x) => (typeof x === 'string' || x instanceof Node ? h('th', {}, x) : h('th', { class: x.class }, x.label));
  return h('div', { class: 'table-wrap' }, h('table', attrs, h('thead', {}, h('tr', {}, headers.map(th))), h('tbody', {}, rows)));
}
