import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { AgentRegistry, echo } from '../libs/agents/index.ts';
import type { Agent } from '../libs/agents/index.ts';
import { createLogger } from '../libs/log/index.ts';
import { enqueueRuns } from '../libs/queue/index.ts';
import { RunWorker } from '../libs/runs/index.ts';
import { ECHO, eventually, insertCron, insertThread, useQueueDatabase } from './support/engine.ts';

// A result the schema refuses (new code before its release: issue 23) is named as a schema error,
// kept and stored once the schema arrives; the worker claims nothing meanwhile, and no agent runs twice.

describe('a schema error while storing a result', () => {
  const ctx = useQueueDatabase('recorder_schema');

  /** A pending cron run with its ledger row and its job, as firing leaves it. */
  async function firedRun(): Promise<{ run_id: string; cron_id: string }> {
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
    await enqueueRuns(ctx.boss, [{ run_id: runId, group: threadId }]);
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
});
