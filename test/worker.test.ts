import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { QUEUES } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { endRuns } from '../libs/runs/index.ts';
import type { RunWorker } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, insertThread, newScheduler, newWorker, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';

describe('worker', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let worker: RunWorker;
  before(async () => {
    db = await createTestDatabase('worker');
    boss = await startTestQueue(db.url);
    worker = newWorker(db.pool, boss, { runTimeoutSeconds: 1 });
    await worker.start();
  });
  after(() =>
    teardown(
      () => worker?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const fire = () => newScheduler(db.pool, boss, db.url).runDue();
  // The cron's last_run_* (cron_last_runs; all null when it never ran).
  const cronRow = async (cronId: string) =>
    (await db.pool.query(`SELECT l.* FROM crons c LEFT JOIN cron_last_runs l USING (cron_id) WHERE c.cron_id = $1`, [cronId])).rows[0];
  const occurrence = async (cronId: string) =>
    (await db.pool.query(`SELECT * FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for DESC LIMIT 1`, [cronId])).rows[0];
  const settled = (cronId: string) =>
    eventually(async () => {
      const o = await occurrence(cronId);
      return o && !['enqueued', 'running'].includes(o.status) ? o : null;
    }, `cron ${cronId}'s run to end`);

  test('stateless crons: the ephemeral thread is deleted after the run, or kept (naming the cron) with "keep"', async () => {
    const del = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { n: 1 }, on_run_completed: 'delete' });
    const keep = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { n: 2 }, on_run_completed: 'keep' });
    await fire();
    const d = await settled(del);
    const k = await settled(keep);
    assert.equal(d.status, 'success');
    assert.equal(k.status, 'success');
    // The ledger outlives the deleted thread and its run.
    assert.equal((await db.pool.query(`SELECT 1 FROM threads WHERE thread_id = $1`, [d.thread_id])).rowCount, 0);
    assert.equal((await db.pool.query(`SELECT 1 FROM runs WHERE run_id = $1`, [d.run_id])).rowCount, 0);
    const { rows } = await db.pool.query(`SELECT metadata, "values", ephemeral, status FROM threads WHERE thread_id = $1`, [k.thread_id]);
    assert.equal(rows[0].metadata.cron_id, keep);
    assert.deepEqual(rows[0].values, { n: 2 });
    assert.equal(rows[0].ephemeral, false);
    assert.equal(rows[0].status, 'idle');
    const c = await cronRow(keep);
    assert.equal(c.last_run_status, 'success');
    assert.equal(c.last_run_id, k.run_id);
    assert.ok(c.last_run_at);
    assert.equal(c.last_run_error, null);
  });

  test('last_run_error is set by a failure and cleared by the next success', async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { error: 'the model said no' } });
    await fire();
    assert.equal((await settled(cronId)).status, 'error');
    let c = await cronRow(cronId);
    assert.equal(c.last_run_status, 'error');
    assert.equal(c.last_run_error, 'the model said no');
    assert.equal((await occurrence(cronId)).error, 'the model said no');

    await db.pool.query(`UPDATE crons SET payload = '{"input": {"ok": true}}', next_run_date = now() WHERE cron_id = $1`, [cronId]);
    await fire();
    await eventually(async () => (await cronRow(cronId)).last_run_status === 'success', 'the second run to succeed');
    c = await cronRow(cronId);
    assert.equal(c.last_run_error, null);
  });

  test('a run past RUN_TIMEOUT_SECONDS ends as timeout, and the cron shows it', async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { sleep_ms: 10_000 } });
    const started = Date.now();
    await fire();
    const o = await settled(cronId);
    assert.equal(o.status, 'timeout');
    assert.match(o.error, /timeout of 1s/);
    assert.ok(Date.now() - started < 9000, 'the agent was abandoned at its timeout');
    const c = await cronRow(cronId);
    assert.equal(c.last_run_status, 'timeout');
  });

  test('a second delivery of a finished run does not run the agent again', async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', input: { n: 7 } });
    await fire();
    const o = await settled(cronId);
    const threadId = o.thread_id;
    // keep the thread so the run row survives for inspection
    await db.pool.query(`UPDATE threads SET ephemeral = false WHERE thread_id = $1`, [threadId]).catch(() => {});
    const runId = randomUUID();
    const keepThread = await insertThread(db.pool);
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, kwargs, attempts, ended_at)
       SELECT $1, $2, assistant_id, 'anonymous', 'success', '{"input": {"n": 1}}', 1, now() FROM crons WHERE cron_id = $3`,
      [runId, keepThread, cronId],
    );
    await boss.send(QUEUES.run, { run_id: runId }, { id: randomUUID() });
    await eventually(
      async () =>
        (await db.pool.query(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND data->>'run_id' = $2 AND state = 'completed'`, [QUEUES.run, runId]))
          .rows[0].n === 1,
      'the duplicate job to be acknowledged',
    );
    const { rows } = await db.pool.query(`SELECT attempts, status, output FROM runs WHERE run_id = $1`, [runId]);
    assert.deepEqual(rows[0], { attempts: 1, status: 'success', output: null });
  });

  test("a thread's pending run behind jobs of runs that ended (interrupted) runs at once, not at the next poll", async () => {
    const threadId = await insertThread(db.pool);
    // Job ids order a thread's jobs within one fetch (pg-boss ranks a group's candidates by id): the ended runs' come first.
    const [a, b, c, pending] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()].sort();
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, kwargs, ended_at)
       SELECT id, $2, $3, 'anonymous', CASE WHEN id = $4 THEN 'pending' ELSE 'interrupted' END, '{"input": {"n": 1}}',
              CASE WHEN id = $4 THEN NULL ELSE now() END
         FROM unnest($1::uuid[]) AS id`,
      [[a, b, c, pending], threadId, ECHO, pending],
    );
    // One insert, one wake-up: each fetch hands out one job of the thread; the jobs of ended runs are acknowledged.
    await boss.insert(
      QUEUES.run,
      [a, b, c, pending].map((id) => ({ id, data: { run_id: id }, group: { id: threadId } })),
    );
    // The worker polls every 30 s while it listens: the run must not wait for that.
    await eventually(
      async () => (await db.pool.query(`SELECT status FROM runs WHERE run_id = $1`, [pending])).rows[0].status === 'success',
      'the pending run to run once the ended runs ahead of it are acknowledged',
      10_000,
    );
  });

  /** A running cron run on a kept thread with its open ledger row, as a worker's claim leaves it. */
  async function runningOccurrence(cronId: string, scheduledFor: Date, ledgerStatus = 'running'): Promise<string> {
    const runId = randomUUID();
    const threadId = await insertThread(db.pool);
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, status, attempts, started_at)
       SELECT $1, $2, assistant_id, 'anonymous', cron_id, $4, 'running', 1, now() FROM crons WHERE cron_id = $3`,
      [runId, threadId, cronId, scheduledFor],
    );
    await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status) VALUES ($1, $2, $3, $4)`, [
      cronId,
      scheduledFor,
      runId,
      ledgerStatus,
    ]);
    return runId;
  }
  test("a thread's runs start in the order they were created, though pg-boss ranks one fetch's jobs of a group by id", async () => {
    const threadId = await insertThread(db.pool);
    // The newest run has the smallest id: pg-boss hands out the smallest id of a group among the
    // jobs one fetch finds, so without the claim's own order the newest would start first.
    // A queue of them: a run refused for an older one must stay out of the fetches until its turn
    // (put back for a fixed moment, 20 runs kept coming back before the oldest was fetched).
    const ids = Array.from({ length: 20 }, () => randomUUID())
      .sort()
      .reverse();
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, kwargs, created_at)
       SELECT id, $2, $3, 'anonymous', 'pending', jsonb_build_object('input', jsonb_build_object('n', n)), now() - (30 - n) * interval '1 second'
         FROM unnest($1::uuid[]) WITH ORDINALITY AS v(id, n)`,
      [ids, threadId, ECHO],
    );
    // One insert, one wake-up: one fetch finds every job of the thread.
    await boss.insert(
      QUEUES.run,
      ids.map((id) => ({ id, data: { run_id: id }, group: { id: threadId } })),
    );
    const started = await eventually(async () => {
      const { rows } = await db.pool.query<{ run_id: string; started_at: Date; ended_at: Date }>(
        `SELECT run_id, started_at, ended_at FROM runs WHERE thread_id = $1 AND status = 'success' ORDER BY started_at`,
        [threadId],
      );
      return rows.length === ids.length ? rows : null;
    }, "the thread's runs to end");
    assert.deepEqual(
      started.map((r) => r.run_id),
      ids,
      'started in creation order',
    );
    for (let i = 1; i < started.length; i++) assert.ok(started[i].started_at >= started[i - 1].ended_at, 'one at a time');
  });

  test('an older run of a thread deferred to a later start (after_seconds) does not hold a newer one back', async () => {
    const threadId = await insertThread(db.pool);
    const [newer, older] = [randomUUID(), randomUUID()].sort();
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, kwargs, created_at)
       VALUES ($1, $3, $4, 'anonymous', 'pending', '{"input": {}}', now() - interval '2 seconds'),
              ($2, $3, $4, 'anonymous', 'pending', '{"input": {}}', now() - interval '1 second')`,
      [older, newer, threadId, ECHO],
    );
    await boss.insert(QUEUES.run, [
      { id: older, data: { run_id: older }, group: { id: threadId }, startAfter: 60 },
      { id: newer, data: { run_id: newer }, group: { id: threadId } },
    ]);
    await eventually(
      async () => (await db.pool.query(`SELECT status FROM runs WHERE run_id = $1`, [newer])).rows[0].status === 'success',
      'the newer run to run while the older waits for its start',
      10_000,
    );
    assert.equal((await db.pool.query(`SELECT status FROM runs WHERE run_id = $1`, [older])).rows[0].status, 'pending');
  });

  test('an older run never overwrites the last_run_* of a newer one', async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const newer = await runningOccurrence(cronId, new Date('2025-01-02T00:00:00Z'));
    const older = await runningOccurrence(cronId, new Date('2025-01-01T00:00:00Z'));
    await endRuns(db.pool, boss, [newer], { status: 'success', error: null });
    await endRuns(db.pool, boss, [older], { status: 'error', error: { error: 'Late', message: 'late failure' } });
    const c = await cronRow(cronId);
    assert.equal(c.last_run_id, newer);
    assert.equal(c.last_run_status, 'success');
    assert.equal(c.last_run_error, null);
    // Both occurrences are settled in the ledger all the same.
    const { rows } = await db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`, [cronId]);
    assert.deepEqual(
      rows.map((r) => r.status),
      ['error', 'success'],
    );
  });

  test('a late result for an occurrence already settled (a cancelled run) changes nothing', async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const runId = await runningOccurrence(cronId, new Date('2025-01-03T00:00:00Z'), 'interrupted');
    await endRuns(db.pool, boss, [runId], { status: 'success', error: null });
    const c = await cronRow(cronId);
    assert.equal(c.last_run_id, null);
    assert.equal((await occurrence(cronId)).status, 'interrupted');
  });

  test('overlap: skip and buffer_one for stateless crons, enqueue and reject for thread crons', async () => {
    // Each run takes 2.5 s (worker timeout is 1 s here, so use a second worker with a longer one).
    await worker.stop();
    const slow = newWorker(db.pool, boss, { runTimeoutSeconds: 30, concurrency: 16 });
    await slow.start();
    try {
      // The first occurrence, taken once the workers are ready (swapping them may take a while).
      const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) + interval '1 second' AS start`);
      const start = rows[0].start;
      const input = { sleep_ms: 2500 };
      const skip = await insertCron(db.pool, { schedule: '* * * * * *', input, overlap_policy: 'skip', next_run_date: start });
      const buffer = await insertCron(db.pool, { schedule: '* * * * * *', input, overlap_policy: 'buffer_one', next_run_date: start });
      const enqueueThread = await insertThread(db.pool);
      // missed_policy all: a scheduler slowed down by a loaded machine skips nothing as missed
      // either, so any skip here would be the overlap rule's.
      const enqueue = await insertCron(db.pool, { schedule: '* * * * * *', input, thread_id: enqueueThread, next_run_date: start, missed_policy: 'all' });
      const rejectThread = await insertThread(db.pool);
      const reject = await insertCron(db.pool, {
        schedule: '* * * * * *',
        thread_id: rejectThread,
        payload: { input, multitask_strategy: 'reject' },
        next_run_date: start,
      });
      const ids = [skip, buffer, enqueue, reject];
      const scheduler = newScheduler(db.pool, boss, db.url);
      // Five occurrences of each (start .. start + 4 s) have been dealt with.
      const fifth = new Date(start.getTime() + 5000);
      try {
        await scheduler.start();
        await eventually(
          async () => (await db.pool.query(`SELECT 1 FROM crons WHERE cron_id = ANY($1) HAVING min(next_run_date) >= $2`, [ids, fifth])).rowCount,
          'five occurrences of each cron',
          30_000,
        );
      } finally {
        await scheduler.stop();
      }
      await db.pool.query(`UPDATE crons SET enabled = false WHERE cron_id = ANY($1)`, [ids]);

      const reasons = async (cronId: string) =>
        (await db.pool.query(`SELECT scheduled_for, status, reason FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`, [cronId])).rows;
      // skip: while a run is going, occurrences are skipped for overlap: of five occurrences a
      // second apart, with runs of 2.5 s, at most three run.
      const s = await reasons(skip);
      assert.ok(
        s.some((r) => r.reason === 'overlap'),
        JSON.stringify(s),
      );
      assert.ok(s.filter((r) => r.scheduled_for < fifth && r.status !== 'skipped').length <= 3, JSON.stringify(s));
      // buffer_one: one running plus one waiting; the rest skipped.
      const b = await reasons(buffer);
      assert.ok(
        b.some((r) => r.reason === 'overlap'),
        JSON.stringify(b),
      );
      // enqueue: nothing skipped, every occurrence queued.
      const e = await reasons(enqueue);
      assert.ok(e.length >= 5, JSON.stringify(e));
      assert.ok(
        e.every((r) => r.status !== 'skipped'),
        JSON.stringify(e),
      );
      // reject: occurrences while the thread is busy are skipped.
      const r = await reasons(reject);
      assert.ok(
        r.some((x) => x.reason === 'overlap'),
        JSON.stringify(r),
      );

      // Runs of one thread (and of one buffer_one cron) never overlap in time, on any worker.
      for (const cronId of [buffer, enqueue, reject]) {
        const { rows: spans } = await db.pool.query<{ started_at: Date; ended_at: Date | null }>(
          `SELECT o.started_at, o.ended_at FROM cron_occurrences o WHERE o.cron_id = $1 AND o.started_at IS NOT NULL ORDER BY o.started_at`,
          [cronId],
        );
        assert.ok(spans.length >= 1);
        for (let i = 1; i < spans.length; i++) {
          const prevEnd = spans[i - 1].ended_at;
          if (prevEnd) assert.ok(spans[i].started_at.getTime() >= prevEnd.getTime(), `runs of ${cronId} overlapped`);
        }
      }
    } finally {
      await slow.stop();
      worker = newWorker(db.pool, boss, { runTimeoutSeconds: 1 });
      await worker.start();
    }
  });
});
