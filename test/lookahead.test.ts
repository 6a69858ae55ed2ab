import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cronOperations } from '../libs/crons/index.ts';
import { withdrawAhead } from '../libs/crons/ahead.ts';
import { QUEUES } from '../libs/queue/index.ts';
import { claimRuns } from '../libs/runs/index.ts';
import { eventually, insertCron, insertThread, newScheduler, newWorker, quietLogger, useQueueDatabase } from './support/engine.ts';

// Firing ahead (CRON_LOOKAHEAD_MS, docs/scheduling.md): the scheduler fires an occurrence of a
// stateless cron with overlap_policy allow up to the lookahead before its instant (ledger row,
// thread, run pending, job with start_after = the instant); the run starts at the instant, not
// before. A pause, a change or a delete before the instant withdraws it; a claim at the instant
// that locked the run first wins. Real PostgreSQL and pg-boss, an in-process scheduler and worker.

const ONCE_A_YEAR = '0 0 1 1 *';
const USER = 'anonymous';

describe('firing ahead (CRON_LOOKAHEAD_MS)', () => {
  const ctx = useQueueDatabase('lookahead');
  const ops = () =>
    cronOperations({
      pool: ctx.db.pool,
      boss: ctx.boss,
      logger: quietLogger(),
      config: { CRON_ALLOW_SECONDS_SCHEDULE: true, CRON_MAX_PER_USER: 0, CRON_BACKFILL_MAX: 1000 },
    });
  /** The database clock plus `ms`, to the millisecond (timestamps round-trip exactly). */
  const dbIn = async (ms: number): Promise<Date> =>
    (await ctx.db.pool.query<{ t: Date }>(`SELECT date_trunc('milliseconds', now() + $1::int * interval '1 millisecond') AS t`, [ms])).rows[0].t;
  const dbNow = () => dbIn(0);
  const fireAhead = (lookaheadMs: number) => newScheduler(ctx.db.pool, ctx.boss, ctx.db.url, { lookaheadMs }).runDue();
  /** Everything an occurrence of the cron left: its runs, ledger rows, threads and jobs. */
  async function traces(cronId: string) {
    const q = async (sql: string) => (await ctx.db.pool.query(sql, [cronId, QUEUES.run])).rows;
    return {
      runs: await q(`SELECT run_id, thread_id, status, scheduled_for, started_at, kwargs FROM runs WHERE cron_id = $1 AND $2::text IS NOT NULL`),
      ledger: await q(`SELECT scheduled_for, status, run_id, started_at FROM cron_occurrences WHERE cron_id = $1 AND $2::text IS NOT NULL`),
      threads: await q(`SELECT thread_id FROM threads WHERE metadata->>'cron_id' = $1::text AND $2::text IS NOT NULL`),
      jobs: await q(`SELECT id, state, start_after FROM pgboss.job
                      WHERE name = $2 AND id IN (SELECT run_id FROM runs WHERE cron_id = $1 UNION SELECT run_id FROM cron_occurrences WHERE cron_id = $1)`),
    };
  }
  const stored = async (cronId: string) =>
    (await ctx.db.pool.query(`SELECT next_run_date, fired_through, enabled, finished_at FROM crons WHERE cron_id = $1`, [cronId])).rows[0];

  test('a stateless cron (overlap allow) is fired ahead: pending run, job start_after = its instant; it starts at the instant, not before', async () => {
    const at = await dbIn(3000);
    const ahead = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at });
    // Not fired ahead: a cron whose overlap rule looks at the runs going at the instant, and a thread cron.
    const skip = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, overlap_policy: 'skip' });
    const bound = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, thread_id: await insertThread(ctx.db.pool) });

    // The worker is idle, asleep, when the occurrence is fired ahead: told of the deferred job
    // (NOTIFY with the insert), it wakes at the instant.
    const worker = newWorker(ctx.db.pool, ctx.boss);
    await worker.start();
    try {
      const pass = await fireAhead(5000);
      assert.ok((await dbNow()).getTime() < at.getTime(), 'the pass ended before the instant (a slower machine would not test anything)');
      assert.equal(pass.fired, 1);
      const t = await traces(ahead);
      assert.equal(t.runs.length, 1);
      assert.equal(t.runs[0].status, 'pending');
      assert.equal(t.runs[0].scheduled_for.getTime(), at.getTime());
      assert.deepEqual(
        t.ledger.map((l) => [l.status, l.scheduled_for.getTime()]),
        [['enqueued', at.getTime()]],
      );
      assert.equal(t.threads.length, 1);
      assert.equal(t.jobs.length, 1);
      assert.equal(t.jobs[0].state, 'created');
      assert.equal(t.jobs[0].start_after.getTime(), at.getTime());
      for (const other of [skip, bound]) assert.equal((await traces(other)).runs.length, 0, 'skip and thread crons wait for their instant');
      // Stored: the schedule moved past the occurrence fired ahead. Shown: the occurrence not yet at its instant.
      assert.ok((await stored(ahead)).next_run_date.getTime() > at.getTime());
      assert.equal((await ops().get(ahead, USER)).next_run_date, at.toISOString());

      // Its ledger row: the run and its ephemeral thread are deleted once it ends.
      const run = await eventually(async () => (await traces(ahead)).ledger.find((r) => r.status === 'success'), 'the run fired ahead', 30_000);
      const late = run.started_at.getTime() - at.getTime();
      assert.ok(late >= 0, `started ${-late} ms before its instant`);
      assert.ok(late < 2000, `started ${late} ms after its instant`);
      // The others fire at their instant, as before.
      assert.equal((await fireAhead(5000)).fired, 2);
    } finally {
      await worker.stop();
    }
  });

  test('pause, change or delete before the instant withdraws it: run, thread, ledger row and job go; nothing fires under the old definition', async () => {
    const at = await dbIn(8000);
    const paused = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, input: { v: 1 } });
    const changed = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, input: { v: 1 } });
    const deleted = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, input: { v: 1 } });
    const rescheduled = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, input: { v: 1 } });
    assert.equal((await fireAhead(10_000)).fired, 4);
    const before = await traces(deleted);
    assert.equal(before.runs.length, 1);

    await ops().update(paused, USER, { enabled: false });
    await ops().update(changed, USER, { input: { v: 2 } });
    await ops().remove(deleted, USER);
    const moved = await ops().update(rescheduled, USER, { schedule: '0 0 1 7 *' });
    assert.ok((await dbNow()).getTime() < at.getTime(), 'the changes were made before the instant');

    for (const id of [paused, changed, deleted, rescheduled]) {
      const t = await traces(id);
      assert.deepEqual([t.runs, t.ledger, t.threads, t.jobs], [[], [], [], []], `withdrawn whole (${id})`);
    }
    assert.equal((await ctx.db.pool.query(`SELECT 1 FROM threads WHERE thread_id = $1`, [before.runs[0].thread_id])).rowCount, 0);
    assert.equal((await ctx.db.pool.query(`SELECT 1 FROM pgboss.job WHERE id = $1`, [before.runs[0].run_id])).rowCount, 0);
    // The schedule moved back: the occurrence fires under the new definition if still due.
    const p = await stored(paused);
    assert.equal(p.enabled, false);
    assert.equal(p.next_run_date.getTime(), at.getTime());
    assert.equal(p.fired_through, null);
    assert.equal((await stored(changed)).next_run_date.getTime(), at.getTime());
    assert.equal(await stored(deleted), undefined);
    // A new schedule: its own next occurrence (1 July), not the withdrawn one.
    assert.equal(new Date(moved.next_run_date!).getUTCMonth(), 6);

    // The changed cron fires again ahead, with its new input, once.
    assert.equal((await fireAhead(10_000)).fired, 1);
    const again = await traces(changed);
    assert.equal(again.runs.length, 1);
    assert.deepEqual(again.runs[0].kwargs.input, { v: 2 });
    assert.equal(again.runs[0].scheduled_for.getTime(), at.getTime());

    const worker = newWorker(ctx.db.pool, ctx.boss);
    await worker.start();
    try {
      await eventually(async () => (await traces(changed)).ledger.find((r) => r.status === 'success'), 'the changed cron run', 30_000);
      // Its instant has passed: the paused, deleted and rescheduled crons fired nothing.
      assert.equal((await fireAhead(0)).fired, 0);
      for (const id of [paused, deleted, rescheduled]) assert.equal((await traces(id)).ledger.length, 0);
      assert.equal((await traces(changed)).ledger.length, 1);
    } finally {
      await worker.stop();
    }
  });

  test('a cron finished by firing its last occurrence ahead shows that occurrence next; a change before it withdraws it and revives the cron', async () => {
    const at = await dbIn(8000);
    const cron = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at, end_time: new Date(at.getTime() + 1000) });
    assert.equal((await fireAhead(10_000)).fired, 1);
    const finished = await stored(cron);
    assert.equal(finished.next_run_date, null);
    assert.equal(finished.enabled, false);
    assert.ok(finished.finished_at);
    assert.equal((await ops().get(cron, USER)).next_run_date, at.toISOString());

    await ops().update(cron, USER, { input: { v: 2 } });
    assert.ok((await dbNow()).getTime() < at.getTime(), 'the change was made before the instant');
    const revived = await stored(cron);
    assert.deepEqual([revived.next_run_date?.getTime(), revived.enabled, revived.finished_at], [at.getTime(), true, null]);
    assert.deepEqual((await traces(cron)).runs, []);
    // Fired ahead again under the new definition, once.
    assert.equal((await fireAhead(10_000)).fired, 1);
    const again = await traces(cron);
    assert.deepEqual(
      again.runs.map((r) => r.kwargs.input),
      [{ v: 2 }],
    );
  });

  /** Resolves once a backend of this database waits on a lock. */
  const blockedOnLock = (what: string) =>
    eventually(
      async () =>
        (await ctx.db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [ctx.db.name])).rows[0].n >
        0,
      what,
      10_000,
      20,
    );

  test('race: a claim that locked the run first has started it, and a pause does not withdraw it', async () => {
    const at = await dbIn(8000);
    const cron = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at });
    assert.equal((await fireAhead(10_000)).fired, 1);
    const [run] = (await traces(cron)).runs;
    const next = (await stored(cron)).next_run_date;
    // Transaction 1 stands for a worker's claim at the instant: it holds the run and marks it
    // running (the claim's own statement, whose lock it takes first).
    const claim = await ctx.db.pool.connect();
    try {
      await claim.query('BEGIN');
      await claim.query(`SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE`, [run.run_id]);
      await claim.query(`UPDATE runs SET status = 'running', started_at = now() WHERE run_id = $1`, [run.run_id]);
      // Transaction 2: the pause, which waits for the run.
      const pause = ops().update(cron, USER, { enabled: false });
      await blockedOnLock('the pause waiting for the run the claim holds');
      await claim.query('COMMIT');
      await pause;
    } finally {
      claim.release();
    }
    const t = await traces(cron);
    assert.deepEqual(
      t.runs.map((r) => r.status),
      ['running'],
    );
    assert.equal(t.ledger.length, 1);
    assert.equal(t.jobs.length, 1);
    const s = await stored(cron);
    assert.equal(s.enabled, false);
    assert.equal(s.next_run_date.getTime(), next.getTime(), 'next_run_date stays after the started occurrence');
  });

  test('race: a withdrawal that locked the run first wins; the claim at the instant then finds nothing to start', async () => {
    const at = await dbIn(1500);
    const cron = await insertCron(ctx.db.pool, { schedule: ONCE_A_YEAR, next_run_date: at });
    assert.equal((await fireAhead(3000)).fired, 1);
    const [run] = (await traces(cron)).runs;
    // Transaction 1: a pause before the instant, holding the cron and the withdrawn run.
    const pause = await ctx.db.pool.connect();
    let claim: Promise<unknown[]> | undefined;
    try {
      await pause.query('BEGIN');
      await pause.query(`SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE`, [cron]);
      assert.equal((await withdrawAhead(pause, ctx.boss, [cron])).get(cron)?.next_run_date?.getTime(), at.getTime());
      // Transaction 2: the worker's claim (the real one) once the instant has come; it waits for the run.
      await eventually(async () => (await dbNow()).getTime() > at.getTime(), 'the instant');
      claim = claimRuns(ctx.db.pool, 'pgboss', [{ run_id: run.run_id, attempt: 1 }]);
      await blockedOnLock('the claim waiting for the run the withdrawal holds');
      await pause.query(`UPDATE crons SET enabled = false WHERE cron_id = $1`, [cron]);
      await pause.query('COMMIT');
    } finally {
      pause.release();
    }
    assert.deepEqual(await claim, []);
    const t = await traces(cron);
    assert.deepEqual([t.runs, t.ledger, t.threads, t.jobs], [[], [], [], []]);
  });
});
