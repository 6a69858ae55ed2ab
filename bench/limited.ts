// Section 4 of `npm run bench`: a herd of N crons due at once on a graph under a deployment-wide
// rate limit (agentcron.json, docs/flow-control.md), one scheduler and one worker: whether every run
// started within the limit, none failed, lag to start, and what the waiting costs the database.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { cpuMeter } from './cpu.ts';
import type { CpuUse } from './cpu.ts';
import { ONCE_A_YEAR } from './herd.ts';
import { cpuLine, fmt, progress, say, table } from './report.ts';
import { ROOT, count, dbSecondFromNow, sleep, spawnRole, started, stopAll, waitForCount, withDatabase } from './support.ts';
import type { BenchDb } from './support.ts';

// --limited=N: the limited herd's size (default 1,500: 3 windows of the 500 per 60 s limit).
export const LIMITED_RUNS = Number(process.argv.find((a) => a.startsWith('--limited='))?.slice(10) ?? process.env.BENCH_LIMITED_RUNS ?? 1500);
// BENCH_LIMITED_RATE=runs/seconds (default 500/60) and BENCH_LIMITED_BATCH (the scheduler's
// CRON_BATCH_SIZE, default its default) make a scaled model of a bigger herd: 1,000 runs at 50/6
// with batches of 100 has the 10,000 herd's shape (20 windows, 10 scheduler batches, the same
// pace per second) in 2 minutes. Labelled TUNED when set.
const [RATE_RUNS, RATE_SECONDS] = (process.env.BENCH_LIMITED_RATE ?? '500/60').split('/').map(Number);
export const LIMIT_RATE = { runs: RATE_RUNS, per_seconds: RATE_SECONDS };
export const LIMITED_BATCH = process.env.BENCH_LIMITED_BATCH;
const LIMITED_GRAPH = 'limited_echo';

// ---------------------------------------------------------------------------------------------
// 4. A herd under a deployment-wide rate limit

export interface LimitedResult {
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

export async function limitedHerd(server: string, n: number): Promise<LimitedResult> {
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
        CREATE FUNCTION bench_count_park() RETURNS trigger AS $$ BEGIN
          INSERT INTO bench_parks (run_id, until) VALUES (NEW.run_id, NEW.not_before); RETURN NULL;
        END $$ LANGUAGE plpgsql;
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
        `limited ${n}: crons inserted, due at ${due.toISOString()}; ${LIMIT_RATE.runs} per ${LIMIT_RATE.per_seconds} s: ` +
          `~${(Math.ceil(n / LIMIT_RATE.runs) - 1) * LIMIT_RATE.per_seconds} s until the last start`,
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

export function limitedTable(r: LimitedResult): void {
  const tuned =
    process.env.BENCH_LIMITED_RATE || LIMITED_BATCH
      ? ` TUNED (BENCH_LIMITED_RATE=${process.env.BENCH_LIMITED_RATE ?? ''} BENCH_LIMITED_BATCH=${LIMITED_BATCH ?? ''}: scheduler CRON_BATCH_SIZE)`
      : '';
  say(
    `4. Limited herd: ${fmt(r.runs)} echo crons due at once on a graph under a limit of ${LIMIT_RATE.runs} runs per ${LIMIT_RATE.per_seconds} s ` +
      `(agentcron.json), 1 scheduler + 1 worker, defaults otherwise${tuned}`,
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
    `   per run: ${r.job_updates_per_run.toFixed(2)} pg-boss job row updates, ${r.run_updates_per_run.toFixed(2)} runs row updates, ` +
      `parked ${r.parks_per_run.toFixed(2)} times (one run at most ${r.most_parks} times) ` +
      '(a run that starts at once: 2 job updates, fetch and completion, and 1 run update, its claim; ' +
      'each park adds 2 job updates, the park and the next fetch, and 1 run update)',
  );
  say(
    `   ${fmt(r.parked_runs)} runs waited; they started ${fmt(r.late_ms.p50)} / ${fmt(r.late_ms.p99)} / ${fmt(r.late_ms.max)} ms ` +
      '(p50 / p99 / max) after the time their first park gave them',
  );
  say(`   CPU (insert to last run ended, ${r.cpu.seconds.toFixed(0)} s; share of one core): ${cpuLine(r.cpu)}`);
}
