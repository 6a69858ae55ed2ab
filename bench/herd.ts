// Section 1 of `npm run bench`, agentcron's side: N stateless echo crons due at the same instant,
// one scheduler and one worker process (the Procfile's, defaults), measured from the scheduled
// instant to the run's start (the worker's claim, on the database clock). Beside the lag: the CPU
// the herd cost (the PostgreSQL server's process tree, the scheduler, the worker), the processes'
// memory, the rows it wrote per table (pg_stat_user_tables: inserts, updates, HOT updates,
// deletes), its transactions, WAL and each process's round trips to the database.
import path from 'node:path';
import { cpuMeter, cpuParts, cpuSeconds, memory, postmasterPid, treeCpu } from './cpu.ts';
import type { CpuUse } from './cpu.ts';
import { progress } from './report.ts';
import { PROFILE_STATEMENTS, resetStatements, statements } from './statements.ts';
import type { Statement } from './statements.ts';
import {
  HERD_METER_LEAD_MS,
  ROOT,
  count,
  dbSecondFromNow,
  freshDatabase,
  insertCrons,
  killProcesses,
  sleep,
  spawnRole,
  STARTED,
  tableBytes,
  waitForCount,
} from './support.ts';
import type { BenchDb, Proc } from './support.ts';

export const ONCE_A_YEAR = '0 0 1 1 *';

/** A variant of the herd: defaults (1 worker), or a clearly labelled tuned one. */
export interface LagSetup {
  label: string;
  /** JSON key suffix ('' for the defaults). */
  key: string;
  workers: number;
  workerEnv: Record<string, string>;
}
export const DEFAULTS: LagSetup = { label: 'defaults, 1 worker', key: '', workers: 1, workerEnv: {} };
export const TUNED: LagSetup[] = [
  { label: 'TUNED: 2 worker processes', key: '_2_workers', workers: 2, workerEnv: {} },
  { label: 'TUNED: WORKER_CONCURRENCY=400', key: '_concurrency_400', workers: 1, workerEnv: { WORKER_CONCURRENCY: '400' } },
];

/** Rows written to one table over the herd, from pg_stat_user_tables. */
export interface TableWrites {
  table: string;
  indexes: number;
  /** Of the indexes, how many are partial (an entry only for rows matching its predicate). */
  partial: number;
  ins: number;
  upd: number;
  hot: number;
  del: number;
}

/** What a herd cost: CPU seconds per part, from HERD_METER_LEAD_MS before the due instant (not before the herd was written) until every run ended. */
export interface HerdCost {
  seconds: number;
  /** CPU seconds by part: agentcron {postgres, scheduler, worker}, BullMQ {redis, worker}. */
  parts: Record<string, number>;
  /** Busy CPU seconds of everything else on the machine meanwhile (other people's work, the bench). */
  others: number;
  /** RSS (and its peak) of each process at the end, bytes. */
  memory: Record<string, { rss: number; peak: number }>;
}

export interface LagResult {
  /** bullmq: job schedulers; bullmq_delayed: plain delayed jobs (no next occurrence computed). */
  system: 'agentcron' | 'bullmq' | 'bullmq_delayed';
  crons: number;
  setup: LagSetup;
  round: number;
  enqueue: { p50: number; p99: number; max: number };
  start: { p50: number; p99: number; max: number };
  /** started_at - enqueued_at: the wait between the scheduler's commit and the worker's claim. */
  queue: { p50: number; p99: number };
  all_enqueued_s: number;
  all_started_s: number;
  all_ended_s: number;
  succeeded: number;
  inserted_late: boolean;
  cost: HerdCost;
  /** agentcron only: its processes and sessions as shares of a core (the earlier report). */
  cpu?: CpuUse;
  writes?: TableWrites[];
  /** agentcron only: transactions committed in the database, WAL bytes of the whole server, round trips by process. */
  xacts?: number;
  wal_bytes?: number;
  round_trips?: Record<string, number>;
  /** With BENCH_PG_STAT_STATEMENTS=1 on the embedded server: the statements of the herd. */
  statements?: Statement[];
  bytes?: { crons: number; ledger: number; jobs: number; runs: number; threads: number };
}

const WRITES = `
  SELECT s.schemaname || '.' || s.relname AS table, n_tup_ins::bigint AS ins, n_tup_upd::bigint AS upd, n_tup_hot_upd::bigint AS hot,
         n_tup_del::bigint AS del, (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid)::int AS indexes,
         (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid AND i.indpred IS NOT NULL)::int AS partial
    FROM pg_stat_user_tables s`;

async function writes(db: BenchDb): Promise<Map<string, TableWrites>> {
  const { rows } = await db.pool.query<Record<string, string>>(WRITES);
  return new Map(
    rows.map((r) => [
      r.table,
      {
        table: r.table,
        indexes: Number(r.indexes),
        partial: Number(r.partial),
        ins: Number(r.ins),
        upd: Number(r.upd),
        hot: Number(r.hot),
        del: Number(r.del),
      },
    ]),
  );
}

async function dbCounters(db: BenchDb): Promise<{ xacts: number; lsn: string }> {
  const { rows } = await db.pool.query<{ xacts: string; lsn: string }>(
    `SELECT (xact_commit + xact_rollback)::bigint AS xacts, pg_current_wal_lsn()::text AS lsn FROM pg_stat_database WHERE datname = current_database()`,
  );
  return { xacts: Number(rows[0].xacts), lsn: rows[0].lsn };
}

/** Round trips a process sent so far (bench/count-queries.ts answers SIGUSR2). */
async function roundTrips(p: Proc): Promise<number> {
  const answer = p.next(/QUERY_COUNT (\d+)\n/);
  p.child.kill('SIGUSR2');
  return Number((await answer)[1]);
}

export async function agentcronHerd(server: string, n: number, setup: LagSetup, round: number): Promise<LagResult> {
  const db = await freshDatabase(server, `lag${n}`);
  try {
    // Every query a process sends through pg is counted (a counter: bench/count-queries.ts).
    const preload = path.join(ROOT, 'bench/count-queries.ts');
    const procs = [
      spawnRole('scheduler', db.url, {}, preload),
      ...Array.from({ length: setup.workers }, () => spawnRole('worker', db.url, setup.workerEnv, preload)),
    ];
    await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as 'scheduler' | 'worker'], 90_000)));
    // Due a few seconds ahead: the insert must be committed (and the scheduler asleep until then) before it.
    const lead = n >= 100_000 ? 25 : n >= 10_000 ? 5 : 3;
    const due = await dbSecondFromNow(db.pool, lead);
    const postmaster = await postmasterPid(db.pool);
    await insertCrons(db.pool, n, ONCE_A_YEAR, due);
    // The meters start HERD_METER_LEAD_MS before the due instant (1 s, plus the lookahead: the
    // scheduler fires the herd that long ahead), as the BullMQ peer's do: the same window in both.
    // With a lookahead as long as the lead above (1,000: 3 s), firing begins as the insert commits:
    // the meters start at once then, and the table writes' snapshot below may miss its first rows.
    await sleep(Math.max(0, due.getTime() - HERD_METER_LEAD_MS - Date.now()));
    const workers = procs.filter((p) => p.name === 'worker');
    const meter = cpuParts({
      postgres: () => treeCpu(postmaster),
      scheduler: () => cpuSeconds(procs[0].child.pid),
      worker: () => workers.reduce((s, w) => s + cpuSeconds(w.child.pid), 0),
    });
    const shares = await cpuMeter(procs, db.pool);
    const insertedLate = (await count(db.pool, `SELECT (now() >= $1)::int AS n`, [due])) === 1;
    // The insert's own row counts reach the statistics before the snapshot (flushed within a second).
    await waitForCount(db.pool, `SELECT coalesce(max(n_tup_ins), 0)::int AS n FROM pg_stat_user_tables WHERE relname = 'crons'`, n, 10_000, 100);
    if (PROFILE_STATEMENTS) await resetStatements(db.pool);
    const writes0 = await writes(db);
    const db0 = await dbCounters(db);
    const trips0 = await Promise.all(procs.map(roundTrips));
    progress(`lag ${n} (agentcron, ${setup.label}): crons inserted, due at ${due.toISOString()}`);
    await waitForCount(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences WHERE ended_at IS NOT NULL`, n, 120_000 + n * 20, 250);
    const cpu = await shares.stop();
    const used = meter.stop();
    const trips1 = await Promise.all(procs.map(roundTrips));
    const mem = Object.fromEntries(procs.map((p, i) => [procs.length > 2 ? `${p.name}${i}` : p.name, memory(p.child.pid)]));
    await Promise.all(procs.map((p) => p.stop(10_000)));
    // Their sessions ended, so their statistics are flushed: wait until they are gone.
    await waitForCount(
      db.pool,
      `SELECT (count(*) FILTER (WHERE application_name <> 'agentcron-bench') = 0)::int AS n FROM pg_stat_activity WHERE datname = current_database()`,
      1,
      20_000,
      100,
    );
    await sleep(200);
    const writes1 = await writes(db);
    const db1 = await dbCounters(db);
    const profile = PROFILE_STATEMENTS ? await statements(db.pool) : undefined;
    const { rows: wal } = await db.pool.query<{ b: string }>(`SELECT pg_wal_lsn_diff($1, $2)::bigint AS b`, [db1.lsn, db0.lsn]);
    const tableWrites = [...writes1.values()]
      .map((w) => {
        const b = writes0.get(w.table) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
        return { ...w, ins: w.ins - b.ins, upd: w.upd - b.upd, hot: w.hot - b.hot, del: w.del - b.del };
      })
      // Tables the herd wrote to (not the odd heartbeat or maintenance row: under one write per 200 occurrences).
      .filter((w) => w.ins + w.upd + w.del >= n / 200)
      .sort((a, b) => a.table.localeCompare(b.table));
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
    const num = (k: string) => Number(rows[0][k]);
    return {
      system: 'agentcron',
      crons: n,
      setup,
      round,
      enqueue: { p50: num('enq_p50'), p99: num('enq_p99'), max: num('enq_max') },
      start: { p50: num('start_p50'), p99: num('start_p99'), max: num('start_max') },
      queue: { p50: num('queue_p50'), p99: num('queue_p99') },
      all_enqueued_s: num('enq_max') / 1000,
      all_started_s: num('start_max') / 1000,
      all_ended_s: num('ended_max') / 1000,
      succeeded: num('succeeded'),
      inserted_late: insertedLate,
      cost: { ...used, memory: mem },
      cpu,
      writes: tableWrites,
      xacts: db1.xacts - db0.xacts,
      wal_bytes: Number(wal[0].b),
      statements: profile,
      round_trips: Object.fromEntries(procs.map((p, i) => [procs.length > 2 ? `${p.name}${i}` : p.name, trips1[i] - trips0[i]])),
      bytes: {
        crons: await tableBytes(db.pool, 'crons'),
        ledger: await tableBytes(db.pool, 'cron_occurrences'),
        jobs: await tableBytes(db.pool, 'pgboss.job'),
        runs: await tableBytes(db.pool, 'runs'),
        threads: await tableBytes(db.pool, 'threads'),
      },
    };
  } finally {
    await killProcesses();
    await db.drop();
  }
}
