import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { PoolClient } from '../libs/db/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { QUEUES, queueSchemaOf } from '../libs/queue/index.ts';
import { RunWorker } from '../libs/runs/index.ts';
import { allowPrivateWebhooks, WebhookWorker } from '../libs/webhooks/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, quietLogger, startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown, tracedEcho } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// A listening webhook worker (woken by NOTIFY, its poll a 60 s backstop) sleeps until a failed
// delivery's retry falls due. pg-boss writes the retry (state retry, start_after) after the batch
// handler returns, on its own connection: on a loaded machine that write can land seconds later.
// The worker must still find the retry and wake when it is due, not at its backstop poll a minute
// later. The write is delayed here on purpose: the receiver of the first attempt holds a lock on
// the delivery's job row for HOLD_MS before it lets pg-boss write the retry. And every retry the
// worker knows of wakes it when due, not only the earliest: two retries due 0.7 s apart, set by a
// trigger on pg-boss's job table of this test's database (pg-boss draws a random backoff).

const RETRY_DELAY_SECONDS = 2;
const HOLD_MS = 4000;

describe("a failed webhook's retry written late by pg-boss", () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let runs: RunWorker;
  let webhooks: WebhookWorker;
  let api: InProcessApi;
  let server: http.Server;
  let port: number;
  const attempts: { path: string; attempt: string; at: number }[] = [];
  /** When the retries of the next first attempts to /due fall due (epoch ms), in order of arrival. */
  const dues: number[] = [];
  let released: number | undefined;
  let locker: PoolClient | undefined;

  before(async () => {
    db = await createTestDatabase('webhook_retry_wake');
    boss = await startTestQueue(db.url, {
      webhookMaxAttempts: 3,
      webhookRetryDelaySeconds: RETRY_DELAY_SECONDS,
      webhookConnectTimeoutSeconds: 2,
      webhookTimeoutSeconds: 5,
    });
    // A retry written with state 'retry' is due when test_retry_due says, if it says.
    await db.pool.query(`CREATE TABLE test_retry_due (id uuid PRIMARY KEY, at timestamptz NOT NULL)`);
    await db.pool.query(`CREATE FUNCTION test_retry_due() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.state = 'retry' THEN
          NEW.start_after := coalesce((SELECT d.at FROM public.test_retry_due d WHERE d.id = NEW.id), NEW.start_after);
        END IF;
        RETURN NEW;
      END $$`);
    await db.pool.query(`CREATE TRIGGER test_retry_due BEFORE INSERT ON "${queueSchemaOf(boss)}".job FOR EACH ROW EXECUTE FUNCTION test_retry_due()`);
    // The first attempt to /locked: lock the delivery's job row (job id = run id), answer 500,
    // release the lock HOLD_MS later (pg-boss's write of the retry waits on it). The first to
    // /due: record when its retry falls due, answer 500. Any other attempt: 200.
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const attempt = String(req.headers['x-agentcron-attempt']);
        const path = req.url ?? '/';
        attempts.push({ path, attempt, at: Date.now() });
        if (attempt !== '1') return void res.writeHead(200).end('{}');
        const runId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { run_id: string }).run_id;
        if (path === '/due')
          return void db.pool
            .query(`INSERT INTO test_retry_due (id, at) VALUES ($1, $2)`, [runId, new Date(dues.shift()!)])
            .then(() => res.writeHead(500).end('try again'));
        void (async () => {
          locker = await db.pool.connect();
          await locker.query('BEGIN');
          const { rowCount } = await locker.query(`SELECT 1 FROM "${queueSchemaOf(boss)}".job WHERE name = $1 AND id = $2 FOR UPDATE`, [QUEUES.webhook, runId]);
          assert.equal(rowCount, 1, "the delivery's job row");
          res.writeHead(500).end('try again');
          await new Promise((r) => setTimeout(r, HOLD_MS));
          await locker.query('COMMIT');
          released = Date.now();
          locker.release();
          locker = undefined;
        })();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    allowPrivateWebhooks(true);
    webhooks = new WebhookWorker({
      pool: db.pool,
      boss,
      logger: quietLogger(),
      secret: undefined,
      allowPrivate: true,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
      retryDelaySeconds: RETRY_DELAY_SECONDS,
      listening: true,
    });
    const { agents } = tracedEcho();
    // The run worker's LISTEN hands the webhook worker its notifications, as in a worker process.
    runs = new RunWorker({
      pool: db.pool,
      boss,
      logger: quietLogger(),
      agents,
      concurrency: 2,
      runTimeoutSeconds: 10,
      listenUrl: db.url,
      onQueueNotification: (payload) => webhooks.wake(payload),
    });
    await runs.start();
    await webhooks.start();
    api = await startInProcessApi(db.pool, boss, db.url, agents);
  });
  after(() =>
    teardown(
      () => allowPrivateWebhooks(false),
      () => locker?.query('ROLLBACK').finally(() => locker?.release()),
      () => {
        server?.closeAllConnections();
        return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      },
      () => api?.close(),
      () => webhooks?.stop(),
      () => runs?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const startRun = async (path: string): Promise<string> => {
    const threadId = (await api.call('POST', '/threads', {})).body.thread_id as string;
    const res = await api.call('POST', `/threads/${threadId}/runs`, { assistant_id: 'echo', input: { n: 1 }, webhook: `http://127.0.0.1:${port}${path}` });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.run_id as string;
  };

  test('the second attempt arrives when the retry falls due after the write lands, not at the 60 s backstop poll', async () => {
    await startRun('/locked');
    // The retry is due RETRY_DELAY_SECONDS x [1, 2) after pg-boss's write begins (its backoff; the
    // write starts before the lock is released, so it may be due already when it lands). Found
    // within a second of landing (the worker's look), plus a loaded machine's slack: well under
    // the backstop poll (60 s), which is what a worker that missed the write waits for.
    const boundMs = HOLD_MS + 2 * RETRY_DELAY_SECONDS * 1000 + 1000 + 8000;
    const second = await eventually(async () => attempts.find((a) => a.path === '/locked' && a.attempt === '2'), 'the second attempt', 90_000, 50);
    const first = attempts.find((a) => a.path === '/locked' && a.attempt === '1')!;
    assert.ok(released !== undefined && second.at >= released, 'the retry was written after the lock was released');
    const late = second.at - first.at;
    assert.ok(late >= RETRY_DELAY_SECONDS * 1000 - 50, `the second attempt ${late} ms after the first: before its backoff`);
    assert.ok(late < boundMs, `the second attempt ${late} ms after the first (the lock held ${HOLD_MS} ms; bound ${boundMs} ms)`);
    assert.equal(attempts.length, 2);
  });

  test('two retries due 0.7 s apart: each attempted when due, the later one not left for the backstop poll', async () => {
    // Due well after both first attempts are answered (about a second), 0.7 s apart: the poller
    // woken for the first has fetched it and sleeps again when the second falls due.
    const base = Date.now() + 5000;
    dues.push(base, base + 700);
    await startRun('/due');
    await startRun('/due');
    const retries = await eventually(
      async () => {
        const seconds = attempts.filter((a) => a.path === '/due' && a.attempt === '2');
        return seconds.length === 2 ? seconds : null;
      },
      'both second attempts',
      90_000,
      50,
    );
    const firsts = attempts.filter((a) => a.path === '/due' && a.attempt === '1');
    assert.equal(firsts.length, 2);
    assert.ok(Math.max(...firsts.map((a) => a.at)) < base, 'both first attempts were answered before the retries fell due');
    // Each found when due (the worker's look is a second after the failure, long before), plus a
    // loaded machine's slack; the backstop poll is 60 s.
    for (const r of retries) {
      assert.ok(r.at >= base - 50, `a retry attempted ${base - r.at} ms before its time`);
      assert.ok(r.at - (base + 700) < 6000, `a retry attempted ${r.at - base} ms after the first fell due`);
    }
  });
});
