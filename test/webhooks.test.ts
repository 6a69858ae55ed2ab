import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { PgBoss } from '../libs/queue/index.ts';
import { RunWorker } from '../libs/runs/index.ts';
import { webhookUrl } from '../libs/http/schemas/common.ts';
import { CronCreateBody, CronUpdateBody } from '../libs/http/schemas/crons.ts';
import { RunCreate } from '../libs/http/schemas/runs.ts';
import { allowPrivateWebhooks, deliver, forbiddenAddress, verifyWebhook, WebhookWorker } from '../libs/webhooks/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, newScheduler, quietLogger, startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown, tracedEcho } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';
import { spawnApp } from './support/processes.ts';

// Webhooks: every way a run ends POSTs the Run to its webhook, signed, through the
// agentcron.webhook queue (retries with backoff), recorded on the run and the ledger; the SSRF
// guard refuses private destinations at create time (literal addresses, 422) and at send time
// (after DNS). The API, a run worker and a webhook worker run in this process against one
// database; the receiver is an HTTP server on 127.0.0.1, so WEBHOOK_ALLOW_PRIVATE is on except
// where a test checks the refusal.

const SECRET = 'whsec-test-secret';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local receiver: /ok answers 200, /down 500 with a long body, /flaky/<key> 500 the first time then 200. */
async function startReceiver() {
  const received: Received[] = [];
  const flaky = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/down')) return void res.writeHead(500).end(`upstream exploded ${'x'.repeat(5000)}`);
      if (path.startsWith('/flaky') && !flaky.has(path)) {
        flaky.add(path);
        return void res.writeHead(500).end('try again');
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    /** The deliveries of one run, in arrival order. */
    forRun: (runId: string) => received.filter((r) => JSON.parse(r.body).run_id === runId),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('webhooks', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let runs: RunWorker;
  let webhooks: WebhookWorker;
  let api: InProcessApi;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  const webhookWorker = (allowPrivate: boolean) => {
    // Failed deliveries are logged as errors, on purpose; here they are expected.
    const logger = quietLogger();
    logger.silent = process.env.TEST_LOG_LEVEL === undefined;
    return new WebhookWorker({
      pool: db.pool,
      boss,
      logger,
      secret: SECRET,
      allowPrivate,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 2000,
      retryDelaySeconds: 1,
    });
  };

  before(async () => {
    db = await createTestDatabase('webhooks');
    boss = await startTestQueue(db.url, {
      runTimeoutSeconds: 1,
      runTimeoutMaxSeconds: 60,
      // Two attempts, the retry 1-2 s after the first: quick to exhaust.
      webhookMaxAttempts: 2,
      webhookRetryDelaySeconds: 1,
      webhookConnectTimeoutSeconds: 2,
      webhookTimeoutSeconds: 2,
    });
    const { agents } = tracedEcho();
    runs = new RunWorker({ pool: db.pool, boss, logger: quietLogger(), agents, concurrency: 8, runTimeoutSeconds: 1, listenUrl: db.url });
    await runs.start();
    webhooks = webhookWorker(true);
    await webhooks.start();
    api = await startInProcessApi(db.pool, boss, db.url, agents);
    allowPrivateWebhooks(true);
    receiver = await startReceiver();
  });
  after(() =>
    teardown(
      () => allowPrivateWebhooks(false),
      () => receiver?.close(),
      () => api?.close(),
      () => webhooks?.stop(),
      () => runs?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const newThread = async () => (await api.call('POST', '/threads', {})).body.thread_id as string;
  const startRun = async (threadId: string, body: Record<string, unknown>) => {
    const res = await api.call('POST', `/threads/${threadId}/runs`, { assistant_id: 'echo', ...body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.run_id as string;
  };
  const getRun = async (threadId: string, runId: string) => (await api.call('GET', `/threads/${threadId}/runs/${runId}`)).body;
  const deliveries = (runId: string, n = 1) =>
    eventually(async () => (receiver.forRun(runId).length >= n ? receiver.forRun(runId) : null), `${n} webhook(s) of run ${runId}`, 30_000);
  const settledRun = (threadId: string, runId: string) =>
    eventually(
      async () => {
        const r = await getRun(threadId, runId);
        return r.webhook_status === 'sent' || r.webhook_status === 'failed' ? r : null;
      },
      `run ${runId}'s webhook to settle`,
      30_000,
    );

  test("a stateless cron's run: the whole Run, signed, delivered after its thread is gone; the ledger records it", async () => {
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', payload: { input: { hello: 'world' }, webhook: receiver.url('/ok') } });
    await newScheduler(db.pool, boss, db.url).runDue();
    const occurrence = await eventually(async () => {
      const { rows } = await db.pool.query(`SELECT * FROM cron_occurrences WHERE cron_id = $1`, [cronId]);
      return rows[0]?.webhook_status === 'sent' ? rows[0] : null;
    }, 'the ledger to record the delivery');
    const [hit] = receiver.forRun(occurrence.run_id);
    assert.ok(hit, 'the receiver got it');
    const run = JSON.parse(hit.body);
    assert.equal(hit.path, '/ok');
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['x-agentcron-attempt'], '1');
    assert.equal(run.status, 'success');
    assert.equal(run.cron_id, cronId);
    assert.equal(run.thread_id, occurrence.thread_id);
    assert.equal(run.assistant_id, ECHO);
    assert.equal(run.scheduled_for, occurrence.scheduled_for.toISOString());
    assert.deepEqual(run.values, { hello: 'world' });
    assert.equal(run.error, null);
    assert.equal(run.kwargs.webhook, receiver.url('/ok'));
    assert.deepEqual(run.metadata, {});
    for (const key of ['created_at', 'run_started_at', 'run_ended_at', 'webhook_sent_at'])
      assert.ok(!Number.isNaN(Date.parse(run[key])), `${key}: ${run[key]}`);
    assert.ok(Date.parse(run.run_started_at) <= Date.parse(run.run_ended_at));
    assert.ok(Date.parse(run.run_ended_at) <= Date.parse(run.webhook_sent_at));
    assert.equal(occurrence.webhook_sent_at.toISOString(), run.webhook_sent_at);
    assert.equal(occurrence.webhook_attempts, 1);
    assert.equal(occurrence.webhook_error, null);
    assert.equal((await db.pool.query(`SELECT 1 FROM threads WHERE thread_id = $1`, [run.thread_id])).rowCount, 0, 'the ephemeral thread is gone');
    // The API's ledger shows the delivery too, though the run went with its thread.
    const ledger = await api.call('GET', `/runs/crons/${cronId}/occurrences`);
    assert.equal(ledger.status, 200);
    assert.deepEqual(
      [ledger.body[0].webhook_status, ledger.body[0].webhook_attempts, ledger.body[0].webhook_error, ledger.body[0].webhook_sent_at],
      ['sent', 1, null, run.webhook_sent_at],
    );

    // The signature: HMAC-SHA256 of "<timestamp>.<body>" with the secret, as a receiver checks it.
    const timestamp = hit.headers['x-agentcron-timestamp'] as string;
    const signature = hit.headers['x-agentcron-signature'] as string;
    assert.equal(signature, `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${hit.body}`).digest('hex')}`);
    assert.ok(Math.abs(Number(timestamp) - Date.parse(run.webhook_sent_at) / 1000) < 1);
    assert.equal(verifyWebhook(SECRET, { body: hit.body, signature, timestamp }), true);
    assert.equal(verifyWebhook(SECRET, { body: hit.body.replace('world', 'w0rld'), signature, timestamp }), false, 'a changed body fails');
    assert.equal(verifyWebhook('another secret', { body: hit.body, signature, timestamp }), false);
    assert.equal(verifyWebhook(SECRET, { body: hit.body, signature, timestamp }, { now: new Date(Date.now() + 3600_000) }), false, 'a stale timestamp fails');
  });

  test('every way a run ends sends it: error, timeout and interrupted, with error set and recorded on the run', async () => {
    const [t1, t2, t3] = await Promise.all([newThread(), newThread(), newThread()]);
    const failed = await startRun(t1, { input: { error: 'boom' }, webhook: receiver.url('/ok?kind=error') });
    const timedOut = await startRun(t2, { input: { sleep_ms: 5000 }, webhook: receiver.url('/ok?kind=timeout') });
    const cancelled = await startRun(t3, { input: { sleep_ms: 30_000 }, webhook: receiver.url('/ok?kind=cancel'), metadata: { who: 'me' } });
    await eventually(async () => (await getRun(t3, cancelled)).status === 'running', 'the run to start');
    assert.equal((await api.call('POST', `/threads/${t3}/runs/${cancelled}/cancel`)).status, 202);

    const [[e], [t], [c]] = await Promise.all([deliveries(failed), deliveries(timedOut), deliveries(cancelled)]);
    const error = JSON.parse(e.body);
    assert.equal(error.status, 'error');
    assert.deepEqual(error.error, { error: 'Error', message: 'boom' });
    const timeout = JSON.parse(t.body);
    assert.equal(timeout.status, 'timeout');
    assert.equal(timeout.error.error, 'TimeoutError');
    const interrupted = JSON.parse(c.body);
    assert.equal(interrupted.status, 'interrupted');
    assert.equal(interrupted.error.error, 'Cancelled');
    assert.deepEqual(interrupted.metadata, { who: 'me' });
    assert.equal(interrupted.thread_id, t3);

    const run = await settledRun(t1, failed);
    assert.equal(run.webhook_status, 'sent');
    assert.equal(run.webhook_attempts, 1);
    assert.equal(run.webhook_sent_at, error.webhook_sent_at);
    // One delivery per run: the cancelled agent's late end sends nothing more. Its job is
    // acknowledged once the worker is done with it, and then no delivery is left to make.
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT (SELECT state::text FROM pgboss.job WHERE name = 'agentcron.run' AND id = $1) AS run,
                (SELECT count(*)::int FROM pgboss.job WHERE name = 'agentcron.webhook' AND state IN ('created', 'retry', 'active')) AS webhooks`,
        [cancelled],
      );
      return rows[0].run === 'completed' && rows[0].webhooks === 0;
    }, "the cancelled run's job and every delivery to be done");
    assert.equal(receiver.forRun(cancelled).length, 1);
  });

  test('retried after a 500, then delivered', async () => {
    const threadId = await newThread();
    const runId = await startRun(threadId, { input: { n: 1 }, webhook: receiver.url(`/flaky/${threadId}`) });
    const hits = await deliveries(runId, 2);
    assert.deepEqual(
      hits.map((h) => h.headers['x-agentcron-attempt']),
      ['1', '2'],
    );
    // Each attempt is signed afresh, with its own timestamp and webhook_sent_at.
    for (const h of hits) {
      assert.equal(
        verifyWebhook(SECRET, {
          body: h.body,
          signature: h.headers['x-agentcron-signature'] as string,
          timestamp: h.headers['x-agentcron-timestamp'] as string,
        }),
        true,
      );
    }
    const run = await settledRun(threadId, runId);
    assert.equal(run.webhook_status, 'sent');
    assert.equal(run.webhook_attempts, 2);
    assert.equal(run.webhook_error, null, 'the success clears the error of the failed attempt');
    assert.equal(run.webhook_sent_at, JSON.parse(hits[1].body).webhook_sent_at);
  });

  test('a final failure is recorded on the run and the ledger, with a short excerpt of the answer', async () => {
    const threadId = await newThread();
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', thread_id: threadId, payload: { input: { n: 1 }, webhook: receiver.url('/down') } });
    await newScheduler(db.pool, boss, db.url).runDue();
    const runId = (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1`, [cronId])).rows[0].run_id as string;
    const run = await settledRun(threadId, runId);
    assert.equal(run.status, 'success', 'the run itself succeeded');
    assert.equal(run.webhook_status, 'failed');
    assert.equal(run.webhook_attempts, 2);
    assert.equal(run.webhook_sent_at, null);
    assert.match(run.webhook_error, /^HTTP 500: upstream exploded x+$/);
    assert.ok(run.webhook_error.length <= 'HTTP 500: '.length + 512, `${run.webhook_error.length} characters stored`);
    const { rows } = await db.pool.query(`SELECT webhook_status, webhook_attempts, webhook_error FROM cron_occurrences WHERE cron_id = $1`, [cronId]);
    assert.deepEqual(rows[0], { webhook_status: 'failed', webhook_attempts: 2, webhook_error: run.webhook_error });
    const [occurrence] = (await api.call('GET', `/runs/crons/${cronId}/occurrences`)).body;
    assert.deepEqual(
      { status: occurrence.webhook_status, attempts: occurrence.webhook_attempts, error: occurrence.webhook_error, sent_at: occurrence.webhook_sent_at },
      { status: 'failed', attempts: 2, error: run.webhook_error, sent_at: null },
    );
    assert.equal(receiver.forRun(runId).length, 2);
    // Completed after recording the failure, not dead-lettered.
    const { rows: jobs } = await db.pool.query(`SELECT state FROM pgboss.job WHERE name = 'agentcron.webhook' AND id = $1`, [runId]);
    assert.equal(jobs[0].state, 'completed');
  });

  test('refused at send time when a hostname resolves to a private address (localhost), without retrying', async () => {
    // The guard itself: the address the name resolves to is checked, and nothing is sent.
    const before = receiver.received.length;
    const refused = await deliver(`http://localhost:${receiver.port}/ok`, '{}', {}, { connectTimeoutMs: 2000, responseTimeoutMs: 2000, allowPrivate: false });
    assert.equal(refused.ok, false);
    assert.equal(refused.ok === false && refused.retry, false);
    assert.match(refused.ok === false ? refused.error : '', /^refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    assert.equal(receiver.received.length, before);

    // End to end, with a webhook worker that does not allow private destinations.
    await webhooks.stop();
    const strict = webhookWorker(false);
    await strict.start();
    try {
      const threadId = await newThread();
      const runId = await startRun(threadId, { input: { n: 1 }, webhook: `http://localhost:${receiver.port}/ok` });
      const run = await settledRun(threadId, runId);
      assert.equal(run.webhook_status, 'failed');
      assert.equal(run.webhook_attempts, 1, 'a refusal is not retried');
      assert.match(run.webhook_error, /^refused: localhost resolves to/);
      assert.equal(receiver.forRun(runId).length, 0);
    } finally {
      await strict.stop();
      webhooks = webhookWorker(true);
      await webhooks.start();
    }
  });

  test('422 at create for a webhook on a literal private address, unless WEBHOOK_ALLOW_PRIVATE', async () => {
    allowPrivateWebhooks(false);
    try {
      const threadId = await newThread();
      const cron = (webhook: string) => api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', input: {}, webhook, enabled: false });
      for (const url of [
        'http://127.0.0.1:8080/hook',
        'http://2130706433/hook',
        'http://[::1]/hook',
        'http://[::ffff:127.0.0.1]/hook',
        'http://[::ffff:a9fe:a9fe]/latest/meta-data',
        'http://169.254.169.254/latest/meta-data',
        'https://10.1.2.3/hook',
        'http://172.16.0.1/hook',
        'http://192.168.1.1/hook',
        'http://[fd00:ec2::254]/hook',
        'http://[fe80::1]/hook',
        'http://0.0.0.0/hook',
        'http://100.100.100.200/hook',
      ]) {
        const res = await cron(url);
        assert.equal(res.status, 422, `${url}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.detail, /^body\.webhook: .* webhooks go to public addresses only/);
      }
      const literal = await cron('http://127.0.0.1/hook');
      assert.match(literal.body.detail, /127\.0\.0\.1 is a loopback address/);
      // Public literals and hostnames pass (hostnames are checked at send time, after DNS).
      for (const url of ['http://93.184.216.34/hook', 'https://example.com/hook', 'http://localhost/hook']) {
        assert.equal((await cron(url)).status, 200, url);
      }
      const thread = await api.call('POST', `/threads/${threadId}/runs/crons`, {
        assistant_id: 'echo',
        schedule: '0 0 1 1 *',
        input: {},
        webhook: 'http://10.0.0.1/',
        enabled: false,
      });
      assert.equal(thread.status, 422);
      const created = (await cron('https://example.com/hook')).body;
      const patched = await api.call('PATCH', `/runs/crons/${created.cron_id}`, { webhook: 'http://192.168.0.10/hook' });
      assert.equal(patched.status, 422);
      assert.match(patched.body.detail, /192\.168\.0\.10 is a private address/);
      const run = await api.call('POST', `/threads/${threadId}/runs`, { assistant_id: 'echo', input: {}, webhook: 'http://[::1]:9/x' });
      assert.equal(run.status, 422);
      assert.match(run.body.detail, /^body\.webhook: ::1 is a loopback address/);
      assert.equal((await api.call('GET', `/threads/${threadId}/runs`)).body.length, 0, 'no run was created');
    } finally {
      allowPrivateWebhooks(true);
    }
    assert.equal(
      (await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', input: {}, webhook: 'http://127.0.0.1/hook', enabled: false }))
        .status,
      200,
    );
  });

  test('one webhookUrl schema validates the webhook of crons (create, update) and runs alike', () => {
    allowPrivateWebhooks(false);
    try {
      const issues = (r: { success: boolean; error?: { issues: { message: string }[] } }) => (r.success ? [] : r.error!.issues.map((i) => i.message));
      for (const url of ['ftp://example.com/x', 'not a url', 'http://', 'http://10.0.0.1/hook', 'http://[::1]/x']) {
        const expected = issues(webhookUrl.safeParse(url));
        assert.ok(expected.length > 0, `${url} is refused`);
        assert.deepEqual(
          issues(CronCreateBody.safeParse({ assistant_id: 'echo', schedule: '@daily', input: {}, webhook: url })),
          expected,
          `cron create: ${url}`,
        );
        assert.deepEqual(issues(CronUpdateBody.safeParse({ webhook: url })), expected, `cron update: ${url}`);
        assert.deepEqual(issues(RunCreate.safeParse({ assistant_id: 'echo', webhook: url })), expected, `run create: ${url}`);
      }
      assert.deepEqual(
        webhookUrl.safeParse('ftp://example.com/x').error!.issues.map((i) => i.message),
        ['must be an http(s) URL with a host'],
      );
      assert.match(webhookUrl.safeParse('http://10.0.0.1/hook').error!.issues[0].message, /10\.0\.0\.1 is a private address/);
      assert.equal(webhookUrl.safeParse('https://example.com/hook').success, true);
    } finally {
      allowPrivateWebhooks(true);
    }
    assert.equal(webhookUrl.safeParse('http://10.0.0.1/hook').success, true, 'WEBHOOK_ALLOW_PRIVATE lets literal private addresses through');
  });

  test('the address rules: loopback, private, link-local, metadata and their IPv6 forms are refused; public addresses pass', () => {
    for (const ip of [
      '127.0.0.1',
      '127.255.0.9',
      '10.0.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.100.100.200',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fc00::1',
      'fd00:ec2::254',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '0:0:0:0:0:ffff:a00:1',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:c0a8:101::1',
    ]) {
      assert.ok(forbiddenAddress(ip), `${ip} should be refused`);
    }
    for (const ip of ['8.8.8.8', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::200e']) {
      assert.equal(forbiddenAddress(ip), null, `${ip} should pass`);
    }
    assert.match(forbiddenAddress('::ffff:127.0.0.1')!, /IPv6 form of a loopback address/);
  });

  test('a worker without WEBHOOK_SECRET says at startup that webhooks go unsigned', async () => {
    const own = await createTestDatabase('webhooks_log', { migrate: false });
    const worker = spawnApp('worker', { DATABASE_URL: own.url, HEARTBEAT_INTERVAL_SECONDS: '1' });
    try {
      await worker.waitFor(/WEBHOOK_SECRET is not set: webhooks are sent unsigned/);
      await worker.waitFor(/worker started/);
    } finally {
      worker.kill('SIGTERM');
      await worker.exited;
      await own.drop();
    }
  });
});
