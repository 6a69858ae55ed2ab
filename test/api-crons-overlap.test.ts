import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PgBoss } from '../libs/queue/index.ts';
import { cancelRuns, RunWorker } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, quietLogger, startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown, tracedEcho } from './support/inprocess.ts';
import type { AgentTrace, InProcessApi } from './support/inprocess.ts';

// A cron's first run (at create) and a trigger follow the same overlap rules as the scheduler:
// multitask_strategy on a kept thread, overlap_policy on a stateless cron (in-process api + worker).

describe("a cron's first run and trigger follow the scheduler's overlap rules (in-process api + worker)", () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let worker: RunWorker;
  let api: InProcessApi;
  let traces: Map<string, AgentTrace>;

  before(async () => {
    db = await createTestDatabase('api_crons_overlap');
    boss = await startTestQueue(db.url, {
      runTimeoutSeconds: 120,
    });
    const traced = tracedEcho();
    traces = traced.traces;
    worker = new RunWorker({ pool: db.pool, boss, logger: quietLogger(), agents: traced.agents, concurrency: 8, runTimeoutSeconds: 120, listenUrl: db.url });
    await worker.start();
    api = await startInProcessApi(db.pool, boss, db.url, traced.agents);
  });
  after(() =>
    teardown(
      () => api?.close(),
      // Should a test fail half-way, its busy runs would hold the worker's stop: end them first.
      async () =>
        cancelRuns(
          db.pool,
          boss,
          (await db.pool.query(`SELECT run_id FROM runs WHERE status IN ('pending', 'running')`)).rows.map((r) => r.run_id),
          'interrupt',
        ),
      () => worker?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  /** Input that keeps the echo agent busy until it is cancelled (every such run is cancelled below). */
  const BUSY = { sleep_ms: 100_000 };
  const newThread = async () => (await api.call('POST', '/threads', {})).body.thread_id as string;
  const backgroundRun = async (threadId: string, input: unknown) => {
    const res = await api.call('POST', `/threads/${threadId}/runs`, { assistant_id: 'echo', input });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.run_id as string;
  };
  const getRun = async (threadId: string, runId: string) => api.call('GET', `/threads/${threadId}/runs/${runId}`);
  const started = (runId: string) => eventually(async () => traces.get(runId), `run ${runId}'s agent to start`, 30_000, 10);
  // Within seconds, where a busy run would take 100 s.
  const abortedTrace = (runId: string) =>
    eventually(async () => (traces.get(runId)?.aborted ? traces.get(runId) : null), `run ${runId}'s signal to abort`, 20_000, 10);
  const ended = (threadId: string, runId: string) =>
    eventually(
      async () => {
        const r = (await getRun(threadId, runId)).body;
        return r && !['pending', 'running'].includes(r.status) ? r : null;
      },
      `run ${runId} to end`,
      30_000,
    );
  const cancel = async (threadId: string, runId: string) => {
    assert.equal((await api.call('POST', `/threads/${threadId}/runs/${runId}/cancel`)).status, 202);
  };
  const ledger = async (cronId: string) => (await api.call('GET', `/runs/crons/${cronId}/occurrences`)).body as any[];

  for (const strategy of ['interrupt', 'rollback'] as const) {
    test(`multitask_strategy ${strategy}: the first run at create and a trigger stop the thread's running run, then run`, async () => {
      const threadId = await newThread();
      const busy = await backgroundRun(threadId, BUSY);
      await started(busy);

      const created = await api.call('POST', `/threads/${threadId}/runs/crons`, {
        assistant_id: 'echo',
        schedule: '0 0 1 1 *',
        input: { n: 1 },
        multitask_strategy: strategy,
      });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      assert.ok(created.body.run_id, 'the first run was started');
      assert.equal((await abortedTrace(busy)).reason, 'Cancelled', 'the running agent is stopped, not waited for');
      const old = await getRun(threadId, busy);
      if (strategy === 'interrupt') {
        assert.equal(old.body.status, 'interrupted');
        assert.match(old.body.error.message, /cancelled \(interrupt\) by a newer occurrence of a cron on its thread/);
      } else assert.equal(old.status, 404, 'rollback deletes the superseded run');
      assert.equal((await ended(threadId, created.body.run_id)).status, 'success');
      assert.deepEqual((await api.call('GET', `/threads/${threadId}`)).body.values, { n: 1 });

      const again = await backgroundRun(threadId, BUSY);
      await started(again);
      const triggered = await api.call('POST', `/runs/crons/${created.body.cron_id}/trigger`);
      assert.equal(triggered.status, 200, JSON.stringify(triggered.body));
      assert.equal((await abortedTrace(again)).reason, 'Cancelled');
      assert.equal((await getRun(threadId, again)).status, strategy === 'interrupt' ? 200 : 404);
      assert.equal((await ended(threadId, triggered.body.run_id)).status, 'success');
      assert.deepEqual(
        (await ledger(created.body.cron_id)).map((o) => [o.trigger, o.status]),
        [
          ['manual', 'success'],
          ['create', 'success'],
        ],
      );
    });
  }

  test('multitask_strategy reject on a busy thread: create stores the cron and records its first run as skipped (overlap); trigger answers 409', async () => {
    const threadId = await newThread();
    const busy = await backgroundRun(threadId, BUSY);
    await started(busy);

    const created = await api.call('POST', `/threads/${threadId}/runs/crons`, {
      assistant_id: 'echo',
      schedule: '0 0 1 1 *',
      input: { n: 2 },
      multitask_strategy: 'reject',
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.run_id, undefined, 'the answer is the Cron, not a run');
    assert.equal(created.body.thread_id, threadId);
    assert.equal(created.body.enabled, true);
    assert.ok(created.body.next_run_date, 'the schedule goes on');
    const cronId = created.body.cron_id as string;
    assert.equal((await api.call('GET', `/runs/crons/${cronId}`)).status, 200, 'the cron is stored');
    const skipped = await ledger(cronId);
    assert.deepEqual(
      skipped.map((o) => [o.trigger, o.status, o.reason, o.run_id]),
      [['create', 'skipped', 'overlap', null]],
    );

    const refused = await api.call('POST', `/runs/crons/${cronId}/trigger`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /has a run that has not ended \(multitask_strategy reject\)/);
    assert.deepEqual(
      (await api.call('GET', `/threads/${threadId}/runs`)).body.map((r: any) => r.run_id),
      [busy],
      'nothing was started',
    );
    assert.equal((await ledger(cronId)).length, 1, 'a refused trigger writes no ledger row');
    assert.equal(traces.get(busy)!.aborted, undefined, 'reject never stops the running run');

    await cancel(threadId, busy);
    const triggered = await api.call('POST', `/runs/crons/${cronId}/trigger`);
    assert.equal(triggered.status, 200, 'an idle thread takes the run');
    assert.equal((await ended(threadId, triggered.body.run_id)).status, 'success');
    assert.deepEqual(
      (await ledger(cronId)).map((o) => [o.trigger, o.status]),
      [
        ['manual', 'success'],
        ['create', 'skipped'],
      ],
    );

    // On an idle thread, create starts the first run as usual.
    const idle = await newThread();
    const onIdle = await api.call('POST', `/threads/${idle}/runs/crons`, {
      assistant_id: 'echo',
      schedule: '0 0 1 1 *',
      input: {},
      multitask_strategy: 'reject',
    });
    assert.ok(onIdle.body.run_id);
    assert.equal((await ended(idle, onIdle.body.run_id)).status, 'success');
  });

  test('stateless crons: a trigger follows overlap_policy (skip: 409 while a run is going; buffer_one: one running and one waiting)', async () => {
    const skip = (await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', input: BUSY, overlap_policy: 'skip' })).body;
    await started(skip.run_id);
    const refused = await api.call('POST', `/runs/crons/${skip.cron_id}/trigger`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /previous run has not ended \(overlap_policy skip\)/);
    await cancel(skip.thread_id, skip.run_id);

    const buffer = (
      await api.call('POST', '/runs/crons', {
        assistant_id: 'echo',
        schedule: '0 0 1 1 *',
        input: BUSY,
        overlap_policy: 'buffer_one',
        on_run_completed: 'keep',
      })
    ).body;
    await started(buffer.run_id);
    const waiting = await api.call('POST', `/runs/crons/${buffer.cron_id}/trigger`);
    assert.equal(waiting.status, 200, 'one may wait behind the running one');
    const third = await api.call('POST', `/runs/crons/${buffer.cron_id}/trigger`);
    assert.equal(third.status, 409);
    assert.match(third.body.detail, /overlap_policy buffer_one/);
    assert.equal((await ledger(buffer.cron_id)).length, 2);
    await cancel(waiting.body.thread_id, waiting.body.run_id);
    await cancel(buffer.thread_id, buffer.run_id);
  });
});
