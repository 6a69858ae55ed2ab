// `npm run bench`: measures the scheduling engine on this machine and prints figures, ending with
// one JSON line. Each measurement gets a database of its own on DATABASE_URL's server (or on the
// embedded PostgreSQL when DATABASE_URL is not set). Nothing here is asserted: these are figures.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { CronScheduler } from '../libs/crons/index.ts';
import { createPool, migrate, startEmbeddedPostgres, withTransaction } from '../libs/db/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { createLogger } from '../libs/log/index.ts';
import { loadConfig } from '../libs/config/index.ts';
import { queueSettings, startQueue } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { insertRuns } from '../libs/runs/index.ts';
import type { NewRun } from '../libs/runs/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const logger = createLogger({ level: 'warn', json: false, service: 'bench' });
const HERD = Number(process.env.BENCH_HERD_CRONS ?? 10_000);
const LAG_CRONS = Number(process.env.BENCH_LAG_CRONS ?? 1_000);
const E2E_RUNS = Number(process.env.BENCH_E2E_RUNS ?? 5_000);
const IDLE_CRONS = Number(process.env.BENCH_IDLE_CRONS ?? 100_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const ECHO = defaultAssistantId('echo');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);

async function serverUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} };
  const e = await startEmbeddedPostgres({ dataDir: '.agentcron/bench-pgdata', port: 54349, database: 'bench' });
  return { url: e.url, stop: e.stop };
}

interface BenchDb {
  url: string;
  pool: Pool;
  boss: PgBoss;
  drop(): Promise<void>;
}

async function freshDatabase(server: string, label: string): Promise<BenchDb> {
  const name = `agentcron_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(server);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, { max: 10 });
  await migrate(pool);
  await ensureDefaultAssistants(pool, ['echo']);
  const boss = await startQueue({
    connectionString: url,
    schema: 'pgboss',
    settings: queueSettings(loadConfig({})),
    supervise: false,
    migrate: true,
    writePolicy: true,
    logger,
  });
  return {
    url,
    pool,
    boss,
    async drop() {
      await boss.stop({ graceful: false }).catch(() => {});
      await pool.end();
      const a = new pg.Client({ connectionString: server });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/** n stateless echo crons, every minute, all due at `at`. */
async function insertDueCrons(pool: Pool, n: number, at: Date | string): Promise<void> {
  await pool.query(
    `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, next_run_date, on_run_completed)
     SELECT gen_random_uuid(), $1, 'bench', '* * * * *', '{"input": {}}', $3::timestamptz, 'delete'
       FROM generate_series(1, $2)`,
    [ECHO, n, at],
  );
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function newScheduler(db: BenchDb, pool: Pool): CronScheduler {
  return new CronScheduler({
    pool,
    boss: db.boss,
    logger,
    pollIntervalSeconds: 10,
    batchSize: 1000,
    limits: { missedMax: 100, graceMs: 60_000, ledgerCap: 1000 },
    listenUrl: db.url,
  });
}

/** N crons due at the same second, with `schedulers` scheduler loops already sleeping until then. */
async function herd(server: string, n: number, schedulers: number): Promise<{ enqueue_s: number; lags: number[] }> {
  const db = await freshDatabase(server, `herd${n}`);
  try {
    const { rows } = await db.pool.query<{ due: Date }>(`SELECT date_trunc('second', now()) + interval '4 seconds' AS due`);
    const due = rows[0].due;
    await insertDueCrons(db.pool, n, due);
    await db.pool.query('ANALYZE crons');
    const pools = Array.from({ length: schedulers }, () => createPool(db.url, { max: 4 }));
    const loops = pools.map((p) => newScheduler(db, p));
    await Promise.all(loops.map((s) => s.start()));
    // Wait until every occurrence is in the ledger.
    for (;;) {
      const { rows: c } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cron_occurrences`);
      if (c[0].n >= n) break;
      await sleep(100);
    }
    await Promise.all(loops.map((s) => s.stop()));
    await Promise.all(pools.map((p) => p.end()));
    const { rows: lag } = await db.pool.query<{ lag_ms: number }>(
      `SELECT (extract(epoch FROM enqueued_at - scheduled_for) * 1000)::float8 AS lag_ms FROM cron_occurrences ORDER BY 1`,
    );
    const lags = lag.map((r) => r.lag_ms);
    return { enqueue_s: lags[lags.length - 1] / 1000, lags };
  } finally {
    await db.drop();
  }
}

/** Runs until `count` of `sql` reaches n; answers seconds elapsed. */
async function waitForCount(pool: Pool, sql: string, n: number, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(sql);
    if (rows[0].n >= n) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${rows[0].n}/${n}`);
    await sleep(50);
  }
}

function spawnNode(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, exited, output: () => out };
}

/** No-op echo runs executed end to end by one worker process. */
async function e2e(server: string, n: number): Promise<number> {
  const db = await freshDatabase(server, 'e2e');
  try {
    const runs: NewRun[] = Array.from({ length: n }, () => {
      const runId = randomUUID();
      const threadId = randomUUID();
      return {
        run_id: runId,
        thread_id: threadId,
        assistant_id: ECHO,
        user_id: 'bench',
        cron_id: null,
        scheduled_for: null,
        kwargs: { input: {} },
        multitask_strategy: 'enqueue',
        metadata: {},
        new_thread: { metadata: {}, ephemeral: true },
        serialize_key: threadId,
      };
    });
    for (let i = 0; i < runs.length; i += 1000) await withTransaction(db.pool, (c) => insertRuns(c, db.boss, runs.slice(i, i + 1000)));
    const worker = spawnNode([path.join(ROOT, 'apps/worker/main.ts')], { DATABASE_URL: db.url, WORKER_CONCURRENCY: '200', LOG_LEVEL: 'info' });
    while (!/worker started/.test(worker.output())) await sleep(20);
    const started = performance.now();
    await waitForCount(db.pool, `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'agentcron.run' AND state = 'completed'`, n);
    const seconds = (performance.now() - started) / 1000;
    worker.child.kill('SIGTERM');
    await worker.exited;
    const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM runs`);
    if (rows[0].n !== 0) say(`# warning: ${rows[0].n} runs were not finished and deleted`);
    return n / seconds;
  } finally {
    await db.drop();
  }
}

/** The ceiling: no-op pg-boss jobs completed per second by one process, batched, on the same server. */
async function rawPgBoss(server: string, n: number): Promise<number> {
  const db = await freshDatabase(server, 'raw');
  try {
    await db.boss.createQueue('bench.noop');
    for (let i = 0; i < n; i += 1000) {
      await db.boss.insert('bench.noop', Array.from({ length: Math.min(1000, n - i) }, () => ({ data: {} })));
    }
    const worker = spawnNode([path.join(ROOT, 'bench/raw-pgboss-worker.ts')], { DATABASE_URL: db.url });
    while (!/ready/.test(worker.output())) await sleep(20);
    const started = performance.now();
    await waitForCount(db.pool, `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bench.noop' AND state = 'completed'`, n);
    const seconds = (performance.now() - started) / 1000;
    worker.child.kill('SIGTERM');
    await worker.exited;
    return n / seconds;
  } finally {
    await db.drop();
  }
}

/** Queries per second an idle scheduler process sends with many enabled crons, none due. */
async function idle(server: string, n: number, seconds: number): Promise<number> {
  const db = await freshDatabase(server, 'idle');
  try {
    await insertDueCrons(db.pool, n, new Date(Date.now() + 86_400_000));
    await db.pool.query('ANALYZE crons');
    const scheduler = spawnNode(['--import', path.join(ROOT, 'bench/count-queries.ts'), path.join(ROOT, 'apps/scheduler/main.ts')], {
      DATABASE_URL: db.url,
      LOG_LEVEL: 'info',
    });
    while (!/scheduler started/.test(scheduler.output())) await sleep(20);
    await sleep(2000); // past start-up
    const read = async () => {
      const before = scheduler.output().length;
      scheduler.child.kill('SIGUSR2');
      for (;;) {
        const m = /QUERY_COUNT (\d+)\n/.exec(scheduler.output().slice(before));
        if (m) return Number(m[1]);
        await sleep(10);
      }
    };
    const a = await read();
    await sleep(seconds * 1000);
    const b = await read();
    scheduler.child.kill('SIGTERM');
    await scheduler.exited;
    return (b - a) / seconds;
  } finally {
    await db.drop();
  }
}

const server = await serverUrl();
try {
  say(`# agentcron bench on ${new URL(server.url).host}, node ${process.version}`);
  const big = await herd(server.url, HERD, 2);
  say(`herd: ${HERD} crons due in the same second, 2 schedulers: all enqueued ${big.enqueue_s.toFixed(3)} s after the due instant`);
  const small = await herd(server.url, LAG_CRONS, 1);
  const lagP50 = percentile(small.lags, 50);
  const lagP99 = percentile(small.lags, 99);
  say(`fire lag, ${LAG_CRONS} crons due at once, 1 scheduler: p50 ${lagP50.toFixed(1)} ms, p99 ${lagP99.toFixed(1)} ms`);
  const raw = await rawPgBoss(server.url, E2E_RUNS);
  say(`raw pg-boss: ${raw.toFixed(0)} no-op jobs/s (one process, batchSize 100)`);
  const runs = await e2e(server.url, E2E_RUNS);
  say(`end to end: ${runs.toFixed(0)} echo runs/s (one worker process, WORKER_CONCURRENCY=200); ratio to raw pg-boss ${(runs / raw).toFixed(2)}`);
  const idleQps = await idle(server.url, IDLE_CRONS, IDLE_SECONDS);
  say(`idle: ${idleQps.toFixed(2)} queries/s from one scheduler process with ${IDLE_CRONS} enabled crons, none due`);
  say(
    JSON.stringify({
      herd_crons: HERD,
      herd_enqueue_s: Number(big.enqueue_s.toFixed(3)),
      fire_lag_crons: LAG_CRONS,
      fire_lag_p50_ms: Number(lagP50.toFixed(1)),
      fire_lag_p99_ms: Number(lagP99.toFixed(1)),
      e2e_runs_per_s: Math.round(runs),
      raw_pgboss_jobs_per_s: Math.round(raw),
      e2e_to_raw_ratio: Number((runs / raw).toFixed(3)),
      idle_crons: IDLE_CRONS,
      idle_queries_per_s: Number(idleQps.toFixed(2)),
    }),
  );
} finally {
  await server.stop();
}
