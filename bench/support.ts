// What `npm run bench` (bench/main.ts) is built from: a PostgreSQL server, a fresh database per
// measurement, the Procfile processes spawned with their default settings (and always killed, even
// when the bench fails or is interrupted), and a few statistics. Nothing here knows what is measured.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { configSchema, loadConfig } from '../libs/config/index.ts';
import { createPool, migrate, startEmbeddedPostgres } from '../libs/db/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { createLogger } from '../libs/log/index.ts';
import { installQueueSchema, queueSettings } from '../libs/queue/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ECHO = defaultAssistantId('echo');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const logger = createLogger({ level: 'warn', json: false, service: 'bench' });

// ---------------------------------------------------------------------------------------------
// The server and one database per measurement

export interface Server {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/** DATABASE_URL's server, or an embedded PostgreSQL of the bench's own when it is not set (started with `settings`). */
export async function startServer(settings: Record<string, string> = {}): Promise<Server> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, embedded: false, stop: async () => {} };
  const port = Number(process.env.EMBEDDED_PG_PORT ?? 54349);
  const e = await startEmbeddedPostgres({ dataDir: path.join(ROOT, '.agentcron/bench-pgdata'), port, database: 'bench', settings });
  return { url: e.url, embedded: true, stop: () => e.stop() };
}

export interface BenchDb {
  name: string;
  url: string;
  /** The bench's own observer connections (small: they must not compete with the processes). */
  pool: Pool;
  drop(): Promise<void>;
}

const created = new Set<string>();

async function admin<T>(server: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A database of its own on the server (agentcron_bench_<label>_<random>), set up as the `release`
 * step leaves it: migrations, pg-boss's schema and queues with the default policy, and the
 * default assistants (the echo assistant the crons use). `migrationsDir`: another set of migrations.
 */
export async function freshDatabase(server: string, label: string, migrationsDir?: string): Promise<BenchDb> {
  const name = `agentcron_bench_${label}_${randomBytes(3).toString('hex')}`;
  await admin(server, (c) => c.query(`CREATE DATABASE ${name}`));
  created.add(name);
  const u = new URL(server);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, { max: 3, applicationName: 'agentcron-bench' });
  const drop = async () => {
    await pool.end().catch(() => {});
    await admin(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    created.delete(name);
  };
  try {
    await migrate(pool, migrationsDir);
    await installQueueSchema({ connectionString: url, schema: 'pgboss', settings: queueSettings(loadConfig({})), logger });
    await ensureDefaultAssistants(pool, ['echo']);
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  }
  return { name, url, pool, drop };
}

/** Drops every database this bench created and has not dropped yet (after a failure). */
export async function dropLeftovers(server: string): Promise<void> {
  for (const name of [...created]) {
    await admin(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
    created.delete(name);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes: spawned as the Procfile does, killed whatever happens

export interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The last 64 KiB of stdout + stderr. */
  tail(): string;
  /** Resolves once a line matching `re` was written (rejects if the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the first match of `re` in what the process writes from now on. */
  next(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
  live.clear();
}
process.on('exit', killAll);

const interruptHooks: (() => Promise<void>)[] = [];
/** Runs on SIGINT/SIGTERM/SIGHUP after the processes are killed (dropping databases, stopping the server). */
export function onInterrupt(fn: () => Promise<void>): void {
  interruptHooks.push(fn);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}: killing the processes it started, dropping its databases\n`);
    killAll();
    const cleanup = (async () => {
      for (const fn of interruptHooks) await fn().catch(() => {});
    })();
    const deadline = new Promise((r) => setTimeout(r, 15_000).unref());
    void Promise.race([cleanup, deadline]).then(() => process.exit(130));
  });
}

/** Kills every process still running (the end of a measurement, or a failure). */
export async function killProcesses(): Promise<void> {
  const waits = [...live].map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()))));
  killAll();
  await Promise.all(waits);
}

/**
 * `node <script>` from the project root with exactly `env` (plus PATH and HOME): no tuning
 * variable leaks in from the bench's own environment. Output is read (a full pipe would stall the
 * process) and only its tail kept.
 */
export function spawnNode(name: string, args: string[], env: Record<string, string>, program: string = process.execPath): Proc {
  const child = spawn(program, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  const watchers: { re: RegExp; from: number; resolve(m: RegExpExecArray): void }[] = [];
  let written = 0; // bytes written in all (out keeps only the tail)
  const onData = (b: Buffer) => {
    const text = b.toString();
    written += text.length;
    out = (out + text).slice(-65536);
    for (const w of [...watchers]) {
      // From where this watcher started (or 256 characters back, for a line split across chunks).
      const since = out.slice(-Math.min(out.length, written - w.from));
      const m = w.re.exec(since);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  const watch = (re: RegExp, from: number, timeoutMs: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no ${re} within ${timeoutMs} ms; output: ${out.slice(-2000)}`)), timeoutMs);
      watchers.push({
        re,
        from,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before ${re}; output: ${out.slice(-2000)}`));
      });
    });
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      live.delete(child);
      r(code);
    }),
  );
  const proc: Proc = {
    name,
    child,
    exited,
    tail: () => out,
    async waitFor(re, timeoutMs = 60_000) {
      if (re.test(out)) return;
      await watch(re, Math.max(0, written - 256), timeoutMs);
    },
    next: (re, timeoutMs = 10_000) => watch(re, written, timeoutMs),
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return proc;
}

/** A Procfile process (`node apps/<role>/main.ts`, what apps/start.sh execs) on `databaseUrl`. */
export function spawnRole(role: 'scheduler' | 'worker' | 'api', databaseUrl: string, extraEnv: Record<string, string> = {}, preload?: string): Proc {
  const args = [...(preload ? ['--import', preload] : []), path.join(ROOT, `apps/${role}/main.ts`)];
  return spawnNode(role, args, { DATABASE_URL: databaseUrl, ...extraEnv });
}

/**
 * A Procfile process exactly as the Procfile starts it (`apps/start.sh <role>`, which execs node
 * with the role's flags: the same pid); `preload` goes through NODE_OPTIONS.
 */
export function spawnProcfileRole(role: 'scheduler' | 'worker' | 'api', databaseUrl: string, extraEnv: Record<string, string> = {}, preload?: string): Proc {
  return spawnNode(
    role,
    [role],
    { DATABASE_URL: databaseUrl, ...(preload ? { NODE_OPTIONS: `--import ${preload}` } : {}), ...extraEnv },
    path.join(ROOT, 'apps/start.sh'),
  );
}

export const STARTED = { scheduler: /scheduler started/, worker: /worker started/, api: /api listening/ } as const;

/** Starts processes and waits until each says it started. */
export async function started(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as keyof typeof STARTED] ?? /ready/, 90_000)));
}

export async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(10_000)));
}

/** A fresh database for one measurement, dropped (its processes killed) whatever happens. */
export async function withDatabase<T>(server: string, label: string, fn: (db: BenchDb) => Promise<T>): Promise<T> {
  const db = await freshDatabase(server, label);
  try {
    return await fn(db);
  } finally {
    await killProcesses();
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// Crons and statistics

/** n stateless crons of the echo assistant, inserted as the API stores them, first due at `at`. */
export async function insertCrons(pool: Pool, n: number, schedule: string, at: Date): Promise<void> {
  for (let done = 0; done < n; done += 50_000) {
    await pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, next_run_date, on_run_completed)
       SELECT gen_random_uuid(), $1, 'bench', $2, '{"input": {}}', $4::timestamptz, 'delete'
         FROM generate_series(1, $3)`,
      [ECHO, schedule, Math.min(50_000, n - done), at],
    );
  }
  await pool.query('ANALYZE crons');
}

/** The database's clock, truncated to the second, plus `seconds`. */
export async function dbSecondFromNow(pool: Pool, seconds: number): Promise<Date> {
  const { rows } = await pool.query<{ at: Date }>(`SELECT date_trunc('second', now()) + make_interval(secs => $1) AS at`, [seconds]);
  return rows[0].at;
}

export async function count(pool: Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(sql, params);
  return Number(rows[0].n);
}

/** Polls `sql` (a count) until it reaches n. */
export async function waitForCount(pool: Pool, sql: string, n: number, timeoutMs: number, everyMs = 250): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await count(pool, sql);
    if (c >= n) return c;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${c}/${n} (${sql})`);
    await sleep(everyMs);
  }
}

/** Bytes of a table with its indexes and TOAST; a partitioned table counts all its partitions. */
export async function tableBytes(pool: Pool, table: string): Promise<number> {
  return count(
    pool,
    `SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS n
       FROM (SELECT relid FROM pg_partition_tree($1::regclass) UNION SELECT $1::regclass) t`,
    [table],
  );
}

/** Least-squares slope of y over x. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

export const round = (x: number, digits = 0): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : NaN);

/**
 * How long before a herd's due instant its CPU meters start: 1 s of idle, plus agentcron's
 * CRON_LOOKAHEAD_MS (its scheduler fires a stateless herd that long ahead, and that work must be
 * counted). The BullMQ peer's meters start as long before its instant: the same window in both.
 * Never before the herd is written (the insert, the upserts): a meter starts once they are done.
 */
export const HERD_METER_LEAD_MS = 1000 + configSchema.shape.CRON_LOOKAHEAD_MS.parse(process.env.CRON_LOOKAHEAD_MS);
