// Section 2 of `npm run bench`: sustained throughput. 2,000 every-second crons; executed runs/s in
// a steady window and whether the backlog grows, with 1 and 2 worker processes, against raw pg-boss
// (a producer inserting 2,000 jobs/s, a consumer using work()) on the same server in the same run,
// and raw pg-boss's ceiling (a 20,000-job backlog drained).
import path from 'node:path';
import { cpuMeter, memory } from './cpu.ts';
import type { CpuUse } from './cpu.ts';
import { cpuLine, fmt, progress, say, table } from './report.ts';
import { ROOT, dbSecondFromNow, insertCrons, slope, sleep, spawnNode, spawnRole, started, stopAll, waitForCount, withDatabase } from './support.ts';
import type { BenchDb, Proc } from './support.ts';

export const SUSTAINED_CRONS = Number(process.env.BENCH_SUSTAINED_CRONS ?? 2000);
const WARMUP_S = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const WINDOW_S = Number(process.env.BENCH_WINDOW_SECONDS ?? 30);
const RAW_QUEUE = 'bench.raw';
const DRAIN_JOBS = 20_000;
const EVERY_SECOND = '* * * * * *';

// ---------------------------------------------------------------------------------------------
// 2. Sustained throughput

interface Sample {
  t: number;
  pending: number;
  queued: number;
}

export interface SustainedResult {
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
  /** agentcron only: RSS (and peak) of each process at the end of the window, bytes. */
  memory?: Record<string, { rss: number; peak: number }>;
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

export async function sustained(server: string, workers: number): Promise<SustainedResult> {
  return withDatabase(server, `sustained${workers}w`, async (db) => {
    const procs = [spawnRole('scheduler', db.url), ...Array.from({ length: workers }, () => spawnRole('worker', db.url))];
    await started(procs);
    const due = await dbSecondFromNow(db.pool, 2);
    await insertCrons(db.pool, SUSTAINED_CRONS, EVERY_SECOND, due);
    const w0 = due.getTime() + WARMUP_S * 1000;
    const w1 = w0 + WINDOW_S * 1000;
    progress(`sustained, ${workers} worker(s): ${SUSTAINED_CRONS} every-second crons from ${due.toISOString()}, window ${WARMUP_S}-${WARMUP_S + WINDOW_S} s`);
    const { samples, profile } = await sampleBacklog(db, w1 + 1000, AGENTCRON_SAMPLE, procs, w0, w1);
    const mem = Object.fromEntries(procs.map((p, i) => [procs.length > 2 ? `${p.name}${i}` : p.name, memory(p.child.pid)]));
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
      // The ledger is partitioned (migrations 019-020): its partitions' counts, summed.
      `SELECT CASE WHEN relname LIKE 'cron_occurrences%' THEN 'cron_occurrences' ELSE relname END AS relname,
              sum(n_tup_upd)::int AS upd, sum(n_tup_hot_upd)::int AS hot FROM pg_stat_user_tables
        WHERE relname IN ('crons', 'runs', 'threads') OR relname LIKE 'cron\\_occurrences%' GROUP BY 1 ORDER BY 1`,
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
      memory: mem,
    };
  });
}

const RAW_SAMPLE = `
  SELECT extract(epoch FROM now()) * 1000 AS t,
         (SELECT count(*) FROM pgboss.job WHERE name = '${RAW_QUEUE}' AND state = 'created') AS pending,
         (SELECT count(*) FROM pgboss.job WHERE name = '${RAW_QUEUE}' AND state = 'created') AS queued`;

/** Raw pg-boss at the same offered load: a producer process inserting jobs of the run jobs' shape every second, one work() consumer process. */
export async function rawPgBoss(server: string): Promise<SustainedResult> {
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

export function sustainedTable(results: SustainedResult[]): void {
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
      `   raw pg-boss ceiling: the same consumer drains ${fmt(rawDrain.drain_per_s!)} jobs/s ` +
        `from a backlog of ${fmt(DRAIN_JOBS)} jobs inserted beforehand (first fetch to last completion)`,
    );
  say('   backlog = runs pending (agentcron) or jobs created and not fetched (raw), sampled each second in the window; growth = least-squares slope');
  say(
    '   start lag = run start (job start for raw) minus its scheduled second; ' +
      '"not started" = occurrences of the window still waiting when the measurement stopped (their lag counts up to that moment)',
  );
  say(
    '   where the time went in the window (CPU as a share of one core; ' +
      'database sessions: share of pg_stat_activity samples in which a session of that kind was active):',
  );
  for (const r of results) {
    say(`   - ${r.label}: CPU ${cpuLine(r.profile.cpu)}`);
    if (r.updates) say(`       row updates over the whole measurement: ${r.updates}`);
    for (const a of r.profile.activity.slice(0, 4)) say(`       ${(a.share * 100).toFixed(0).padStart(4)}%  ${a.who}: ${a.what}`);
  }
}
