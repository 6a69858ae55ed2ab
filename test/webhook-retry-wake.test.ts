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
// the delivery's job row for HOLD_MS before it lets pg-boss write the retry.

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
  const attempts: { attempt: string; at: number }[] = [];
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
    // The first attempt: lock the delivery's job row (job id = run id), answer 500, release the
    // lock HOLD_MS later. pg-boss's write of the retry waits on it.
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const attempt = String(req.headers['x-agentcron-attempt']);
        attempts.push({ attempt, at: Date.now() });
        if (attempt !== '1') return void res.writeHead(200).end('{}');
        const runId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { run_id: string }).run_id;
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

  test('the second attempt arrives when the retry falls due after the write lands, not at the 60 s backstop poll', async () => {
    const threadId = (await api.call('POST', '/threads', {})).body.thread_id as string;
    const res = await api.call('POST', `/threads/${threadId}/runs`, {
      assistant_id: 'echo',
      input: { n: 1 },
      webhook: `http://127.0.0.1:${port}/hook`,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The retry is due RETRY_DELAY_SECONDS x [1, 2) after pg-boss's write begins (its backoff; the
    // write starts before the lock is released, so it may be due already when it lands). Found
    // within a second of landing (the worker's look), plus a loaded machine's slack: well under
    // the backstop poll (60 s), which is what a worker that missed the write waits for.
    const boundMs = HOLD_MS + 2 * RETRY_DELAY_SECONDS * 1000 + 1000 + 8000;
    const second = await eventually(async () => attempts.find((a) => a.attempt === '2'), 'the second attempt', 90_000, 50);
    const first = attempts.find((a) => a.attempt === '1')!;
    assert.ok(released !== undefined && second.at >= released, 'the retry was written after the lock was released');
    const late = second.at - first.at;
    assert.ok(late >= RETRY_DELAY_SECONDS * 1000 - 50, `the second attempt ${late} ms after the first: before its backoff`);
    assert.ok(late < boundMs, `the second attempt ${late} ms after the first (the lock held ${HOLD_MS} ms; bound ${boundMs} ms)`);
    assert.equal(attempts.length, 2);
  });
});
