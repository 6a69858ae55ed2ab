// `npm run bench`: what a user of agentcron feels, measured on this machine with the Procfile's
// processes (`node apps/scheduler/main.ts`, `node apps/worker/main.ts`) started with DATABASE_URL
// alone, so every setting is its default. Prints a table and ends with one JSON line. Each
// measurement gets a database of its own on DATABASE_URL's server (created and dropped here), or
// on an embedded PostgreSQL when DATABASE_URL is not set. Nothing is asserted: these are figures.
//
//   1. lag: N stateless echo crons due at the same instant (1,000 and 10,000; 100,000 with
//      `npm run bench -- --100k` or BENCH_100K=1), one scheduler and one worker process: from the
//      scheduled instant to the run's start (the worker's claim, on the database clock), p50/p99/max,
//      with the enqueue lag (the scheduler's ledger row) beside it. Then, labelled TUNED, the
//      10,000 case with 2 worker processes and with WORKER_CONCURRENCY=400 (`--no-tuned` skips them).
//   2. sustained: 2,000 every-second crons; executed runs/s in a steady window and whether the
//      backlog grows, with 1 and 2 worker processes, against raw pg-boss (a producer inserting
//      2,000 jobs/s, a consumer using work()) on the same server in the same run, and raw
//      pg-boss's ceiling (a 20,000-job backlog drained).
//   3. idle: queries/s a whole deployment (api, scheduler, worker) sends with 100,000 enabled crons, none due.
//   4. limited: a herd of N crons due at once on a graph under a rate limit of 500 runs per 60 s
//      (agentcron.json, docs/flow-control.md), one scheduler and one worker: whether every run
//      started within the limit (most starts in any 60 s), none failed, lag to start, and what the
//      waiting costs the database (pg-boss job and run row updates per run: a run parked once
//      costs 2 more job updates and 1 more run update). N = 1,500 (3 windows, ~2.5 minutes);
//      `--limited=10000` for the 10,000 herd (20 windows, ~20 minutes).
//
// Each measurement also says where the CPU went (its processes, its PostgreSQL sessions, and
// anything else busy on the machine meanwhile: a busy machine makes every figure worse).
// `--only=lag,sustained,idle,limited` runs a part. BENCH_SUSTAINED_CRONS (2000), BENCH_WARMUP_SECONDS (10),
// BENCH_WINDOW_SECONDS (30), BENCH_IDLE_CRONS (100000), BENCH_IDLE_SECONDS (60),
// BENCH_LAG_SIZES (1000,10000) and BENCH_TUNED_LAG_CRONS (10000) change the sizes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { DEFAULT_MAX_CONNECTIONS, loadConfig } from '../libs/config/index.ts';
import {
  ROOT,
  STARTED,
  count,
  dbSecondFromNow,
  dropLeftovers,
  freshDatabase,
  insertCrons,
  killProcesses,
  onInterrupt,
  round,
  sleep,
  cpuMeter,
  slope,
  spawnNode,
  spawnRole,
  startServer,
  tableBytes,
  waitForCount,
} from './support.ts';
import type { BenchDb, CpuUse, Proc } from './support.ts';

const args = new Set(process.argv.slice(2));
const WITH_100K = args.has('--100k') || process.env.BENCH_100K === '1';
// --only=lag,sustained,idle (a part of the bench, while working on it)
const ONLY = new Set((process.argv.find((a) => a.startsWith('--only='))?.slice(7) ?? 'lag,sustained,idle,limited').split(','));
// --limited=N: the limited herd's size (default 1,500: 3 windows of the 500 per 60 s limit).
const LIMITED_RUNS = Number(process.argv.find((a) => a.startsWith('--limited='))?.slice(10) ?? process.env.BENCH_LIMITED_RUNS ?? 1500);
// BENCH_LIMITED_RATE=runs/seconds (default 500/60) and BENCH_LIMITED_BATCH (the scheduler's
// CRON_BATCH_SIZE, default its default) make a scaled model of a bigger herd: 1,000 runs at 50/6
// with batches of 100 has the 10,000 herd's shape (20 windows, 10 scheduler batches, the same
// pace per second) in 2 minutes. Labelled TUNED when set.
const [RATE_RUNS, RATE_SECONDS] = (process.env.BENCH_LIMITED_RATE ?? '500/60').split('/').map(Number);
const LIMIT_RATE = { runs: RATE_RUNS, per_seconds: RATE_SECONDS };
const LIMITED_BATCH = process.env.BENCH_LIMITED_BATCH;
const LIMITED_GRAPH = 'limited_echo';
const TUNED_LAG_CRONS = Number(process.env.BENCH_TUNED_LAG_CRONS ?? 10_000);
const LAG_SIZES = (process.env.BENCH_LAG_SIZES ?? '1000,10000')
  .split(',')
  .map(Number)
  .concat(WITH_100K ? [100_000] : []);
const SUSTAINED_CRONS = Number(process.env.BENCH_SUSTAINED_CRONS ?? 2000);
const WARMUP_S = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const WINDOW_S = Number(process.env.BENCH_WINDOW_SECONDS ?? 30);
const IDLE_CRONS = Number(process.env.BENCH_IDLE_CRONS ?? 100_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const RAW_QUEUE = 'bench.raw';
const DRAIN_JOBS = 20_000;
// Schedules read by the scheduler alone (it always accepts 6 fields; the API needs
// CRON_ALLOW_SECONDS_SCHEDULE=true to accept an every-second cron, which is why a user sets it).
const ONCE_A_YEAR = '0 0 1 1 *';
const EVERY_SECOND = '* * * * * *';

const t0 = Date.now();
const say = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** Starts processes and waits until each says it started. */
async function started(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as keyof typeof STARTED] ?? /ready/, 90_000)));
}

async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(10_000)));
}

async function withDatabase<T>(server: string, label: string, fn: (db: BenchDb) => Promise<T>): Promise<T> {
  const db = await freshDatabase(server, label);
  try {
    return await fn(db);
  } finally {
    await killProcesses();
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Lag from the scheduled instant to execution start

interface LagResult {
  crons: number;
  setup: LagSetup;
  enqueue: { p50: number; p99: number; max: number };
  start: { p50: number; p99: number; max: number };
  /** started_at - enqueued_at: the wait between the scheduler's commit and the worker's claim. */
  queue: { p50: number; p99: number };
  all_enqueued_s: number;
  all_started_s: number;
  all_ended_s: number;
  succeeded: number;
  inserted_late: boolean;
  /** From the insert until every run ended. */
  cpu: CpuUse;
  bytes: { crons: number; ledger: number; jobs: number; runs: number; threads: number };
}

/** A variant of the lag measurement: defaults (1 worker), or a clearly labelled tuned one. */
interface LagSetup {
  label: string;
  /** JSON key suffix ('' for the defaults). */
  key: string;
  workers: number;
  workerEnv: Record<string, string>;
}
const DEFAULTS: LagSetup = { label: 'defaults, 1 worker', key: '', workers: 1, workerEnv: {} };
const TUNED: LagSetup[] = [
  { label: 'TUNED: 2 worker processes', key: '_2_workers', workers: 2, workerEnv: {} },
  { label: 'TUNED: WORKER_CONCURRENCY=400', key: '_concurrency_400', workers: 1, workerEnv: { WORKER_CONCURRENCY: '400' } },
];

async function lag(server: string, n: number, setup: LagSetup = DEFAULTS): Promise<LagResult> {
  return withDatabase(server, `lag${n}`, async (db) => {
    const procs = [spawnRole('scheduler', db.url), ...Array.from({ length: setup.workers }, () => spawnRole('worker', db.url, setup.workerEnv))];
    await started(procs);
    // Due a few seconds ahead: the insert must be committed (and the scheduler asleep until then) before it.
    const lead = n >= 100_000 ? 25 : n >= 10_000 ? 5 : 3;
    const due = await dbSecondFromNow(db.pool, lead);
    await insertCrons(db.pool, n, ONCE_A_YEAR, due);
    const meter = await cpuMeter(procs, db.pool);
    const insertedLate = (await count(db.pool, `SELECT (now() >= $1)::int AS n`, [due])) === 1;
    progress(`lag ${n}: crons inserted, due at ${due.toISOString()}`);
    await waitForCount(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences WHERE ended_at IS NOT NULL`, n, 120_000 + n * 20, 500);
    const cpu = await meter.stop();
    await stopAll(procs);
    const { rows } = await db.pool.query(
      `WITH o AS (
         SELECT extract(epoch FROM enqueued_at - scheduled_for) * 1000 AS enq,
                extract(epoch FROM started_at - scheduled_for) * 1000 AS start,
                extract(epoch FROM started_at - enqueued_at) * 1000 AS queue,
                extract(epoch FROM ended_at - scheduled_for) * 1000 AS ended,
                status
           FROM cron_occurrences)
       SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY enq) AS enq_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY enq) AS enq_p99,
              max(enq) AS enq_max,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY start) AS start_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY start) AS start_p99,
              max(start) AS start_max,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY queue) AS queue_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY queue) AS queue_p99,
              max(ended) AS ended_max,
              count(*) FILTER (WHERE status = 'success')::int AS succeeded
         FROM o`,
    );
    const r = rows[0];
    const num = (k: string) => Number(r[k]);
    return {
      crons: n,
      setup,
      enqueue: { p50: num('enq_p50'), p99: num('enq_p99'), max: num('enq_max') },
      start: { p50: num('start_p50'), p99: num('start_p99'), max: num('start_max') },
      queue: { p50: num('queue_p50'), p99: num('queue_p99') },
      all_enqueued_s: num('enq_max') / 1000,
      all_started_s: num('start_max') / 1000,
      all_ended_s: num('ended_max') / 1000,
      succeeded: num('succeeded'),
      inserted_late: insertedLate,
      cpu,
      bytes: {
        crons: await tableBytes(db.pool, 'crons'),
        ledger: await tableBytes(db.pool, 'cron_occurrences'),
        jobs: await tableBytes(db.pool, 'pgboss.job'),
        runs: await tableBytes(db.pool, 'runs'),
        threads: await tableBytes(db.pool, 'threads'),
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Sustained throughput

interface Sample {
  t: number;
  pending: number;
  queued: number;
}

interface SustainedResult {
  label: string;
  offered_per_s: number;
  /** Occurrences (agentcron) or jobs (raw) put in the queue per second in the window. */
  enqueued_per_s: number;
  /** Runs ended (agentcron) or jobs completed (raw) per second in the window. */
  executed_per_s: number;
  skipped_per_s: number;
  backlog_start: number;
  backlog_end: number;
  backlog_growth_per_s: number;
  lag_p50_ms: number;
  lag_p99_ms: number;
  /** Of the window's occurrences/jobs, how many had not started when the measurement stopped. */
  not_started: number;
  samples: Sample[];
  profile: Profile;
  /** agentcron only: row updates per table in the whole measurement, with their HOT share. */
  updates?: string;
  /** Raw only: jobs/s completed when DRAIN_JOBS are inserted at once (its ceiling). */
  drain_per_s?: number;
}

interface Profile {
  cpu: CpuUse | undefined;
  /** What the database's active sessions were doing, by application and statement, as a share of samples. */
  activity: { who: string; what: string; share: number }[];
  samples: number;
}

const ACTIVITY = `
  SELECT coalesce(nullif(application_name, ''), '?') AS who, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait,
         left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS what
    FROM pg_stat_activity
   WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`;

/**
 * Samples the backlog every second until `until` (database clock, ms), and in the window
 * [w0, w1] the CPU the processes and the database's backends use and what the backends are doing
 * (pg_stat_activity, 4 times a second).
 */
async function sampleBacklog(db: BenchDb, until: number, sql: string, procs: Proc[], w0: number, w1: number): Promise<{ samples: Sample[]; profile: Profile }> {
  const samples: Sample[] = [];
  let meter: Awaited<ReturnType<typeof cpuMeter>> | undefined;
  let cpu: CpuUse | undefined;
  const activity = new Map<string, number>();
  let activitySamples = 0;
  let next = 0;
  for (;;) {
    const { rows } = await db.pool.query<{ t: number; pending: number; queued: number }>(sql);
    const s = { t: Number(rows[0].t), pending: Number(rows[0].pending), queued: Number(rows[0].queued) };
    if (s.t >= next) {
      samples.push(s);
      next = s.t + 1000;
    }
    if (!meter && s.t >= w0) meter = await cpuMeter(procs, db.pool);
    if (meter && !cpu && s.t >= w1) cpu = await meter.stop();
    if (meter && !cpu) {
      const { rows: active } = await db.pool.query<{ who: string; wait: string; what: string }>(ACTIVITY);
      activitySamples++;
      for (const a of active) {
        const key = `${a.who}\t${a.wait}\t${a.what}`;
        activity.set(key, (activity.get(key) ?? 0) + 1);
      }
    }
    if (s.t >= until) break;
    await sleep(250);
  }
  const top = [...activity.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, n]) => {
      const [who, wait, what] = k.split('\t');
      return { who: `${who} (${wait})`, what, share: n / Math.max(1, activitySamples) };
    });
  return { samples, profile: { cpu, activity: top, samples: activitySamples } };
}

function backlogFigures(samples: Sample[], w0: number, w1: number, of: (s: Sample) => number) {
  const inWindow = samples.filter((s) => s.t >= w0 && s.t <= w1 + 1000);
  const first = inWindow[0] ?? samples[0];
  const last = inWindow[inWindow.length - 1] ?? samples[samples.length - 1];
  return {
    backlog_start: of(first),
    backlog_end: of(last),
    backlog_growth_per_s: slope(inWindow.map((s) => ({ x: s.t / 1000, y: of(s) }))),
  };
}

const AGENTCRON_SAMPLE = `
  SELECT extract(epoch FROM now()) * 1000 AS t,
         (SELECT count(*) FROM runs WHERE status = 'pending') AS pending,
         (SELECT count(*) FROM pgboss.job WHERE name = 'agentcron.run' AND state = 'created') AS queued`;

async function sustained(server: string, workers: number): Promise<SustainedResult> {
  return withDatabase(server, `sustained${workers}w`, async (db) => {
    const procs = [spawnRole('scheduler', db.url), ...Array.from({ length: workers }, () => spawnRole('worker', db.url))];
    await started(procs);
    const due = await dbSecondFromNow(db.pool, 2);
    await insertCrons(db.pool, SUSTAINED_CRONS, EVERY_SECOND, due);
    const w0 = due.getTime() + WARMUP_S * 1000;
    const w1 = w0 + WINDOW_S * 1000;
    progress(`sustained, ${workers} worker(s): ${SUSTAINED_CRONS} every-second crons from ${due.toISOString()}, window ${WARMUP_S}-${WARMUP_S + WINDOW_S} s`);
    const { samples, profile } = await sampleBacklog(db, w1 + 1000, AGENTCRON_SAMPLE, procs, w0, w1);
    await stopAll(procs);
    const stoppedAt = samples[samples.length - 1].t;
    const { rows } = await db.pool.query(
      `WITH o AS (
         SELECT *, extract(epoch FROM coalesce(started_at, $3::timestamptz) - scheduled_for) * 1000 AS lag
           FROM cron_occurrences)
       SELECT count(*) FILTER (WHERE ended_at >= $1 AND ended_at < $2)::int AS ended,
              count(*) FILTER (WHERE enqueued_at >= $1 AND enqueued_at < $2)::int AS enqueued,
              count(*) FILTER (WHERE status = 'skipped' AND scheduled_for >= $1 AND scheduled_for < $2)::int AS skipped,
              count(*) FILTER (WHERE status <> 'skipped' AND scheduled_for >= $1 AND scheduled_for < $2 AND started_at IS NULL)::int AS not_started,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY lag) FILTER (WHERE status <> 'skipped' AND scheduled_for >= $1 AND scheduled_for < $2) AS lag_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY lag) FILTER (WHERE status <> 'skipped' AND scheduled_for >= $1 AND scheduled_for < $2) AS lag_p99
         FROM o`,
      [new Date(w0), new Date(w1), new Date(stoppedAt)],
    );
    const r = rows[0];
    // Row updates per table, and how many were HOT (no index touched): PostgreSQL's cost of each fire and finish.
    const { rows: upd } = await db.pool.query<{ relname: string; upd: number; hot: number }>(
      `SELECT relname, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables
        WHERE relname IN ('crons', 'runs', 'threads', 'cron_occurrences') ORDER BY relname`,
    );
    return {
      label: `agentcron, 1 scheduler + ${workers} worker${workers > 1 ? 's' : ''}`,
      updates: upd.map((u) => `${u.relname} ${fmt(u.upd)} (${u.upd ? ((u.hot / u.upd) * 100).toFixed(0) : 0}% HOT)`).join(', '),
      offered_per_s: SUSTAINED_CRONS,
      enqueued_per_s: r.enqueued / WINDOW_S,
      executed_per_s: r.ended / WINDOW_S,
      skipped_per_s: r.skipped / WINDOW_S,
      ...backlogFigures(samples, w0, w1, (s) => s.pending),
      lag_p50_ms: Number(r.lag_p50),
      lag_p99_ms: Number(r.lag_p99),
      not_started: r.not_started,
      samples,
      profile,
    };
  });
}

const RAW_SAMPLE = `
  SELECT extract(epoch FROM now()) * 1000 AS t,
         (SELECT count(*) FROM pgboss.job WHERE name = '${RAW_QUEUE}' AND state = 'created') AS pending,
         (SELECT count(*) FROM pgboss.job WHERE name = '${RAW_QUEUE}' AND state = 'created') AS queued`;

/** Raw pg-boss at the same offered load: a producer process inserting jobs of the run jobs' shape every second, one work() consumer process. */
async function rawPgBoss(server: string): Promise<SustainedResult> {
  return withDatabase(server, 'raw', async (db) => {
    const consumer = spawnNode('raw consumer', [path.join(ROOT, 'bench/raw-pgboss-worker.ts')], { DATABASE_URL: db.url, QUEUE: RAW_QUEUE });
    await consumer.waitFor(/ready/, 60_000);
    const due = await dbSecondFromNow(db.pool, 3);
    const seconds = WARMUP_S + WINDOW_S + 2;
    const producer = spawnNode('raw producer', [path.join(ROOT, 'bench/raw-pgboss-producer.ts')], {
      DATABASE_URL: db.url,
      QUEUE: RAW_QUEUE,
      RATE: String(SUSTAINED_CRONS),
      SECONDS: String(seconds),
      START_AT: due.toISOString(),
    });
    const w0 = due.getTime() + WARMUP_S * 1000;
    const w1 = w0 + WINDOW_S * 1000;
    progress(`raw pg-boss: ${SUSTAINED_CRONS} jobs/s from ${due.toISOString()}, window ${WARMUP_S}-${WARMUP_S + WINDOW_S} s`);
    const { samples, profile } = await sampleBacklog(db, w1 + 1000, RAW_SAMPLE, [producer, consumer], w0, w1);
    await stopAll([producer, consumer]);
    const stoppedAt = samples[samples.length - 1].t;
    // Then its ceiling (as the pg-boss reference measures it): DRAIN_JOBS inserted while no consumer
    // runs, then drained by a fresh consumer, from its first fetch to its last completion.
    const drainAt = await dbSecondFromNow(db.pool, 0);
    const burst = spawnNode('raw producer', [path.join(ROOT, 'bench/raw-pgboss-producer.ts')], {
      DATABASE_URL: db.url,
      QUEUE: RAW_QUEUE,
      RATE: String(DRAIN_JOBS),
      SECONDS: '1',
      START_AT: new Date(0).toISOString(),
    });
    await burst.exited;
    const drainer = spawnNode('raw consumer', [path.join(ROOT, 'bench/raw-pgboss-worker.ts')], { DATABASE_URL: db.url, QUEUE: RAW_QUEUE });
    const burstSql = `FROM pgboss.job WHERE name = '${RAW_QUEUE}' AND created_on >= '${drainAt.toISOString()}'`;
    await waitForCount(db.pool, `SELECT count(*)::int AS n ${burstSql} AND state = 'completed'`, DRAIN_JOBS, 120_000, 100);
    await stopAll([drainer]);
    const { rows: d } = await db.pool.query(`SELECT extract(epoch FROM max(completed_on) - min(started_on)) AS s ${burstSql}`);
    const drainPerS = DRAIN_JOBS / Number(d[0].s);
    // A job's lag is counted from the whole second its batch was due (the producer's tick).
    const { rows } = await db.pool.query(
      `WITH j AS (
         SELECT *, extract(epoch FROM coalesce(started_on, $3::timestamptz) - date_trunc('second', created_on)) * 1000 AS lag
           FROM pgboss.job WHERE name = $4)
       SELECT count(*) FILTER (WHERE completed_on >= $1 AND completed_on < $2)::int AS completed,
              count(*) FILTER (WHERE created_on >= $1 AND created_on < $2)::int AS created,
              count(*) FILTER (WHERE created_on >= $1 AND created_on < $2 AND started_on IS NULL)::int AS not_started,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY lag) FILTER (WHERE created_on >= $1 AND created_on < $2) AS lag_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY lag) FILTER (WHERE created_on >= $1 AND created_on < $2) AS lag_p99
         FROM j`,
      [new Date(w0), new Date(w1), new Date(stoppedAt), RAW_QUEUE],
    );
    const r = rows[0];
    return {
      label: 'raw pg-boss, 1 producer + 1 work() consumer',
      offered_per_s: SUSTAINED_CRONS,
      enqueued_per_s: r.created / WINDOW_S,
      executed_per_s: r.completed / WINDOW_S,
      skipped_per_s: 0,
      ...backlogFigures(samples, w0, w1, (s) => s.pending),
      lag_p50_ms: Number(r.lag_p50),
      lag_p99_ms: Number(r.lag_p99),
      not_started: r.not_started,
      samples,
      profile,
      drain_per_s: drainPerS,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Idle

async function idle(
  server: string,
): Promise<{ queries_per_s: number; api_queries_per_s: number; scheduler_queries_per_s: number; worker_queries_per_s: number; crons_bytes: number }> {
  return withDatabase(server, 'idle', async (db) => {
    await insertCrons(db.pool, IDLE_CRONS, ONCE_A_YEAR, await dbSecondFromNow(db.pool, 86_400));
    const preload = path.join(ROOT, 'bench/count-queries.ts');
    // The whole deployment: api, scheduler and worker.
    const procs = [spawnRole('api', db.url, { PORT: '0' }, preload), spawnRole('scheduler', db.url, {}, preload), spawnRole('worker', db.url, {}, preload)];
    await started(procs);
    await sleep(2000); // past start-up
    const read = async (p: (typeof procs)[number]) => {
      const answer = p.next(/QUERY_COUNT (\d+)\n/);
      p.child.kill('SIGUSR2');
      return Number((await answer)[1]);
    };
    const a = await Promise.all(procs.map(read));
    await sleep(IDLE_SECONDS * 1000);
    const b = await Promise.all(procs.map(read));
    await Promise.all(procs.map((p) => p.stop()));
    const [api, scheduler, worker] = b.map((n, i) => (n - a[i]) / IDLE_SECONDS);
    return {
      queries_per_s: api + scheduler + worker,
      api_queries_per_s: api,
      scheduler_queries_per_s: scheduler,
      worker_queries_per_s: worker,
      crons_bytes: await tableBytes(db.pool, 'crons'),
    };
  });
}

// ---------------------------------------------------------------------------------------------

function lagTable(results: LagResult[]): void {
  say('1. Lag from the scheduled instant, N stateless echo crons due at the same instant (1 scheduler + 1 worker process, defaults)');
  say('   enqueue = ledger row written by the scheduler; start = run claimed by the worker (execution start); both minus scheduled_for');
  const head = [
    'crons',
    'setup',
    'enqueue p50/p99/max ms',
    'start p50/p99/max ms',
    'claim wait p50/p99 ms',
    'all started s',
    'all ended s',
    'runs/s',
    'succeeded',
  ];
  const rows = results.map((r) => [
    fmt(r.crons),
    r.setup.label,
    `${fmt(r.enqueue.p50)} / ${fmt(r.enqueue.p99)} / ${fmt(r.enqueue.max)}`,
    `${fmt(r.start.p50)} / ${fmt(r.start.p99)} / ${fmt(r.start.max)}`,
    `${fmt(r.queue.p50)} / ${fmt(r.queue.p99)}`,
    fmt(r.all_started_s, 2),
    fmt(r.all_ended_s, 2),
    fmt(r.crons / r.all_ended_s),
    fmt(r.succeeded) + (r.inserted_late ? ' (insert committed after the due instant!)' : ''),
  ]);
  table(head, rows);
  for (const r of results)
    say(`   CPU, ${fmt(r.crons)} crons, ${r.setup.label} (insert to last run ended, ${r.cpu.seconds.toFixed(1)} s; share of one core): ${cpuLine(r.cpu)}`);
  say(
    '   table sizes right after (no VACUUM): ' +
      results
        .filter((r) => r.setup === DEFAULTS)
        .map(
          (r) =>
            `${fmt(r.crons)} crons: crons ${mib(r.bytes.crons)}, ledger ${mib(r.bytes.ledger)} (${fmt(r.bytes.ledger / r.crons)} B/row), pg-boss job ${mib(r.bytes.jobs)} (${fmt(r.bytes.jobs / r.crons)} B/job), runs ${mib(r.bytes.runs)}, threads ${mib(r.bytes.threads)}`,
        )
        .join('; '),
  );
}

function sustainedTable(results: SustainedResult[]): void {
  say(`2. Sustained: ${fmt(SUSTAINED_CRONS)} every-second crons (or jobs/s), steady window ${WARMUP_S}-${WARMUP_S + WINDOW_S} s after the first occurrence`);
  const head = [
    'setup (defaults)',
    'offered/s',
    'enqueued/s',
    'executed/s',
    'skipped/s',
    'backlog start→end',
    'growth/s',
    'start lag p50/p99 ms',
    'not started',
  ];
  const rows = results.map((r) => [
    r.label,
    fmt(r.offered_per_s),
    fmt(r.enqueued_per_s),
    fmt(r.executed_per_s),
    fmt(r.skipped_per_s),
    `${fmt(r.backlog_start)} → ${fmt(r.backlog_end)}`,
    fmt(r.backlog_growth_per_s),
    `${fmt(r.lag_p50_ms)} / ${fmt(r.lag_p99_ms)}`,
    fmt(r.not_started),
  ]);
  table(head, rows);
  const rawDrain = results.find((r) => r.drain_per_s !== undefined);
  if (rawDrain)
    say(
      `   raw pg-boss ceiling: the same consumer drains ${fmt(rawDrain.drain_per_s!)} jobs/s from a backlog of ${fmt(DRAIN_JOBS)} jobs inserted beforehand (first fetch to last completion)`,
    );
  say('   backlog = runs pending (agentcron) or jobs created and not fetched (raw), sampled each second in the window; growth = least-squares slope');
  say(
    '   start lag = run start (job start for raw) minus its scheduled second; "not started" = occurrences of the window still waiting when the measurement stopped (their lag counts up to that moment)',
  );
  say(
    '   where the time went in the window (CPU as a share of one core; database sessions: share of pg_stat_activity samples in which a session of that kind was active):',
  );
  for (const r of results) {
    say(`   - ${r.label}: CPU ${cpuLine(r.profile.cpu)}`);
    if (r.updates) say(`       row updates over the whole measurement: ${r.updates}`);
    for (const a of r.profile.activity.slice(0, 4)) say(`       ${(a.share * 100).toFixed(0).padStart(4)}%  ${a.who}: ${a.what}`);
  }
}

/** "scheduler 8%, worker 5%, its PostgreSQL sessions 55%; anything else on the machine 12%" (of one core). */
function cpuLine(c: CpuUse | undefined): string {
  if (!c) return 'not measured';
  const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '?');
  const backends = c.backends > 0 ? `, its PostgreSQL sessions ${pct(c.backends)}` : ' (PostgreSQL not on this machine)';
  return `${c.procs.map((p) => `${p.name} ${pct(p.cores)}`).join(', ')}${backends}; anything else on the machine ${pct(c.others)}`;
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '   ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  say(line(head));
  say('   ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) say(line(r));
}

// ---------------------------------------------------------------------------------------------
// 4. A herd under a deployment-wide rate limit

interface LimitedResult {
  runs: number;
  succeeded: number;
  failed: number;
  /** Most starts (claims, database clock) in any per_seconds window. */
  max_starts_per_window: number;
  /** Starts in each window from the first start: [0, 60 s), [60, 120 s) ... */
  starts_by_window: number[];
  start: { p50: number; p90: number; p99: number; max: number };
  all_started_s: number;
  /** pg-boss job row updates and runs row updates per run, over the whole measurement. */
  job_updates_per_run: number;
  run_updates_per_run: number;
  /** Times a run was parked on the limit (its waiting / not_before written), per run. */
  parks_per_run: number;
  /** The most times one run was parked. */
  most_parks: number;
  /** Runs parked at least once. */
  parked_runs: number;
  /** Parked runs' start minus the time their first park gave them. */
  late_ms: { p50: number; p99: number; max: number };
  cpu: CpuUse;
}

/** Row updates so far of pg-boss's tables and of runs (pg_stat_user_tables; flushed when sessions end). */
async function rowUpdates(db: BenchDb): Promise<{ jobs: number; runs: number }> {
  const { rows } = await db.pool.query<{ jobs: string; runs: string }>(
    `SELECT coalesce(sum(n_tup_upd) FILTER (WHERE schemaname = 'pgboss' AND relname LIKE 'job%'), 0) AS jobs,
            coalesce(sum(n_tup_upd) FILTER (WHERE schemaname = 'public' AND relname = 'runs'), 0) AS runs
       FROM pg_stat_user_tables`,
  );
  return { jobs: Number(rows[0].jobs), runs: Number(rows[0].runs) };
}

async function limitedHerd(server: string, n: number): Promise<LimitedResult> {
  // The processes get the limit through agentcron.json (AGENTCRON_CONFIG), nothing else.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-bench-limit-'));
  const config = path.join(dir, 'agentcron.json');
  writeFileSync(
    config,
    JSON.stringify({
      limits: { provider: { rate: LIMIT_RATE } },
      graphs: { [LIMITED_GRAPH]: { path: `${path.join(ROOT, 'bench/limited-agent.ts')}:echo`, limits: ['provider'] } },
    }),
  );
  try {
    return await withDatabase(server, 'limited', async (db) => {
      await ensureDefaultAssistants(db.pool, [LIMITED_GRAPH]);
      // Every run parked on the limit writes its waiting reason: counted by a trigger of the bench's.
      await db.pool.query(`
        CREATE TABLE bench_parks (run_id uuid NOT NULL, until timestamptz, at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE FUNCTION bench_count_park() RETURNS trigger AS $$ BEGIN INSERT INTO bench_parks (run_id, until) VALUES (NEW.run_id, NEW.not_before); RETURN NULL; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER bench_count_park AFTER UPDATE OF waiting ON runs FOR EACH ROW
          WHEN (NEW.waiting LIKE 'limit:%') EXECUTE FUNCTION bench_count_park();`);
      const env = { AGENTCRON_CONFIG: config };
      const procs = [
        spawnRole('scheduler', db.url, { ...env, ...(LIMITED_BATCH ? { CRON_BATCH_SIZE: LIMITED_BATCH } : {}) }),
        spawnRole('worker', db.url, env),
      ];
      await started(procs);
      const due = await dbSecondFromNow(db.pool, 3);
      await db.pool.query(
        `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, next_run_date, on_run_completed)
         SELECT gen_random_uuid(), $1, 'bench', $2, '{"input": {}}', $4::timestamptz, 'delete' FROM generate_series(1, $3)`,
        [defaultAssistantId(LIMITED_GRAPH), ONCE_A_YEAR, n, due],
      );
      await db.pool.query('ANALYZE crons');
      const before = await rowUpdates(db);
      const meter = await cpuMeter(procs, db.pool);
      progress(
        `limited ${n}: crons inserted, due at ${due.toISOString()}; ${LIMIT_RATE.runs} per ${LIMIT_RATE.per_seconds} s: ~${(Math.ceil(n / LIMIT_RATE.runs) - 1) * LIMIT_RATE.per_seconds} s until the last start`,
      );
      const windows = Math.ceil(n / LIMIT_RATE.runs);
      await waitForCount(
        db.pool,
        `SELECT count(*)::int AS n FROM cron_occurrences WHERE ended_at IS NOT NULL`,
        n,
        (windows * LIMIT_RATE.per_seconds + 120) * 1000,
        1000,
      );
      const cpu = await meter.stop();
      // Their sessions end: their statistics are flushed.
      await stopAll(procs);
      await sleep(1500);
      const after = await rowUpdates(db);
      const { rows: st } = await db.pool.query<{ started_at: Date; lag_ms: number; status: string }>(
        `SELECT started_at, extract(epoch FROM started_at - scheduled_for) * 1000 AS lag_ms, status FROM cron_occurrences ORDER BY started_at`,
      );
      const starts = st.map((r) => r.started_at.getTime());
      const per = LIMIT_RATE.per_seconds * 1000;
      let most = 0;
      for (let i = 0, j = 0; i < starts.length; i++) {
        while (starts[i] - starts[j] >= per) j++;
        most = Math.max(most, i - j + 1);
      }
      const byWindow: number[] = [];
      for (const t of starts) byWindow[Math.floor((t - starts[0]) / per)] = (byWindow[Math.floor((t - starts[0]) / per)] ?? 0) + 1;
      const lags = st.map((r) => Number(r.lag_ms)).sort((a, b) => a - b);
      const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))];
      const parks = await count(db.pool, `SELECT count(*)::int AS n FROM bench_parks`);
      const mostParks = await count(db.pool, `SELECT coalesce(max(n), 0)::int AS n FROM (SELECT count(*) AS n FROM bench_parks GROUP BY run_id) p`);
      const parkedRuns = await count(db.pool, `SELECT count(DISTINCT run_id)::int AS n FROM bench_parks`);
      // How late a parked run started after the time its first park gave it (its turn as first computed).
      const { rows: late } = await db.pool.query<{ p50: number; p99: number; max: number }>(
        `WITH first AS (SELECT DISTINCT ON (run_id) run_id, until FROM bench_parks ORDER BY run_id, at)
         SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max
           FROM (SELECT extract(epoch FROM o.started_at - f.until) * 1000 AS ms FROM first f JOIN cron_occurrences o USING (run_id)) x`,
      );
      return {
        runs: n,
        succeeded: st.filter((r) => r.status === 'success').length,
        failed: st.filter((r) => r.status !== 'success').length,
        max_starts_per_window: most,
        starts_by_window: [...byWindow].map((x) => x ?? 0),
        start: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lags[lags.length - 1] },
        all_started_s: lags[lags.length - 1] / 1000,
        job_updates_per_run: (after.jobs - before.jobs) / n,
        run_updates_per_run: (after.runs - before.runs) / n,
        parks_per_run: parks / n,
        most_parks: mostParks,
        parked_runs: parkedRuns,
        late_ms: { p50: Number(late[0]?.p50 ?? NaN), p99: Number(late[0]?.p99 ?? NaN), max: Number(late[0]?.max ?? NaN) },
        cpu,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function limitedTable(r: LimitedResult): void {
  const tuned =
    process.env.BENCH_LIMITED_RATE || LIMITED_BATCH
      ? ` TUNED (BENCH_LIMITED_RATE=${process.env.BENCH_LIMITED_RATE ?? ''} BENCH_LIMITED_BATCH=${LIMITED_BATCH ?? ''}: scheduler CRON_BATCH_SIZE)`
      : '';
  say(
    `4. Limited herd: ${fmt(r.runs)} echo crons due at once on a graph under a limit of ${LIMIT_RATE.runs} runs per ${LIMIT_RATE.per_seconds} s (agentcron.json), 1 scheduler + 1 worker, defaults otherwise${tuned}`,
  );
  const head = [
    'runs',
    'succeeded',
    'failed',
    `most starts in any ${LIMIT_RATE.per_seconds} s`,
    'starts per window',
    'start lag p50 / p90 / p99 / max s',
    'all started s',
  ];
  const s = (ms: number) => fmt(ms / 1000, 1);
  table(head, [
    [
      fmt(r.runs),
      fmt(r.succeeded),
      fmt(r.failed),
      fmt(r.max_starts_per_window),
      r.starts_by_window.join(' / '),
      `${s(r.start.p50)} / ${s(r.start.p90)} / ${s(r.start.p99)} / ${s(r.start.max)}`,
      fmt(r.all_started_s, 1),
    ],
  ]);
  say(
    `   per run: ${r.job_updates_per_run.toFixed(2)} pg-boss job row updates, ${r.run_updates_per_run.toFixed(2)} runs row updates, parked ${r.parks_per_run.toFixed(2)} times (one run at most ${r.most_parks} times) (a run that starts at once: 2 job updates, fetch and completion, and 1 run update, its claim; each park adds 2 job updates, the park and the next fetch, and 1 run update)`,
  );
  say(
    `   ${fmt(r.parked_runs)} runs waited; they started ${fmt(r.late_ms.p50)} / ${fmt(r.late_ms.p99)} / ${fmt(r.late_ms.max)} ms (p50 / p99 / max) after the time their first park gave them`,
  );
  say(`   CPU (insert to last run ended, ${r.cpu.seconds.toFixed(0)} s; share of one core): ${cpuLine(r.cpu)}`);
}

const server = await startServer();
onInterrupt(async () => {
  await dropLeftovers(server.url);
  await server.stop();
});
let exitCode = 0;
try {
  const defaults = loadConfig({});
  const probe = await freshDatabase(server.url, 'probe');
  const { rows: v } = await probe.pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
  await probe.drop();
  say(
    `# agentcron bench: ${new URL(server.url).host} (PostgreSQL ${v[0].v}${server.embedded ? ', embedded' : ''}), node ${process.version}, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at start`,
  );
  say(
    `# processes as in the Procfile (node apps/scheduler/main.ts, node apps/worker/main.ts) with DATABASE_URL only: ` +
      `WORKER_CONCURRENCY=${defaults.WORKER_CONCURRENCY}, CRON_BATCH_SIZE=${defaults.CRON_BATCH_SIZE}, CRON_POLL_INTERVAL_SECONDS=${defaults.CRON_POLL_INTERVAL_SECONDS}, ` +
      `DATABASE_MAX_CONNECTIONS=${defaults.DATABASE_MAX_CONNECTIONS ?? `${DEFAULT_MAX_CONNECTIONS.scheduler} (scheduler) / ${DEFAULT_MAX_CONNECTIONS.worker} (worker)`}, LOG_LEVEL=${defaults.LOG_LEVEL}, MIGRATE_ON_START=${defaults.MIGRATE_ON_START ?? 'unset (false: the bench migrates first)'}`,
  );
  say(
    '# crons are inserted in SQL as the API stores them (stateless, echo assistant, input {}); every-second schedules are what the API accepts with CRON_ALLOW_SECONDS_SCHEDULE=true (the scheduler and worker do not read it)',
  );
  say();

  const lags: LagResult[] = [];
  if (ONLY.has('lag')) {
    for (const n of LAG_SIZES) {
      lags.push(await lag(server.url, n));
      progress(`lag ${n}: start p99 ${fmt(lags[lags.length - 1].start.p99)} ms`);
    }
    // Beside the defaults, clearly labelled: what more workers or more concurrency do to the 10,000 case.
    if (!args.has('--no-tuned')) {
      for (const setup of TUNED) {
        lags.push(await lag(server.url, TUNED_LAG_CRONS, setup));
        progress(`lag ${TUNED_LAG_CRONS}, ${setup.label}: start p99 ${fmt(lags[lags.length - 1].start.p99)} ms`);
      }
    }
  }
  let one: SustainedResult | undefined;
  let two: SustainedResult | undefined;
  let raw: SustainedResult | undefined;
  if (ONLY.has('sustained')) {
    one = await sustained(server.url, 1);
    progress(`sustained 1 worker: ${fmt(one.executed_per_s)} runs/s`);
    two = await sustained(server.url, 2);
    progress(`sustained 2 workers: ${fmt(two.executed_per_s)} runs/s`);
    raw = await rawPgBoss(server.url);
    progress(`raw pg-boss: ${fmt(raw.executed_per_s)} jobs/s`);
  }
  const quiet = ONLY.has('idle') ? await idle(server.url) : undefined;
  if (quiet) progress(`idle: ${quiet.queries_per_s.toFixed(2)} queries/s`);
  const limited = ONLY.has('limited') ? await limitedHerd(server.url, LIMITED_RUNS) : undefined;
  if (limited)
    progress(
      `limited ${LIMITED_RUNS}: all started after ${limited.all_started_s.toFixed(1)} s, most starts in any ${LIMIT_RATE.per_seconds} s ${limited.max_starts_per_window}`,
    );

  if (lags.length) {
    say();
    lagTable(lags);
  }
  if (one && two && raw) {
    say();
    sustainedTable([one, two, raw]);
  }
  if (quiet) {
    say();
    say(
      `3. Idle: ${quiet.queries_per_s.toFixed(2)} queries/s from a whole deployment: one api (${quiet.api_queries_per_s.toFixed(2)}), one scheduler (${quiet.scheduler_queries_per_s.toFixed(2)}) and one worker process (${quiet.worker_queries_per_s.toFixed(2)}) with ${fmt(IDLE_CRONS)} enabled crons, none due (${IDLE_SECONDS} s; crons table ${mib(quiet.crons_bytes)}, ${fmt(quiet.crons_bytes / IDLE_CRONS)} B/cron)`,
    );
  }
  if (limited) {
    say();
    limitedTable(limited);
  }
  say(`# ${((Date.now() - t0) / 1000).toFixed(0)} s in all`);

  const lagFields: Record<string, number> = {};
  for (const l of lags) {
    const k = (l.crons >= 1000 ? `${l.crons / 1000}k` : String(l.crons)) + l.setup.key;
    Object.assign(lagFields, {
      [`lag_to_start_p50_ms_${k}`]: round(l.start.p50),
      [`lag_to_start_p99_ms_${k}`]: round(l.start.p99),
      [`lag_to_start_max_ms_${k}`]: round(l.start.max),
      [`enqueue_lag_p50_ms_${k}`]: round(l.enqueue.p50),
      [`enqueue_lag_p99_ms_${k}`]: round(l.enqueue.p99),
      [`all_started_s_${k}`]: round(l.all_started_s, 2),
      [`herd_runs_per_s_${k}`]: round(l.crons / l.all_ended_s),
    });
  }
  const sustainedFields =
    one && two && raw
      ? {
          sustained_crons: SUSTAINED_CRONS,
          sustained_runs_per_s: round(one.executed_per_s),
          sustained_enqueued_per_s: round(one.enqueued_per_s),
          sustained_backlog_growth_per_s: round(one.backlog_growth_per_s),
          sustained_lag_p50_ms: round(one.lag_p50_ms),
          sustained_lag_p99_ms: round(one.lag_p99_ms),
          sustained_runs_per_s_2_workers: round(two.executed_per_s),
          sustained_backlog_growth_per_s_2_workers: round(two.backlog_growth_per_s),
          sustained_lag_p99_ms_2_workers: round(two.lag_p99_ms),
          raw_pgboss_jobs_per_s: round(raw.executed_per_s),
          raw_pgboss_backlog_growth_per_s: round(raw.backlog_growth_per_s),
          raw_pgboss_lag_p99_ms: round(raw.lag_p99_ms),
          raw_pgboss_drain_jobs_per_s: round(raw.drain_per_s ?? NaN),
          sustained_to_raw_ratio: round(one.executed_per_s / raw.executed_per_s, 3),
        }
      : {};
  const idleFields = quiet
    ? {
        idle_crons: IDLE_CRONS,
        idle_queries_per_s: round(quiet.queries_per_s, 2),
        idle_api_queries_per_s: round(quiet.api_queries_per_s, 2),
        idle_scheduler_queries_per_s: round(quiet.scheduler_queries_per_s, 2),
        idle_worker_queries_per_s: round(quiet.worker_queries_per_s, 2),
      }
    : {};
  const limitedFields = limited
    ? {
        limited_herd_runs: limited.runs,
        limited_herd_rate: `${LIMIT_RATE.runs}/${LIMIT_RATE.per_seconds}s${LIMITED_BATCH ? ` batch ${LIMITED_BATCH}` : ''}`,
        limited_herd_max_starts_per_window: limited.max_starts_per_window,
        limited_herd_failed: limited.failed,
        limited_herd_all_started_s: round(limited.all_started_s, 1),
        limited_herd_lag_to_start_p50_s: round(limited.start.p50 / 1000, 1),
        limited_herd_lag_to_start_p90_s: round(limited.start.p90 / 1000, 1),
        limited_herd_lag_to_start_p99_s: round(limited.start.p99 / 1000, 1),
        limited_herd_job_updates_per_run: round(limited.job_updates_per_run, 2),
        limited_herd_run_updates_per_run: round(limited.run_updates_per_run, 2),
        limited_herd_parks_per_run: round(limited.parks_per_run, 2),
        limited_herd_most_parks_of_a_run: limited.most_parks,
        limited_herd_parked_runs: limited.parked_runs,
        limited_herd_late_after_first_park_p50_ms: round(limited.late_ms.p50),
        limited_herd_late_after_first_park_p99_ms: round(limited.late_ms.p99),
      }
    : {};
  say(JSON.stringify({ ...lagFields, ...sustainedFields, ...idleFields, ...limitedFields, seconds: Math.round((Date.now() - t0) / 1000) }));
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  await killProcesses();
  await dropLeftovers(server.url);
  await server.stop();
}
process.exit(exitCode);
