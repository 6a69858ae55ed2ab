// @ts-check
// The dashboard's shell: who is looking (a key under AUTH_MODE=api_key), the navigation and
// the hash routes (#/crons, #/crons/<id>, #/new, #/runs, #/runs/<id>, #/maintenance, #/health).
import { ApiError, loadFeatures, probe, rememberKey, session, signIn } from './api.js';
import { h, put } from './dom.js';
import { flash, messageOf, poll } from './ui.js';
import { renderCron } from './pages/cron.js';
import { renderCrons } from './pages/crons.js';
import { renderHealth } from './pages/health.js';
import { renderMaintenance } from './pages/maintenance.js';
import { renderNewCron } from './pages/new.js';
import { renderRun, renderRuns } from './pages/runs.js';

// The page's fixed elements (index.html).
const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const who = /** @type {HTMLElement} */ (document.getElementById('who'));
const signout = /** @type {HTMLElement} */ (document.getElementById('signout'));

/** Parses `#/path/a?x=1` into ['path', 'a'] and URLSearchParams. */
function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

/** @type {unknown} What the page shown answered: a function stops its refresh. */
let cleanup = null;
let generation = 0;

async function route() {
  const mine = ++generation;
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  if (session.needsKey && !session.key) return showSignIn();
  const { parts, query } = currentRoute();
  const page = parts[0] ?? 'crons';
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === (page === 'new' ? 'crons' : page));
  const view = h('div', { class: 'page' });
  put(main, view);
  try {
    /** @type {unknown} */
    let done = null;
    if (page === 'crons' && parts[1]) done = await renderCron(view, parts[1]);
    else if (page === 'crons') done = await renderCrons(view, query);
    else if (page === 'new') done = await renderNewCron(view);
    else if (page === 'runs' && parts[1]) done = await renderRun(view, parts[1]);
    else if (page === 'runs') done = await renderRuns(view);
    else if (page === 'maintenance') done = await renderMaintenance(view);
    else if (page === 'health') done = await livePage(view, renderHealth);
    else put(view, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/crons' }, 'Back to the crons')));
    // A page left while it was loading stops at once (its refresh must not outlive it).
    if (mine !== generation) {
      if (typeof done === 'function') done();
    } else cleanup = done;
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401 && session.needsKey) {
      rememberKey(null);
      flash('The API refused this key; sign in again.', 'error');
      return showSignIn();
    }
    put(view, h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, messageOf(err)));
  }
}

/**
 * A page that does not refresh itself refreshes here: drawn again off screen every few seconds
 * while visible, then swapped in whole (same layout, so the scroll position stays).
 * @param {HTMLElement} view
 * @param {(view: HTMLElement) => unknown} render
 */
async function livePage(view, render) {
  const own = await render(view);
  if (typeof own === 'function') return own;
  return poll(async () => {
    const next = h('div', { class: 'page' });
    const inner = await render(next);
    if (typeof inner === 'function') inner();
    if (view.isConnected) view.replaceChildren(...next.childNodes);
  });
}

function showSignIn() {
  nav.hidden = true;
  signout.hidden = true;
  who.textContent = '';
  const input = h('input', { type: 'password', name: 'key', id: 'api-key', autocomplete: 'off', required: true, placeholder: 'API key' });
  const error = h('p', { class: 'error', id: 'signin-error' });
  const form = h(
    'form',
    {
      class: 'card signin',
      id: 'signin',
      onsubmit: async (/** @type {Event} */ e) => {
        e.preventDefault();
        error.textContent = '';
        try {
          await signIn(input.value.trim());
          await start();
        } catch (err) {
          error.textContent = err instanceof ApiError && err.status === 401 ? 'The API refused this key.' : messageOf(err);
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      {},
      'This server runs with AUTH_MODE=api_key. Type your API key: the dashboard keeps it for this browser tab only (sessionStorage) and sends ' +
        'it to the API with every request, so you see what this key sees.',
    ),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  put(main, form);
  input.focus();
}

function showChrome() {
  nav.hidden = false;
  for (const a of nav.querySelectorAll('[data-admin]')) /** @type {HTMLElement} */ (a).hidden = !session.admin || !session.features.maintenance;
  signout.hidden = !session.needsKey;
  who.textContent = !session.needsKey
    ? 'no auth (AUTH_MODE=none)'
    : session.admin
      ? 'admin key: every user'
      : `key ${/** @type {string} */ (session.key).slice(0, 6)}…`;
}

async function start() {
  await Promise.all([probe(), loadFeatures()]);
  if (session.needsKey && !session.key) return showSignIn();
  showChrome();
  await route();
}

signout.addEventListener('click', () => {
  rememberKey(null);
  session.admin = false;
  session.everyUser = false;
  location.hash = '#/crons';
  showSignIn();
});

// route() shows a page's own failure in the page; anything before it (a page's cleanup throwing) here.
window.addEventListener('hashchange', () => {
  route().catch((err) => put(main, h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, messageOf(err))));
});

start().catch((err) => {
  put(main, h('h1', {}, 'The API cannot be reached'), h('p', { class: 'error' }, messageOf(err)));
});
