import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Pool } from '../libs/db/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { RunWorker, runTimeoutSeconds } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, newScheduler, quietLogger, startTestQueue } from './support/engine.ts';
import { insertAssistant, startInProcessApi, teardown, tracedEcho } from './support/inprocess.ts';
import type { AgentTrace, InProcessApi } from './support/inprocess.ts';

// Execution controls: per-run timeouts (RUN_TIMEOUT_SECONDS, an assistant's timeout_seconds),
// cancel reaching the agent on its worker through the database, and multitask_strategy interrupt
// and rollback for thread crons and background runs. One database, the API and a worker in this
// process (so the test sees the agents' AbortSignals); the worker's default timeout is 1 s.

describe('execution controls', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let worker: RunWorker;
  let api: InProcessApi;
  let traces: Map<string, AgentTrace>;
  /** An assistant whose runs may take a minute (the worker default is 1 s). */
  let patient: string;

  before(async () => {
    db = await createTestDatabase('controls');
    boss = await startTestQueue(db.url, {
      runTimeoutSeconds: 1,
      runTimeoutMaxSeconds: 60,
    });
    const traced = tracedEcho();
    traces = traced.traces;
    worker = new RunWorker({
      pool: db.pool,
      boss,
      logger: quietLogger(),
      agents: traced.agents,
      concurrency: 8,
      runTimeoutSeconds: 1,
      runTimeoutMaxSeconds: 60,
      listenUrl: db.url,
    });
    await worker.start();
    api = await startInProcessApi(db.pool, boss, db.url, traced.agents);
    patient = await insertAssistant(db.pool, { timeout_seconds: 60 }, 'patient');
  });
  after(() =>
    teardown(
      () => api?.close(),
      () => worker?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const newThread = async () => (await api.call('POST', '/threads', {})).body.thread_id as string;
  const startRun = async (threadId: string, body: Record<string, unknown>) => {
    const res = await api.call('POST', `/threads/${threadId}/runs`, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.run_id as string;
  };
  const getRun = async (threadId: string, runId: string) => (await api.call('GET', `/threads/${threadId}/runs/${runId}`)).body;
  const started = (runId: string) => eventually(async () => traces.get(runId), `run ${runId}'s agent to start`, 30_000, 10);
  // How soon each abort came is asserted where it matters; this only bounds the wait.
  const abortedTrace = (runId: string) =>
    eventually(async () => (traces.get(runId)?.aborted ? traces.get(runId) : null), `run ${runId}'s signal to abort`, 20_000, 10);
  const ended = (threadId: string, runId: string) =>
    eventually(
      async () => {
        const r = await getRun(threadId, runId);
        return r && !['pending', 'running'].includes(r.status) ? r : null;
      },
      `run ${runId} to end`,
      30_000,
    );
  // A cancel reaches the agent in about a second (NOTIFY, or the one-second poll without it): the
  // bounds below leave room for a loaded machine, far short of the agents' 30 s sleeps.
  const PROMPTLY_MS = 3000;
  const jobState = async (pool: Pool, runId: string) =>
    (await pool.query(`SELECT state FROM pgboss.job WHERE name = 'agentcron.run' AND id = $1`, [runId])).rows[0]?.state;

  test('POST .../cancel aborts the running agent on its worker at once; the run ends interrupted for good', async () => {
    const threadId = await newThread();
    const runId = await startRun(threadId, { assistant_id: patient, input: { sleep_ms: 30_000 } });
    await started(runId);
    const cancelledAt = Date.now();
    const res = await api.call('POST', `/threads/${threadId}/runs/${runId}/cancel`);
    assert.equal(res.status, 202);
    const trace = await abortedTrace(runId);
    assert.equal(trace.reason, 'Cancelled');
    assert.ok(trace.aborted! - cancelledAt < PROMPTLY_MS, `the agent was aborted ${trace.aborted! - cancelledAt} ms after the cancel`);
    const run = await getRun(threadId, runId);
    assert.equal(run.status, 'interrupted');
    assert.equal(run.error.error, 'Cancelled');
    assert.ok(run.run_ended_at);
    assert.equal((await api.call('GET', `/threads/${threadId}`)).body.status, 'interrupted');
    // The job is acknowledged (not retried), and nothing the agent did afterwards changed the run.
    await eventually(async () => (await jobState(db.pool, runId)) === 'completed', 'the job to complete');
    assert.equal((await getRun(threadId, runId)).status, 'interrupted');
    assert.equal(traces.size > 0, true);
  });

  test('without a notification, the one-second poll finds the cancel; deleting the thread stops its agent too', async () => {
    const threadId = await newThread();
    const runId = await startRun(threadId, { assistant_id: patient, input: { sleep_ms: 30_000 } });
    await started(runId);
    // Ended behind the worker's back: no NOTIFY, only the database knows.
    const endedAt = Date.now();
    await db.pool.query(`UPDATE runs SET status = 'interrupted', ended_at = now() WHERE run_id = $1`, [runId]);
    const trace = await abortedTrace(runId);
    assert.equal(trace.reason, 'Cancelled');
    assert.ok(trace.aborted! - endedAt < PROMPTLY_MS + 1000, `found after ${trace.aborted! - endedAt} ms`);

    const other = await newThread();
    const doomed = await startRun(other, { assistant_id: patient, input: { sleep_ms: 30_000 } });
    await started(doomed);
    assert.equal((await api.call('DELETE', `/threads/${other}`)).status, 204);
    assert.equal((await abortedTrace(doomed)).reason, 'Cancelled');
  });

  test("timeouts: RUN_TIMEOUT_SECONDS by default; an assistant's config.timeout_seconds lowers or raises it", async () => {
    const quick = await insertAssistant(db.pool, { timeout_seconds: 0.3 }, 'quick');
    const slower = await insertAssistant(db.pool, { timeout_seconds: 5 }, 'slower');
    const [t1, t2, t3] = await Promise.all([newThread(), newThread(), newThread()]);
    const t0 = Date.now();
    const [byDefault, lowered, raised] = await Promise.all([
      startRun(t1, { assistant_id: ECHO, input: { sleep_ms: 30_000 } }),
      startRun(t2, { assistant_id: quick, input: { sleep_ms: 30_000 } }),
      // Longer than the 1 s default, within its assistant's 5 s.
      startRun(t3, { assistant_id: slower, input: { sleep_ms: 1500, done: true } }),
    ]);
    const [d, l, r] = await Promise.all([ended(t1, byDefault), ended(t2, lowered), ended(t3, raised)]);
    assert.equal(d.status, 'timeout');
    assert.match(d.error.message, /timeout of 1s/);
    assert.equal(l.status, 'timeout');
    assert.match(l.error.message, /timeout of 0\.3s/);
    assert.equal(r.status, 'success', JSON.stringify(r.error));
    assert.deepEqual((await api.call('GET', `/threads/${t3}`)).body.values, { sleep_ms: 1500, done: true });
    // The agents' signals were aborted at their own timeouts.
    const dt = traces.get(byDefault)!;
    const lt = traces.get(lowered)!;
    assert.equal(dt.reason, 'TimeoutError');
    assert.equal(lt.reason, 'TimeoutError');
    // Before the 1 s default could have (which fires no sooner than that).
    assert.ok(lt.aborted! - lt.started < 950, `the 0.3 s timeout fired after ${lt.aborted! - lt.started} ms`);
    assert.ok(dt.aborted! - dt.started >= 950, `the 1 s timeout fired after ${dt.aborted! - dt.started} ms`);
    assert.ok(Date.now() - t0 < 15_000, "the runs ended at their timeouts, not after their agents' 30 s");
  });

  test('the timeout rule: positive numbers (or numeric strings) up to RUN_TIMEOUT_MAX_SECONDS, else the default', () => {
    const s = { seconds: 300, maxSeconds: 3600 };
    assert.equal(runTimeoutSeconds({}, s), 300);
    assert.equal(runTimeoutSeconds(null, s), 300);
    assert.equal(runTimeoutSeconds({ timeout_seconds: 30 }, s), 30);
    assert.equal(runTimeoutSeconds({ timeout_seconds: '45' }, s), 45);
    assert.equal(runTimeoutSeconds({ timeout_seconds: 7200 }, s), 3600, 'capped at the maximum');
    assert.equal(runTimeoutSeconds({ timeout_seconds: 7200 }, { seconds: 5000, maxSeconds: 3600 }), 5000, 'the maximum is never below the default');
    for (const bad of [0, -1, 'soon', null, true, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(runTimeoutSeconds({ timeout_seconds: bad }, s), 300);
  });

  test("an assistant's config.timeout_seconds is checked when it is written: 422 naming it unless the worker would honour it", async () => {
    // The in-process API runs with the defaults: RUN_TIMEOUT_MAX_SECONDS=3600.
    for (const bad of [0, -5, 'soon', '', null, true, 7200, '3600.5', { s: 1 }]) {
      const created = await api.call('POST', '/assistants', { graph_id: 'echo', config: { timeout_seconds: bad } });
      assert.equal(created.status, 422, `create with ${JSON.stringify(bad)}: ${JSON.stringify(created.body)}`);
      assert.match(created.body.detail, /^body\.config\.timeout_seconds: .*RUN_TIMEOUT_MAX_SECONDS \(3600\)/);
    }
    for (const good of [0.5, 30, '45', 3600]) {
      const created = await api.call('POST', '/assistants', { graph_id: 'echo', config: { timeout_seconds: good } });
      assert.equal(created.status, 200, `create with ${JSON.stringify(good)}: ${JSON.stringify(created.body)}`);
      assert.deepEqual(created.body.config, { timeout_seconds: good });
    }
    const plain = await api.call('POST', '/assistants', { graph_id: 'echo', config: { configurable: { a: 1 } } });
    assert.equal(plain.status, 200, 'a config without timeout_seconds is not concerned');
    const id = plain.body.assistant_id as string;
    const refused = await api.call('PATCH', `/assistants/${id}`, { config: { timeout_seconds: 'later' } });
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /^body\.config\.timeout_seconds: .*got "later"/);
    assert.deepEqual((await api.call('GET', `/assistants/${id}`)).body.config, { configurable: { a: 1 } }, 'nothing was changed');
    const patched = await api.call('PATCH', `/assistants/${id}`, { config: { timeout_seconds: '12.5' } });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.body.config, { timeout_seconds: '12.5' });
  });

  test('after_seconds defers a background run: it starts no sooner than that after it was created', async () => {
    const threadId = await newThread();
    const runId = await startRun(threadId, { assistant_id: ECHO, input: { later: true }, after_seconds: 2 });
    // Other runs keep arriving meanwhile, so the workers keep fetching (each enqueue NOTIFYs them):
    // the deferred run is still not handed out early. Without them, it is picked up by the
    // workers' next poll after its start time (their backstop poll is 10 s).
    const other = await newThread();
    let run: any;
    const deadline = Date.now() + 60_000;
    for (let i = 0; Date.now() < deadline && !run; i++) {
      await startRun(other, { assistant_id: ECHO, input: { i } });
      await new Promise((r) => setTimeout(r, 200));
      const r = await getRun(threadId, runId);
      if (!['pending', 'running'].includes(r.status)) run = r;
    }
    assert.ok(run, 'the deferred run ended');
    assert.equal(run.status, 'success', JSON.stringify(run.error));
    const waited = (Date.parse(run.run_started_at) - Date.parse(run.created_at)) / 1000;
    assert.ok(waited >= 1.9, `started ${waited} s after it was created`);
    assert.equal(run.kwargs.after_seconds, 2, 'kept in the run body as sent');
    for (const bad of [-1, 'soon', 400 * 86400]) {
      const res = await api.call('POST', `/threads/${threadId}/runs`, { assistant_id: ECHO, input: {}, after_seconds: bad });
      assert.equal(res.status, 422, JSON.stringify(bad));
      assert.match(res.body.detail, /^body\.after_seconds: /);
    }
  });

  for (const strategy of ['interrupt', 'rollback'] as const) {
    test(`a thread cron with multitask_strategy ${strategy}: the next occurrence stops the running run, then runs`, async () => {
      const threadId = await newThread();
      const cronId = await insertCron(db.pool, {
        schedule: '0 0 1 1 *',
        thread_id: threadId,
        assistant_id: patient,
        payload: { input: { sleep_ms: 30_000, n: 1 }, multitask_strategy: strategy },
      });
      const scheduler = newScheduler(db.pool, boss, db.url);
      await scheduler.runDue();
      const first = (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1`, [cronId])).rows[0].run_id as string;
      await started(first);

      await db.pool.query(`UPDATE crons SET payload = $2, next_run_date = now() WHERE cron_id = $1`, [
        cronId,
        JSON.stringify({ input: { n: 2 }, multitask_strategy: strategy }),
      ]);
      const firedAt = Date.now();
      assert.equal((await scheduler.runDue()).fired, 1);
      const trace = await abortedTrace(first);
      assert.equal(trace.reason, 'Cancelled');
      assert.ok(trace.aborted! - firedAt < PROMPTLY_MS, `aborted ${trace.aborted! - firedAt} ms after the occurrence fired`);

      const ledger = await eventually(async () => {
        const { rows } = await db.pool.query(`SELECT run_id, status, error FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`, [cronId]);
        return rows.length === 2 && rows[1].status === 'success' ? rows : null;
      }, 'the second occurrence to succeed');
      assert.equal(ledger[0].status, 'interrupted');
      assert.match(ledger[0].error, new RegExp(`cancelled \\(${strategy}\\) by a newer occurrence`));
      assert.deepEqual((await api.call('GET', `/threads/${threadId}`)).body.values, { n: 2 });
      const old = await getRun(threadId, first);
      if (strategy === 'interrupt') assert.equal(old.status, 'interrupted');
      else assert.equal(old.detail, 'Run not found', 'rollback deletes the superseded run');
      // The ledger outlives the rolled-back run.
      assert.equal(ledger[0].run_id, first);
    });
  }

  test('background runs: multitask_strategy interrupt and rollback stop the running agent through the same path', async () => {
    const threadId = await newThread();
    const first = await startRun(threadId, { assistant_id: patient, input: { sleep_ms: 30_000 } });
    await started(first);
    const second = await startRun(threadId, { assistant_id: patient, input: { sleep_ms: 30_000 }, multitask_strategy: 'interrupt' });
    assert.equal((await abortedTrace(first)).reason, 'Cancelled');
    assert.equal((await getRun(threadId, first)).status, 'interrupted');
    await started(second);
    const third = await startRun(threadId, { assistant_id: patient, input: { last: true }, multitask_strategy: 'rollback' });
    assert.equal((await abortedTrace(second)).reason, 'Cancelled');
    assert.equal((await getRun(threadId, second)).detail, 'Run not found');
    assert.equal((await ended(threadId, third)).status, 'success');
    assert.deepEqual((await api.call('GET', `/threads/${threadId}`)).body.values, { last: true });
  });
});
