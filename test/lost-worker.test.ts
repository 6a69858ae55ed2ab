import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, insertCron, newScheduler, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';
import { spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// A worker SIGKILLed while it holds a run: the run's job must be failed once its heartbeat lapses
// and the run retried on another worker within about a heartbeat and a supervise interval, by the
// supervision of the worker that lives (the test process supervises nothing), even when no other
// job waits in the queues. A run of a stateless cron whose thread is deleted afterwards has no
// group (nothing to serialise it with), so its active job is not among the queue's active grouped
// jobs: issue 22, a killed worker's run stayed active for minutes after the queues went quiet.

const HEARTBEAT_SECONDS = 10;

describe('a lost worker', () => {
  let db: TestDatabase;
  const procs: SpawnedApp[] = [];
  before(async () => {
    db = await createTestDatabase('lost_worker');
  });
  after(() =>
    teardown(
      async () => {
        for (const p of procs) p.kill('SIGKILL');
        await Promise.all(procs.map((p) => p.exited));
      },
      () => db?.drop(),
    ),
  );

  test("its run of a stateless cron is retried by the live worker's supervision within a heartbeat, though no other job waits", async () => {
    const boss = await startTestQueue(db.url, { runMaxAttempts: 2 });
    try {
      const env = {
        DATABASE_URL: db.url,
        RUN_MAX_ATTEMPTS: '2',
        WORKER_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
        QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
      };
      const spawn = () => {
        const p = spawnApp('worker', env);
        procs.push(p);
        return p;
      };
      const a = spawn();
      await a.waitFor(/worker started/);
      // Stateless, its thread deleted after the run, overlap allow: the run's job has no group.
      const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { sleep_ms: 120_000 } });
      await newScheduler(db.pool, boss, db.url).runDue();
      const run = await eventually(
        async () => (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1 AND status = 'running'`, [cronId])).rows[0],
        'worker A to start the run',
        30_000,
      );
      const job = await db.pool.query(`SELECT group_id FROM pgboss.job WHERE name = 'agentcron.run' AND id = $1`, [run.run_id]);
      assert.equal(job.rows[0].group_id, null, 'the run of a stateless cron with a deleted thread has no group');
      const b = spawn();
      await b.waitFor(/worker started/);
      a.kill('SIGKILL');
      await a.exited;
      const killedAt = Date.now();
      // A's last heartbeat was at most half a heartbeat before the kill: its job lapses within a
      // heartbeat, a supervise pass fails it (1 s), its retry waits 1-2 s, B is told and fetches it.
      // Without supervision of such a job it waits for the five-minute pass: 60 s is a backstop.
      const retried = await eventually(
        async () => (await db.pool.query(`SELECT attempts FROM runs WHERE run_id = $1 AND attempts >= 2`, [run.run_id])).rows[0],
        'worker B to claim the run again',
        60_000,
        100,
      ).catch(async (err: Error) => {
        const { rows } = await db.pool.query(
          `SELECT state::text, retry_count, round(extract(epoch FROM now() - heartbeat_on)::numeric, 1) AS heartbeat_age_s
             FROM pgboss.job WHERE name = 'agentcron.run' AND id = $1`,
          [run.run_id],
        );
        throw new Error(`${err.message}; its job: ${JSON.stringify(rows[0])}`);
      });
      const seconds = (Date.now() - killedAt) / 1000;
      process.stdout.write(`# retried ${seconds.toFixed(1)} s after the kill (heartbeat ${HEARTBEAT_SECONDS} s)\n`);
      assert.equal(retried.attempts, 2);
    } finally {
      await boss.stop({ graceful: false });
    }
  });
});
