import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../../libs/db/index.ts';
import { createTestDatabase } from '../db.ts';
import { Api } from './api.ts';
import { check } from './checker.ts';
import type { CheckedLimit, Report } from './checker.ts';
import { Cluster } from './cluster.ts';
import { ASSISTANT_MAX_CONCURRENCY, Driver, GRAPH_LIMIT, LIMITED_GRAPH_ID } from './driver.ts';
import type { KillPlan } from './driver.ts';
import { setupJobRecording, setupRecording } from './recording.ts';
import { ROOT, freePort, spawnProcess } from './spawn.ts';
import type { Spawner } from './spawn.ts';

// One torture run: real api, scheduler and worker processes on a database, the driver's random
// API calls and kills for `seconds`, then every cron disabled, a wait until nothing is active,
// and the checker's verdict. test/torture.test.ts runs it for a minute; for longer runs:
//   DATABASE_URL=postgres://… node test/support/torture/run.ts [seconds] [crons]
// (a database of its own is created on that server and dropped afterwards, unless TORTURE_KEEP_DB=1).

export const TORTURE_CONFIG = path.join(ROOT, 'test/fixtures/torture.json');

export interface RunOptions {
  /** The database under test (migrated here if it is not yet). */
  databaseUrl: string;
  /** How long the driver runs. */
  seconds: number;
  crons?: number;
  schedulers?: number;
  workers?: number;
  spawn?: Spawner;
  /** Kill rounds (a worker, then a scheduler); null: none. Default every 10-15 s, none in the last 10 s. */
  kills?: KillPlan | null;
  /** Longest wait for the system to settle after the drive. */
  settleMs?: number;
  lanes?: number;
  /** Added to every process's environment. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface RunReport extends Report {
  timings: Record<string, number>;
  /** Lines of the processes that mention an error (see Cluster.errorLines). */
  errorLines: string[];
  /** API answers by call and status, e.g. `trigger 200×312 409×9`. */
  apiStatuses: string;
}

/** The environment every process of a torture run gets. */
export function tortureEnv(databaseUrl: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    CRON_ALLOW_SECONDS_SCHEDULE: 'true',
    AGENTCRON_CONFIG: TORTURE_CONFIG,
    CRON_MAX_PER_USER: '0',
    CRON_POLL_INTERVAL_SECONDS: '2',
    // A killed worker's runs are retried after 10 s (the minimum) plus the retry delay.
    WORKER_HEARTBEAT_SECONDS: '10',
    QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
    HEARTBEAT_INTERVAL_SECONDS: '2',
    // 5 processes share a server other test files use too.
    DATABASE_POOL_MAX: '4',
    SHUTDOWN_GRACE_SECONDS: '5',
    ...extra,
  };
}

/** The limits the torture's runs are subject to (test/fixtures/torture.json and the driver's limited assistant). */
export function tortureLimits(driver: Driver): CheckedLimit[] {
  const limits: CheckedLimit[] = [{ ...GRAPH_LIMIT, graph_id: LIMITED_GRAPH_ID }];
  const a = driver.limitedAssistantId;
  if (a) limits.push({ name: `assistant:${a}`, max_concurrency: ASSISTANT_MAX_CONCURRENCY, rate: null, assistant_id: a });
  return limits;
}

/** A pool for the driver and the checker that survives the database going away. */
export function observerPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: 'torture-observer', connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  return pool;
}

export interface Settled {
  settled: boolean;
  ms: number;
  active: number;
  open: number;
}

/**
 * Waits until no run is pending or running and no ledger row is enqueued or running, or until
 * ledger rows stay open with no run active for stableMs (nothing will settle them: the checker
 * reports them), at most timeoutMs. Queries failing (the database restarting) count as not settled.
 */
export async function settle(pool: pg.Pool, timeoutMs: number, stableMs = 3000): Promise<Settled> {
  const started = Date.now();
  let last = { active: -1, open: -1 };
  let stableSince = Date.now();
  for (;;) {
    try {
      const { rows } = await pool.query<{ active: number; open: number }>(
        `SELECT (SELECT count(*)::int FROM runs WHERE status IN ('pending', 'running')) AS active,
                (SELECT count(*)::int FROM cron_occurrences WHERE status IN ('enqueued', 'running')) AS open`,
      );
      const now = rows[0];
      if (now.active !== last.active || now.open !== last.open) stableSince = Date.now();
      last = now;
      if (now.active === 0 && (now.open === 0 || Date.now() - stableSince >= stableMs)) {
        return { settled: true, ms: Date.now() - started, ...now };
      }
    } catch {
      // the database is away: not settled yet
    }
    if (Date.now() - started >= timeoutMs) return { settled: false, ms: Date.now() - started, ...last };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Appends the final SIGTERM's exit codes to a report: a process that does not drain to exit 0 breaks a promise too. */
export function addShutdown(report: Report, cluster: Cluster): void {
  const unclean = cluster.shutdown.filter((s) => s.code !== 0);
  report.counts.unclean_shutdowns = unclean.length;
  if (unclean.length)
    report.failures.push(`processes that did not exit 0 on SIGTERM: ${unclean.length} (${unclean.map((s) => `${s.role} pid ${s.pid}: ${s.code}`).join(', ')})`);
}

/** `op status×n …` for every call the driver made, by op. */
export function apiStatuses(api: Api): string {
  const byOp = new Map<string, Map<number, number>>();
  for (const c of api.calls) {
    const m = byOp.get(c.op) ?? new Map<number, number>();
    m.set(c.status, (m.get(c.status) ?? 0) + 1);
    byOp.set(c.op, m);
  }
  return [...byOp.entries()].map(([op, m]) => `${op} ${[...m.entries()].map(([st, n]) => `${st || 'none'}×${n}`).join(' ')}`).join(', ');
}

export async function run(o: RunOptions): Promise<RunReport> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const mark = (name: string) => (timings[name] = Math.round((Date.now() - t0) / 100) / 10);
  const pool = observerPool(o.databaseUrl);
  await migrate(pool);
  await setupRecording(pool);
  const port = await freePort();
  const cluster = new Cluster({
    spawn: o.spawn ?? spawnProcess,
    env: tortureEnv(o.databaseUrl, port, o.env),
    schedulers: o.schedulers ?? 2,
    workers: o.workers ?? 2,
    log,
  });
  try {
    await cluster.start();
    mark('started');
    // Before any run job exists (the crons are created next).
    await setupJobRecording(pool);
    const api = new Api(`http://127.0.0.1:${port}`);
    const driver = new Driver({ api, pool, cluster, log });
    await driver.createCrons(o.crons ?? 50);
    mark('crons_created');
    log(`${driver.crons.length} crons created; driving for ${o.seconds} s`);
    await driver.drive({
      seconds: o.seconds,
      lanes: o.lanes ?? 3,
      kills: o.kills === undefined ? { everyMs: [10_000, 15_000], quietTailMs: 10_000 } : o.kills,
    });
    mark('driven');
    driver.closeWindows(Date.now());
    await driver.disableAll();
    mark('disabled');
    // A run on a worker killed at T is retried after the heartbeat (10 s), a supervise pass (1 s),
    // the first retry delay (5-10 s) and a worker poll (2 s): the wait covers that after the last kill,
    // with half as much again for a loaded machine (beside two CPU burners a settle took 11-16 s, and
    // once 21 s: the last kill's run still retrying). It ends as soon as everything has settled.
    const lastKill = Math.max(0, ...cluster.deaths.filter((d) => d.role === 'worker').map((d) => d.at.getTime()));
    const settled = await settle(pool, Math.max(o.settleMs ?? 20_000, lastKill + 45_000 - Date.now()));
    mark('settled');
    log(`settle: ${JSON.stringify(settled)}`);
    const report = await check({
      pool,
      crons: driver.crons,
      deaths: cluster.deaths,
      calls: api.calls,
      settled: settled.settled,
      limits: tortureLimits(driver),
    });
    mark('checked');
    await cluster.stop(15_000);
    addShutdown(report, cluster);
    mark('stopped');
    report.counts.seconds = timings.stopped;
    report.summary += ` unclean_shutdowns=${report.counts.unclean_shutdowns} settle_ms=${settled.ms} total_s=${timings.stopped}`;
    return { ...report, timings, errorLines: cluster.errorLines, apiStatuses: apiStatuses(api) };
  } finally {
    await cluster.stop(5_000).catch(() => {});
    await pool.end().catch(() => {});
  }
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 120);
  const crons = Number(process.argv[3] ?? 50);
  const db = await createTestDatabase('torture_cli');
  let code: number;
  try {
    const report = await run({ databaseUrl: db.url, seconds, crons, settleMs: 30_000, log: (l) => process.stdout.write(`# ${l}\n`) });
    process.stdout.write(`${report.summary}\n`);
    for (const f of report.failures) process.stdout.write(`FAIL ${f}\n`);
    process.stdout.write(`# api: ${report.apiStatuses}\n`);
    for (const r of report.reexecutions) process.stdout.write(`# re-execution ${r.idempotency_key} #${r.attempt}: ${r.reason}\n`);
    for (const l of report.errorLines.slice(0, 40)) process.stdout.write(`# ${l}\n`);
    code = report.failures.length ? 1 : 0;
  } finally {
    if (process.env.TORTURE_KEEP_DB) {
      process.stdout.write(`# TORTURE_KEEP_DB: database ${db.name} kept for inspection\n`);
      await db.pool.end();
    } else await db.drop();
  }
  process.exit(code);
}
