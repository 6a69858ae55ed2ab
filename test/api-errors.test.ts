import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import winston from 'winston';
import { AgentRegistry, echo } from '../libs/agents/index.ts';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { loadConfig } from '../libs/config/index.ts';
import { apiRoutes, authMiddleware, createApp, finishApp } from '../libs/http/index.ts';
import { createLogger } from '../libs/log/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { RunWorker } from '../libs/runs/index.ts';
import { parseSchedule } from '../libs/schedule/index.ts';
import { allowPrivateWebhooks, WebhookWorker } from '../libs/webhooks/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';

// Issue 12: errors and answers that misled. A cron without input (both SDKs send none); webhook
// URLs with credentials (kept for the delivery, shown nowhere) and URLs without a host or too
// long; a body without content-type: application/json; GET on POST-only routes; GET /; the
// next_run_date of a disabled cron; timezones as typed; a year in a schedule. The API, a run
// worker and a webhook worker run in this process (AUTH_MODE=none) on one database.

interface Answer {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

/** Every log line the API and the workers write, to look for secrets in. */
function capturingLogger(lines: string[]) {
  const logger = createLogger({ level: 'debug', json: true, service: 'test' });
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    }),
  );
  return logger;
}

/** A receiver: /ok answers 200; /deny answers 500 echoing the credentials it was sent. */
async function startReceiver() {
  const received: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url?.startsWith('/deny')) {
        const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
        return void res.writeHead(500).end(`denied for ${basic}`);
      }
      res.writeHead(200).end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    received,
    base: `127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('issue 12: answers that say the truth', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let runs: RunWorker;
  let webhooks: WebhookWorker;
  let server: Server;
  let url: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let sdk1: InstanceType<typeof Client1>;
  let sdk2: InstanceType<typeof Client2>;
  const logs: string[] = [];

  async function call(method: string, path: string, body?: unknown, init: { raw?: string; contentType?: string | null } = {}): Promise<Answer> {
    const headers: Record<string, string> = {};
    const payload = init.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const contentType = init.contentType === undefined ? (payload !== undefined ? 'application/json' : null) : init.contentType;
    if (contentType) headers['content-type'] = contentType;
    const res = await fetch(`${url}${path}`, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  }

  before(async () => {
    db = await createTestDatabase('api_errors');
    boss = await startTestQueue(db.url, { runTimeoutSeconds: 5, webhookMaxAttempts: 1, webhookConnectTimeoutSeconds: 2, webhookTimeoutSeconds: 2 });
    const logger = capturingLogger(logs);
    const agents = new AgentRegistry().register('echo', echo);
    await ensureDefaultAssistants(db.pool, agents.graphIds());
    runs = new RunWorker({ pool: db.pool, boss, logger, agents, concurrency: 4, runTimeoutSeconds: 5, listenUrl: db.url });
    await runs.start();
    webhooks = new WebhookWorker({
      pool: db.pool,
      boss,
      logger,
      secret: 'whsec',
      allowPrivate: true,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 2000,
      retryDelaySeconds: 1,
    });
    await webhooks.start();
    allowPrivateWebhooks(true);
    const config = loadConfig({ DATABASE_URL: db.url });
    const deps = { pool: db.pool, boss, config, logger, agents };
    const app = createApp({ ...deps, heartbeatSeconds: 10, bodyLimitBytes: 1024 * 1024, auth: authMiddleware(deps), routes: apiRoutes(deps) });
    finishApp(app, logger);
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    receiver = await startReceiver();
    sdk1 = new Client1({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
    sdk2 = new Client2({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  after(() =>
    teardown(
      () => allowPrivateWebhooks(false),
      () => receiver?.close(),
      () => {
        server?.closeAllConnections();
        return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      },
      () => webhooks?.stop(),
      () => runs?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const ledger = (cronId: string) =>
    eventually(
      async () => {
        const res = await call('GET', `/runs/crons/${cronId}/occurrences`);
        return res.body[0]?.status === 'success' ? res.body[0] : null;
      },
      `cron ${cronId}'s first run to succeed`,
      10_000,
    );

  test('1. input is optional: both SDKs create stateless and thread crons without it; the run gets no input (echo answers {})', async () => {
    for (const [name, sdk] of [
      ['sdk 1.15', sdk1],
      ['sdk 2.0', sdk2],
    ] as const) {
      // Exactly the call of the issue.
      const plain: any = await sdk.crons.create('echo', { schedule: '0 9 * * *' });
      assert.ok(plain.run_id && plain.cron_id, name);
      assert.equal(plain.kwargs.input, undefined, `${name}: the run has no input`);
      assert.equal((await ledger(plain.cron_id)).status, 'success');

      // Kept thread: its values are what echo answered for no input.
      const kept: any = await sdk.crons.create('echo', { schedule: '0 9 * * *', onRunCompleted: 'keep' });
      await ledger(kept.cron_id);
      assert.deepEqual((await call('GET', `/threads/${kept.thread_id}/state`)).body.values, {}, name);

      const thread = await sdk.threads.create();
      const onThread: any = await sdk.crons.createForThread(thread.thread_id, 'echo', { schedule: '0 9 * * *' });
      await ledger(onThread.cron_id);
      assert.deepEqual((await call('GET', `/threads/${thread.thread_id}/state`)).body.values, {}, name);
      const cron = (await call('GET', `/runs/crons/${onThread.cron_id}`)).body;
      assert.equal('input' in cron.payload, false, 'nothing stored for the missing input');
    }
    // input null is "not given", like every optional field.
    assert.equal((await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: null, enabled: false })).status, 200);
  });

  test('1. whatever is missing from a create, the answer is a 4xx naming it, never a 5xx', async () => {
    const threadId = (await call('POST', '/threads', {})).body.thread_id;
    const bodies: [unknown, RegExp][] = [
      [{}, /^body\.(assistant_id|schedule): required$/],
      [{ assistant_id: 'echo' }, /^body\.schedule: required$/],
      [{ schedule: '@daily' }, /^body\.assistant_id: required$/],
      [{ assistant_id: 'echo', schedule: '@daily', enabled: false }, /.*/],
      [null, /^body: expected a JSON object, got null$/],
      [[], /^body: /],
      ['just text', /^body: expected a JSON object, got string$/],
    ];
    for (const path of ['/runs/crons', `/threads/${threadId}/runs/crons`]) {
      for (const [body, detail] of bodies) {
        const res = await call('POST', path, body);
        assert.ok(res.status < 500, `${path} ${JSON.stringify(body)}: ${res.status} ${res.text}`);
        if (res.status !== 200) assert.match(res.body.detail, detail, `${path} ${JSON.stringify(body)}`);
      }
      // No body at all.
      const none = await call('POST', path);
      assert.equal(none.status, 422, none.text);
      assert.match(none.body.detail, /^body\.(assistant_id|schedule): required$/);
    }
  });

  test('2. webhook credentials: delivered as Basic authorization, shown in no answer, search, ledger row, webhook body or log line', async () => {
    const secret = `s3cr3t-${randomUUID()}`;
    const hook = `http://hookuser:${secret}@${receiver.base}/ok`;
    const threadId = (await call('POST', '/threads', {})).body.thread_id;
    const clean = `http://${receiver.base}/ok`;

    const created: any = await sdk2.crons.create('echo', { schedule: '0 9 * * *', webhook: hook, onRunCompleted: 'keep', metadata: { hook: 'creds' } });
    assert.equal(created.kwargs.webhook, clean, 'the create answer');
    const onThread: any = await sdk1.crons.createForThread(threadId, 'echo', {
      schedule: '0 9 * * *',
      webhook: `http://hookuser:${secret}@${receiver.base}/deny`,
    });
    const denied = `http://${receiver.base}/deny`;
    assert.equal(onThread.kwargs.webhook, denied);

    // Delivered with the credentials, as Basic authorization; the body shows the URL without them.
    const hit = await eventually(
      async () => receiver.received.find((r) => r.path === '/ok' && JSON.parse(r.body).cron_id === created.cron_id),
      'the delivery',
      10_000,
    );
    assert.equal(hit.headers.authorization, `Basic ${Buffer.from(`hookuser:${secret}`).toString('base64')}`);
    assert.equal(JSON.parse(hit.body).kwargs.webhook, clean);
    assert.ok(!hit.body.includes(secret));
    // The failing one: its error (the receiver echoes the credentials) is stored and logged scrubbed.
    const failed = await eventually(
      async () => {
        const [row] = (await call('GET', `/runs/crons/${onThread.cron_id}/occurrences`)).body;
        return row?.webhook_status === 'failed' ? row : null;
      },
      'the failed delivery to be recorded',
      10_000,
    );
    assert.match(failed.webhook_error, /denied for \*\*\*:\*\*\*/);

    const patched = await call('PATCH', `/runs/crons/${created.cron_id}`, { webhook: hook, metadata: { hook: 'creds', patched: true } });
    assert.equal(patched.body.payload.webhook, clean);
    const answers: Answer[] = [
      patched,
      await call('GET', `/runs/crons/${created.cron_id}`),
      await call('GET', `/runs/crons/${onThread.cron_id}`),
      await call('POST', '/runs/crons/search', { metadata: { hook: 'creds' } }),
      await call('POST', '/runs/crons/search', { select: ['cron_id', 'payload'], limit: 100 }),
      await call('GET', `/runs/crons/${created.cron_id}/occurrences`),
      await call('GET', `/runs/crons/${onThread.cron_id}/occurrences`),
      await call('GET', `/threads/${created.thread_id}/runs/${created.run_id}`),
      await call('GET', `/threads/${threadId}/runs`),
      await call('POST', `/runs/crons/${created.cron_id}/trigger`),
      await call('POST', `/threads/${threadId}/runs`, { assistant_id: 'echo', webhook: hook }),
      await call('POST', '/admin/crons/search', { limit: 100 }),
    ];
    for (const a of answers) {
      assert.ok(a.status < 300, a.text);
      assert.ok(!a.text.includes(secret) && !a.text.includes('hookuser'), `credentials in ${a.text.slice(0, 300)}`);
    }
    assert.ok(answers[3].body.length >= 1 && answers[3].body.every((c: any) => c.payload.webhook === clean));

    // The ledger rows themselves, and every log line.
    const ledgerRows = await db.pool.query(`SELECT * FROM cron_occurrences WHERE cron_id = ANY($1::uuid[])`, [[created.cron_id, onThread.cron_id]]);
    assert.ok(ledgerRows.rowCount! >= 2);
    assert.ok(!JSON.stringify(ledgerRows.rows).includes(secret));
    assert.ok(
      logs.some((l) => l.includes('webhook')),
      'the delivery failure was logged',
    );
    assert.deepEqual(
      logs.filter((l) => l.includes(secret)),
      [],
    );
  });

  test('2. a webhook URL without a host, or longer than 2,048 characters, is a 422', async () => {
    const long = `https://example.com/${'a'.repeat(2049 - 'https://example.com/'.length)}`;
    assert.equal(long.length, 2049);
    for (const [webhook, detail] of [
      ['http:///no-host', /^body\.webhook: must be an http\(s\) URL with a host$/],
      ['http:/no-host', /^body\.webhook: must be an http\(s\) URL with a host$/],
      ['http://user:pw@/x', /^body\.webhook: must be an http\(s\) URL with a host$/],
      [long, /^body\.webhook: must be at most 2048 characters \(got 2049\)$/],
    ] as const) {
      const res = await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', webhook, enabled: false });
      assert.equal(res.status, 422, webhook.slice(0, 40));
      assert.match(res.body.detail, detail);
      const run = await call('POST', `/threads/${(await call('POST', '/threads', {})).body.thread_id}/runs`, { assistant_id: 'echo', webhook });
      assert.equal(run.status, 422);
    }
    assert.equal((await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', webhook: long.slice(0, 2048), enabled: false })).status, 200);
    await assert.rejects(sdk1.crons.create('echo', { schedule: '@daily', webhook: 'http:///no-host' }), (e: any) => e.status === 422);
  });

  test('7. a JSON body without content-type: application/json is read as JSON; anything else is a 415 saying what to send', async () => {
    const body = JSON.stringify({ assistant_id: 'echo', schedule: '@daily', enabled: false, metadata: { curl: true } });
    // What `curl -d` sends.
    const form = await call('POST', '/runs/crons', undefined, { raw: body, contentType: 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 200, form.text);
    assert.deepEqual(form.body.metadata, { curl: true });
    const none = await call('POST', '/runs/crons/count', undefined, { raw: '{"metadata": {"curl": true}}', contentType: null });
    assert.equal(none.status, 200, none.text);
    assert.equal(none.body, 1);
    for (const [raw, contentType] of [
      ['assistant_id=echo&schedule=@daily', 'application/x-www-form-urlencoded'],
      ['hello', 'text/plain'],
      ['{"assistant_id": ', null],
    ] as const) {
      const res = await call('POST', '/runs/crons', undefined, { raw, contentType });
      assert.equal(res.status, 415, `${contentType}: ${res.text}`);
      assert.match(res.body.detail, /send a JSON body with content-type: application\/json/);
    }
    // With the right content-type, broken JSON stays a 422 naming the problem.
    assert.equal((await call('POST', '/runs/crons', undefined, { raw: '{"a": ' })).status, 422);
  });

  test('7. GET on a POST-only route is a 405 with Allow; GET / and unknown routes point to /docs', async () => {
    for (const path of [
      '/runs/crons/search',
      '/runs/crons/count',
      '/runs/crons/bulk',
      '/runs/crons',
      `/runs/crons/${randomUUID()}/trigger`,
      '/admin/crons/search',
    ]) {
      const res = await call('GET', path);
      assert.equal(res.status, 405, `${path}: ${res.text}`);
      assert.equal(res.headers.get('allow'), 'POST', path);
      assert.match(res.body.detail, /^GET is not allowed on .*; allowed: POST/);
    }
    const del = await call('DELETE', '/runs/crons/search');
    assert.equal(del.status, 405);
    const root = await call('GET', '/');
    assert.equal(root.status, 200);
    assert.equal(root.body.docs, '/docs');
    const lost = await call('GET', '/no/such/thing');
    assert.equal(lost.status, 404);
    assert.match(lost.body.detail, /\/docs/);
    // A real cron id still answers as before.
    assert.equal((await call('GET', `/runs/crons/${randomUUID()}`)).status, 404);
  });

  test("7. a disabled cron's next_run_date is when it would fire if enabled now (what enabling sets)", async () => {
    const off = (await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '*/5 * * * *', enabled: false, metadata: { nextdate: true } })).body;
    assert.ok(new Date(off.next_run_date).getTime() > Date.now());
    // Disabled long ago: the stored date has passed; the answer shows the next one after now.
    await db.pool.query(`UPDATE crons SET next_run_date = now() - interval '3 days' WHERE cron_id = $1`, [off.cron_id]);
    const shown = (await call('GET', `/runs/crons/${off.cron_id}`)).body.next_run_date;
    const searched = (await call('POST', '/runs/crons/search', { metadata: { nextdate: true } })).body[0].next_run_date;
    assert.equal(searched, shown);
    const t = new Date(shown);
    assert.ok(t.getTime() > Date.now() - 1000 && t.getTime() <= Date.now() + 5 * 60_000, shown);
    assert.equal(t.getUTCMinutes() % 5, 0);
    const enabled = (await call('PATCH', `/runs/crons/${off.cron_id}`, { enabled: true })).body;
    assert.equal(enabled.next_run_date, shown, 'enabling fires exactly then');
    // Past its end_time it would never fire: null.
    const ending = (
      await call('POST', '/runs/crons', {
        assistant_id: 'echo',
        schedule: '0 0 1 1 *',
        enabled: false,
        end_time: new Date(Date.now() + 86_400_000).toISOString(),
      })
    ).body;
    await db.pool.query(`UPDATE crons SET next_run_date = now() - interval '1 day' WHERE cron_id = $1`, [ending.cron_id]);
    assert.equal((await call('GET', `/runs/crons/${ending.cron_id}`)).body.next_run_date, null);
  });

  test('7. timezones are stored by their canonical IANA name', async () => {
    const created = (await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', timezone: 'utc', enabled: false })).body;
    assert.equal(created.timezone, 'UTC');
    const paris = (await call('PATCH', `/runs/crons/${created.cron_id}`, { timezone: 'europe/paris' })).body;
    assert.equal(paris.timezone, 'Europe/Paris');
    const { rows } = await db.pool.query(`SELECT timezone FROM crons WHERE cron_id = $1`, [created.cron_id]);
    assert.equal(rows[0].timezone, 'Europe/Paris');
    const viaSdk: any = await sdk1.crons.create('echo', { schedule: '@daily', timezone: 'america/new_york', enabled: false });
    assert.equal(viaSdk.timezone, 'America/New_York');
    assert.equal((await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', timezone: 'mars/base' })).status, 422);
  });

  test('7. a year in a schedule is called a year (too many fields), not a bad day-of-week', async () => {
    const res = await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 * 2030' });
    assert.equal(res.status, 422);
    assert.match(res.body.detail, /^body\.schedule: invalid schedule "0 0 1 1 \* 2030": too many fields \(got 6\): the 6th field "2030" looks like a year/);
    assert.doesNotMatch(res.body.detail, /day-of-week field|seconds schedules are disabled/);
    // With seconds allowed (CRON_ALLOW_SECONDS_SCHEDULE), the 6th field is still called a year.
    assert.throws(() => parseSchedule('0 0 1 1 * 2030', { allowSeconds: true }), /the 6th field "2030" looks like a year/);
    assert.throws(() => parseSchedule('0 0 12 * * ? 2030', { allowSeconds: true }), /too many fields \(got 7\)/);
    const seven = await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 12 * * * *' });
    assert.match(seven.body.detail, /got 7 fields/);
  });
});
