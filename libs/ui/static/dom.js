// @ts-check
// Building DOM without HTML strings: every text is a text node, so nothing from the API is ever
// parsed as markup (the dashboard's CSP allows no inline script either). And how a status looks.

/**
 * What an element may hold: nodes, texts (numbers and booleans as text), nested lists; null,
 * undefined and false are left out.
 * @typedef {Node | string | number | boolean | null | undefined | ChildList} Child
 * @typedef {Child[]} ChildList
 */
/**
 * Attributes: `class`, `dataset` (an object), `on<event>` (a listener), true (present), and any
 * other as text; null, undefined and false are left out.
 * @typedef {Record<string, unknown>} Attrs
 */

/**
 * An element: h('a', { href: '#/x', class: 'c', onclick: fn }, 'text', child, [more]).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === 'class') el.className = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/**
 * Replaces an element's children (null, undefined and false are left out; arrays are flattened).
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {ChildList} children
 */
function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * A status's colour class (run statuses, ledger statuses, webhook states).
 * @param {string | null | undefined} status
 */
export function statusClass(status) {
  switch (status) {
    case 'success':
    case 'sent':
    case 'completed':
      return 'st-ok';
    case 'error':
    case 'failed':
    case 'timeout':
      return 'st-bad';
    case 'interrupted':
      return 'st-warn';
    case 'skipped':
      return 'st-skip';
    case 'running':
    case 'active':
      return 'st-run';
    case 'enqueued':
    case 'pending':
    case 'created':
      return 'st-wait';
    default:
      return 'st-none';
  }
}

/**
 * A status as a coloured badge.
 * @param {string | null | undefined} status
 * @param {string} [text]
 */
export const badge = (status, text = status ?? 'none') => h('span', { class: `badge ${statusClass(status)}` }, text);

/**
 * A short id (first 8 characters) with the full one on hover.
 * @param {string | null | undefined} id
 */
export const shortId = (id) => (id ? h('code', { title: id }, id.slice(0, 8)) : '—');
