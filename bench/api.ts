// `node bench/api.ts`: the crons API's latency with a large store (issue 11). Creates a database
// of its own on DATABASE_URL's server (dropped afterwards unless BENCH_KEEP=1), migrates it, inserts
// BENCH_CRONS crons owned by one user (AUTH_MODE=none's implicit 'anonymous': search is per owner,
// so one owner with every cron is the worst case) plus BENCH_USERS users with BENCH_USER_CRONS
// each (below the default cap) in SQL, then starts real api processes and drives each endpoint
// open-loop at BENCH_RATE requests/s for BENCH_SECONDS (a request is sent on its schedule whether
// or not earlier ones have answered: latency is never hidden by waiting). Prints per scenario the
// statuses, p50/p99/max and the rate achieved, then EXPLAIN (ANALYZE, BUFFERS) of the queries
// behind search, count and the create's per-user cap, as the repository sends them.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test BENCH_CRONS=100000 BENCH_RATE=50 BENCH_SECONDS=20 node bench/api.ts
//   BENCH_ONLY='search|count' selects scenarios by name (a regular expression; 'plans' for the EXPLAINs).
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { countCrons, lockAndCountUserCrons, searchCrons } from '../libs/crons/index.ts';
import type { CronSearch } from '../libs/crons/index.ts';
import { createPool, migrate } from '../libs/db/index.ts';
import type { PoolClient, Queryable } from '../libs/db/index.ts';
import { freePort, spawnProcess } from '../test/support/torture/spawn.ts';
import type { Proc } from '../test/support/torture/spawn.ts';

const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CRONS = Number(process.env.BENCH_CRONS ?? 100_000);
const USERS = Number(process.env.BENCH_USERS ?? 1000);
const USER_CRONS = Number(process.env.BENCH_USER_CRONS ?? 50);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const ONLY = new RegExp(process.env.BENCH_ONLY ?? '.');
const BIG = 'anonymous';
/** A user already at the default cap of 100: every create is refused (429). */
const FULL = 'full';

const t0 = Date.now();
const say = (line: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the database ----

const name = `agentcron_bench_api_${randomBytes(4).toString('hex')}`;
async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: SERVER });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
await admin(`CREATE DATABASE ${name}`);
const u = new URL(SERVER);
u.pathname = `/${name}`;
const url = u.toString();
const pool = createPool(url, { max: 4, applicationName: 'bench-api' });

const keyOf = (i: number) => `bench-key-${String(i).padStart(4, '0')}`;
const userOf = (i: number) => `u${String(i).padStart(4, '0')}`;
const ECHO_GRAPH = 'echo';

async function seed(): Promise<void> {
  await migrate(pool);
  await ensureDefaultAssistants(pool, [ECHO_GRAPH]);
  const started = Date.now();
  // The big owner's crons: 9 assistants of their own plus the default echo one (a tenth each),
  // 5% bound to threads, 5% finished (next_run_date NULL, disabled), 10% with an end_time, a third
  // with metadata ({"team": "t0".."t9", "env": "prod"}), created over the last year.
  await pool.query(
    `INSERT INTO assistants (assistant_id, graph_id, name, user_id)
     SELECT gen_random_uuid(), 'echo', 'bench ' || i, $1 FROM generate_series(1, 9) i`,
    [BIG],
  );
  await pool.query(`INSERT INTO threads (thread_id, user_id) SELECT gen_random_uuid(), $1 FROM generate_series(1, greatest($2::int / 20, 1))`, [BIG, CRONS]);
  await pool.query(
    `WITH a AS (SELECT array_agg(assistant_id ORDER BY assistant_id) AS ids FROM assistants WHERE user_id = $1 OR user_id IS NULL),
          t AS (SELECT array_agg(thread_id) AS ids FROM threads WHERE user_id = $1),
          g AS (SELECT i, now() - random() * interval '365 days' AS created FROM generate_series(1, $2::int) i)
     INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, timezone, end_time, enabled, on_run_completed,
                        payload, metadata, next_run_date, finished_at, created_at, updated_at)
     SELECT gen_random_uuid(), a.ids[1 + g.i % 10],
            CASE WHEN g.i % 20 = 7 THEN t.ids[1 + (g.i / 20) % cardinality(t.ids)] END,
            $1, '*/5 * * * *', CASE WHEN g.i % 4 = 0 THEN 'Europe/Paris' END,
            CASE WHEN g.i % 10 = 1 THEN now() + random() * interval '30 days' END,
            g.i % 20 <> 3,
            CASE WHEN g.i % 20 = 7 THEN NULL ELSE 'delete' END,
            jsonb_build_object('input', jsonb_build_object('topic', 'news ' || g.i)),
            CASE WHEN g.i % 3 = 0 THEN jsonb_build_object('team', 't' || g.i % 10, 'env', 'prod') ELSE '{}' END,
            CASE WHEN g.i % 20 = 3 THEN NULL ELSE now() + random() * interval '1 day' END,
            CASE WHEN g.i % 20 = 3 THEN g.created + interval '1 day' END,
            g.created, g.created + random() * (now() - g.created)
       FROM g, a, t`,
    [BIG, CRONS],
  );
  // Many users below the cap, and one at it.
  await pool.query(
    `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, metadata, next_run_date, created_at, updated_at)
     SELECT gen_random_uuid(), a.assistant_id, u.name, '0 9 * * *', '{"input": {}}', '{}', now() + random() * interval '1 day', c.at, c.at
       FROM (SELECT assistant_id FROM assistants WHERE user_id IS NULL AND graph_id = 'echo') a,
            (SELECT 'u' || lpad(i::text, 4, '0') AS name FROM generate_series(0, $1::int - 1) i
             UNION ALL SELECT $3) u,
            LATERAL (SELECT now() - random() * interval '365 days' AS at FROM generate_series(1, CASE WHEN u.name = $3 THEN 100 ELSE $2::int END)) c`,
    [USERS, USER_CRONS, FULL],
  );
  // As autovacuum would have left a table that size (visibility map, statistics).
  await pool.query(`VACUUM ANALYZE crons, threads, assistants`);
  const { rows } = await pool.query<{ n: number; size: string }>(
    `SELECT count(*)::int AS n, pg_size_pretty(pg_total_relation_size('crons')) AS size FROM crons`,
  );
  say(
    `seeded ${rows[0].n} crons (${CRONS} owned by ${BIG}, ${USERS}×${USER_CRONS} by other users, 100 by ${FULL}; crons table with indexes ` +
      `${rows[0].size}) in ${Date.now() - started} ms`,
  );
}

// ---- the api ----

async function startApi(label: string, env: Record<string, string>): Promise<{ proc: Proc; base: string }> {
  const port = await freePort();
  const proc = spawnProcess('api', { DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${base}/ok`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`api (${label}) did not start:\n${proc.output.slice(-20).join('\n')}`);
    await sleep(200);
  }
  say(
    `api up (${label}): ${Object.entries(env)
      .filter(([k]) => k !== 'AUTH_API_KEYS')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  return { proc, base };
}

async function stopApi(proc: Proc): Promise<void> {
  proc.kill('SIGTERM');
  await Promise.race([proc.exited, sleep(15_000)]);
}

// ---- the load ----

interface Request {
  path: string;
  body: unknown;
  key?: string;
}

export interface Result {
  scenario: string;
  sent: number;
  statuses: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
  rate: number;
  /** The machine's 1-minute load average when the scenario ended (2 cores: above ~2, something else ran too). */
  load: number;
}
const results: Result[] = [];

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** Sends request i at start + i/RATE seconds, whatever the earlier ones are doing. */
async function drive(base: string, scenario: string, make: (i: number) => Request): Promise<void> {
  if (!ONLY.test(scenario)) return;
  const n = Math.round(RATE * SECONDS);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let lastEnd = start;
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const req = make(i);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (req.key) headers['x-api-key'] = req.key;
    pending.push(
      fetch(`${base}${req.path}`, { method: 'POST', headers, body: JSON.stringify(req.body) })
        .then(
          async (res) => {
            await res.arrayBuffer();
            return String(res.status);
          },
          (err: Error) => `error:${err.message.slice(0, 40)}`,
        )
        .then((status) => {
          const end = performance.now();
          // From when it was due: a driver that fell behind does not hide the wait.
          latencies.push(end - due);
          lastEnd = Math.max(lastEnd, end);
          statuses[status] = (statuses[status] ?? 0) + 1;
        }),
    );
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  const r: Result = {
    scenario,
    sent: n,
    statuses,
    p50: Math.round(quantile(latencies, 0.5)),
    p99: Math.round(quantile(latencies, 0.99)),
    max: Math.round(latencies[latencies.length - 1]),
    rate: Math.round((n / ((lastEnd - start) / 1000)) * 10) / 10,
    load: Math.round(loadavg()[0] * 100) / 100,
  };
  results.push(r);
  const st = Object.entries(statuses)
    .map(([s, c]) => `${s}×${c}`)
    .join(' ');
  say(
    `${scenario.padEnd(44)} p50 ${String(r.p50).padStart(5)} ms  p99 ${String(r.p99).padStart(5)} ms  max ${String(r.max).padStart(5)} ms  ` +
      `${String(r.rate).padStart(5)} req/s  [${st}]  load ${r.load}`,
  );
  await sleep(1000);
}

const searches: [string, Record<string, unknown>][] = [
  ['search {}', {}],
  ['search sort_by next_run_date asc', { sort_by: 'next_run_date', sort_order: 'asc' }],
  ['search sort_by next_run_date desc', { sort_by: 'next_run_date', sort_order: 'desc' }],
  ['search sort_by updated_at desc', { sort_by: 'updated_at' }],
  ['search assistant_id echo', { assistant_id: ECHO_GRAPH }],
  ['search metadata team t3', { metadata: { team: 't3' } }],
  ['search limit 100 offset 1000', { limit: 100, offset: 1000 }],
  ['search sort_by end_time desc', { sort_by: 'end_time', sort_order: 'desc' }],
  ['search sort_by end_time asc', { sort_by: 'end_time', sort_order: 'asc' }],
  ['search sort_by thread_id desc', { sort_by: 'thread_id', sort_order: 'desc' }],
  ['search sort_by end_time desc limit 100 offset 20000', { sort_by: 'end_time', sort_order: 'desc', limit: 100, offset: 20000 }],
];
const newCron = (i: number) => ({ assistant_id: ECHO_GRAPH, schedule: '0 9 * * *', input: { n: i }, metadata: { bench: true } });

// ---- the plans ----

/** The repository's own SQL, run under EXPLAIN (ANALYZE, BUFFERS): what the api sends, as it sends it. */
async function explain(title: string, fn: (db: Queryable) => Promise<unknown>): Promise<void> {
  const client = await pool.connect();
  const lines: string[] = [];
  const explaining = {
    query: async (text: string, params?: unknown[]) => {
      const res = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, params);
      lines.push(`  -- ${text.replace(/\s+/g, ' ').slice(0, 220)}`, ...res.rows.map((r: Record<string, string>) => `  ${r['QUERY PLAN']}`));
      return { rows: [], rowCount: 0 };
    },
  } as unknown as PoolClient;
  try {
    await client.query('BEGIN');
    await fn(explaining).catch(() => {});
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
  process.stdout.write(`\n# ${title}\n${lines.join('\n')}\n`);
}

const search = (over: Partial<CronSearch>): CronSearch => ({ sort_by: 'created_at', sort_order: 'desc', limit: 10, offset: 0, ...over });

let exitCode = 0;
let api: { proc: Proc; base: string } | undefined;
try {
  await seed();
  const echo = (await pool.query<{ assistant_id: string }>(`SELECT assistant_id FROM assistants WHERE user_id IS NULL AND graph_id = 'echo'`)).rows[0]
    .assistant_id;

  if (ONLY.test('plans')) {
    await explain(`search {} (${BIG}, ${CRONS} crons)`, (db) => searchCrons(db, BIG, search({})));
    await explain('search sort_by next_run_date asc', (db) => searchCrons(db, BIG, search({ sort_by: 'next_run_date', sort_order: 'asc' })));
    await explain('search sort_by next_run_date desc', (db) => searchCrons(db, BIG, search({ sort_by: 'next_run_date', sort_order: 'desc' })));
    await explain('search sort_by updated_at desc', (db) => searchCrons(db, BIG, search({ sort_by: 'updated_at' })));
    await explain('search assistant_id echo', (db) => searchCrons(db, BIG, search({ assistant_id: echo })));
    await explain('search metadata team t3', (db) => searchCrons(db, BIG, search({ metadata: { team: 't3' } })));
    await explain('search sort_by end_time desc', (db) => searchCrons(db, BIG, search({ sort_by: 'end_time', sort_order: 'desc' })));
    await explain('search sort_by thread_id asc', (db) => searchCrons(db, BIG, search({ sort_by: 'thread_id', sort_order: 'asc' })));
    await explain('search sort_by end_time desc limit 100 offset 20000', (db) =>
      searchCrons(db, BIG, search({ sort_by: 'end_time', sort_order: 'desc', limit: 100, offset: 20000 })),
    );
    await explain('search sort_by end_time desc of a user with 50 crons', (db) =>
      searchCrons(db, userOf(1), search({ sort_by: 'end_time', sort_order: 'desc' })),
    );
    await explain('search {} of a user with 50 crons', (db) => searchCrons(db, userOf(1), search({})));
    await explain(`count {} (${BIG})`, (db) => countCrons(db, BIG, {}));
    await explain('count assistant_id echo', (db) => countCrons(db, BIG, { assistant_id: echo }));
    await explain(`create: the per-user cap check (${BIG})`, (db) => lockAndCountUserCrons(db as PoolClient, BIG));
  }

  // 1. One owner with every cron (AUTH_MODE=none), no cap.
  api = await startApi('one owner, no cap', { AUTH_MODE: 'none', CRON_MAX_PER_USER: '0' });
  for (const [label, body] of searches) await drive(api.base, `${label} [${BIG}]`, () => ({ path: '/runs/crons/search', body }));
  await drive(api.base, `count {} [${BIG}]`, () => ({ path: '/runs/crons/count', body: {} }));
  await drive(api.base, `count assistant_id echo [${BIG}]`, () => ({ path: '/runs/crons/count', body: { assistant_id: ECHO_GRAPH } }));
  await drive(api.base, `create, CRON_MAX_PER_USER=0 [${BIG}]`, (i) => ({ path: '/runs/crons', body: newCron(i) }));
  await stopApi(api.proc);

  // 2. The same owner with the cap on (raised above what they own): the cap check's own cost.
  if (ONLY.test('create, CRON_MAX_PER_USER=1000000')) {
    api = await startApi('one owner, cap on', { AUTH_MODE: 'none', CRON_MAX_PER_USER: '1000000' });
    await drive(api.base, `create, CRON_MAX_PER_USER=1000000 [${BIG}]`, (i) => ({ path: '/runs/crons', body: newCron(i) }));
    await stopApi(api.proc);
  }

  // 3. Many users (AUTH_MODE=api_key), the default cap of 100: each request from the next user.
  const keys = [...Array.from({ length: USERS }, (_, i) => `${keyOf(i)}:${userOf(i)}`), `bench-key-full:${FULL}`];
  api = await startApi(`${USERS} users, default cap`, { AUTH_MODE: 'api_key', AUTH_API_KEYS: keys.join(',') });
  const base = api.base;
  await drive(base, `search {} [${USERS} users]`, (i) => ({ path: '/runs/crons/search', body: {}, key: keyOf(i % USERS) }));
  await drive(base, `count {} [${USERS} users]`, (i) => ({ path: '/runs/crons/count', body: {}, key: keyOf(i % USERS) }));
  await drive(base, `create, cap 100 [${USERS} users below it]`, (i) => ({ path: '/runs/crons', body: newCron(i), key: keyOf(i % USERS) }));
  await drive(base, `create, cap 100 [one user at it: 429]`, (i) => ({ path: '/runs/crons', body: newCron(i), key: 'bench-key-full' }));
  await stopApi(api.proc);
  api = undefined;

  process.stdout.write(`\n${JSON.stringify({ bench: 'api', crons: CRONS, rate: RATE, seconds: SECONDS, results })}\n`);
} catch (err) {
  exitCode = 1;
  say(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  if (api) say(api.proc.output.slice(-20).join('\n'));
} finally {
  if (api) await stopApi(api.proc).catch(() => {});
  await pool.end().catch(() => {});
  if (!process.env.BENCH_KEEP) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: Error) => say(`drop failed: ${err.message}`));
  else say(`BENCH_KEEP: database ${name} kept`);
}
process.exit(exitCode);
