// @ts-check
// Health: /health (its status, ok, degraded or unavailable, with the reasons; the database,
// queue and schedulers; saturation: queue latency, runs waiting by reason, lag to start; details
// for admin keys), the deployment's gauges from /metrics (admin keys), and a chart of the last
// hour of fire lag and throughput drawn from the ledger rows of the crons this key owns (one
// request: GET /runs/crons/occurrences).
import { api, session } from '../api.js';
import { badge, h, put } from '../dom.js';
import { formatDuration, formatTime, occurrenceTimings, relative } from '../format.js';
import { actionButton, table } from '../ui.js';

const HOUR = 3600_000;
const BUCKET = 5 * 60_000;
/** The most occurrences the chart reads (the API's maximum). */
const CHART_OCCURRENCES = 5000;
const SVG = 'http://www.w3.org/2000/svg';

/** @typedef {import('../../types.ts').Occurrence} Occurrence */
/**
 * GET /health as this page reads it (libs/http/health.ts; no schema: every field optional, a
 * key without admin rights gets the status alone).
 * @typedef {{
 *   status?: string, ok?: boolean | null, reasons?: string[], details?: unknown,
 *   start_lag?: { started: number, p50: number | null, p95: number | null, p99: number | null, window_seconds: number, max_seconds: number },
 *   queue_latency_seconds?: number | null,
 *   waiting?: { worker: number, retry: number, limit?: Record<string, number> },
 *   backlog?: { now: number, five_minutes_ago: number | null },
 *   database?: { ok?: boolean | null, latency_ms?: number, error?: string },
 *   queue?: { ok?: boolean | null, queued?: number, active?: number },
 *   schedulers?: { ticking?: boolean | null, alive?: number | null, last_tick_at?: string | null },
 *   workers?: { alive?: number },
 *   monitor?: { warnings?: unknown[] } | null,
 * }} Health
 */
/** @typedef {{ at: number, ok: number, bad: number, other: number, skipped: number, lagMax: number | null, lagSum: number, lagN: number }} Bucket */

/**
 * Prometheus text -> [{ name, labels, value }] (gauges and counters; comments skipped).
 * @param {string} text
 */
export function parseMetrics(text) {
  /** @type {{ name: string, labels: Record<string, string>, value: number }[]} */
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

/**
 * Occurrences of the last hour in 5-minute buckets: fired (by outcome), skipped, and the worst fire lag.
 * @param {Occurrence[]} occurrences
 * @returns {Bucket[]}
 */
export function bucketize(occurrences, now = Date.now()) {
  const start = now - HOUR;
  /** @type {Bucket[]} */
  const buckets = Array.from({ length: HOUR / BUCKET }, (_, i) => ({
    at: start + i * BUCKET,
    ok: 0,
    bad: 0,
    other: 0,
    skipped: 0,
    lagMax: null,
    lagSum: 0,
    lagN: 0,
  }));
  for (const o of occurrences) {
    const at = new Date(o.scheduled_for).getTime();
    if (at < start || at >= now) continue;
    const b = buckets[Math.floor((at - start) / BUCKET)];
    if (o.status === 'skipped') b.skipped++;
    else if (o.status === 'success') b.ok++;
    else if (['error', 'timeout', 'interrupted'].includes(o.status)) b.bad++;
    else b.other++;
    const { lag } = occurrenceTimings(o);
    if (lag !== null && o.trigger === 'schedule') {
      b.lagMax = Math.max(b.lagMax ?? 0, lag);
      b.lagSum += lag;
      b.lagN++;
    }
  }
  return buckets;
}

/** @param {Bucket[]} buckets */
function chart(buckets) {
  const W = 640;
  const H = 180;
  const pad = { l: 36, r: 48, t: 12, b: 24 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const maxCount = Math.max(1, ...buckets.map((b) => b.ok + b.bad + b.other + b.skipped));
  const maxLag = Math.max(1000, ...buckets.map((b) => b.lagMax ?? 0));
  const bw = iw / buckets.length;
  const y = (/** @type {number} */ n) => pad.t + ih - (n / maxCount) * ih;
  const yl = (/** @type {number} */ ms) => pad.t + ih - (ms / maxLag) * ih;
  const g = svg('g');
  buckets.forEach((b, i) => {
    let base = 0;
    for (const [n, cls] of /** @type {[number, string][]} */ ([
      [b.ok, 'st-ok'],
      [b.bad, 'st-bad'],
      [b.other, 'st-run'],
      [b.skipped, 'st-skip'],
    ])) {
      if (!n) continue;
      g.append(
        svg(
          'rect',
          { x: pad.l + i * bw + 2, y: y(base + n), width: bw - 4, height: y(base) - y(base + n), class: `bar ${cls}` },
          svg('title', {}, `${formatTime(new Date(b.at).toISOString())}: ${n}`),
        ),
      );
      base += n;
    }
  });
  const points = /** @type {string[]} */ (buckets.map((b, i) => (b.lagN ? `${pad.l + i * bw + bw / 2},${yl(b.lagSum / b.lagN)}` : null)).filter(Boolean));
  const axis = [
    svg('line', { x1: pad.l, y1: pad.t + ih, x2: W - pad.r, y2: pad.t + ih, class: 'axis' }),
    svg('text', { x: pad.l - 4, y: pad.t + 10, class: 'label', 'text-anchor': 'end' }, String(maxCount)),
    svg('text', { x: pad.l - 4, y: pad.t + ih, class: 'label', 'text-anchor': 'end' }, '0'),
    svg('text', { x: W - pad.r + 4, y: pad.t + 10, class: 'label lag' }, formatDuration(maxLag)),
    svg('text', { x: pad.l, y: H - 6, class: 'label' }, '60 min ago'),
    svg('text', { x: W - pad.r, y: H - 6, class: 'label', 'text-anchor': 'end' }, 'now'),
  ];
  return svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'chart', id: 'lag-chart', role: 'img', 'aria-label': 'Occurrences and mean fire lag per 5 minutes over the last hour' },
    ...axis,
    g,
    points.length > 1 ? svg('polyline', { points: points.join(' '), class: 'lagline' }) : null,
    ...points.map((p) => svg('circle', { cx: p.split(',')[0], cy: p.split(',')[1], r: 3, class: 'lagdot' })),
  );
}

/**
 * @param {string} title
 * @param {Node} status
 * @param {...(string | null | undefined)} lines
 */
function card(title, status, ...lines) {
  return h('div', { class: 'card stat' }, h('h3', {}, title), status, ...lines.filter(Boolean).map((l) => h('div', { class: 'sub' }, l)));
}

/** @param {HTMLElement} view */
export async function renderHealth(view) {
  /** @type {Health} */
  const health = await fetch('/health', { headers: session.key ? { 'x-api-key': session.key } : {}, cache: 'no-store' }).then((r) => r.json());
  const ok = (/** @type {boolean | null | undefined} */ v) =>
    v === null || v === undefined ? badge(null, 'not judged') : v ? badge('success', 'ok') : badge('error', 'failing');
  const detailed = typeof health.details !== 'string';
  const secs = (/** @type {number | null | undefined} */ v) => (v === null || v === undefined ? '—' : formatDuration(v * 1000));
  const overall = health.status
    ? badge(/** @type {Record<string, string>} */ ({ ok: 'success', degraded: 'interrupted', unavailable: 'error' })[health.status] ?? null, health.status)
    : ok(health.ok);
  const lag = health.start_lag;
  const waiting = health.waiting;
  const limits = waiting ? Object.entries(waiting.limit ?? {}) : [];
  const cards = [
    card('Overall', overall),
    lag !== undefined
      ? card(
          'Lag to start',
          h('span', { id: 'start-lag' }, lag.started ? `p50 ${secs(lag.p50)} · p95 ${secs(lag.p95)} · p99 ${secs(lag.p99)}` : 'no run started'),
          `${lag.started} started in the last ${lag.window_seconds === 60 ? 'minute' : `${lag.window_seconds} s`}; degraded above ${lag.max_seconds} s (p95)`,
        )
      : null,
    health.queue_latency_seconds !== undefined
      ? card('Queue latency', h('span', { id: 'queue-latency' }, secs(health.queue_latency_seconds)), 'how long the next run able to start has waited')
      : null,
    waiting
      ? card(
          'Runs waiting',
          h(
            'span',
            { id: 'runs-waiting' },
            `${waiting.worker} for a worker · ${waiting.retry} for a retry · ${limits.reduce((a, [, n]) => a + n, 0)} for a limit`,
          ),
          limits.length ? limits.map(([name, n]) => `${name}: ${n}`).join(', ') : null,
          health.backlog
            ? `backlog ${health.backlog.now}${health.backlog.five_minutes_ago !== null ? ` (5 min ago ${health.backlog.five_minutes_ago})` : ''}`
            : null,
        )
      : null,
    card('Database', ok(health.database?.ok), health.database?.latency_ms !== undefined ? `${health.database.latency_ms} ms` : null, health.database?.error),
    card('Queue', ok(health.queue?.ok), health.queue?.queued !== undefined ? `${health.queue.queued} queued, ${health.queue.active} active` : null),
    card(
      'Schedulers',
      ok(health.schedulers?.ticking),
      health.schedulers?.alive !== undefined ? `${health.schedulers.alive ?? 0} alive` : null,
      health.schedulers?.last_tick_at ? `last tick ${relative(health.schedulers.last_tick_at)}` : null,
    ),
    detailed ? card('Workers', badge(health.workers?.alive ? 'success' : 'skipped', `${health.workers?.alive ?? 0} alive`)) : null,
  ];
  const warnings = health.monitor?.warnings ?? [];
  const reasons = health.reasons ?? [];

  let gauges = null;
  if (detailed) {
    /** @type {string} */
    const text = await api('GET', '/metrics', undefined, { text: true }).catch(() => '');
    const metrics = parseMetrics(text);
    /**
     * @param {string} name
     * @param {(labels: Record<string, string>) => boolean} [pred]
     */
    const sum = (name, pred = () => true) => metrics.filter((m) => m.name === name && pred(m.labels)).reduce((a, m) => a + m.value, 0);
    /** @type {[string, number][]} */
    const rows = [
      ['Due backlog (crons)', sum('agentcron_due_backlog', (l) => l.kind === 'cron')],
      ['Due backlog (maintenance)', sum('agentcron_due_backlog', (l) => l.kind !== 'cron')],
      ['Runs running', sum('agentcron_runs_in_progress', (l) => l.status === 'running')],
      ['Runs pending', sum('agentcron_runs_in_progress', (l) => l.status === 'pending')],
      ['Run queue: ready', sum('agentcron_queue_jobs', (l) => l.queue === 'agentcron.run' && l.state === 'ready')],
      ['Run queue: deferred', sum('agentcron_queue_jobs', (l) => l.queue === 'agentcron.run' && l.state === 'deferred')],
      ...['api', 'scheduler', 'worker'].map(
        (role) => /** @type {[string, number]} */ ([`Live ${role} processes`, sum('agentcron_processes_alive', (l) => l.role === role)]),
      ),
    ];
    gauges = metrics.length
      ? table(
          ['Gauge (whole deployment, /metrics)', { label: 'Now', class: 'num' }],
          rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', { class: 'num' }, String(v)))),
          { id: 'gauges' },
        )
      : null;
  }

  // The last hour of the crons this key owns: their ledger rows of the hour, in one request.
  const since = new Date(Date.now() - HOUR).toISOString();
  /** @type {Occurrence[]} */
  const occurrences = await api('GET', `/runs/crons/occurrences?scheduled_after=${encodeURIComponent(since)}&limit=${CHART_OCCURRENCES}`);
  const crons = new Set(occurrences.map((o) => o.cron_id)).size;
  const buckets = bucketize(occurrences);
  const fired = buckets.reduce((a, b) => a + b.ok + b.bad + b.other, 0);
  const lags = buckets.filter((b) => b.lagN);
  const meanLag = lags.length ? lags.reduce((a, b) => a + b.lagSum, 0) / lags.reduce((a, b) => a + b.lagN, 0) : null;

  put(
    view,
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Health'),
      actionButton('Refresh', () => renderHealth(view), { class: 'secondary', id: 'health-refresh' }),
    ),
    h('div', { class: 'stats', id: 'health-cards' }, cards),
    reasons.length
      ? h(
          'div',
          { class: 'card warn', id: 'health-reasons' },
          h('h3', {}, health.status === 'degraded' ? 'Degraded: the deployment serves, behind' : 'Why'),
          h(
            'ul',
            {},
            reasons.map((r) => h('li', {}, r)),
          ),
        )
      : null,
    detailed ? null : h('p', { class: 'muted' }, 'Process and queue details are shown to admin keys.'),
    warnings.length
      ? h(
          'div',
          { class: 'card warn' },
          h('h3', {}, 'Monitor warnings'),
          h(
            'ul',
            {},
            warnings.map((w) => h('li', {}, typeof w === 'string' ? w : JSON.stringify(w))),
          ),
        )
      : null,
    gauges,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'The last hour'),
      h(
        'p',
        { class: 'muted', id: 'chart-summary' },
        `${fired} fired and ${buckets.reduce((a, b) => a + b.skipped, 0)} skipped occurrences of ${crons} ` +
          `crons${session.everyUser ? ' this admin key owns' : ''}${occurrences.length === CHART_OCCURRENCES ? ` (the latest ${CHART_OCCURRENCES})` : ''}; ` +
          `mean fire lag ${formatDuration(meanLag)}. Bars: occurrences per 5 minutes by outcome; line: mean fire lag of scheduled ones.`,
      ),
      chart(buckets),
    ),
  );
}
