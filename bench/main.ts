// `npm run bench`: what a user of agentcron feels, measured on this machine with the Procfile's
// processes (`node apps/scheduler/main.ts`, `node apps/worker/main.ts`, `node apps/api/main.ts`)
// started with DATABASE_URL alone, so every setting is its default. Prints a table and ends with
// one JSON line. Each measurement gets a database of its own on DATABASE_URL's server (created and
// dropped here), or on an embedded PostgreSQL when DATABASE_URL is not set. Nothing is asserted.
//
//   1. herds (bench/herd.ts, bench/bullmq.ts): N stateless echo crons due at the same instant (1,000
//      and 10,000; 100,000 with `--100k` or BENCH_100K=1), one scheduler and one worker process:
//      from the scheduled instant to the run's start, p50/p99/max, with the enqueue lag beside it;
//      interleaved with the same herd of BullMQ job schedulers and one BullMQ Worker process at
//      concurrency 100 on the Redis at REDIS_URL (default redis://127.0.0.1:6379; skipped with one
//      line when there is none, or with `--no-bullmq`). Each herd's CPU per occurrence (PostgreSQL
//      server, scheduler, worker; Redis, BullMQ worker), its processes' memory, and agentcron's
//      rows written per occurrence. `--rounds=N` (BENCH_HERD_ROUNDS) repeats the comparison N
//      times (medians in the JSON). Then, labelled TUNED, the 10,000 herd with 2 worker processes
//      and with WORKER_CONCURRENCY=400 (`--no-tuned` skips them).
//   2. sustained (bench/sustained.ts): 2,000 every-second crons with 1 and 2 worker processes,
//      against raw pg-boss on the same server in the same run, and raw pg-boss's ceiling.
//   3. idle: queries/s a deployment (api, scheduler, worker) sends with 100,000 enabled crons,
//      none due, and the processes' memory.
//   4. limited (bench/limited.ts): a herd under a rate limit of 500 runs per 60 s.
//
// `--only=lag,sustained,idle,limited` runs a part. BENCH_SUSTAINED_CRONS (2000), BENCH_WARMUP_SECONDS (10),
// BENCH_WINDOW_SECONDS (30), BENCH_IDLE_CRONS (100000), BENCH_IDLE_SECONDS (60),
// BENCH_LAG_SIZES (1000,10000) and BENCH_TUNED_LAG_CRONS (10000) change the sizes.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MAX_CONNECTIONS, loadConfig } from '../libs/config/index.ts';
import { freePort } from '../test/support/torture/spawn.ts';
import { BULLMQ_CONCURRENCY, REDIS_URL, bullmqHerd, bullmqPeer } from './bullmq.ts';
import { memory } from './cpu.ts';
import { herdFields, herdTable } from './herd-report.ts';
import { DEFAULTS, ONCE_A_YEAR, TUNED, agentcronHerd } from './herd.ts';
import type { LagResult } from './herd.ts';
import { LIMITED_BATCH, LIMITED_RUNS, LIMIT_RATE, limitedHerd, limitedTable } from './limited.ts';
import { elapsedSeconds, fmt, mb, mib, progress, say } from './report.ts';
import { PROFILE_STATEMENTS, STATEMENT_SETTINGS } from './statements.ts';
import { SUSTAINED_CRONS, rawPgBoss, sustained, sustainedTable } from './sustained.ts';
import type { SustainedResult } from './sustained.ts';
import {
  ROOT,
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
  started,
  tableBytes,
  withDatabase,
} from './support.ts';

const args = new Set(process.argv.slice(2));
const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const WITH_100K = args.has('--100k') || process.env.BENCH_100K === '1';
// --only=lag,sustained,idle (a part of the bench, while working on it)
const ONLY = new Set((option('only') ?? 'lag,sustained,idle,limited').split(','));
// --bullmq=schedulers,delayed: the BullMQ peers (job schedulers, the like of a cron; plain delayed jobs, BullMQ's floor).
const PEERS = (option('bullmq') ?? 'schedulers').split(',') as ('schedulers' | 'delayed')[];
const ROUNDS = Number(option('rounds') ?? process.env.BENCH_HERD_ROUNDS ?? 1);
const TUNED_LAG_CRONS = Number(process.env.BENCH_TUNED_LAG_CRONS ?? 10_000);
const LAG_SIZES = (process.env.BENCH_LAG_SIZES ?? '1000,10000')
  .split(',')
  .map(Number)
  .concat(WITH_100K ? [100_000] : []);
const IDLE_CRONS = Number(process.env.BENCH_IDLE_CRONS ?? 100_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const BULLMQ_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version;

// ---------------------------------------------------------------------------------------------
// 3. Idle: a whole deployment with nothing due

interface IdleResult {
  queries_per_s: number;
  api_queries_per_s: number;
  scheduler_queries_per_s: number;
  worker_queries_per_s: number;
  crons_bytes: number;
  memory: Record<string, { rss: number; peak: number }>;
}

async function idle(server: string): Promise<IdleResult> {
  return withDatabase(server, 'idle', async (db) => {
    await insertCrons(db.pool, IDLE_CRONS, ONCE_A_YEAR, await dbSecondFromNow(db.pool, 86_400));
    const preload = path.join(ROOT, 'bench/count-queries.ts');
    const port = await freePort();
    const procs = [
      spawnRole('api', db.url, { PORT: String(port), HOST: '127.0.0.1' }, preload),
      spawnRole('scheduler', db.url, {}, preload),
      spawnRole('worker', db.url, {}, preload),
    ];
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
    const mem = Object.fromEntries(procs.map((p) => [p.name, memory(p.child.pid)]));
    await Promise.all(procs.map((p) => p.stop()));
    const [api, scheduler, worker] = b.map((n, i) => (n - a[i]) / IDLE_SECONDS);
    return {
      queries_per_s: scheduler + worker,
      api_queries_per_s: api,
      scheduler_queries_per_s: scheduler,
      worker_queries_per_s: worker,
      crons_bytes: await tableBytes(db.pool, 'crons'),
      memory: mem,
    };
  });
}

// ---------------------------------------------------------------------------------------------

const memoryMb = (m: Record<string, { rss: number; peak: number }> | undefined) =>
  m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, mb(v.rss)])) : undefined;

const server = await startServer(PROFILE_STATEMENTS ? STATEMENT_SETTINGS : {});
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
    `# agentcron bench: ${new URL(server.url).host} (PostgreSQL ${v[0].v}${server.embedded ? ', embedded' : ''}), node ${process.version}, ` +
      `${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at start`,
  );
  const defaultMaxConnections = `${DEFAULT_MAX_CONNECTIONS.scheduler} (scheduler) / ${DEFAULT_MAX_CONNECTIONS.worker} (worker)`;
  say(
    `# processes as in the Procfile (node apps/scheduler/main.ts, node apps/worker/main.ts) with DATABASE_URL only: ` +
      `WORKER_CONCURRENCY=${defaults.WORKER_CONCURRENCY}, CRON_BATCH_SIZE=${defaults.CRON_BATCH_SIZE}, ` +
      `CRON_POLL_INTERVAL_SECONDS=${defaults.CRON_POLL_INTERVAL_SECONDS}, ` +
      `DATABASE_MAX_CONNECTIONS=${defaults.DATABASE_MAX_CONNECTIONS ?? defaultMaxConnections}, ` +
      `LOG_LEVEL=${defaults.LOG_LEVEL}, MIGRATE_ON_START=${defaults.MIGRATE_ON_START ?? 'unset (false: the bench migrates first)'}`,
  );
  say(
    '# crons are inserted in SQL as the API stores them (stateless, echo assistant, input {}); ' +
      'every-second schedules are what the API accepts with CRON_ALLOW_SECONDS_SCHEDULE=true (the scheduler and worker do not read it)',
  );
  say();

  const lags: LagResult[] = [];
  let bullmqNote = 'BullMQ peer not run';
  if (ONLY.has('lag')) {
    const peer = args.has('--no-bullmq') ? 'skipped (--no-bullmq)' : await bullmqPeer();
    if (typeof peer === 'string') say(`# BullMQ peer skipped: ${peer}`);
    else
      bullmqNote =
        `BullMQ ${BULLMQ_VERSION} = job schedulers whose six-field cron pattern names the due second` +
        (PEERS.includes('delayed') ? '; BullMQ delayed = plain delayed jobs due then (no next occurrence: its floor)' : '') +
        '; ' +
        `1 Worker process at concurrency ${BULLMQ_CONCURRENCY}, no-op processor, Redis ${peer.version} at ${REDIS_URL} (${peer.settings})`;
    // Interleaved: each size, agentcron then BullMQ (the other way round in even rounds).
    for (let r = 1; r <= ROUNDS; r++) {
      for (const n of LAG_SIZES) {
        const systems = ['agentcron', ...(typeof peer === 'string' ? [] : PEERS)];
        for (const system of r % 2 ? systems : systems.reverse()) {
          const res =
            system === 'agentcron' || typeof peer === 'string'
              ? await agentcronHerd(server.url, n, DEFAULTS, r)
              : await bullmqHerd(peer, n, r, system as (typeof PEERS)[number]);
          lags.push(res);
          progress(`lag ${n} (${system}, round ${r}): start p99 ${fmt(res.start.p99)} ms, all started ${fmt(res.all_started_s, 2)} s`);
        }
      }
    }
    // Beside the defaults, clearly labelled: what more workers or more concurrency do to the 10,000 case.
    if (!args.has('--no-tuned')) {
      for (const setup of TUNED) {
        lags.push(await agentcronHerd(server.url, TUNED_LAG_CRONS, setup, 1));
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
      `limited ${LIMITED_RUNS}: all started after ${limited.all_started_s.toFixed(1)} s, ` +
        `most starts in any ${LIMIT_RATE.per_seconds} s ${limited.max_starts_per_window}`,
    );

  if (lags.length) {
    say();
    herdTable(lags, bullmqNote);
  }
  if (one && two && raw) {
    say();
    sustainedTable([one, two, raw]);
  }
  if (quiet) {
    say();
    say(
      `3. Idle: ${quiet.queries_per_s.toFixed(2)} queries/s from one scheduler (${quiet.scheduler_queries_per_s.toFixed(2)}) ` +
        `and one worker process (${quiet.worker_queries_per_s.toFixed(2)}), ` +
        `${(quiet.queries_per_s + quiet.api_queries_per_s).toFixed(2)} with the api (${quiet.api_queries_per_s.toFixed(2)}), ` +
        `with ${fmt(IDLE_CRONS)} enabled crons, none due ` +
        `(${IDLE_SECONDS} s; crons table ${mib(quiet.crons_bytes)}, ${fmt(quiet.crons_bytes / IDLE_CRONS)} B/cron)`,
    );
    say(
      `   memory at the end (RSS / peak MB): ${Object.entries(quiet.memory)
        .map(([k, m]) => `${k} ${fmt(mb(m.rss))} / ${fmt(mb(m.peak))}`)
        .join(', ')}`,
    );
  }
  if (limited) {
    say();
    limitedTable(limited);
  }
  say(`# ${elapsedSeconds().toFixed(0)} s in all`);

  const lagFields = herdFields(lags);
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
        idle_scheduler_queries_per_s: round(quiet.scheduler_queries_per_s, 2),
        idle_worker_queries_per_s: round(quiet.worker_queries_per_s, 2),
        idle_api_queries_per_s: round(quiet.api_queries_per_s, 2),
        idle_deployment_queries_per_s: round(quiet.queries_per_s + quiet.api_queries_per_s, 2),
      }
    : {};
  // RSS of each process at the end of each phase (MB).
  const rss_mb = Object.fromEntries(
    Object.entries({
      ...Object.fromEntries(lags.map((l) => [`${l.system === 'agentcron' ? '' : `${l.system}_`}lag_${l.crons}${l.setup.key}`, memoryMb(l.cost.memory)])),
      sustained: memoryMb(one?.memory),
      sustained_2_workers: memoryMb(two?.memory),
      idle: memoryMb(quiet?.memory),
    }).filter(([, v]) => v),
  );
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
  say(
    JSON.stringify({ ...lagFields, ...sustainedFields, ...idleFields, ...limitedFields, rss_mb, herd_rounds: ROUNDS, seconds: Math.round(elapsedSeconds()) }),
  );
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  await killProcesses();
  await dropLeftovers(server.url);
  await server.stop();
}
process.exit(exitCode);
