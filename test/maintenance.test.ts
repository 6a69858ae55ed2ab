import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { ConfigError, loadConfig } from '../libs/config/index.ts';
import { CronScheduler } from '../libs/crons/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { healthRoutes } from '../libs/http/health.ts';
import {
  MaintenanceScheduler,
  MaintenanceWorker,
  builtinJobs,
  configuredJobs,
  maintenanceSettings,
  occurrenceJobId,
  registerMaintenanceJobs,
} from '../libs/maintenance/index.ts';
import type { MaintenanceJob, MaintenanceSettings } from '../libs/maintenance/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { QUEUES, enqueueRuns } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, clearOfBoundary, eventually, insertCron, newPool, newWorker, quietLogger, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';
import { spawnApp } from './support/processes.ts';
import { startStack } from './support/stack.ts';

// The built-in maintenance jobs: each does its work on data prepared for it and leaves alone what
// it must not touch; they are registered once however many processes start, fired exactly once
// per occurrence by the scheduler loop, and a job that throws stops nothing.

const FAR = '2100-01-01T00:00:00Z';

function settings(overrides: Partial<MaintenanceSettings> = {}): MaintenanceSettings {
  return { ...maintenanceSettings(loadConfig({})), ...overrides };
}

function maintenanceWorker(db: TestDatabase, boss: PgBoss, s: MaintenanceSettings, jobs: MaintenanceJob[] = builtinJobs()): MaintenanceWorker {
  return new MaintenanceWorker({ pool: db.pool, boss, logger: quietLogger(), settings: s, jobs });
}

async function newAssistant(pool: Pool): Promise<string> {
  const id = randomUUID();
  await pool.query(`INSERT INTO assistants (assistant_id, graph_id, name) VALUES ($1, 'echo', 'stats')`, [id]);
  return id;
}

async function thread(pool: Pool, t: { ephemeral?: boolean; ageSql?: string } = {}): Promise<string> {
  const id = randomUUID();
  await pool.query(
    `INSERT INTO threads (thread_id, user_id, ephemeral, created_at, updated_at) VALUES ($1, 'u', $2, now() - $3::interval, now() - $3::interval)`,
    [id, t.ephemeral ?? false, t.ageSql ?? '0 seconds'],
  );
  return id;
}

interface RunFixture {
  thread_id: string;
  status: string;
  assistant_id?: string;
  cron_id?: string | null;
  scheduled_for?: Date | null;
  /** SQL intervals before now(). */
  created?: string;
  started?: string | null;
  ended?: string | null;
}

async function run(pool: Pool, r: RunFixture): Promise<string> {
  const id = randomUUID();
  await pool.query(
    `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, status, created_at, updated_at, started_at, ended_at)
     VALUES ($1, $2, $3, 'u', $4, $5, $6, now() - $7::interval, now() - coalesce($9::interval, $8::interval, $7::interval),
             now() - $8::interval, now() - $9::interval)`,
    [
      id,
      r.thread_id,
      r.assistant_id ?? ECHO,
      r.cron_id ?? null,
      r.scheduled_for ?? null,
      r.status,
      r.created ?? '0 seconds',
      r.started ?? null,
      r.ended ?? null,
    ],
  );
  return id;
}

const exists = async (pool: Pool, table: string, column: string, id: string) =>
  (await pool.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [id])).rowCount === 1;

describe('maintenance jobs', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('maintenance');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    await registerMaintenanceJobs(db.pool, configuredJobs(loadConfig({})));
  });
  after(() =>
    teardown(
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('retention purge deletes ended runs and settled ledger rows past RUN_RETENTION_DAYS, and nothing else', async () => {
    const t = await thread(db.pool);
    const oldEnded = await run(db.pool, { thread_id: t, status: 'success', created: '41 days', started: '41 days', ended: '40 days' });
    const recentEnded = await run(db.pool, { thread_id: t, status: 'error', created: '2 days', started: '2 days', ended: '1 day' });
    const oldRunning = await run(db.pool, { thread_id: t, status: 'running', created: '41 days', started: '41 days' });
    const cron = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR });
    const gone = randomUUID();
    // (cron, age of the row, status): the cron that exists keeps what is unsettled or recent; the deleted one only what is recent.
    const rows: [string, string, string][] = [
      [cron, '40 days', 'success'],
      [cron, '40 days', 'enqueued'],
      [cron, '1 day', 'success'],
      [gone, '40 days', 'enqueued'],
      [gone, '1 day', 'skipped'],
    ];
    for (const [cronId, age, status] of rows) {
      await db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, created_at, ended_at)
         VALUES ($1, now() - $2::interval, $3, now() - $2::interval, CASE WHEN $3 IN ('success', 'skipped') THEN now() - $2::interval END)`,
        [cronId, age, status],
      );
    }
    const ex = await maintenanceWorker(db, boss, settings({ runRetentionDays: 30 })).execute('retention_purge');
    assert.equal(ex.status, 'success', ex.error ?? '');
    assert.equal(await exists(db.pool, 'runs', 'run_id', oldEnded), false);
    assert.equal(await exists(db.pool, 'runs', 'run_id', recentEnded), true);
    assert.equal(await exists(db.pool, 'runs', 'run_id', oldRunning), true, 'a run still going is never purged');
    const { rows: left } = await db.pool.query(
      `SELECT cron_id, status, (created_at < now() - interval '30 days') AS old FROM cron_occurrences WHERE cron_id = ANY($1) ORDER BY cron_id, created_at`,
      [[cron, gone]],
    );
    const summary = left.map((r) => `${r.cron_id === cron ? 'cron' : 'gone'}:${r.status}:${r.old ? 'old' : 'recent'}`).sort();
    assert.deepEqual(summary, ['cron:enqueued:old', 'cron:success:recent', 'gone:skipped:recent']);
    assert.ok((ex.result!.runs_deleted as number) >= 1);
    assert.equal(ex.result!.ledger_rows_deleted, 2);

    // RUN_RETENTION_DAYS=0 keeps everything.
    await db.pool.query(`UPDATE runs SET ended_at = now() - interval '400 days' WHERE run_id = $1`, [recentEnded]);
    const keep = await maintenanceWorker(db, boss, settings({ runRetentionDays: 0 })).execute('retention_purge');
    assert.equal(keep.status, 'success');
    assert.equal(await exists(db.pool, 'runs', 'run_id', recentEnded), true);
  });

  test('retention purge deletes the threads keep crons made once idle past RUN_RETENTION_DAYS, and no other thread', async () => {
    const keepThread = async (age: string) => {
      const id = await thread(db.pool, { ageSql: age });
      await db.pool.query(`UPDATE threads SET metadata = jsonb_build_object('cron_id', $2::text, 'scheduled_for', now()::text) WHERE thread_id = $1`, [
        id,
        randomUUID(),
      ]);
      return id;
    };
    const idle = await keepThread('40 days');
    const idleRunGone = await keepThread('40 days');
    await run(db.pool, { thread_id: idleRunGone, status: 'success', created: '41 days', started: '41 days', ended: '40 days' });
    const recentRun = await keepThread('40 days');
    await run(db.pool, { thread_id: recentRun, status: 'success', created: '2 days', started: '2 days', ended: '1 day' });
    const going = await keepThread('40 days');
    await run(db.pool, { thread_id: going, status: 'running', created: '41 days', started: '41 days' });
    const young = await keepThread('1 day');
    const users = await thread(db.pool, { ageSql: '40 days' });
    const ex = await maintenanceWorker(db, boss, settings({ runRetentionDays: 30 })).execute('retention_purge');
    assert.equal(ex.status, 'success', ex.error ?? '');
    for (const [id, expected] of [
      [idle, false],
      [idleRunGone, false],
      [recentRun, true],
      [going, true],
      [young, true],
      [users, true],
    ] as const) {
      assert.equal(await exists(db.pool, 'threads', 'thread_id', id), expected, id);
    }
    assert.equal(ex.result!.keep_cron_threads_deleted, 2);
  });

  test('ephemeral thread sweep deletes only ephemeral threads past the grace period with nothing in progress', async () => {
    const orphanEnded = await thread(db.pool, { ephemeral: true, ageSql: '2 hours' });
    await run(db.pool, { thread_id: orphanEnded, status: 'success', created: '2 hours', started: '2 hours', ended: '2 hours' });
    const orphanEmpty = await thread(db.pool, { ephemeral: true, ageSql: '3 hours' });
    const busy = await thread(db.pool, { ephemeral: true, ageSql: '2 hours' });
    await run(db.pool, { thread_id: busy, status: 'pending', created: '2 hours' });
    const young = await thread(db.pool, { ephemeral: true, ageSql: '10 minutes' });
    const kept = await thread(db.pool, { ephemeral: false, ageSql: '30 days' });
    const ex = await maintenanceWorker(db, boss, settings({ ephemeralGraceMinutes: 60 })).execute('ephemeral_thread_sweep');
    assert.equal(ex.status, 'success', ex.error ?? '');
    assert.equal(ex.result!.threads_deleted, 2);
    for (const [id, expected] of [
      [orphanEnded, false],
      [orphanEmpty, false],
      [busy, true],
      [young, true],
      [kept, true],
    ] as const) {
      assert.equal(await exists(db.pool, 'threads', 'thread_id', id), expected, id);
    }
  });

  test('stale run reaper ends, through endRuns, only old runs no live worker holds; the ledger and the cron say why', async () => {
    const t = await thread(db.pool);
    const cron = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR, thread_id: t });
    const scheduledFor = new Date(Date.now() - 2 * 3600_000);
    // A: a cron run, running for 2 h, whose job is gone (its worker died and the job was cleaned up).
    const a = await run(db.pool, { thread_id: t, status: 'running', cron_id: cron, scheduled_for: scheduledFor, created: '2 hours', started: '2 hours' });
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status, enqueued_at, started_at) VALUES ($1, $2, $3, 'running', $2, $2)`,
      [cron, scheduledFor, a],
    );
    // B: pending for 2 h, its job still waiting in the queue (a backlog): it will run, leave it.
    const b = await run(db.pool, { thread_id: t, status: 'pending', created: '2 hours' });
    // C: running for 2 h, its job active and heartbeating on a live worker: held.
    const c = await run(db.pool, { thread_id: t, status: 'running', created: '2 hours', started: '2 hours' });
    // D: running, job gone, but only for 10 s: not stale yet.
    const d = await run(db.pool, { thread_id: t, status: 'running', created: '10 seconds', started: '10 seconds' });
    // E: running for 2 h, job active but its heartbeat stopped an hour ago: held by nobody.
    const e = await run(db.pool, { thread_id: t, status: 'running', created: '2 hours', started: '2 hours' });
    await enqueueRuns(
      boss,
      [b, c, e].map((id) => ({ run_id: id, group: id })),
    );
    await db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now(), heartbeat_on = now() WHERE id = $1`, [c]);
    await db.pool.query(
      `UPDATE pgboss.job SET state = 'active', started_on = now() - interval '2 hours', heartbeat_on = now() - interval '1 hour' WHERE id = $1`,
      [e],
    );
    await db.pool.query(`INSERT INTO agentcron_processes (process_id, role, hostname, pid) VALUES ($1, 'worker', 'test', 1)`, [randomUUID()]);

    const ex = await maintenanceWorker(db, boss, settings({ staleRunSeconds: 60 })).execute('stale_run_reaper');
    assert.equal(ex.status, 'success', ex.error ?? '');
    // (The retention test's run left running for 41 days is reaped too: rightly so.)
    const mine = new Set([a, b, c, d, e]);
    assert.deepEqual((ex.result!.run_ids as string[]).filter((id) => mine.has(id)).sort(), [a, e].sort());
    const { rows } = await db.pool.query(`SELECT run_id, status, error FROM runs WHERE run_id = ANY($1)`, [[a, b, c, d, e]]);
    const by = new Map(rows.map((r) => [r.run_id, r]));
    assert.equal(by.get(a).status, 'error');
    assert.equal(by.get(a).error.error, 'StaleRun');
    assert.equal(by.get(e).status, 'error');
    assert.equal(by.get(b).status, 'pending');
    assert.equal(by.get(c).status, 'running');
    assert.equal(by.get(d).status, 'running');
    const ledger = await db.pool.query(`SELECT status, error FROM cron_occurrences WHERE cron_id = $1`, [cron]);
    assert.equal(ledger.rows[0].status, 'error');
    assert.match(ledger.rows[0].error, /stale run reaper/);
    const cronRow = await db.pool.query(`SELECT last_run_status, last_run_error FROM cron_last_runs WHERE cron_id = $1`, [cron]);
    assert.equal(cronRow.rows[0].last_run_status, 'error');
    assert.match(cronRow.rows[0].last_run_error, /no live worker held it/);
    await db.pool.query(`DELETE FROM agentcron_processes`);
  });

  test('daily statistics: per cron and per assistant, runs, failures, timeouts, p50/p95 duration and p95 fire lag, for yesterday and today', async () => {
    const assistant = await newAssistant(db.pool);
    const cron = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR, assistant_id: assistant });
    const old = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR, assistant_id: assistant });
    // "Today" below must be the job's today too: not across midnight (UTC).
    await clearOfBoundary(db.pool, 'day', 30);
    const { rows: clock } = await db.pool.query<{ today: Date }>(`SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today`);
    const today = clock[0].today.getTime();
    // [minutes after today's midnight (UTC), status, duration ms, fire lag ms]
    const occurrences: [number, string, number | null, number | null][] = [
      [1, 'success', 1000, 100],
      [2, 'success', 2000, 200],
      [3, 'success', 10_000, 5000],
      [4, 'error', null, null],
      [5, 'timeout', null, null],
      [6, 'skipped', null, null],
      [-600, 'success', 500, 50], // yesterday 14:00
    ];
    for (const [minutes, status, duration, lag] of occurrences) {
      const at = new Date(today + minutes * 60_000);
      await db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, enqueued_at, started_at, ended_at)
         VALUES ($1, $2, $3, $2::timestamptz + make_interval(secs => $4::float8 / 1000),
                 $5::timestamptz, $5::timestamptz + make_interval(secs => $6::float8 / 1000))`,
        [cron, at, status, lag, duration === null ? null : at, duration],
      );
    }
    await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status) VALUES ($1, now() - interval '3 days', 'success')`, [old]);
    // A run no cron started counts for its assistant only.
    const t = await thread(db.pool);
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, created_at, started_at, ended_at)
       VALUES ($1, $2, $3, 'u', 'success', $4, $4, $4::timestamptz + interval '4 seconds')`,
      [randomUUID(), t, assistant, new Date(today + 30 * 60_000)],
    );
    const ex = await maintenanceWorker(db, boss, settings({ timezone: 'UTC' })).execute('daily_stats');
    assert.equal(ex.status, 'success', ex.error ?? '');
    const { rows } = await db.pool.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, scope, runs, successes, failures, timeouts, interrupted, skipped, p50_duration_ms, p95_duration_ms,
        p95_fire_lag_ms
         FROM run_daily_stats WHERE scope_id = ANY($1) ORDER BY day, scope`,
      [[cron, old, assistant]],
    );
    const todayKey = new Date(today).toISOString().slice(0, 10);
    const yesterdayKey = new Date(today - 86_400_000).toISOString().slice(0, 10);
    const get = (day: string, scope: string) => rows.find((r) => r.day === day && r.scope === scope);
    const c = get(todayKey, 'cron');
    assert.deepEqual(
      { runs: c.runs, successes: c.successes, failures: c.failures, timeouts: c.timeouts, skipped: c.skipped },
      { runs: 5, successes: 3, failures: 1, timeouts: 1, skipped: 1 },
    );
    assert.equal(c.p50_duration_ms, 2000);
    assert.equal(Math.round(c.p95_duration_ms), 9200);
    assert.equal(Math.round(c.p95_fire_lag_ms), 4520);
    const a = get(todayKey, 'assistant');
    assert.deepEqual({ runs: a.runs, successes: a.successes, failures: a.failures }, { runs: 6, successes: 4, failures: 1 });
    assert.equal(a.p50_duration_ms, 3000);
    assert.equal(get(yesterdayKey, 'cron').runs, 1);
    assert.equal(get(yesterdayKey, 'cron').p95_fire_lag_ms, 50);
    // Three days ago is not today's or yesterday's business; a repeat rewrites the same rows.
    assert.equal(rows.length, 4);
    const again = await maintenanceWorker(db, boss, settings({ timezone: 'UTC' })).execute('daily_stats');
    assert.equal(again.status, 'success');
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM run_daily_stats WHERE scope_id = ANY($1)`, [[cron, old, assistant]])).rows[0].n, 4);
  });

  test('heartbeat monitor finds lagging and overdue crons, lost processes and dead letters; /health shows them and judges scheduler ticks', async () => {
    const lagging = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR });
    const punctual = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: FAR });
    const overdue = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: new Date(Date.now() - 600_000) });
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, enqueued_at)
       VALUES ($1, now() - interval '3 minutes', 'enqueued', now() - interval '1 minute'),
              ($2, now() - interval '3 minutes', 'enqueued', now() - interval '179 seconds')`,
      [lagging, punctual],
    );
    const lost = randomUUID();
    await db.pool.query(`DELETE FROM agentcron_processes`);
    await db.pool.query(
      `INSERT INTO agentcron_processes (process_id, role, hostname, pid, last_seen_at, stopped_at) VALUES
         ($1, 'worker', 'gone-host', 41, now() - interval '1 hour', NULL),
         ($2, 'scheduler', 'stopped-host', 42, now() - interval '1 hour', now() - interval '1 hour'),
         ($3, 'worker', 'live-host', 43, now(), NULL)`,
      [lost, randomUUID(), randomUUID()],
    );
    await boss.send(QUEUES.runDead, { run_id: randomUUID() });
    const ex = await maintenanceWorker(db, boss, settings({ fireLagWarnSeconds: 60, heartbeatSeconds: 10 })).execute('heartbeat_monitor');
    assert.equal(ex.status, 'success', ex.error ?? '');
    const f = ex.result as any;
    assert.deepEqual(
      f.lagging_crons.map((c: any) => c.cron_id),
      [lagging],
    );
    assert.equal(Math.round(f.lagging_crons[0].max_lag_seconds), 120);
    assert.equal(f.overdue_crons.count, 1);
    assert.deepEqual(
      f.lost_processes.map((p: any) => p.process_id),
      [lost],
    );
    assert.deepEqual(f.alive, { schedulers: 0, workers: 1 });
    assert.deepEqual(
      f.dead_letters.find((d: any) => d.queue === QUEUES.runDead),
      { queue: QUEUES.runDead, last_hour: 1, waiting: 1 },
    );
    for (const re of [
      /cron .* enqueued up to 120\.0s late/,
      /1 enabled cron\(s\) due more than 60s ago/,
      /worker gone-host:41/,
      /no scheduler is alive/,
      /reached agentcron\.run\.dead/,
    ]) {
      assert.ok(
        f.warnings.some((w: string) => re.test(w)),
        `${re} in ${JSON.stringify(f.warnings)}`,
      );
    }
    await db.pool.query(`UPDATE crons SET enabled = false WHERE cron_id = $1`, [overdue]);

    // /health: the findings, and 503 once a registered scheduler stops ticking (unless CRON_ENABLED=false).
    const health = async (enabled: boolean) => {
      const app = express();
      app.use(healthRoutes({ pool: db.pool, boss, heartbeatSeconds: 1, scheduler: { enabled, pollIntervalSeconds: 1 } }));
      const server: Server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
        return { status: res.status, body: (await res.json()) as any };
      } finally {
        server.close();
      }
    };
    await db.pool.query(`DELETE FROM agentcron_processes WHERE role = 'scheduler'`);
    let h = await health(true);
    assert.equal(h.status, 200, `no scheduler ever registered: not judged ${JSON.stringify(h.body)}`);
    assert.equal(h.body.schedulers.ticking, null);
    assert.deepEqual(
      h.body.monitor.lagging_crons.map((c: any) => c.cron_id),
      [lagging],
    );
    assert.ok(h.body.monitor.warnings.length >= 4);
    const scheduler = randomUUID();
    await db.pool.query(
      `INSERT INTO agentcron_processes (process_id, role, hostname, pid, started_at, last_seen_at, last_tick_at) VALUES ($1, 'scheduler', 'h', 1,
        now() - interval '1 hour', now(), now() - interval '1 minute')`,
      [scheduler],
    );
    h = await health(true);
    assert.equal(h.status, 503);
    assert.equal(h.body.ok, false);
    assert.equal(h.body.schedulers.ticking, false);
    assert.equal(h.body.schedulers.stale_after_seconds, 4);
    assert.equal((await health(false)).status, 200, 'CRON_ENABLED=false: ticks are not expected');
    await db.pool.query(`UPDATE agentcron_processes SET last_tick_at = now() WHERE process_id = $1`, [scheduler]);
    h = await health(true);
    assert.equal(h.status, 200);
    assert.equal(h.body.schedulers.ticking, true);
    await db.pool.query(`DELETE FROM agentcron_processes`);
    // The next check reads only what was written since this one: the lag above is not read again.
    const next = (await maintenanceWorker(db, boss, settings({ fireLagWarnSeconds: 60, heartbeatSeconds: 10 })).execute('heartbeat_monitor')).result as any;
    assert.ok(new Date(next.lagging_since).getTime() >= new Date(f.checked_at).getTime() - 30_000, JSON.stringify([next.lagging_since, f.checked_at]));
    await db.pool.query(`UPDATE cron_occurrences SET created_at = now() - interval '5 minutes' WHERE cron_id = $1`, [lagging]);
    const later = (await maintenanceWorker(db, boss, settings({ fireLagWarnSeconds: 60, heartbeatSeconds: 10 })).execute('heartbeat_monitor')).result as any;
    assert.deepEqual(later.lagging_crons, []);
  });

  test('thread TTL (off by default) deletes idle threads, never one in use, recently run or bound to a cron', async () => {
    const idle = await thread(db.pool, { ageSql: '40 days' });
    const idleWithOldRun = await thread(db.pool, { ageSql: '40 days' });
    await run(db.pool, { thread_id: idleWithOldRun, status: 'success', created: '40 days', started: '40 days', ended: '40 days' });
    const recentlyRun = await thread(db.pool, { ageSql: '40 days' });
    await run(db.pool, { thread_id: recentlyRun, status: 'success', created: '1 day', started: '1 day', ended: '1 day' });
    const bound = await thread(db.pool, { ageSql: '40 days' });
    const cron = await insertCron(db.pool, { schedule: '0 0 1 1 *', next_run_date: FAR, thread_id: bound });
    const fresh = await thread(db.pool, { ageSql: '1 day' });

    const off = await maintenanceWorker(db, boss, settings({ threadTtlDays: 0 })).execute('thread_ttl');
    assert.equal(off.status, 'success');
    assert.equal(await exists(db.pool, 'threads', 'thread_id', idle), true, 'THREAD_TTL_DAYS unset deletes nothing');
    assert.equal(configuredJobs(loadConfig({})).find((j) => j.name === 'thread_ttl')!.enabled, false);

    const ex = await maintenanceWorker(db, boss, settings({ threadTtlDays: 30 })).execute('thread_ttl');
    assert.equal(ex.status, 'success', ex.error ?? '');
    for (const [id, expected] of [
      [idle, false],
      [idleWithOldRun, false],
      [recentlyRun, true],
      [bound, true],
      [fresh, true],
    ] as const) {
      assert.equal(await exists(db.pool, 'threads', 'thread_id', id), expected, id);
    }
    assert.equal(await exists(db.pool, 'crons', 'cron_id', cron), true);
  });

  test("queue hygiene deletes finished jobs of agentcron's queues past QUEUE_RETENTION_DAYS; waiting jobs and other queues stay", async () => {
    await boss.createQueue('someone.else');
    const ids = {
      oldCompleted: (await boss.send(QUEUES.run, { run_id: randomUUID() }))!,
      oldFailed: (await boss.send(QUEUES.webhook, { x: 1 }))!,
      recentCompleted: (await boss.send(QUEUES.run, { run_id: randomUUID() }))!,
      oldWaiting: (await boss.send(QUEUES.run, { run_id: randomUUID() }))!,
      otherQueue: (await boss.send('someone.else', { x: 1 }))!,
    };
    const finish = (id: string, state: string, age: string) =>
      db.pool.query(
        `UPDATE pgboss.job SET state = $2::pgboss.job_state, created_on = now() - $3::interval, completed_on = now() - $3::interval WHERE id = $1`,
        [id, state, age],
      );
    await finish(ids.oldCompleted, 'completed', '10 days');
    await finish(ids.oldFailed, 'failed', '10 days');
    await finish(ids.recentCompleted, 'completed', '1 day');
    await finish(ids.otherQueue, 'completed', '10 days');
    await db.pool.query(`UPDATE pgboss.job SET created_on = now() - interval '10 days' WHERE id = $1`, [ids.oldWaiting]);
    const ex = await maintenanceWorker(db, boss, settings({ queueRetentionDays: 7 })).execute('queue_hygiene');
    assert.equal(ex.status, 'success', ex.error ?? '');
    const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM pgboss.job WHERE id = ANY($1)`, [Object.values(ids)]);
    const left = new Set(rows.map((r) => r.id));
    assert.deepEqual(Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, left.has(id)])), {
      oldCompleted: false,
      oldFailed: false,
      recentCompleted: true,
      oldWaiting: true,
      otherQueue: true,
    });
  });

  test('schedulers racing fire each due occurrence once: one job per occurrence, id from (job, scheduled_for), latest of the missed only', async () => {
    // Every job due: the per-minute monitor ten minutes ago (ten occurrences missed since, or
    // eleven if a minute boundary passes before the passes below).
    const { rows: due } = await db.pool.query<{ t0: Date }>(
      `UPDATE maintenance_jobs SET next_run_date = date_trunc('minute', now()) - interval '10 minutes', missed_total = 0 WHERE enabled RETURNING
        next_run_date AS t0`,
    );
    const t0 = due[0].t0;
    await db.pool.query(`DELETE FROM pgboss.job WHERE name = $1`, [QUEUES.maintenance]);
    const pools = Array.from({ length: 5 }, () => newPool(db.url, 2));
    let results: { fired: number }[];
    try {
      const sources = pools.map((pool) => new MaintenanceScheduler({ pool, boss, logger: quietLogger() }));
      results = await Promise.all(sources.map((s) => s.pass()));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    const { rows: jobs } = await db.pool.query<{ job_name: string; next_run_date: Date; last_scheduled_for: Date; missed_total: string }>(
      `SELECT job_name, next_run_date, last_scheduled_for, missed_total FROM maintenance_jobs WHERE enabled ORDER BY job_name`,
    );
    assert.equal(
      results.reduce((n, r) => n + r.fired, 0),
      jobs.length,
      'each job fired once in all',
    );
    const { rows: queued } = await db.pool.query<{ id: string; data: any }>(`SELECT id, data FROM pgboss.job WHERE name = $1`, [QUEUES.maintenance]);
    assert.equal(queued.length, jobs.length);
    for (const j of jobs) {
      const q = queued.filter((x) => x.data.job === j.job_name);
      assert.equal(q.length, 1, j.job_name);
      assert.equal(q[0].id, occurrenceJobId(j.job_name, j.last_scheduled_for));
      assert.ok(j.next_run_date.getTime() > Date.now() - 1000, `${j.job_name} advanced past now`);
    }
    const monitor = jobs.find((j) => j.job_name === 'heartbeat_monitor')!;
    // Its latest occurrence is the current minute's, and every one from t0 up to it was counted.
    const missed = (monitor.last_scheduled_for.getTime() - t0.getTime()) / 60_000;
    assert.ok(missed >= 10, `latest occurrence ${monitor.last_scheduled_for.toISOString()}`);
    assert.equal(Number(monitor.missed_total), missed, 'the monitor fired its latest occurrence and counted all those before it');
    assert.equal(monitor.last_scheduled_for.getTime(), monitor.next_run_date.getTime() - 60_000);
    // A second pass finds nothing due; a repeated enqueue of an occurrence is a no-op.
    assert.equal((await new MaintenanceScheduler({ pool: db.pool, boss, logger: quietLogger() }).pass()).claimed, 0);
    await db.pool.query(`DELETE FROM pgboss.job WHERE name = $1`, [QUEUES.maintenance]);
  });

  test('a job that throws records last_run_error and fails again at its next occurrence; scheduler, crons and other jobs keep going', async () => {
    let explosions = 0;
    const explode: MaintenanceJob = {
      name: 'test_explode',
      async run() {
        explosions++;
        throw new Error(`boom ${explosions}`);
      },
    };
    let ticks = 0;
    const tick: MaintenanceJob = {
      name: 'test_tick',
      async run() {
        ticks++;
        return { ticks };
      },
    };
    // Only the test's jobs are due (every second); the built-in ones wait far away.
    await db.pool.query(`UPDATE maintenance_jobs SET next_run_date = $1`, [FAR]);
    await registerMaintenanceJobs(db.pool, [
      { name: 'test_explode', schedule: '* * * * * *', timezone: 'UTC', enabled: true },
      { name: 'test_tick', schedule: '* * * * * *', timezone: 'UTC', enabled: true },
    ]);
    // Silent: the failures below are expected, every second.
    const silent = quietLogger();
    silent.silent = true;
    // A source that throws on every pass, too: it is logged and the loop goes on.
    const broken = { pass: async () => Promise.reject(new Error('source down')), msUntilNext: async () => null };
    const scheduler = new CronScheduler({
      pool: db.pool,
      boss,
      logger: silent,
      pollIntervalSeconds: 1,
      batchSize: 100,
      limits: { missedMax: 10, graceMs: 60_000, ledgerCap: 100 },
      listenUrl: db.url,
      sources: [broken, new MaintenanceScheduler({ pool: db.pool, boss, logger: quietLogger() })],
    });
    const runs = newWorker(db.pool, boss);
    const maintenance = new MaintenanceWorker({ pool: db.pool, boss, logger: silent, settings: settings(), jobs: [...builtinJobs(), explode, tick] });
    await Promise.all([scheduler.start(), runs.start(), maintenance.start()]);
    try {
      // (Read between two executions: while the next one runs, last_run_status is 'running'.)
      const failed = await eventually(
        async () =>
          (
            await db.pool.query(
              `SELECT last_run_error, last_run_status, failures_total::int AS failures, runs_total::int AS total FROM maintenance_jobs
                WHERE job_name = 'test_explode' AND failures_total >= 2 AND last_run_status <> 'running'`,
            )
          ).rows[0],
        'the failing job to fail at two occurrences',
        60_000,
      );
      assert.equal(failed.last_run_status, 'error');
      assert.match(failed.last_run_error, /^boom \d+$/);
      assert.equal(failed.failures, failed.total);
      // The other job keeps succeeding on the same worker, and a cron created now still fires and runs.
      const tickedBefore = ticks;
      const cron = await insertCron(db.pool, { schedule: '* * * * *' });
      const ledger = await eventually(
        async () => (await db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1 AND status = 'success'`, [cron])).rows[0],
        'the cron run to succeed',
        60_000,
      );
      assert.equal(ledger.status, 'success');
      await eventually(async () => ticks > tickedBefore, 'the other job to run again', 30_000);
      // Its last execution recorded (not the next one under way, 'running'), and none failed.
      const t = await eventually(
        async () =>
          (
            await db.pool.query(
              `SELECT last_run_status, last_run_error, failures_total::int AS failures FROM maintenance_jobs WHERE job_name = 'test_tick' AND
                last_run_status <> 'running'`,
            )
          ).rows[0],
        'an execution of the other job to be recorded',
        30_000,
      );
      assert.deepEqual(t, { last_run_status: 'success', last_run_error: null, failures: 0 });
      // pg-boss did not retry the failed executions: each is a completed job, one per occurrence.
      const { rows: jobs } = await db.pool.query(
        `SELECT state::text, count(*)::int AS n FROM pgboss.job WHERE name = $1 AND data->>'job' = 'test_explode' GROUP BY 1`,
        [QUEUES.maintenance],
      );
      assert.ok(
        jobs.every((j) => j.state !== 'retry' && j.state !== 'failed'),
        JSON.stringify(jobs),
      );
      await db.pool.query(`DELETE FROM crons WHERE cron_id = $1`, [cron]);
    } finally {
      await scheduler.stop();
      await Promise.all([runs.stop(), maintenance.stop()]);
      await db.pool.query(`UPDATE maintenance_jobs SET enabled = false WHERE job_name LIKE 'test_%'`);
    }
  });
});

describe('maintenance registration and settings', () => {
  test('two processes starting at once register each job once; a changed schedule is applied, the rest left alone', async () => {
    const db = await createTestDatabase('maintenance_reg', { migrate: false });
    try {
      const env = { DATABASE_URL: db.url, HEARTBEAT_INTERVAL_SECONDS: '1' };
      const procs = [spawnApp('scheduler', env), spawnApp('scheduler', env)];
      await Promise.all(procs.map((p) => p.waitFor(/scheduler started/)));
      const { rows } = await db.pool.query<{ job_name: string; n: number }>(`SELECT job_name, count(*)::int AS n FROM maintenance_jobs GROUP BY 1 ORDER BY 1`);
      assert.deepEqual(
        rows.map((r) => r.job_name),
        [
          'daily_stats',
          'ephemeral_thread_sweep',
          'heartbeat_monitor',
          'ledger_partitions',
          'queue_hygiene',
          'retention_purge',
          'stale_run_reaper',
          'thread_ttl',
        ],
      );
      // Each job was inserted by exactly one of the two.
      const inserted = procs.flatMap((p) =>
        p.output.filter((l) => /maintenance jobs registered/.test(l)).flatMap((l) => JSON.parse(l.slice(l.indexOf('{'))).inserted as string[]),
      );
      assert.deepEqual(
        inserted.sort(),
        rows.map((r) => r.job_name),
      );
      for (const p of procs) p.kill('SIGTERM');
      assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0]);

      const before = (await db.pool.query(`SELECT job_name, next_run_date, updated_at, enabled, schedule FROM maintenance_jobs ORDER BY job_name`)).rows;
      // A start with the same settings (the rows as configured: read, nothing written).
      assert.deepEqual(await registerMaintenanceJobs(db.pool, configuredJobs(loadConfig({}))), { inserted: [], updated: [] });
      assert.deepEqual(
        (await db.pool.query(`SELECT job_name, next_run_date, updated_at, enabled, schedule FROM maintenance_jobs ORDER BY job_name`)).rows,
        before,
      );
      const config = loadConfig({ MAINTENANCE_DAILY_STATS_SCHEDULE: '0 6 * * *', MAINTENANCE_QUEUE_HYGIENE_ENABLED: 'false', MAINTENANCE_TIMEZONE: 'UTC' });
      const changed = await registerMaintenanceJobs(db.pool, configuredJobs(config));
      assert.deepEqual(changed, { inserted: [], updated: ['daily_stats', 'queue_hygiene'] });
      const afterRows = (await db.pool.query(`SELECT job_name, next_run_date, updated_at, enabled, schedule FROM maintenance_jobs ORDER BY job_name`)).rows;
      for (const [i, row] of afterRows.entries()) {
        if (row.job_name === 'daily_stats') {
          assert.equal(row.schedule, '0 6 * * *');
          assert.equal(row.next_run_date.getUTCHours(), 6);
        } else if (row.job_name === 'queue_hygiene') {
          assert.equal(row.enabled, false);
        } else {
          assert.deepEqual(row, before[i], `${row.job_name} untouched`);
        }
      }
    } finally {
      await db.drop();
    }
  });

  test('MAINTENANCE_* settings are validated, naming the variable', () => {
    const c = loadConfig({});
    assert.equal(c.MAINTENANCE_TIMEZONE, 'UTC');
    assert.equal(c.MAINTENANCE_HEARTBEAT_MONITOR_SCHEDULE, '* * * * *');
    assert.equal(c.RUN_RETENTION_DAYS, 30);
    assert.equal(c.THREAD_TTL_DAYS, 0);
    assert.deepEqual(c.ADMIN_API_KEYS, []);
    const jobs = configuredJobs(loadConfig({ THREAD_TTL_DAYS: '90', MAINTENANCE_RETENTION_PURGE_ENABLED: 'no', MAINTENANCE_TIMEZONE: 'Europe/Paris' }));
    assert.equal(jobs.find((j) => j.name === 'thread_ttl')!.enabled, true);
    assert.equal(jobs.find((j) => j.name === 'retention_purge')!.enabled, false);
    assert.ok(jobs.every((j) => j.timezone === 'Europe/Paris'));
    assert.equal(
      maintenanceSettings(loadConfig({ RUN_TIMEOUT_SECONDS: '100', RUN_TIMEOUT_MAX_SECONDS: '200', MAINTENANCE_STALE_RUN_FACTOR: '2.5' })).staleRunSeconds,
      500,
    );
    for (const [variable, value, rule] of [
      ['MAINTENANCE_RETENTION_PURGE_SCHEDULE', '61 * * * *', /MAINTENANCE_RETENTION_PURGE_SCHEDULE must be a cron schedule: .*\(got "61 \* \* \* \*"\)/],
      ['MAINTENANCE_DAILY_STATS_SCHEDULE', '0 12 * *', /MAINTENANCE_DAILY_STATS_SCHEDULE must be a cron schedule/],
      ['MAINTENANCE_THREAD_TTL_ENABLED', 'maybe', /MAINTENANCE_THREAD_TTL_ENABLED must be true or false/],
      ['MAINTENANCE_TIMEZONE', 'Mars/Base', /MAINTENANCE_TIMEZONE must be an IANA time zone/],
      ['MAINTENANCE_RETENTON_PURGE_SCHEDULE', '0 3 * * *', /MAINTENANCE_RETENTON_PURGE_SCHEDULE is not a setting agentcron knows \(jobs are retention_purge/],
      ['MAINTENANCE_STALE_RUN_FACTOR', '0.5', /MAINTENANCE_STALE_RUN_FACTOR must be between 1 and 1000/],
      ['RUN_RETENTION_DAYS', '-1', /RUN_RETENTION_DAYS must be a whole number/],
      ['ADMIN_API_KEYS', 'secret:alice', /ADMIN_API_KEYS must be a comma-separated list of keys/],
    ] as const) {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && rule.test(err.message) && !(variable === 'ADMIN_API_KEYS' && err.message.includes(value)),
        `${variable}=${value}`,
      );
    }
  });

  test('a scheduler with a bad maintenance schedule exits 1 with one line naming the variable', async () => {
    const p = spawnApp('scheduler', { MAINTENANCE_HEARTBEAT_MONITOR_SCHEDULE: 'every minute', DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    assert.equal(await p.exited, 1);
    assert.equal(p.output.length, 1);
    assert.match(p.output[0], /^agentcron: invalid configuration: MAINTENANCE_HEARTBEAT_MONITOR_SCHEDULE must be a cron schedule/);
  });
});

describe('admin endpoints', () => {
  test('AUTH_MODE=api_key: no key 401, a user key 403, an admin key lists and triggers; unknown job 404', async () => {
    const stack = await startStack('maintenance_admin', {
      worker: true,
      env: { AUTH_MODE: 'api_key', AUTH_API_KEYS: 'user-key:alice', ADMIN_API_KEYS: 'admin-key-1, admin-key-2' },
    });
    try {
      const call = (method: string, path: string, key?: string) =>
        fetch(`${stack.url}${path}`, { method, headers: key ? { 'x-api-key': key } : {} }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as any,
        }));
      let r = await call('GET', '/admin/maintenance');
      assert.equal(r.status, 401);
      r = await call('GET', '/admin/maintenance', 'user-key');
      assert.equal(r.status, 403);
      assert.match(r.body.detail, /admin key/);
      r = await call('POST', '/admin/maintenance/heartbeat_monitor/trigger', 'user-key');
      assert.equal(r.status, 403);
      r = await call('GET', '/admin/maintenance', 'admin-key-2');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 8);
      const monitor = r.body.find((j: any) => j.job === 'heartbeat_monitor');
      for (const field of ['schedule', 'timezone', 'enabled', 'next_run_date', 'last_run_at', 'last_run_error', 'last_duration_ms', 'last_result']) {
        assert.ok(field in monitor, field);
      }
      assert.equal(monitor.schedule, '* * * * *');
      r = await call('POST', '/admin/maintenance/no_such_job/trigger', 'admin-key-1');
      assert.equal(r.status, 404);
      r = await call('POST', '/admin/maintenance/daily_stats/trigger?wait_seconds=60', 'admin-key-1');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.state, 'completed');
      assert.equal(r.body.maintenance_job.last_run_status, 'success');
      assert.equal(r.body.maintenance_job.runs_total, 1);
      assert.ok(r.body.maintenance_job.last_duration_ms >= 0);
      r = await call('POST', '/admin/maintenance/queue_hygiene/trigger', 'admin-key-1');
      assert.equal(r.status, 202);
      assert.ok(r.body.job_id);
      // An admin key also works on the regular API, as the user "admin"; /metrics needs no key.
      assert.equal((await call('POST', '/threads', 'admin-key-1')).body.metadata !== undefined, true);
      assert.equal((await fetch(`${stack.url}/metrics`)).status, 200);
    } finally {
      await stack.stop();
    }
  });

  test('AUTH_MODE=none: the admin endpoints are open like the rest of the API', async () => {
    const stack = await startStack('maintenance_admin_open');
    try {
      const res = await fetch(`${stack.url}/admin/maintenance`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as unknown[]).length, 8);
      assert.equal((await fetch(`${stack.url}/admin/maintenance/thread_ttl/trigger`, { method: 'POST' })).status, 202);
    } finally {
      await stack.stop();
    }
  });
});
