import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentRegistry, echo } from '../libs/agents/index.ts';
import type { Agent } from '../libs/agents/index.ts';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import { createLogger } from '../libs/log/index.ts';
import { QUEUES, enqueueRuns } from '../libs/queue/index.ts';
import type { PgBoss, RunJob } from '../libs/queue/index.ts';
import { RunWorker } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, insertThread, newScheduler, startTestQueue, useQueueDatabase } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';
import { ROOT, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// A result the schema refuses (new code before its release: issue 23) is named as a schema error,
// kept and stored once the schema arrives; the worker claims nothing meanwhile, and no agent runs twice.

describe('a schema error while storing a result', () => {
  const ctx = useQueueDatabase('recorder_schema');

  /** A pending cron run with its ledger row and its job, as firing leaves it. */
  async function firedRun(enqueue = true): Promise<{ run_id: string; cron_id: string }> {
    const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const threadId = await insertThread(ctx.db.pool);
    const runId = randomUUID();
    const scheduledFor = new Date(Date.UTC(2025, 0, 1, 0, 0, Math.floor(Math.random() * 1e6)));
    await ctx.db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, kwargs) VALUES ($1, $2, $3, 'anonymous', $4, $5,
        '{"input": {"n": 1}}')`,
      [runId, threadId, ECHO, cronId, scheduledFor],
    );
    await ctx.db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, thread_id, status) VALUES ($1, $2, $3, $4, 'enqueued')`, [
      cronId,
      scheduledFor,
      runId,
      threadId,
    ]);
    if (enqueue) await enqueueRuns(ctx.boss, [{ run_id: runId, group: threadId }]);
    return { run_id: runId, cron_id: cronId };
  }

  const ledger = async (cronId: string) =>
    (await ctx.db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0].status as string;
  const run = async (runId: string) =>
    (await ctx.db.pool.query(`SELECT status, attempts FROM runs WHERE run_id = $1`, [runId])).rows[0] as { status: string; attempts: number };

  test('is named, stops the worker claiming, and the result is stored once the column is back; no agent runs twice', async () => {
    const calls = new Map<string, number>();
    const counting: Agent = (input, c) => {
      calls.set(c.run_id, (calls.get(c.run_id) ?? 0) + 1);
      return echo(input, c);
    };
    const lines: string[] = [];
    // Every line is kept for the assertions, none printed.
    const logger = createLogger({ level: 'info', json: true, service: 'test' });
    for (const t of logger.transports) t.silent = true;
    logger.on('data', (info: { message: string }) => void lines.push(info.message));
    const worker = new RunWorker({
      pool: ctx.db.pool,
      boss: ctx.boss,
      logger,
      agents: new AgentRegistry().register('echo', counting),
      concurrency: 4,
      runTimeoutSeconds: 30,
      pollIntervalMs: 100,
    });
    // The finish writes the ledger row's output_excerpt: the schema of a release not yet run.
    await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt TO output_excerpt_not_yet');
    try {
      const a = await firedRun();
      await worker.start();
      await eventually(async () => lines.find((l) => /^schema error storing a run's result \(.*42703/.test(l)), 'the schema error line');
      assert.match(
        lines.find((l) => /^schema error/.test(l))!,
        /does not match this worker's code .* kept and retried until the schema arrives.*claims no new run/,
      );
      // A second run waits: the worker claims nothing while a result is held back.
      const b = await firedRun();
      const watchUntil = Date.now() + 1500;
      while (Date.now() < watchUntil) {
        assert.equal((await run(b.run_id)).status, 'pending');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(calls.get(b.run_id), undefined);
      assert.equal((await run(a.run_id)).status, 'running');
      // The release.
      await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt_not_yet TO output_excerpt');
      await eventually(async () => (await ledger(a.cron_id)) === 'success' && (await ledger(b.cron_id)) === 'success', 'both runs stored');
      assert.deepEqual(await run(a.run_id), { status: 'success', attempts: 1 });
      assert.deepEqual(await run(b.run_id), { status: 'success', attempts: 1 });
      assert.equal(calls.get(a.run_id), 1);
      assert.equal(calls.get(b.run_id), 1);
      assert.ok(
        lines.some((l) => /held back by a schema error is stored; claiming runs again/.test(l)),
        lines.join('\n'),
      );
      assert.ok(!lines.some((l) => /gave up storing/.test(l)));
    } finally {
      // The column first: stopping waits for the results held back.
      await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt_not_yet TO output_excerpt').catch(() => {});
      await worker.stop(0);
    }
  });

  test("a result held longer than its job's expiry: the job is kept alive, not retried, and the agent runs once", async () => {
    const calls = new Map<string, number>();
    const counting: Agent = (input, c) => {
      calls.set(c.run_id, (calls.get(c.run_id) ?? 0) + 1);
      return echo(input, c);
    };
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', json: true, service: 'test' });
    for (const t of logger.transports) t.silent = true;
    logger.on('data', (info: { message: string }) => void lines.push(info.message));
    // Jobs expire 2 s after they start; pg-boss's supervisor looks every second.
    const { expireInSeconds } = (await ctx.boss.getQueue(QUEUES.run))!;
    await ctx.boss.updateQueue(QUEUES.run, { expireInSeconds: 2 });
    const supervisor = await startTestQueue(ctx.db.url, { supervise: true, writePolicy: false });
    const worker = new RunWorker({
      pool: ctx.db.pool,
      boss: ctx.boss,
      logger,
      agents: new AgentRegistry().register('echo', counting),
      concurrency: 4,
      runTimeoutSeconds: 30,
      pollIntervalMs: 100,
    });
    await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt TO output_excerpt_not_yet');
    try {
      const a = await firedRun();
      await worker.start();
      await eventually(async () => lines.find((l) => /held result is kept on its job/.test(l)), 'the result kept on its job');
      // A control: a job fetched and left alone expires within the window (the supervisor does expire jobs).
      // Due in an hour, so that the worker (polling the queue every 100 ms) never takes it first:
      // beside two CPU burners it once did, and the fetch below found nothing.
      const control = randomUUID();
      await ctx.boss.insert(QUEUES.run, [{ id: control, data: { run_id: control }, startAfter: 3600 }]);
      const [fetched] = await ctx.boss.fetch<RunJob>(QUEUES.run, { batchSize: 1, ignoreStartAfter: true });
      assert.equal(fetched?.id, control);
      await eventually(async () => (await ctx.boss.getJobById(QUEUES.run, control))!.state !== 'active', 'the control job to expire', 20_000, 100);
      // Twice the expiry later, the held run's job is still active at its first attempt.
      const job = (await ctx.boss.getJobById(QUEUES.run, a.run_id))!;
      assert.equal(job.state, 'active');
      assert.equal(job.retryCount, 0);
      assert.equal((await run(a.run_id)).status, 'running');
      await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt_not_yet TO output_excerpt');
      await eventually(async () => (await ledger(a.cron_id)) === 'success', 'the run stored');
      assert.deepEqual(await run(a.run_id), { status: 'success', attempts: 1 });
      assert.equal((await ctx.boss.getJobById(QUEUES.run, a.run_id))!.state, 'completed');
      assert.equal(calls.get(a.run_id), 1);
    } finally {
      await ctx.db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt_not_yet TO output_excerpt').catch(() => {});
      await worker.stop(0);
      await supervisor.stop({ graceful: false });
      await ctx.boss.updateQueue(QUEUES.run, { expireInSeconds });
    }
  });
});

describe('a run whose every attempt was lost', () => {
  const ctx = useQueueDatabase('recorder_dead');

  test('ends with the result an attempt kept on its job, not as WorkerLost; without one, as WorkerLost', async () => {
    const calls: string[] = [];
    const counting: Agent = (input, c) => {
      calls.push(c.run_id);
      return echo(input, c);
    };
    const run = async () => {
      const cronId = await insertCron(ctx.db.pool, { schedule: '0 0 1 1 *', enabled: false });
      const threadId = await insertThread(ctx.db.pool);
      const runId = randomUUID();
      await ctx.db.pool.query(
        `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, kwargs, status, started_at, attempts)
         VALUES ($1, $2, $3, 'anonymous', $4, '2025-01-01', '{"input": {"n": 1}}', 'running', now(), 3)`,
        [runId, threadId, ECHO, cronId],
      );
      await ctx.db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, thread_id, status) VALUES ($1, '2025-01-01', $2, $3, 'running')`, [
        cronId,
        runId,
        threadId,
      ]);
      return { runId, cronId };
    };
    const kept = await run();
    const lost = await run();
    // As pg-boss leaves them in the dead letter queue: the job's data, the kept result with it.
    const held = { status: 'success', output: { kept: true }, error: null, started_at: new Date().toISOString() };
    await ctx.boss.send(QUEUES.runDead, { run_id: kept.runId, held } satisfies RunJob);
    await ctx.boss.send(QUEUES.runDead, { run_id: lost.runId } satisfies RunJob);
    const worker = new RunWorker({
      pool: ctx.db.pool,
      boss: ctx.boss,
      logger: createLogger({ level: 'error', json: true, service: 'test' }),
      agents: new AgentRegistry().register('echo', counting),
      concurrency: 2,
      runTimeoutSeconds: 30,
      pollIntervalMs: 100,
      deadLetterPollSeconds: 1,
    });
    await worker.start();
    try {
      const ended = async (runId: string) =>
        (await ctx.db.pool.query(`SELECT status, output, error FROM runs WHERE run_id = $1`, [runId])).rows[0] as {
          status: string;
          output: unknown;
          error: unknown;
        };
      await eventually(async () => (await ended(kept.runId)).status !== 'running' && (await ended(lost.runId)).status !== 'running', 'both runs ended');
      assert.deepEqual(await ended(kept.runId), { status: 'success', output: { kept: true }, error: null });
      assert.equal((await ended(lost.runId)).status, 'error');
      assert.equal(((await ended(lost.runId)).error as { error: string }).error, 'WorkerLost');
      const ledger = await ctx.db.pool.query(`SELECT cron_id, status FROM cron_occurrences WHERE cron_id = ANY($1) ORDER BY status`, [
        [kept.cronId, lost.cronId],
      ]);
      assert.deepEqual(
        ledger.rows.map((r: { cron_id: string; status: string }) => [r.cron_id === kept.cronId ? 'kept' : 'lost', r.status]),
        [
          ['lost', 'error'],
          ['kept', 'success'],
        ],
      );
      assert.deepEqual(calls, []);
    } finally {
      await worker.stop(0);
    }
  });
});

// The held result outlives the worker holding it: kept on its pg-boss job, handed on at SIGTERM,
// carried over pg-boss's retry after a crash, and stored by whichever worker takes the job once
// the schema has arrived. Real worker processes; the agent counts its calls in a file.
describe('a held result outlives its worker', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  const procs: SpawnedApp[] = [];
  const file = path.join(tmpdir(), `agentcron-counting-${randomUUID()}.log`);
  before(async () => {
    db = await createTestDatabase('recorder_handon');
    // A lost worker's job is failed (and retried) 10 s after its last heartbeat.
    boss = await startTestQueue(db.url, { runHeartbeatSeconds: 10 });
    writeFileSync(file, '');
  });
  after(() =>
    teardown(
      async () => {
        for (const p of procs) p.kill('SIGKILL');
        await Promise.all(procs.map((p) => p.exited));
      },
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
      () => rmSync(file, { force: true }),
    ),
  );

  const spawn = () => {
    const p = spawnApp('worker', {
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '4',
      AGENTCRON_CONFIG: path.join(ROOT, 'test/fixtures/counting.json'),
      MIGRATE_ON_START: 'false',
      WORKER_HEARTBEAT_SECONDS: '10',
      QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
      SHUTDOWN_GRACE_SECONDS: '10',
    });
    procs.push(p);
    return p;
  };
  const calls = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const job = async (runId: string) => (await boss.getJobById<RunJob>(QUEUES.run, runId))!;

  test('SIGTERM hands it on, a crash keeps it, a worker on the released schema stores it: the agent ran once', async () => {
    await db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt TO output_excerpt_not_yet');
    const a = spawn();
    await a.waitFor(/worker started/);
    const cronId = await insertCron(db.pool, {
      schedule: '0 0 1 1 *',
      assistant_id: defaultAssistantId('counting'),
      on_run_completed: 'keep',
      input: { file },
    });
    await newScheduler(db.pool, boss, db.url).runDue();
    await a.waitFor(/schema error storing a run's result \(.*42703/);
    await a.waitFor(/held result is kept on its job/);
    const { run_id: runId } = (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1`, [cronId])).rows[0] as { run_id: string };
    const { started_at: startedAt, ...held } = (await job(runId)).data.held as { started_at: string };
    assert.deepEqual(held, { status: 'success', output: { pid: a.child.pid }, error: null });
    assert.ok(!Number.isNaN(Date.parse(startedAt)));
    assert.equal(calls().length, 1);

    // SIGTERM: the worker does not wait for the schema; it hands the job on and exits cleanly.
    a.kill('SIGTERM');
    assert.equal(await a.exited, 0, a.output.slice(-20).join('\n'));
    assert.ok(a.output.some((l) => /held back by a schema error is handed on/.test(l)));
    const handed = await job(runId);
    assert.equal(handed.state, 'created');
    assert.equal(handed.retryCount, 1, 'handed on as the next attempt');

    // The schema is still behind: B takes the job, stores nothing, keeps the result; its agent does not run.
    const b = spawn();
    await b.waitFor(/stored from its job; the agent is not run again/);
    await b.waitFor(/schema error storing a run's result/);
    await b.waitFor(/held result is kept on its job/);
    assert.equal((await db.pool.query(`SELECT status, attempts FROM runs WHERE run_id = $1`, [runId])).rows[0].attempts, 2);
    // B crashes: pg-boss retries the job after its heartbeat; the result is still on it.
    b.kill('SIGKILL');
    await b.exited;

    // The release; C, on the released schema, stores the result from the job.
    await db.pool.query('ALTER TABLE cron_occurrences RENAME COLUMN output_excerpt_not_yet TO output_excerpt');
    const c = spawn();
    await c.waitFor(/stored from its job; the agent is not run again/, 40_000);
    const ended = await eventually(async () => {
      const { rows } = await db.pool.query(`SELECT status, output FROM runs WHERE run_id = $1`, [runId]);
      return rows[0].status !== 'running' ? rows[0] : null;
    }, 'the run to end');
    assert.deepEqual(ended, { status: 'success', output: { pid: a.child.pid } }, "the stored result is worker A's");
    assert.deepEqual((await db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows, [{ status: 'success' }]);
    assert.equal((await job(runId)).state, 'completed');
    assert.deepEqual(calls(), [`${runId} ${a.child.pid}`], 'the agent ran exactly once');
    c.kill('SIGTERM');
    assert.equal(await c.exited, 0);
  });
});
