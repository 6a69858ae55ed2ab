// A release on a large database under load (issue 23): what the running deployment sees while
// migrations run. Not part of the suite: `node bench/release-under-load.ts` (under
// `flock /tmp/agentcron-heavy.lock` on a shared machine).
//
// One database with BENCH_CRONS idle crons (default 300,000) and BENCH_LEDGER ledger rows (default
// 1,000,000), the Procfile's api, scheduler and worker on it, 10 every-second crons firing and an
// API client sending ~20 requests/s (cron searches and creates). Two releases run in turn, each
// the same change to `crons` (a new column, a check constraint, an index, a backfill of every row):
//
//   locking  written as migrations 006 and 007 were: one transaction, a whole-table UPDATE, the
//            constraint validated at once, a plain CREATE INDEX, no lock_timeout (the old runner);
//   online   written to migrations/README.md's rules: the column and the constraint NOT VALID in a
//            short transaction, then a no-transaction migration (CREATE INDEX CONCURRENTLY, a
//            batched backfill, VALIDATE CONSTRAINT), each statement with the runner's 2 s
//            lock_timeout and retries.
//
// The online release also includes the ledger's partitioning (migration 020's statements, as
// 903_bench_partition.sql): the database is set up with migrations up to 019, 020 recorded as
// applied but not run (so the running processes, this code, start), and the 3,000,000-row ledger
// unpartitioned; the release then adds and validates the cutover CHECK and switches the ledger
// to partitions with the real runner, under the load. BENCH_RELEASES=online runs that one only.
//
// For each: the release's duration, the API's answers during it (5xx, slowest), and the
// every-second occurrences of the window: fired, and skipped as missed. One JSON line at the end.
// Backfill batches of crons are small (1,000 rows): a batch holds its rows until it commits, and
// a due cron held past its next second is passed over by the scheduler (SKIP LOCKED).
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MIGRATIONS_DIR, listMigrations, migrate } from '../libs/db/index.ts';
import type { Pool } from '../libs/db/index.ts';
import {
  ECHO,
  dbSecondFromNow,
  dropLeftovers,
  freshDatabase,
  insertCrons,
  killProcesses,
  onInterrupt,
  round,
  sleep,
  spawnRole,
  startServer,
} from './support.ts';

const CRONS = Number(process.env.BENCH_CRONS ?? 300_000);
const LEDGER = Number(process.env.BENCH_LEDGER ?? 1_000_000);
const RATE = Number(process.env.BENCH_RPS ?? 20);
/** Seconds of load before and after each release. */
const MARGIN_S = 5;

const RELEASES = {
  locking: {
    lockTimeoutMs: 3_600_000,
    files: {
      '900_bench_locking.sql': `
ALTER TABLE crons ADD COLUMN bench_locking integer;
UPDATE crons SET bench_locking = 1;
ALTER TABLE crons ADD CONSTRAINT crons_bench_locking CHECK (bench_locking IS NULL OR bench_locking >= 0);
CREATE INDEX crons_bench_locking ON crons (bench_locking, cron_id);
`,
    },
  },
  online: {
    lockTimeoutMs: undefined,
    files: {
      '901_bench_online_expand.sql': `
ALTER TABLE crons ADD COLUMN bench_online integer;
ALTER TABLE crons ADD CONSTRAINT crons_bench_online CHECK (bench_online IS NULL OR bench_online >= 0) NOT VALID;
`,
      '902_bench_online_build.sql': `-- agentcron:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS crons_bench_online ON crons (bench_online, cron_id);
-- agentcron:batch
UPDATE crons SET bench_online = 1
 WHERE cron_id IN (SELECT cron_id FROM crons WHERE bench_online IS NULL ORDER BY bench_online, cron_id LIMIT 1000);
ALTER TABLE crons VALIDATE CONSTRAINT crons_bench_online;
`,
      // The ledger partitioned by scheduled_for, online (migrations 019-020).
      '903_bench_partition.sql': readFileSync(path.join(MIGRATIONS_DIR, '020_ledger_partition_switch.sql'), 'utf8'),
    },
  },
} as const;
const ONLY = new Set((process.env.BENCH_RELEASES ?? 'locking,online').split(','));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Answer {
  at: number;
  status: number;
  ms: number;
}

/** ~RATE requests a second until stopped: cron searches, and one create in four. */
function apiLoad(base: string): { answers: Answer[]; stop(): Promise<void> } {
  const answers: Answer[] = [];
  let running = true;
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    while (running) {
      const i = n++;
      const started = Date.now();
      const req =
        i % 4 === 3
          ? fetch(`${base}/runs/crons`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ assistant_id: ECHO, schedule: '0 0 1 1 *', input: { i } }),
            })
          : fetch(`${base}/runs/crons/search`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ limit: 10, offset: i % 50 }),
            });
      const p = req
        .then(async (res) => {
          await res.arrayBuffer();
          answers.push({ at: started, status: res.status, ms: Date.now() - started });
        })
        .catch(() => void answers.push({ at: started, status: 0, ms: Date.now() - started }))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      await sleep(1000 / RATE);
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await loop;
      await Promise.all([...inFlight]);
    },
  };
}

async function occurrences(pool: Pool, everySecond: string[], from: Date, to: Date) {
  const { rows } = await pool.query<{ fired: number; missed: number; lag_p99_ms: number | null }>(
    `SELECT count(*) FILTER (WHERE status <> 'skipped')::int AS fired,
            count(*) FILTER (WHERE status = 'skipped' AND reason = 'missed')::int AS missed,
            (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM enqueued_at - scheduled_for) * 1000))::int AS lag_p99_ms
       FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) AND scheduled_for >= $2 AND scheduled_for < $3`,
    [everySecond, from, to],
  );
  return rows[0];
}

async function main(): Promise<void> {
  const server = await startServer();
  onInterrupt(() => dropLeftovers(server.url));
  onInterrupt(() => server.stop());
  const t0 = Date.now();
  // The schema before the ledger's partitioning: up to 019; 020 is recorded (the processes,
  // this code, need it to start) and run by the online release as 903_bench_partition.sql.
  const before = mkdtempSync(path.join(os.tmpdir(), 'agentcron-bench-before-'));
  for (const { id, file } of listMigrations()) if (id <= 19) symlinkSync(path.join(MIGRATIONS_DIR, file), path.join(before, file));
  const db = await freshDatabase(server.url, 'release', before);
  await db.pool.query(`INSERT INTO agentcron_migrations (id, name) VALUES (20, '020_ledger_partition_switch.sql')`);
  const dirs: string[] = [before];
  try {
    // The large database: idle crons (due in 2100) and a ledger of past occurrences.
    await insertCrons(db.pool, CRONS, '0 0 1 1 *', new Date('2100-01-01T00:00:00Z'));
    for (let done = 0; done < LEDGER; done += 200_000) {
      await db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, enqueued_at, started_at, ended_at)
         SELECT gen_random_uuid(), now() - make_interval(secs => g), 'success', now(), now(), now()
           FROM generate_series($1::int, $2::int) g`,
        [done, Math.min(LEDGER, done + 200_000) - 1],
      );
    }
    await db.pool.query('VACUUM ANALYZE crons');
    await db.pool.query('VACUUM ANALYZE cron_occurrences');
    const setupS = (Date.now() - t0) / 1000;
    process.stderr.write(`bench: ${CRONS} crons and ${LEDGER} ledger rows in ${setupS.toFixed(0)} s\n`);

    // The running deployment.
    const port = await freePort();
    const env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      CRON_ALLOW_SECONDS_SCHEDULE: 'true',
      CRON_POLL_INTERVAL_SECONDS: '1',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
    };
    const api = spawnRole('api', db.url, env);
    const procs = [api, spawnRole('scheduler', db.url, env), spawnRole('worker', db.url, env)];
    // LOG_LEVEL=warn hides the started lines: wait for the api to answer and the crons to fire instead.
    const base = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 60_000; ;) {
      const ok = await fetch(`${base}/ok`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the api did not start: ${api.tail().slice(-2000)}`);
      await sleep(200);
    }
    const firstDue = await dbSecondFromNow(db.pool, 2);
    const everySecond = (
      await db.pool.query<{ cron_id: string }>(
        `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, next_run_date, on_run_completed)
         SELECT gen_random_uuid(), $1, 'bench-second', '* * * * * *', '{"input": {}}', $2, 'delete' FROM generate_series(1, 10)
         RETURNING cron_id`,
        [ECHO, firstDue],
      )
    ).rows.map((r) => r.cron_id);
    await sleep(3000);

    const results: Record<string, unknown> = {};
    for (const [name, release] of Object.entries(RELEASES)) {
      if (!ONLY.has(name)) continue;
      const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-bench-release-'));
      dirs.push(dir);
      for (const { file } of listMigrations()) symlinkSync(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
      for (const [file, sql] of Object.entries(release.files)) writeFileSync(path.join(dir, file), sql);
      const load = apiLoad(base);
      await sleep(MARGIN_S * 1000);
      const windowFrom = await dbSecondFromNow(db.pool, 0);
      const started = Date.now();
      // The runner's lines, timed: which step an occurrence skipped as missed fell in.
      const timeline: string[] = [];
      const note = (m: string) => void timeline.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${m}`);
      const { applied } = await migrate(db.url, dir, { lockTimeoutMs: release.lockTimeoutMs, logger: { info: note, warn: note } });
      const releaseS = (Date.now() - started) / 1000;
      const windowTo = await dbSecondFromNow(db.pool, 1);
      await sleep(MARGIN_S * 1000);
      await load.stop();
      // Let the window's occurrences settle (fired or recorded as missed).
      await sleep(3000);
      const during = load.answers.filter((a) => a.at >= started - 1000 && a.at <= started + releaseS * 1000);
      const all = load.answers;
      const ms = during.map((a) => a.ms).sort((x, y) => x - y);
      const occ = await occurrences(db.pool, everySecond, windowFrom, windowTo);
      results[name] = {
        applied,
        release_s: round(releaseS, 1),
        api_requests_during: during.length,
        api_5xx_during: during.filter((a) => a.status >= 500 || a.status === 0).length,
        api_5xx_codes: [...new Set(all.filter((a) => a.status >= 500).map((a) => a.status))],
        api_slowest_ms: ms.at(-1) ?? null,
        api_p99_ms: ms.length ? ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))] : null,
        every_second_window_s: Math.round((windowTo.getTime() - windowFrom.getTime()) / 1000),
        occurrences_expected: 10 * Math.round((windowTo.getTime() - windowFrom.getTime()) / 1000),
        occurrences_fired: occ.fired,
        occurrences_missed: occ.missed,
        enqueue_lag_p99_ms: occ.lag_p99_ms,
      };
      process.stderr.write(`bench: ${name}: ${JSON.stringify(results[name])}\n`);
      const missed = await db.pool.query<{ at: number }>(
        `SELECT round(extract(epoch FROM scheduled_for) * 1000)::float8 AS at FROM cron_occurrences
          WHERE cron_id = ANY($1::uuid[]) AND scheduled_for >= $2 AND scheduled_for < $3 AND status = 'skipped' ORDER BY 1 LIMIT 20`,
        [everySecond, windowFrom, windowTo],
      );
      const missedAt = missed.rows.map((r) => `+${((r.at - started) / 1000).toFixed(1)}s`);
      process.stderr.write(`bench: ${name}: runner ${timeline.join(' | ')}; skipped occurrences scheduled at ${missedAt.join(', ') || 'none'}\n`);
      const ledger = await db.pool.query<{ kind: string; partitions: number }>(
        `SELECT c.relkind::text AS kind, (SELECT count(*)::int FROM pg_inherits WHERE inhparent = c.oid) AS partitions
           FROM pg_class c WHERE c.oid = 'cron_occurrences'::regclass`,
      );
      (results[name] as Record<string, unknown>).ledger =
        ledger.rows[0].kind === 'p' ? `partitioned (${ledger.rows[0].partitions} partitions)` : 'not partitioned';
    }
    const exited = procs.filter((p) => p.child.exitCode !== null).map((p) => p.name);
    console.log(
      JSON.stringify({
        bench: 'release-under-load',
        crons: CRONS,
        ledger_rows: LEDGER,
        api_rps: RATE,
        setup_s: round(setupS, 0),
        processes_exited: exited,
        ...results,
      }),
    );
  } finally {
    await killProcesses();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await db.drop().catch(() => {});
    await server.stop();
  }
}

await main();
