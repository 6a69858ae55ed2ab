// `node bench/disk.ts`: bytes per occurrence and disk per month (issue 20, "Bounded data"),
// measured with the Procfile's processes at their defaults. N stateless echo crons (default
// 20,000; BENCH_DISK_OCCURRENCES) are due at one instant on a fresh database (DATABASE_URL's
// server, or an embedded PostgreSQL); the sizes (pg_total_relation_size: heap, indexes, TOAST,
// every partition) of the ledger, runs, threads and pg-boss's job table are read
//   1. before,
//   2. once the scheduler alone has fired every occurrence (ledger row enqueued, run, ephemeral
//      thread and job waiting: what exists while an occurrence is in flight),
//   3. once a worker has run them all (ledger row settled: what the 30-day retention keeps; the
//      run and thread deleted, the job completed: kept a day by pg-boss),
//   4. after VACUUM FULL of the ledger (its live rows and indexes compacted: the floor).
// Each delta divided by N is a figure per occurrence. Prints a table and one JSON line.
import os from 'node:os';
import {
  count,
  dbSecondFromNow,
  dropLeftovers,
  freshDatabase,
  insertCrons,
  killProcesses,
  onInterrupt,
  spawnRole,
  STARTED,
  startServer,
  tableBytes,
  waitForCount,
} from './support.ts';
import type { BenchDb, Proc } from './support.ts';

const N = Number(process.env.BENCH_DISK_OCCURRENCES ?? 20_000);
const RATES = [10, 100, 1000];
const RETENTION_DAYS = 30;
const JOB_DAYS = 1;
const TABLES = { ledger: 'cron_occurrences', runs: 'runs', threads: 'threads', jobs: 'pgboss.job' } as const;
type Sizes = Record<keyof typeof TABLES, number>;

const say = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`${line}\n`);
const gib = (b: number) => (b >= 2 ** 40 ? `${(b / 2 ** 40).toFixed(2)} TiB` : `${(b / 2 ** 30).toFixed(1)} GiB`);

async function sizes(db: BenchDb): Promise<Sizes> {
  const out = {} as Sizes;
  for (const [k, t] of Object.entries(TABLES)) out[k as keyof Sizes] = await tableBytes(db.pool, t);
  return out;
}

const per = (a: Sizes, b: Sizes): Sizes =>
  Object.fromEntries(Object.keys(TABLES).map((k) => [k, Math.round((b[k as keyof Sizes] - a[k as keyof Sizes]) / N)])) as Sizes;

async function started(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as keyof typeof STARTED], 90_000)));
}

const server = await startServer();
onInterrupt(async () => {
  await killProcesses();
  await dropLeftovers(server.url);
});
const db = await freshDatabase(server.url, 'disk');
try {
  const load = os.loadavg();
  const partitioned = (await count(db.pool, `SELECT (relkind = 'p')::int AS n FROM pg_class WHERE oid = 'cron_occurrences'::regclass`)) === 1;
  const scheduler = spawnRole('scheduler', db.url);
  await started([scheduler]);
  const due = await dbSecondFromNow(db.pool, 5);
  await insertCrons(db.pool, N, '0 0 1 1 *', due);
  const s0 = await sizes(db);
  progress(`${N} crons due at ${due.toISOString()}`);
  await waitForCount(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences`, N, 300_000, 500);
  await waitForCount(db.pool, `SELECT count(*)::int AS n FROM runs`, N, 60_000, 500);
  const s1 = await sizes(db);
  progress('all fired; starting a worker');
  const worker = spawnRole('worker', db.url);
  await started([worker]);
  await waitForCount(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences WHERE ended_at IS NOT NULL`, N, 600_000, 500);
  await waitForCount(db.pool, `SELECT (count(*) = 0)::int AS n FROM runs`, 1, 120_000, 500);
  await Promise.all([scheduler.stop(10_000), worker.stop(10_000)]);
  const s2 = await sizes(db);
  await db.pool.query(`VACUUM FULL cron_occurrences`);
  const s3 = await sizes(db);
  const inFlight = per(s0, s1);
  const settled = per(s0, s2);
  const compact = per(s0, s3);
  const succeeded = await count(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences WHERE status = 'success'`);

  say(
    `disk per occurrence: ${N.toLocaleString('en-US')} stateless echo occurrences (${succeeded.toLocaleString('en-US')} succeeded), ` +
      `ledger ${partitioned ? 'partitioned' : 'not partitioned'}; load average ${load.map((x) => x.toFixed(2)).join(', ')}`,
  );
  say();
  say('| bytes per occurrence | ledger row + indexes | run | thread | pg-boss job |');
  say('|---|---|---|---|---|');
  say(`| in flight (fired, not run) | ${inFlight.ledger} | ${inFlight.runs} | ${inFlight.threads} | ${inFlight.jobs} |`);
  say(`| ended (as written, before vacuum) | ${settled.ledger} | (deleted) | (deleted) | ${settled.jobs} |`);
  say(`| ledger compacted (VACUUM FULL) | ${compact.ledger} | | | |`);
  say();
  say(`| runs/s | ledger kept (${RETENTION_DAYS} d): compacted to as written | completed jobs kept (${JOB_DAYS} d) | steady state (at most) |`);
  say('|---|---|---|---|');
  const rows = RATES.map((r) => {
    const kept = r * RETENTION_DAYS * 86_400;
    const ledger = kept * settled.ledger;
    const floor = kept * compact.ledger;
    const jobs = r * JOB_DAYS * 86_400 * settled.jobs;
    say(`| ${r.toLocaleString('en-US')} | ${gib(floor)} to ${gib(ledger)} | ${gib(jobs)} | ${gib(ledger + jobs)} |`);
    return { runs_per_s: r, ledger_bytes: ledger, ledger_compacted_bytes: floor, jobs_bytes: jobs };
  });
  say();
  say(JSON.stringify({ occurrences: N, partitioned, load, in_flight: inFlight, settled, compact, rows }));
} finally {
  await killProcesses();
  await db.drop();
  await server.stop();
}
