import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { QUEUES } from '../libs/queue/index.ts';
import { claimRuns, claimRunsLimited, finishRuns } from '../libs/runs/index.ts';
import type { ClaimLimits, FinishedRun } from '../libs/runs/index.ts';
import { ECHO, insertThread, useQueueDatabase } from './support/engine.ts';

// Runs parked on a full concurrency limit (libs/runs/lifecycle.ts admitLimited) are woken when a
// slot is given back; only the first few of a claim look again on their own after half a
// heartbeat, the others after PARKED_LONG_MS (60 s). Each test steps the claims and finishes a
// worker would make, one transaction at a time, and reads when each parked run's job is
// fetchable (pg-boss's start_after): a slot given back must make a sleeping parked run fetchable
// now, whatever the runs woken before it are doing. Issue 22: a full run beside CPU burners left
// 15 runs of the torture's limited graph pending 20 s after the settle began.

const HEARTBEAT_SECONDS = 30;

describe('runs parked on a full concurrency limit', () => {
  const ctx = useQueueDatabase('parked_wake');
  let clock = Date.now() - 3_600_000;
  // Each test its own limit: runs a test leaves parked are not the next one's.
  let limit = '';

  const limitsOf = (max: number): ClaimLimits => ({
    heartbeatSeconds: HEARTBEAT_SECONDS,
    limitsOf: () => [{ name: limit, max_concurrency: max, rate: null }],
  });

  /** A pending run of the echo assistant on `threadId` (a new thread by default), its job in the queue; created after every earlier one. */
  async function pendingRun(threadId?: string): Promise<{ run_id: string; thread_id: string }> {
    const thread = threadId ?? (await insertThread(ctx.db.pool));
    const runId = randomUUID();
    clock += 1000;
    await ctx.db.pool.query(`INSERT INTO runs (run_id, thread_id, assistant_id, user_id, created_at) VALUES ($1, $2, $3, 'anonymous', $4)`, [
      runId,
      thread,
      ECHO,
      new Date(clock),
    ]);
    await ctx.boss.insert(QUEUES.run, [{ id: runId, data: { run_id: runId }, group: { id: thread } }]);
    return { run_id: runId, thread_id: thread };
  }

  /** What a worker's fetch does to the runs' jobs: active at attempt 1, heartbeat fresh. */
  async function fetched(runs: { run_id: string }[]): Promise<void> {
    await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now(), heartbeat_on = now() WHERE name = $1 AND id = ANY($2::uuid[])`, [
      QUEUES.run,
      runs.map((r) => r.run_id),
    ]);
  }

  const requests = (runs: { run_id: string; thread_id: string }[]) =>
    runs.map((r) => ({ run_id: r.run_id, attempt: 1, group: r.thread_id, jobId: r.run_id, retryCount: 0 }));

  /** Fetches and claims the runs as a worker does. */
  async function claim(runs: { run_id: string; thread_id: string }[], max: number) {
    await fetched(runs);
    return claimRunsLimited(ctx.db.pool, 'pgboss', requests(runs), limitsOf(max));
  }

  /** The worker's result for a claimed run of the limit (its slot is given back in the same transaction). */
  const done = (r: { run_id: string; thread_id: string }): FinishedRun => ({
    run_id: r.run_id,
    status: 'success',
    output: { ok: true },
    error: null,
    thread_id: r.thread_id,
    ephemeral: false,
    cron_id: null,
    scheduled_for: null,
    started_at: new Date(),
    attempt: 1,
    job: { id: r.run_id, retryCount: 0 },
    limits: [limit],
  });

  /** Seconds until each run's job is fetchable (0: now), by the database clock. */
  async function dueIn(runs: { run_id: string }[]): Promise<number[]> {
    const { rows } = await ctx.db.pool.query<{ id: string; state: string; wait: number }>(
      `SELECT id::text, state::text, greatest(0, extract(epoch FROM start_after - now()))::float8 AS wait
         FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])`,
      [QUEUES.run, runs.map((r) => r.run_id)],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return runs.map((r) => {
      const row = byId.get(r.run_id)!;
      assert.equal(row.state, 'created', `run ${r.run_id}'s job is ${row.state}, not waiting in the queue`);
      return Math.round(row.wait);
    });
  }

  test('two slots given back one after the other wake two parked runs, even before the first one woken is fetched', async () => {
    limit = 'pool-a';
    const holders = [await pendingRun(), await pendingRun()];
    const started = await claim(holders, 2);
    assert.equal(started.runs.length, 2);
    const parked = [await pendingRun(), await pendingRun(), await pendingRun(), await pendingRun()];
    const refused = await claim(parked, 2);
    assert.equal(refused.parked.size, 4);
    // The first two of the claim look again after half a heartbeat, the others after a minute.
    const [p1, p2, p3, p4] = parked;
    assert.deepEqual(await dueIn(parked), [15, 15, 60, 60]);

    // The holders end in two transactions (two workers, or one worker's results stored apart).
    await finishRuns(ctx.db.pool, ctx.boss, [done(holders[0])]);
    await finishRuns(ctx.db.pool, ctx.boss, [done(holders[1])]);
    assert.deepEqual(await dueIn([p1, p2]), [0, 0], 'two slots are free: the two oldest parked runs are fetchable now');

    // Both start; then both end, each in its own transaction, before a worker fetches the first one woken.
    const second = await claim([p1, p2], 2);
    assert.equal(second.runs.length, 2);
    await finishRuns(ctx.db.pool, ctx.boss, [done(p1)]);
    await finishRuns(ctx.db.pool, ctx.boss, [done(p2)]);
    assert.deepEqual(await dueIn([p3, p4]), [0, 0], 'two slots are free: the runs parked for a minute are fetchable now, not at their minute');
  });

  test("a woken run that cannot start (another run of its thread is executing) hands its wake on: the free slot is not left to a minute's look", async () => {
    limit = 'pool-b';
    // A run of another graph (no limit) executes on thread T.
    const other = await pendingRun();
    await fetched([other]);
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', requests([other]))).length, 1);
    const holder = await pendingRun();
    assert.equal((await claim([holder], 1)).runs.length, 1);
    // Parked: the oldest on T (it looks again after half a heartbeat), the next for a minute.
    const onThread = await pendingRun(other.thread_id);
    const next = await pendingRun();
    const refused = await claim([onThread, next], 1);
    assert.equal(refused.parked.size, 2);
    assert.deepEqual(await dueIn([onThread, next]), [15, 60]);

    // The holder ends: the oldest parked run is woken, fetched, and finds the slot free but its thread busy.
    await finishRuns(ctx.db.pool, ctx.boss, [done(holder)]);
    assert.deepEqual(await dueIn([onThread]), [0]);
    const blocked = await claim([onThread], 1);
    assert.equal(blocked.runs.length, 0, 'the run waits for its thread');
    assert.equal(blocked.parked.size, 0, 'not parked: the limit has room');
    assert.deepEqual(await dueIn([next]), [0], 'the slot is free and its only taker cannot start: the next parked run is fetchable now');
  });
  test("a lost worker's run, parked behind the limit when its job comes back, looks again within half a heartbeat: no slot given back wakes it", async () => {
    limit = 'pool-c';
    // Its worker died while it ran: the run is still running at attempt 1, its job retried by pg-boss (attempt 2).
    const lost = await pendingRun();
    await fetched([lost]);
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', requests([lost]))).length, 1);
    await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'created', retry_count = 1, start_after = now() WHERE name = $1 AND id = $2`, [
      QUEUES.run,
      lost.run_id,
    ]);
    const holder = await pendingRun();
    assert.equal((await claim([holder], 1)).runs.length, 1);
    // Fetched with an older parked run (created first here: woken, it is fetched with the lost run's new attempt).
    const older = await pendingRun();
    await ctx.db.pool.query(`UPDATE runs SET created_at = $2 WHERE run_id = $1`, [older.run_id, new Date(Date.now() - 7_200_000)]);
    await fetched([older, lost]);
    const refused = await claimRunsLimited(
      ctx.db.pool,
      'pgboss',
      [
        { run_id: older.run_id, attempt: 1, group: older.thread_id, jobId: older.run_id, retryCount: 0 },
        { run_id: lost.run_id, attempt: 2, group: lost.thread_id, jobId: lost.run_id, retryCount: 1 },
      ],
      limitsOf(1),
    );
    assert.equal(refused.parked.size, 2);
    const [olderWait, lostWait] = await dueIn([older, lost]);
    assert.equal(olderWait, 15);
    // Still running (attempt 1) in the runs table, it waits for no reason a slot given back reads (runs.waiting of a pending run).
    assert.ok(lostWait <= HEARTBEAT_SECONDS / 2, `the lost worker's run looks again in ${lostWait} s`);
  });
});
