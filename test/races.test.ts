import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AgentRegistry } from '../libs/agents/index.ts';
import type { Agent } from '../libs/agents/index.ts';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { QUEUES } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { RunWorker, cancelRuns, claimRuns, claimRunsLimited, endRuns, finishRuns, pendingOf } from '../libs/runs/index.ts';
import type { FinishedRun } from '../libs/runs/index.ts';
import { recordDelivery } from '../libs/webhooks/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, insertThread, newScheduler, quietLogger, startTestQueue, useQueueDatabase } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';
import { ROOT, spawnApp } from './support/processes.ts';

// The races of the lifecycle issue, each driven so that it happens (two transactions stepped
// one against the other, or many at once), each checked in the database afterwards. They are
// black-box where they can be (the HTTP API, a worker, a scheduler, raw SQL standing in for a
// scheduler pass), so the same file shows the failure on the code before the fix.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker with its own agents (graph `echo`, the default assistant of insertCron). */
function workerWith(db: TestDatabase, boss: PgBoss, agent: Agent, concurrency = 8): RunWorker {
  return new RunWorker({
    pool: db.pool,
    boss,
    logger: quietLogger(),
    agents: new AgentRegistry().register('echo', agent),
    concurrency,
    runTimeoutSeconds: 30,
    listenUrl: db.url,
  });
}

/** Counts executions per idempotency key; `gate` holds every agent until released (or 5 s). */
function countingAgent(opts: { gateAt?: number; output?: (input: unknown) => unknown } = {}) {
  const executions = new Map<string, number>();
  let started = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const agent: Agent = async (input, ctx) => {
    executions.set(ctx.idempotency_key, (executions.get(ctx.idempotency_key) ?? 0) + 1);
    started++;
    if (opts.gateAt && started % opts.gateAt === 0) release();
    if (opts.gateAt) await Promise.race([gate, sleep(5000)]);
    return opts.output ? opts.output(input) : { ok: true };
  };
  return { agent, executions, started: () => started };
}

/** Resolves once a backend of this database waits on a lock (a request is blocked where the test wants it). */
async function blockedOnLock(db: TestDatabase, what: string): Promise<void> {
  await eventually(
    async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [db.name])).rows[0].n > 0,
    what,
    10_000,
    20,
  );
}

/**
 * The pool, except that the transaction whose statement matches `statement` stops right after it
 * (its locks held, the statement done) until release(): a real scheduler pass, held mid-transaction.
 */
function holdAfter(pool: Pool, statement: RegExp): { pool: Pool; reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const at = new Promise<void>((r) => (reached = r));
  const gate = new Promise<void>((r) => (release = r));
  const wrapped = new Proxy(pool, {
    get(target, prop) {
      if (prop !== 'connect') {
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      }
      return async () => {
        const client = await target.connect();
        const query = client.query.bind(client) as (config: unknown, values?: unknown[]) => Promise<unknown>;
        // An own property over the prototype's method; deleting it puts the client back as it was.
        const restore = () => delete (client as { query?: unknown }).query;
        const held = async (config: string | { text: string }, values?: unknown[]) => {
          const answer = await query(config, values);
          if (statement.test(typeof config === 'string' ? config : config.text)) {
            restore();
            reached();
            await gate;
          }
          return answer;
        };
        client.query = held as typeof client.query;
        const releaseClient = client.release.bind(client);
        client.release = (err?: Error | boolean) => {
          restore();
          client.release = releaseClient;
          releaseClient(err);
        };
        return client;
      };
    },
  });
  return { pool: wrapped, reached: at, release };
}

const jobStates = async (db: TestDatabase, runIds: string[]) =>
  (await db.pool.query<{ state: string }>(`SELECT state FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])`, [QUEUES.run, runIds])).rows.map(
    (r) => r.state,
  );

describe('races in the run lifecycle', () => {
  const ctx = useQueueDatabase('races');

  const fire = () => newScheduler(ctx.db.pool, ctx.boss, ctx.db.url).runDue();
  const ledger = async (cronIds: string[]) =>
    (await ctx.db.pool.query(`SELECT cron_id, status, error, run_id FROM cron_occurrences WHERE cron_id = ANY($1::uuid[])`, [cronIds])).rows;

  test('1. a result that cannot be stored ends only its own run, as error; no agent runs twice', async () => {
    const counting = countingAgent({
      gateAt: 6,
      output: (input) => {
        const kind = (input as { bad?: string }).bad;
        // An agent's error whose message PostgreSQL cannot store either.
        if (kind === 'error') throw new Error('failed with \u0000 in its message');
        return kind === 'output' ? { text: 'a\u0000b' } : { ok: true };
      },
    });
    const worker = workerWith(ctx.db, ctx.boss, counting.agent);
    await worker.start();
    try {
      // Kept threads: each run's output is stored as jsonb, which refuses \u0000.
      const crons: string[] = [];
      const kinds = ['output', 'error', null, null, null, null];
      for (const bad of kinds) crons.push(await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', on_run_completed: 'keep', input: { bad } }));
      await fire();
      const rows = await eventually(async () => {
        const r = await ledger(crons);
        return r.length === 6 && r.every((o) => !['enqueued', 'running'].includes(o.status)) ? r : null;
      }, 'every occurrence to settle');
      for (const cronId of crons.slice(0, 2)) {
        const bad = rows.find((o) => o.cron_id === cronId)!;
        assert.equal(bad.status, 'error');
        assert.match(bad.error, /could not be stored/);
      }
      for (const o of rows.filter((x) => !crons.slice(0, 2).includes(x.cron_id))) assert.equal(o.status, 'success');
      assert.deepEqual(
        await jobStates(
          ctx.db,
          rows.map((o) => o.run_id),
        ),
        Array(6).fill('completed'),
      );
      assert.deepEqual([...counting.executions.values()], [1, 1, 1, 1, 1, 1]);
    } finally {
      await worker.stop();
    }
  });

  test('2a. two workers finishing runs of the same crons in opposite orders: no deadlock, no agent runs twice', async () => {
    const counting = countingAgent({ gateAt: 8 });
    const workers = [workerWith(ctx.db, ctx.boss, counting.agent, 4), workerWith(ctx.db, ctx.boss, counting.agent, 4)];
    for (const w of workers) await w.start();
    try {
      const crons: string[] = [];
      for (let i = 0; i < 8; i++) crons.push(await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', on_run_completed: 'keep' }));
      for (let round = 0; round < 12; round++) {
        await ctx.db.pool.query(`UPDATE crons SET next_run_date = now() WHERE cron_id = ANY($1::uuid[])`, [crons]);
        await fire();
        await eventually(async () => {
          const r = await ledger(crons);
          return r.length === 8 * (round + 1) && r.every((o) => o.status === 'success');
        }, `round ${round} to end in success`);
      }
      assert.equal(counting.executions.size, 8 * 12);
      assert.ok(
        [...counting.executions.values()].every((n) => n === 1),
        'every occurrence executed once',
      );
    } finally {
      for (const w of workers) await w.stop();
    }
  });

  describe('through the API', () => {
    let api: InProcessApi;
    let worker: RunWorker;
    before(async () => {
      api = await startInProcessApi(
        ctx.db.pool,
        ctx.boss,
        ctx.db.url,
        new AgentRegistry().register('echo', async () => ({ ok: true })),
      );
      worker = workerWith(ctx.db, ctx.boss, async () => ({ ok: true }));
      await worker.start();
    });
    after(() =>
      teardown(
        () => worker?.stop(),
        () => api?.close(),
      ),
    );

    test('2b. DELETE a cron right after creating it, while its first run ends: never a 5xx', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) {
        const created = await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', input: { i } });
        assert.equal(created.status, 200);
        statuses.push((await api.call('DELETE', `/runs/crons/${created.body.cron_id}`)).status);
      }
      assert.deepEqual([...new Set(statuses)], [204]);
    });

    test('2c. DELETE a thread while a scheduler pass holds its cron and inserts a run on it: no deadlock', async () => {
      const threadId = await insertThread(ctx.db.pool);
      const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', thread_id: threadId, enabled: false });
      const pass = new pg.Client({ connectionString: ctx.db.url });
      await pass.connect();
      try {
        // What a scheduler pass does first: claim the cron.
        await pass.query('BEGIN');
        await pass.query(`SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE`, [cronId]);
        const deleting = api.call('DELETE', `/threads/${threadId}`);
        await blockedOnLock(ctx.db, 'DELETE /threads to wait for the cron the pass holds');
        // Then write the occurrence's run on the cron's thread (a foreign key share lock on it).
        await pass.query(`INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for) VALUES ($1, $2, $3, 'anonymous', $4, now())`, [
          randomUUID(),
          threadId,
          ECHO,
          cronId,
        ]);
        await pass.query('COMMIT');
        assert.equal((await deleting).status, 204);
        assert.equal((await ctx.db.pool.query(`SELECT 1 FROM threads WHERE thread_id = $1`, [threadId])).rowCount, 0);
      } finally {
        await pass.end();
      }
    });

    test('3. a PATCH that waited for a pass never moves next_run_date back to the occurrence the pass fired', async () => {
      // An every-second cron due at S, a whole second or two ahead.
      const { rows } = await ctx.db.pool.query<{ s: Date }>(`SELECT date_trunc('second', clock_timestamp()) + interval '2 seconds' AS s`);
      const s = rows[0].s;
      const cronId = await insertCron(ctx.db.pool, { schedule: '* * * * * *', next_run_date: s });
      const pass = new pg.Client({ connectionString: ctx.db.url });
      await pass.connect();
      try {
        await pass.query('BEGIN');
        await pass.query(`SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE`, [cronId]);
        // The PATCH begins before S and waits for the cron.
        const patching = api.call('PATCH', `/runs/crons/${cronId}`, { timezone: 'Europe/Paris' });
        await blockedOnLock(ctx.db, 'the PATCH to wait for the cron');
        await sleep(Math.max(0, s.getTime() - Date.now()) + 300);
        // The pass fires S (its ledger row) and advances the cron past it, then commits.
        await pass.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status, trigger) VALUES ($1, $2, 'success', 'schedule')`, [cronId, s]);
        await pass.query(`UPDATE crons SET next_run_date = $2::timestamptz + interval '1 second' WHERE cron_id = $1`, [cronId, s]);
        await pass.query('COMMIT');
        const patched = await patching;
        assert.equal(patched.status, 200);
        assert.ok(
          new Date(patched.body.next_run_date).getTime() > s.getTime(),
          `next_run_date ${patched.body.next_run_date} must be after the fired ${s.toISOString()}`,
        );
        // And a pass now fires nothing for S again.
        await ctx.db.pool.query(`UPDATE crons SET enabled = false WHERE cron_id <> $1`, [cronId]);
        await fire();
        const again = await ctx.db.pool.query(`SELECT 1 FROM runs WHERE cron_id = $1 AND scheduled_for = $2`, [cronId, s]);
        assert.equal(again.rowCount, 0);
      } finally {
        await pass.end();
      }
    });
  });

  test('4. a worker keeps WORKER_CONCURRENCY runs in flight: short runs pass long ones', async () => {
    let releaseLong!: () => void;
    const longGate = new Promise<void>((r) => (releaseLong = r));
    const shortDone: number[] = [];
    let longStarted = 0;
    const agent: Agent = async (input) => {
      if ((input as { long?: boolean }).long) {
        longStarted++;
        await Promise.race([longGate, sleep(15_000)]);
      } else shortDone.push(Date.now());
      return { ok: true };
    };
    const worker = workerWith(ctx.db, ctx.boss, agent, 8);
    await worker.start();
    try {
      await ctx.db.pool.query(`UPDATE crons SET enabled = false`);
      for (let i = 0; i < 7; i++) await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', input: { long: true } });
      await fire();
      await eventually(async () => longStarted === 7, 'seven long runs to start');
      const shortCrons = [
        await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', input: {} }),
        await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', input: {} }),
      ];
      await fire();
      // One slot is free: both short runs go through it, one after the other, while the long ones still run.
      await eventually(async () => shortDone.length === 2, 'both short runs to run while seven long runs hold their slots', 5000);
      assert.equal(longStarted, 7);
      await eventually(async () => (await ledger(shortCrons)).every((o) => o.status === 'success'), 'the short runs to settle');
    } finally {
      releaseLong();
      await worker.stop();
    }
  });

  test('5. the scheduler waits, not spins, while a due cron is locked by another transaction', async () => {
    await ctx.db.pool.query(`UPDATE crons SET enabled = false`);
    const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *' });
    const holder = new pg.Client({ connectionString: ctx.db.url });
    await holder.connect();
    let ticks = 0;
    const scheduler = newScheduler(ctx.db.pool, ctx.boss, ctx.db.url, { pollIntervalSeconds: 10, onTick: () => ticks++ });
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE`, [cronId]);
      await scheduler.start();
      await eventually(async () => ticks >= 1, 'a first pass');
      await sleep(2000);
      assert.ok(ticks <= 4, `${ticks} passes in 2 s while the only due cron was locked`);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
      await scheduler.stop();
    }
  });
});

describe('the run lifecycle owner (libs/runs/lifecycle.ts)', () => {
  const ctx = useQueueDatabase('lifecycle');

  /** A pending cron run on a kept thread with its enqueued ledger row, as firing leaves it. */
  async function pendingRun(): Promise<{ run_id: string; thread_id: string; cron_id: string; scheduled_for: Date }> {
    const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const threadId = await insertThread(ctx.db.pool);
    const runId = randomUUID();
    const scheduledFor = new Date(Date.UTC(2025, 0, 1, 0, 0, Math.floor(Math.random() * 1e6)));
    await ctx.db.pool.query(`INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for) VALUES ($1, $2, $3, 'anonymous', $4, $5)`, [
      runId,
      threadId,
      ECHO,
      cronId,
      scheduledFor,
    ]);
    await ctx.db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, thread_id, status) VALUES ($1, $2, $3, $4, 'enqueued')`, [
      cronId,
      scheduledFor,
      runId,
      threadId,
    ]);
    return { run_id: runId, thread_id: threadId, cron_id: cronId, scheduled_for: scheduledFor };
  }

  const result = (r: Awaited<ReturnType<typeof pendingRun>>, attempt: number | null, output: unknown): FinishedRun => ({
    run_id: r.run_id,
    status: 'success',
    output,
    error: null,
    thread_id: r.thread_id,
    ephemeral: false,
    cron_id: r.cron_id,
    scheduled_for: r.scheduled_for,
    started_at: new Date(),
    attempt,
  });
  const state = async (r: { run_id: string; cron_id: string }) => ({
    run: (await ctx.db.pool.query(`SELECT status, attempts, output FROM runs WHERE run_id = $1`, [r.run_id])).rows[0],
    ledger: (await ctx.db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1`, [r.cron_id])).rows[0].status,
  });

  test('8. a cancel, before or after the claim, leaves the occurrence ended: it never goes back to running', async () => {
    const before = await pendingRun();
    await cancelRuns(ctx.db.pool, ctx.boss, [before.run_id], 'interrupt');
    assert.deepEqual(await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: before.run_id, attempt: 1 }]), []);
    assert.equal((await state(before)).ledger, 'interrupted');

    const afterClaim = await pendingRun();
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: afterClaim.run_id, attempt: 1 }])).length, 1);
    assert.equal((await state(afterClaim)).ledger, 'running');
    await cancelRuns(ctx.db.pool, ctx.boss, [afterClaim.run_id], 'interrupt');
    // The worker's late result changes nothing.
    await finishRuns(ctx.db.pool, ctx.boss, [result(afterClaim, 1, { late: true })]);
    const s = await state(afterClaim);
    assert.equal(s.ledger, 'interrupted');
    assert.equal(s.run.status, 'interrupted');
  });

  test('fencing: the result of an attempt whose claim was taken over is not stored over the newer attempt', async () => {
    const r = await pendingRun();
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: r.run_id, attempt: 1 }]))[0].attempts, 1);
    // Its heartbeat expired; pg-ctx.boss retried the job; another worker claims attempt 2.
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: r.run_id, attempt: 2 }]))[0].attempts, 2);
    await finishRuns(ctx.db.pool, ctx.boss, [result(r, 1, { from: 'attempt 1' })]);
    assert.deepEqual((await state(r)).run, { status: 'running', attempts: 2, output: null });
    await finishRuns(ctx.db.pool, ctx.boss, [result(r, 2, { from: 'attempt 2' })]);
    assert.deepEqual((await state(r)).run, { status: 'success', attempts: 2, output: { from: 'attempt 2' } });
    assert.equal((await state(r)).ledger, 'success');
  });

  test('a retry whose run was ended meanwhile (an interrupt) completes its job: not left active, holding its thread, to come back as lost', async () => {
    const r = await pendingRun();
    await ctx.boss.insert(QUEUES.run, [{ id: r.run_id, data: { run_id: r.run_id }, group: { id: r.thread_id } }]);
    // Fetched by a worker (attempt 1) and claimed.
    await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now(), heartbeat_on = now() WHERE name = $1 AND id = $2`, [
      QUEUES.run,
      r.run_id,
    ]);
    assert.equal((await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: r.run_id, attempt: 1, group: r.thread_id }])).length, 1);
    // The agent fails retryably; before its retry is stored, a new occurrence interrupts the run.
    await cancelRuns(ctx.db.pool, ctx.boss, [r.run_id], 'interrupt', 'by a new cron occurrence');
    await finishRuns(ctx.db.pool, ctx.boss, [
      {
        ...result(r, 1, null),
        status: 'error',
        error: { error: 'RetryableError', message: 'try again' },
        retry: { delaySeconds: 0.1 },
        job: { id: r.run_id, retryCount: 0 },
      },
    ]);
    assert.equal((await state(r)).run.status, 'interrupted');
    // The worker lets go of the job (no heartbeat from here on): left active, it would hold the
    // thread's next runs until its heartbeat lapsed, then be retried as a lost worker's.
    assert.deepEqual(await jobStates(ctx.db, [r.run_id]), ['completed']);
  });

  test('two runs of one thread (or one buffer_one cron) fetched by two workers at once: only one is claimed', async () => {
    const threadId = await insertThread(ctx.db.pool);
    const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', enabled: false, overlap_policy: 'buffer_one' });
    for (const shared of [{ thread: threadId }, { cron: cronId }]) {
      const runs = [randomUUID(), randomUUID()];
      for (const runId of runs) {
        // A buffer_one cron's runs each have a fresh (ephemeral) thread; a thread's runs share it.
        const thread = shared.thread ?? (await insertThread(ctx.db.pool));
        if (!shared.thread) await ctx.db.pool.query(`UPDATE threads SET ephemeral = true WHERE thread_id = $1`, [thread]);
        await ctx.db.pool.query(`INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id) VALUES ($1, $2, $3, 'anonymous', $4)`, [
          runId,
          thread,
          ECHO,
          shared.cron ?? null,
        ]);
      }
      const group = shared.thread ?? `cron:${shared.cron}`;
      // Both jobs fetched (active), as two workers fetching at the same instant would hold them.
      await ctx.boss.insert(
        QUEUES.run,
        runs.map((id) => ({ id, data: { run_id: id } })),
      );
      await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE name = $1 AND id = ANY($2::uuid[])`, [QUEUES.run, runs]);
      const claims = await Promise.all(runs.map((run_id) => claimRuns(ctx.db.pool, 'pgboss', [{ run_id, attempt: 1, group }])));
      assert.equal(claims.flat().length, 1, `one of two runs sharing ${shared.thread ? 'a thread' : 'a buffer_one cron'} claimed`);
      const winner = claims.flat()[0].run_id;
      const other = runs.find((id) => id !== winner)!;
      assert.deepEqual([...(await pendingOf(ctx.db.pool, [other]))], [other]);
      // The winner's worker is lost: its job waits for a retry. The other run no longer waits for it
      // (it would wait for ever: pg-ctx.boss may keep handing out the other job first).
      await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'retry' WHERE name = $1 AND id = $2`, [QUEUES.run, winner]);
      assert.equal((await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: other, attempt: 1, group }])).length, 1);
    }
  });

  test("a run fetched before an older due run of its thread stays out of the fetches until the thread's turn passes", async () => {
    const threadId = await insertThread(ctx.db.pool);
    const [older, newer] = [randomUUID(), randomUUID()];
    await ctx.db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, created_at)
       VALUES ($1, $3, $4, 'anonymous', now() - interval '2 seconds'), ($2, $3, $4, 'anonymous', now() - interval '1 second')`,
      [older, newer, threadId, ECHO],
    );
    await ctx.boss.insert(
      QUEUES.run,
      [older, newer].map((id) => ({ id, data: { run_id: id }, group: { id: threadId } })),
    );
    const jobOf = async (id: string) =>
      (
        await ctx.db.pool.query<{ state: string; due: boolean }>(`SELECT state, start_after <= now() AS due FROM pgboss.job WHERE name = $1 AND id = $2`, [
          QUEUES.run,
          id,
        ])
      ).rows[0];
    // The newer job fetched first (as pg-boss hands out the smaller id of a group): refused and parked.
    await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE name = $1 AND id = $2`, [QUEUES.run, newer]);
    const claim = await claimRunsLimited(ctx.db.pool, 'pgboss', [{ run_id: newer, attempt: 1, group: threadId, jobId: newer, retryCount: 0 }]);
    assert.deepEqual(claim.runs, []);
    assert.deepEqual([...claim.parked], [newer]);
    assert.equal((await ctx.db.pool.query(`SELECT waiting FROM runs WHERE run_id = $1`, [newer])).rows[0].waiting, 'thread');
    assert.deepEqual(await jobOf(newer), { state: 'created', due: false }, 'out of the fetches (a put-back due again soon livelocked a long queue)');
    // So a fetch finds the older one alone among the thread's jobs (the database holds other tests' jobs too).
    const { rows: fetchable } = await ctx.db.pool.query(
      `SELECT id FROM pgboss.job WHERE name = $1 AND group_id = $2 AND state < 'active' AND start_after <= now()`,
      [QUEUES.run, threadId],
    );
    assert.deepEqual(
      fetchable.map((j) => j.id),
      [older],
    );
    await ctx.db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE name = $1 AND id = $2`, [QUEUES.run, older]);
    assert.equal((await claimRunsLimited(ctx.db.pool, 'pgboss', [{ run_id: older, attempt: 1, group: threadId, jobId: older, retryCount: 0 }])).runs.length, 1);
    assert.deepEqual(await jobOf(newer), { state: 'created', due: false });
    // The older run's end passes the turn: the newer job is fetchable at once.
    await endRuns(ctx.db.pool, ctx.boss, [older], { status: 'success', error: null });
    assert.deepEqual(await jobOf(newer), { state: 'created', due: true });
  });

  test('finishing the same crons from two transactions in opposite orders never deadlocks', async () => {
    for (let i = 0; i < 30; i++) {
      const [a, b] = [await pendingRun(), await pendingRun()];
      await claimRuns(ctx.db.pool, 'pgboss', [
        { run_id: a.run_id, attempt: 1 },
        { run_id: b.run_id, attempt: 1 },
      ]);
      await Promise.all([
        finishRuns(ctx.db.pool, ctx.boss, [result(a, 1, { n: 1 }), result(b, null, null)]),
        finishRuns(ctx.db.pool, ctx.boss, [result(b, 1, { n: 2 }), result(a, null, null)]),
      ]);
      for (const r of [a, b]) assert.equal((await state(r)).ledger, 'success');
    }
  });

  test("a run's finish does not wait for a scheduler pass holding its cron; the cron's last run is written (issue 21)", async () => {
    await ctx.db.pool.query(`UPDATE crons SET enabled = false`);
    const r = await pendingRun();
    await claimRuns(ctx.db.pool, 'pgboss', [{ run_id: r.run_id, attempt: 1 }]);
    // The cron is due again: a pass claims it while its earlier occurrence's run is still going.
    await ctx.db.pool.query(`UPDATE crons SET enabled = true, schedule = '* * * * * *', next_run_date = date_trunc('second', now()) WHERE cron_id = $1`, [
      r.cron_id,
    ]);
    // A real pass, held open once it has advanced the cron: every lock it takes is taken.
    const held = holdAfter(ctx.db.pool, /SET next_run_date = v\.next_run_date/);
    const passing = newScheduler(held.pool, ctx.boss, ctx.db.url).runDue();
    try {
      await held.reached;
      const finishing = finishRuns(ctx.db.pool, ctx.boss, [result(r, 1, { n: 1 })]);
      finishing.catch(() => {}); // awaited below
      const ended = finishing.then(() => true);
      // Polls until the finish ends; a backend of this database waiting on a row meanwhile is the
      // finish (nothing else writes here; pg-boss's own advisory locks are not row waits).
      while (!(await Promise.race([ended, sleep(20).then(() => false)]))) {
        const { rows } = await ctx.db.pool.query(
          `SELECT query FROM pg_stat_activity
            WHERE datname = $1 AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple') AND pid <> pg_backend_pid()`,
          [ctx.db.name],
        );
        if (rows.length) assert.fail(`the finish waited for the pass: ${rows.map((x) => x.query.replace(/\s+/g, ' ').slice(0, 120)).join('; ')}`);
      }
      assert.equal((await finishing).length, 1);
    } finally {
      held.release();
    }
    assert.equal((await passing).fired, 1);
    const { rows } = await ctx.db.pool.query(`SELECT last_run_id, last_run_status, last_run_scheduled_for FROM cron_last_runs WHERE cron_id = $1`, [r.cron_id]);
    assert.deepEqual(rows, [{ last_run_id: r.run_id, last_run_status: 'success', last_run_scheduled_for: r.scheduled_for }]);
    await ctx.db.pool.query(`UPDATE crons SET enabled = false WHERE cron_id = $1`, [r.cron_id]);
  });

  test('recording a webhook delivery while a retry holds the old run and reopens its ledger row: no deadlock', async () => {
    const r = await pendingRun();
    const retry = new pg.Client({ connectionString: ctx.db.url });
    await retry.connect();
    try {
      // A retry of the occurrence in the lock order: the old run first, then the ledger row.
      await retry.query('BEGIN');
      await retry.query(`SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE`, [r.run_id]);
      const recording = recordDelivery(
        ctx.db.pool,
        { ...r, scheduled_for: r.scheduled_for.toISOString() },
        { status: 'sent', attempts: 1, error: null, sent_at: new Date() },
      );
      recording.catch(() => {}); // awaited below; the deadlock of the old order rejects it meanwhile
      await blockedOnLock(ctx.db, 'the delivery bookkeeping to wait for the run the retry holds');
      await retry.query(`UPDATE cron_occurrences SET status = 'enqueued' WHERE cron_id = $1 AND scheduled_for = $2`, [r.cron_id, r.scheduled_for]);
      await retry.query('COMMIT');
      await recording;
      const ledger = await ctx.db.pool.query(`SELECT webhook_status FROM cron_occurrences WHERE cron_id = $1`, [r.cron_id]);
      assert.equal(ledger.rows[0].webhook_status, 'sent');
    } finally {
      await retry.query('ROLLBACK').catch(() => {});
      await retry.end();
    }
  });
});

describe('processes', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('races_processes', { migrate: false });
  });
  after(() => db?.drop());

  const queue = async (name: string) =>
    (await db.pool.query(`SELECT expire_seconds, retry_limit FROM pgboss.queue WHERE name = $1`, [name])).rows[0] as {
      expire_seconds: number;
      retry_limit: number;
    };

  test('6. release writes every queue setting; a process that does not migrate leaves the policy alone', async () => {
    const migrate = spawnApp('migrate', { DATABASE_URL: db.url, RUN_TIMEOUT_MAX_SECONDS: '7200', WEBHOOK_MAX_ATTEMPTS: '9' });
    assert.equal(await migrate.exited, 0);
    assert.equal((await queue(QUEUES.run)).expire_seconds, 7260);
    assert.equal((await queue(QUEUES.webhook)).retry_limit, 8);
    const worker = spawnApp('worker', { DATABASE_URL: db.url, MIGRATE_ON_START: 'false' });
    try {
      await worker.waitFor(/worker started/);
      assert.equal((await queue(QUEUES.run)).expire_seconds, 7260);
      assert.equal((await queue(QUEUES.webhook)).retry_limit, 8);
    } finally {
      worker.kill('SIGTERM');
      await worker.exited;
    }
  });

  test('7. SIGTERM: a run outlasting the grace period is handed back at once and the worker exits 0 in time', async () => {
    const env = {
      DATABASE_URL: db.url,
      SHUTDOWN_GRACE_SECONDS: '3',
      AGENTCRON_CONFIG: path.join(ROOT, 'test/fixtures/slow.json'),
      WORKER_HEARTBEAT_SECONDS: '30',
    };
    const worker = spawnApp('worker', env);
    await worker.waitFor(/worker started/);
    const boss = await startTestQueue(db.url);
    try {
      const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', assistant_id: defaultAssistantId('slow') });
      await newScheduler(db.pool, boss, db.url).runDue();
      const runId = (
        await eventually(
          async () => (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1 AND status = 'running'`, [cronId])).rows[0],
          'the run to start',
        )
      ).run_id as string;
      const signalled = Date.now();
      worker.kill('SIGTERM');
      assert.equal(await worker.exited, 0);
      const took = (Date.now() - signalled) / 1000;
      assert.ok(took < 3 + 2, `exited ${took.toFixed(1)} s after SIGTERM with a grace of 3 s`);
      // Handed back: pending again, its job waiting to be fetched (not active until its heartbeat expires).
      assert.equal((await db.pool.query(`SELECT status FROM runs WHERE run_id = $1`, [runId])).rows[0].status, 'pending', worker.output.slice(-15).join('\n'));
      assert.deepEqual(await jobStates(db, [runId]), ['created']);
    } finally {
      worker.kill('SIGKILL');
      await boss.stop({ graceful: false });
    }
  });
});
