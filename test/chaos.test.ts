import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, insertCron, newScheduler, startTestQueue } from './support/engine.ts';
import { spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// Processes killed with SIGKILL at arbitrary moments: nothing is duplicated, nothing is lost.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crashes', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('chaos');
  });
  after(() => db?.drop());

  test('schedulers killed with SIGKILL at random moments lose no occurrence and duplicate none', async () => {
    const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) AS start`);
    const start = rows[0].start;
    const crons: string[] = [];
    for (let i = 0; i < 30; i++) crons.push(await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, missed_policy: 'all' }));
    // info: the lanes wait for "scheduler started".
    const env = { DATABASE_URL: db.url, CRON_POLL_INTERVAL_SECONDS: '1', CRON_BATCH_SIZE: '5', LOG_LEVEL: 'info' };
    // At least 9 s and 10 kills, whichever takes longer (a loaded machine starts schedulers slowly).
    const started = Date.now();
    const KILLS = 10;
    let kills = 0;
    // Two schedulers at a time, each killed a random 0-1.5 s after it started firing (a kill
    // while it was still booting tested its startup, not its passes) and replaced at once.
    const lane = async () => {
      while ((kills < KILLS || Date.now() - started < 9000) && Date.now() - started < 60_000) {
        const p: SpawnedApp = spawnApp('scheduler', env);
        await p.waitFor(/scheduler started/, 30_000);
        await sleep(Math.random() * 1500);
        p.kill('SIGKILL');
        await p.exited;
        kills++;
      }
    };
    await Promise.all([lane(), lane()]);
    // A clean scheduler catches up on whatever the crashes left due.
    const last = spawnApp('scheduler', env);
    await last.waitFor(/scheduler started/);
    const { rows: clock } = await db.pool.query<{ now: Date }>(`SELECT now()`);
    await eventually(
      async () => (await db.pool.query(`SELECT 1 FROM crons HAVING min(next_run_date) > $1`, [clock[0].now])).rowCount,
      'the last scheduler to catch up',
      30_000,
    );
    last.kill('SIGTERM');
    assert.equal(await last.exited, 0);
    assert.ok(kills >= KILLS, `only ${kills} kills`);

    const { rows: ends } = await db.pool.query<{ cron_id: string; next_run_date: Date }>(`SELECT cron_id, next_run_date FROM crons`);
    let total = 0;
    for (const { cron_id, next_run_date } of ends) {
      const expected = (next_run_date.getTime() - start.getTime()) / 1000;
      const { rows: l } = await db.pool.query<{ scheduled_for: Date; status: string }>(
        `SELECT scheduled_for, status FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`,
        [cron_id],
      );
      assert.ok(expected >= 10, `cron ${cron_id} advanced ${expected} s`);
      assert.equal(l.length, expected, `occurrences of ${cron_id}`);
      l.forEach((r, i) => {
        assert.equal(r.scheduled_for.getTime(), start.getTime() + i * 1000, `gap in ${cron_id} at ${i}`);
        assert.equal(r.status, 'enqueued');
      });
      total += expected;
    }
    const runs = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT (cron_id, scheduled_for))::int AS d FROM runs`);
    assert.equal(runs.rows[0].n, total);
    assert.equal(runs.rows[0].d, total);
    const jobs = await db.pool.query(`SELECT count(*)::int AS n FROM pgboss.job j JOIN runs r ON r.run_id = j.id WHERE j.name = 'agentcron.run'`);
    assert.equal(jobs.rows[0].n, total);
    await db.pool.query(`DELETE FROM crons`);
  });

  test('a worker killed mid-run: the run is retried on another worker, or after its last attempt ends as error with a reason', async () => {
    // Two databases side by side: one allows a retry, the other none.
    const retried = await createTestDatabase('chaos_retry');
    const lost = await createTestDatabase('chaos_lost');
    try {
      const scenario = async (tdb: TestDatabase, attempts: number) => {
        const boss = await startTestQueue(tdb.url, { runMaxAttempts: attempts });
        const spawned: SpawnedApp[] = [];
        try {
          const env = {
            DATABASE_URL: tdb.url,
            RUN_MAX_ATTEMPTS: String(attempts),
            WORKER_HEARTBEAT_SECONDS: '10',
            QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
            // Each run's own lines (checked below) are at debug.
            LOG_LEVEL: 'debug',
          };
          const first = spawnApp('worker', env);
          spawned.push(first);
          await first.waitFor(/worker started/);
          const cronId = await insertCron(tdb.pool, { schedule: '0 0 1 1 *', input: { sleep_ms: 4000 }, on_run_completed: 'keep' });
          await newScheduler(tdb.pool, boss, tdb.url).runDue();
          const run = await eventually(
            async () => (await tdb.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1 AND status = 'running'`, [cronId])).rows[0],
            'the run to start',
            30_000,
          );
          first.kill('SIGKILL');
          await first.exited;
          const second = spawnApp('worker', env);
          spawned.push(second);
          await second.waitFor(/worker started/);
          const ended = await eventually(
            async () =>
              (await tdb.pool.query(`SELECT status, attempts, error FROM runs WHERE run_id = $1 AND status NOT IN ('pending', 'running')`, [run.run_id]))
                .rows[0],
            'the run to end after the crash',
            60_000,
            200,
          );
          const cron = (await tdb.pool.query(`SELECT last_run_status, last_run_error FROM cron_last_runs WHERE cron_id = $1`, [cronId])).rows[0];
          const ledger = (await tdb.pool.query(`SELECT status, error FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows;
          return { ended, cron, ledger, secondOutput: second.output };
        } finally {
          for (const p of spawned) p.kill('SIGTERM');
          await Promise.all(spawned.map((p) => p.exited));
          await boss.stop({ graceful: false });
        }
      };
      const [a, b] = await Promise.all([scenario(retried, 2), scenario(lost, 1)]);

      assert.equal(a.ended.status, 'success');
      assert.equal(a.ended.attempts, 2);
      assert.equal(a.cron.last_run_status, 'success');
      assert.deepEqual(
        a.ledger.map((l: { status: string }) => l.status),
        ['success'],
      );
      // the retried run's log lines carry its run_id and cron_id
      assert.ok(
        a.secondOutput.some((l) => /run succeeded.*"run_id":"[0-9a-f-]{36}".*"cron_id":"[0-9a-f-]{36}"/.test(l)),
        a.secondOutput.join('\n'),
      );

      assert.equal(b.ended.status, 'error');
      assert.equal(b.ended.error.error, 'WorkerLost');
      assert.equal(b.cron.last_run_status, 'error');
      assert.match(b.cron.last_run_error, /worker stopped responding/);
      assert.equal(b.ledger[0].status, 'error');
    } finally {
      await retried.drop();
      await lost.drop();
    }
  });
});
