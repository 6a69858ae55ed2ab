import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { CRON_CHANGED_CHANNEL } from '../libs/crons/index.ts';
import type { CronScheduler } from '../libs/crons/index.ts';
import type { Pool } from '../libs/db/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { clearOfBoundary, eventually, insertCron, insertThread, newPool, newScheduler, startTestQueue } from './support/engine.ts';
import { schedulersRunningSince } from '../libs/liveness/index.ts';
import { teardown } from './support/inprocess.ts';
import { spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LedgerRow {
  scheduled_for: Date;
  status: string;
  reason: string | null;
  run_id: string | null;
  skipped_count: number;
}

async function ledger(pool: Pool, cronId: string): Promise<LedgerRow[]> {
  const { rows } = await pool.query<LedgerRow>(
    `SELECT scheduled_for, status, reason, run_id, skipped_count FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`,
    [cronId],
  );
  return rows;
}

describe('scheduler', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('scheduler');
    boss = await startTestQueue(db.url);
  });
  // Each test counts what runDue claims: none starts with crons another one left behind (a
  // failed one does not reach its own cleanup).
  afterEach(() => db?.pool.query(`DELETE FROM crons`));
  after(() =>
    teardown(
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('ten schedulers racing on the same crons fire every occurrence exactly once, with no gap', async () => {
    const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) - interval '20 seconds' AS start`);
    const start = rows[0].start;
    const crons: string[] = [];
    for (let i = 0; i < 40; i++) crons.push(await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, missed_policy: 'all' }));
    const pools = Array.from({ length: 10 }, () => newPool(db.url, 3));
    // Small batches so the ten contend for the same rows many times.
    const schedulers = pools.map((p) => newScheduler(p, boss, db.url, { batchSize: 7 }));
    try {
      await Promise.all(schedulers.map((s) => s.start()));
      await sleep(3500);
      // However slowly they got going, let them clear the backlog before stopping them.
      await eventually(
        async () =>
          (await db.pool.query(`SELECT 1 FROM crons WHERE cron_id = ANY($1) HAVING min(next_run_date) >= $2`, [crons, new Date(start.getTime() + 21_000)]))
            .rowCount,
        'every cron to advance past the backlog',
        30_000,
      );
    } finally {
      await Promise.all(schedulers.map((s) => s.stop()));
      await Promise.all(pools.map((p) => p.end()));
    }

    const { rows: ends } = await db.pool.query<{ cron_id: string; next_run_date: Date }>(`SELECT cron_id, next_run_date FROM crons WHERE cron_id = ANY($1)`, [
      crons,
    ]);
    for (const { cron_id, next_run_date } of ends) {
      const rows = await ledger(db.pool, cron_id);
      // Every second from the first due occurrence up to (not including) next_run_date: once each.
      const expected = (next_run_date.getTime() - start.getTime()) / 1000;
      assert.ok(expected >= 21, `cron advanced past the backlog (${expected})`);
      assert.equal(rows.length, expected, `ledger rows for ${cron_id}`);
      rows.forEach((r, i) => {
        assert.equal(r.scheduled_for.getTime(), start.getTime() + i * 1000);
        assert.equal(r.status, 'enqueued');
      });
      const runs = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT scheduled_for)::int AS d FROM runs WHERE cron_id = $1`, [cron_id]);
      assert.equal(runs.rows[0].n, expected);
      assert.equal(runs.rows[0].d, expected);
    }
    // One pg-boss job per run, with the run's id.
    const jobs = await db.pool.query(
      `SELECT count(*)::int AS jobs, count(r.run_id)::int AS matched FROM pgboss.job j LEFT JOIN runs r ON r.run_id = j.id WHERE j.name = 'agentcron.run'`,
    );
    const runs = await db.pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = ANY($1)`, [crons]);
    assert.equal(jobs.rows[0].jobs, runs.rows[0].n);
    assert.equal(jobs.rows[0].matched, runs.rows[0].n);
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [crons]);
  });

  test('after downtime each missed policy is applied and every skipped occurrence is recorded', async () => {
    // The counts below hold within one minute: start well clear of a minute boundary.
    await clearOfBoundary(db.pool, 'minute', 5);
    const { rows } = await db.pool.query<{ t0: Date }>(`SELECT date_trunc('minute', now()) AS t0`);
    const t0 = rows[0].t0;
    const tenAgo = new Date(t0.getTime() - 10 * 60_000);
    const latest = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'latest' });
    const all = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'all' });
    const none = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'none' });
    // Grace 0: an occurrence later than "now" by any amount counts as missed for the none policy.
    const scheduler = newScheduler(db.pool, boss, db.url, { graceMs: 0 });
    const result = await scheduler.runDue();
    assert.equal(result.claimed, 3);

    const l = await ledger(db.pool, latest);
    assert.equal(l.length, 11);
    assert.deepEqual(
      l.filter((r) => r.status === 'enqueued').map((r) => r.scheduled_for.getTime()),
      [t0.getTime()],
    );
    assert.equal(l.find((r) => r.status === 'enqueued')!.skipped_count, 10);
    assert.equal(l.filter((r) => r.status === 'skipped' && r.reason === 'missed').length, 10);

    const a = await ledger(db.pool, all);
    assert.equal(a.length, 11);
    assert.ok(a.every((r) => r.status === 'enqueued'));

    const n = await ledger(db.pool, none);
    assert.equal(n.length, 11);
    assert.ok(n.every((r) => r.status === 'skipped' && r.reason === 'missed'));
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = $1`, [none])).rows[0].n, 0);

    // All three now wait for the next minute, computed from the scheduled occurrence.
    const next = await db.pool.query(`SELECT DISTINCT next_run_date FROM crons WHERE cron_id = ANY($1)`, [[latest, all, none]]);
    assert.deepEqual(
      next.rows.map((r) => r.next_run_date.getTime()),
      [t0.getTime() + 60_000],
    );
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [[latest, all, none]]);
  });

  test("a run's pg-boss group: its thread for a kept thread, cron:<id> for buffer_one, none for an ephemeral thread (nothing to queue behind)", async () => {
    const thread = await insertThread(db.pool);
    const due = { schedule: '0 0 1 1 *', next_run_date: new Date(Date.now() - 1000) };
    const ephemeral = await insertCron(db.pool, due);
    const kept = await insertCron(db.pool, { ...due, on_run_completed: 'keep' });
    const buffered = await insertCron(db.pool, { ...due, overlap_policy: 'buffer_one' });
    const onThread = await insertCron(db.pool, { ...due, thread_id: thread });
    await newScheduler(db.pool, boss, db.url).runDue();
    const { rows } = await db.pool.query<{ cron_id: string; thread_id: string; group_id: string | null }>(
      `SELECT r.cron_id, r.thread_id, j.group_id FROM runs r JOIN pgboss.job j ON j.id = r.run_id AND j.name = 'agentcron.run' WHERE r.cron_id = ANY($1)`,
      [[ephemeral, kept, buffered, onThread]],
    );
    const group = new Map(rows.map((r) => [r.cron_id, r]));
    assert.equal(rows.length, 4, 'one run and one job per cron');
    assert.equal(group.get(ephemeral)!.group_id, null);
    assert.equal(group.get(kept)!.group_id, group.get(kept)!.thread_id);
    assert.equal(group.get(buffered)!.group_id, `cron:${buffered}`);
    assert.equal(group.get(onThread)!.group_id, thread);
  });

  test('end_time: no occurrence after it fires, the cron finishes visibly, and the ledger says why', async () => {
    const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) - interval '10 seconds' AS start`);
    const start = rows[0].start;
    const end = new Date(start.getTime() + 4500);
    const cronId = await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, end_time: end, missed_policy: 'all' });
    await newScheduler(db.pool, boss, db.url).runDue();
    const { rows: c } = await db.pool.query(`SELECT enabled, next_run_date, finished_at FROM crons WHERE cron_id = $1`, [cronId]);
    assert.equal(c[0].enabled, false);
    assert.equal(c[0].next_run_date, null);
    assert.ok(c[0].finished_at);
    const l = await ledger(db.pool, cronId);
    const fired = l.filter((r) => r.status === 'enqueued').map((r) => r.scheduled_for.getTime() - start.getTime());
    assert.deepEqual(fired, [0, 1000, 2000, 3000, 4000]);
    const ended = l.filter((r) => r.reason === 'end_time');
    assert.deepEqual(
      ended.map((r) => r.scheduled_for.getTime() - start.getTime()),
      [5000],
    );
    // A finished cron is never claimed again.
    assert.equal((await newScheduler(db.pool, boss, db.url).runDue()).claimed, 0);
  });

  test('a disabled cron does not fire; a cron whose stored schedule no longer parses stops with a reason', async () => {
    const disabled = await insertCron(db.pool, { schedule: '* * * * *', enabled: false });
    const broken = await insertCron(db.pool, { schedule: 'not a schedule' });
    const result = await newScheduler(db.pool, boss, db.url).runDue();
    assert.equal(result.claimed, 1);
    assert.equal(result.fired, 0);
    assert.deepEqual(await ledger(db.pool, disabled), []);
    const { rows } = await db.pool.query(
      `SELECT enabled, next_run_date, l.last_run_error FROM crons c LEFT JOIN cron_last_runs l USING (cron_id) WHERE cron_id = $1`,
      [broken],
    );
    assert.equal(rows[0].enabled, false);
    assert.equal(rows[0].next_run_date, null);
    assert.match(rows[0].last_run_error, /could not plan this cron: invalid schedule/);
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [[disabled, broken]]);
  });

  test('a sleeping scheduler wakes on NOTIFY when a cron is created, long before its poll interval', async () => {
    // Poll interval 60 s: only the notification can wake it in time.
    let ticks = 0;
    const s: CronScheduler = newScheduler(db.pool, boss, db.url, { pollIntervalSeconds: 60, onTick: () => ticks++ });
    let cronId: string;
    try {
      await s.start();
      // Its first pass is over (nothing due): it is asleep until the poll interval ends.
      await eventually(async () => ticks > 0, 'the first pass');
      cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      const row = await eventually(
        async () => (await db.pool.query(`SELECT enqueued_at FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0],
        'the new cron to fire',
        20_000,
      );
      assert.ok(row.enqueued_at);
    } finally {
      await s.stop();
    }
    await db.pool.query(`DELETE FROM crons WHERE cron_id = $1`, [cronId]);
  });

  test('schedulers are woken by changes that can make a cron due sooner, not by deletions (a finished stateless run deletes its thread)', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.channel));
    try {
      await listener.query(`LISTEN ${CRON_CHANGED_CHANNEL}`);
      // A NOTIFY is delivered at commit, before the committing statement returns; one more round
      // trip on the listening connection makes sure it has been read.
      const heardAfter = async (sql: string, params: unknown[] = []) => {
        heard.length = 0;
        await db.pool.query(sql, params);
        await listener.query('SELECT 1');
        return heard.length;
      };
      const thread = randomUUID();
      await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'u')`, [thread]);
      // Deleting a thread cascades a DELETE onto crons (thread-bound crons go with it), even when none is bound.
      assert.equal(await heardAfter(`DELETE FROM threads WHERE thread_id = $1`, [thread]), 0, 'a thread deleted');
      const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      assert.ok((await heardAfter(`UPDATE crons SET schedule = '0 0 2 1 *' WHERE cron_id = $1`, [cronId])) > 0, 'a cron changed');
      assert.equal(await heardAfter(`DELETE FROM crons WHERE cron_id = $1`, [cronId]), 0, 'a cron deleted: nothing is due sooner');
      heard.length = 0;
      await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      await listener.query('SELECT 1');
      assert.ok(heard.length > 0, 'a cron created');
    } finally {
      await listener.end();
    }
  });

  test('a scheduler taking over from one that ran all along (a rolling deploy) fires the backlog late: none skipped as missed', async () => {
    // The rule: an occurrence is skipped as missed only when no scheduler ran. Here one always
    // runs: A (the old process) until B (the new one) has started. While the release holds the
    // cron's row, neither can fire it; B fires what fell due once the row is free.
    const procs: SpawnedApp[] = [];
    const spawn = () => {
      const p = spawnApp('scheduler', { DATABASE_URL: db.url, HEARTBEAT_INTERVAL_SECONDS: '1', CRON_POLL_INTERVAL_SECONDS: '1' });
      procs.push(p);
      return p;
    };
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      const a = spawn();
      await a.waitFor(/scheduler started/);
      await eventually(
        async () =>
          (await db.pool.query(`SELECT 1 FROM agentcron_processes WHERE role = 'scheduler' AND stopped_at IS NULL AND last_tick_at IS NOT NULL`)).rowCount,
        'scheduler A to have passed',
      );
      const { rows } = await db.pool.query<{ first: Date }>(`SELECT date_trunc('second', now()) + interval '2 seconds' AS first`);
      const cronId = await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: rows[0].first, missed_policy: 'latest' });
      await eventually(async () => (await ledger(db.pool, cronId)).length >= 2, 'A to fire the cron');
      // The release takes the cron's row (a backfill batch, an ALTER waiting for its lock ...).
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE`, [cronId]);
      const heldFrom = (await holder.query<{ now: Date }>(`SELECT clock_timestamp() AS now`)).rows[0].now;
      // Occurrences fall due that A cannot fire ...
      await eventually(
        async () => (await db.pool.query(`SELECT clock_timestamp() > $1::timestamptz + interval '3 seconds' AS ok`, [heldFrom])).rows[0].ok as boolean,
        'three seconds of the row held',
      );
      // ... then the rolling deploy: B starts, then A stops, the row still held.
      const b = spawn();
      await b.waitFor(/scheduler started/);
      a.kill('SIGTERM');
      assert.equal(await a.exited, 0);
      await holder.query('COMMIT');
      const releasedAt = (await db.pool.query<{ now: Date }>(`SELECT now()`)).rows[0].now;
      await eventually(
        async () => (await ledger(db.pool, cronId)).some((r) => r.scheduled_for.getTime() > releasedAt.getTime()),
        'B to fire the cron after the release',
      );
      const l = await ledger(db.pool, cronId);
      const missed = l.filter((r) => r.status === 'skipped');
      assert.deepEqual(
        missed.map((r) => `${r.scheduled_for.toISOString()} ${r.reason}`),
        [],
        'no occurrence skipped: a scheduler ran throughout',
      );
      // Every second from the first to the last is in the ledger, once (no gap).
      const times = l.map((r) => r.scheduled_for.getTime());
      assert.equal(times.length, (times.at(-1)! - times[0]) / 1000 + 1);
      assert.ok(l.filter((r) => r.scheduled_for.getTime() > heldFrom.getTime() && r.scheduled_for.getTime() <= releasedAt.getTime()).length >= 3);
      b.kill('SIGTERM');
      assert.equal(await b.exited, 0);
    } finally {
      await holder.end().catch(() => {});
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exited));
    }
  });

  test('since when schedulers have run without a break: overlapping lives join, a gap or a scheduler that never passed does not', async () => {
    const { rows } = await db.pool.query<{ t: Date }>(`SELECT date_trunc('second', now()) - interval '1 hour' AS t`);
    const t = rows[0].t;
    const at = (s: number) => new Date(t.getTime() + s * 1000);
    const row = (started: number, seen: number, stopped: number | null, ticked: boolean) =>
      db.pool.query(
        `INSERT INTO agentcron_processes (process_id, role, hostname, pid, started_at, last_seen_at, last_tick_at, stopped_at)
         VALUES ($1, 'scheduler', 'test', 1, $2, $3, $4, $5)`,
        [randomUUID(), at(started), at(seen), ticked ? at(seen) : null, stopped === null ? null : at(stopped)],
      );
    try {
      await row(-300, 0, null, false); // alive all along but never passed (CRON_ENABLED=false): not counted
      await row(-200, -150, -150, true); // stopped before the next one started: a gap
      await row(-100, -50, -50, true); // stopped after the next one started
      await row(-60, -1, null, true); // alive until now (heartbeat within the slack)
      assert.deepEqual(await schedulersRunningSince(db.pool, at(0), 3), at(-100));
      // Without the slack, the live one's last heartbeat does not reach `until`: nothing before it counts.
      assert.deepEqual(await schedulersRunningSince(db.pool, at(0), 0), at(0));
    } finally {
      await db.pool.query(`DELETE FROM agentcron_processes WHERE hostname = 'test'`);
    }
  });

  test("occurrences due while a migration waits for crons' exclusive lock (its passes queued behind it) fire late, none skipped as missed", async () => {
    // An online release's expand step: ALTER TABLE under a short lock_timeout, retried, while a
    // reader holds crons (an api search in a transaction). Every later lock on crons, the
    // scheduler's reads and claims included, queues behind the waiting ALTER.
    const { rows } = await db.pool.query<{ first: Date }>(`SELECT date_trunc('second', now()) + interval '1 second' AS first`);
    const cronId = await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: rows[0].first, missed_policy: 'latest' });
    const scheduler = newScheduler(db.pool, boss, db.url);
    const reader = new pg.Client({ connectionString: db.url });
    const migrator = new pg.Client({ connectionString: db.url });
    await reader.connect();
    await migrator.connect();
    try {
      await scheduler.start();
      await eventually(async () => (await ledger(db.pool, cronId)).length >= 2, 'the cron to fire');
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM crons');
      await migrator.query(`SET lock_timeout = '2500ms'`);
      const migratorPid = (await migrator.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const migrating = (async () => {
        for (;;) {
          try {
            return await migrator.query('ALTER TABLE crons ADD COLUMN test_lock_queue integer');
          } catch {
            // lock timeout: the runner's retry
          }
        }
      })();
      const blockedFrom = (await db.pool.query<{ now: Date }>(`SELECT clock_timestamp() AS now`)).rows[0].now;
      // The ALTER waits for its lock (and is retried) for over four seconds: occurrences fall due meanwhile.
      await eventually(
        async () =>
          (
            await db.pool.query(
              `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted) AND clock_timestamp() > $2::timestamptz + interval '4 seconds' AS ok`,
              [migratorPid, blockedFrom],
            )
          ).rows[0].ok as boolean,
        'the migration to wait for its lock for four seconds',
        20_000,
        100,
      );
      await reader.query('COMMIT');
      await migrating;
      const doneAt = (await db.pool.query<{ now: Date }>(`SELECT now()`)).rows[0].now;
      await eventually(
        async () => (await ledger(db.pool, cronId)).some((r) => r.scheduled_for.getTime() > doneAt.getTime()),
        'the cron to fire after the release',
      );
      const l = await ledger(db.pool, cronId);
      assert.deepEqual(
        l.filter((r) => r.status === 'skipped').map((r) => `${r.scheduled_for.toISOString()} ${r.reason}`),
        [],
      );
      const times = l.map((r) => r.scheduled_for.getTime());
      assert.equal(times.length, (times.at(-1)! - times[0]) / 1000 + 1, 'every second once, no gap');
    } finally {
      await reader.end().catch(() => {});
      await migrator.end().catch(() => {});
      await scheduler.stop();
      await db.pool.query('ALTER TABLE crons DROP COLUMN IF EXISTS test_lock_queue');
    }
  });
});
