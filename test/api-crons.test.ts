import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { ECHO, USER, call, foreignCron, newThread } from './support/crons-api.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// The crons API driven by the real LangGraph SDKs (1.15.x as 'sdk1', and 2.0.0) and by plain
// fetch for what an SDK cannot send, against a spawned agentcron api on PostgreSQL. Firing end to
// end with two users is in api-crons-firing.test.ts; a first run's and a trigger's overlap rules
// in api-crons-overlap.test.ts; search, trigger, the ledger and next fire times in
// api-crons-reads.test.ts.

const FUTURE = '2099-01-01T00:00:00.000Z';

describe('crons API', () => {
  let stack: Stack;
  let url: string;
  let sdk1: InstanceType<typeof Client1>;
  let sdk2: InstanceType<typeof Client2>;
  const post = (path: string, body?: unknown) => call(url, 'POST', path, body);
  const get = (path: string) => call(url, 'GET', path);
  const patch = (path: string, body: unknown) => call(url, 'PATCH', path, body);

  before(async () => {
    stack = await startStack('api_crons');
    url = stack.url;
    sdk1 = new Client1({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
    sdk2 = new Client2({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  after(() => stack?.stop());

  async function runsOf(cronId: string): Promise<any[]> {
    const { rows } = await stack.db.pool.query(`SELECT * FROM runs WHERE cron_id = $1 ORDER BY scheduled_for`, [cronId]);
    return rows;
  }
  async function ledgerOf(cronId: string): Promise<any[]> {
    const { rows } = await stack.db.pool.query(`SELECT * FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`, [cronId]);
    return rows;
  }

  test('SDK 1.15: stateless create starts the first run at once; get, update, search, count, delete', async () => {
    const run: any = await sdk1.crons.create('echo', {
      schedule: '0 9 * * 1-5',
      timezone: 'Europe/Paris',
      endTime: FUTURE,
      input: { hello: 'world' },
      config: { configurable: { a: 1 } },
      metadata: { team: 'sdk1', env: 'test' },
      onRunCompleted: 'keep',
      webhook: 'https://example.com/hook',
      streamMode: ['values'],
    });
    assert.ok(run.cron_id, 'the answer carries cron_id');
    assert.ok(run.run_id);
    assert.equal(run.status, 'pending');
    assert.equal(run.assistant_id, ECHO);
    assert.deepEqual(run.kwargs.input, { hello: 'world' });

    // The run, its fresh thread (naming the cron) and its ledger row were written with the cron.
    const [stored] = await runsOf(run.cron_id);
    assert.equal(stored.run_id, run.run_id);
    assert.equal(stored.thread_id, run.thread_id);
    const thread = await stack.db.pool.query(`SELECT metadata, ephemeral FROM threads WHERE thread_id = $1`, [run.thread_id]);
    assert.equal(thread.rows[0].metadata.cron_id, run.cron_id);
    assert.equal(thread.rows[0].ephemeral, false, 'keep: not ephemeral');
    const [occurrence] = await ledgerOf(run.cron_id);
    assert.equal(occurrence.trigger, 'create');
    assert.equal(occurrence.run_id, run.run_id);
    assert.equal(occurrence.scheduled_for.toISOString(), stored.scheduled_for.toISOString());

    const cron = (await get(`/runs/crons/${run.cron_id}`)).body;
    assert.equal(cron.cron_id, run.cron_id);
    assert.equal(cron.thread_id, null);
    assert.equal(cron.schedule, '0 9 * * 1-5');
    assert.equal(cron.timezone, 'Europe/Paris');
    assert.equal(cron.end_time, FUTURE);
    assert.equal(cron.on_run_completed, 'keep');
    assert.equal(cron.enabled, true);
    assert.equal(cron.user_id, USER);
    assert.deepEqual(cron.metadata, { team: 'sdk1', env: 'test' });
    assert.deepEqual(cron.payload, {
      input: { hello: 'world' },
      config: { configurable: { a: 1 } },
      webhook: 'https://example.com/hook',
      stream_mode: ['values'],
    });
    assert.equal(cron.missed_policy, 'latest');
    assert.equal(cron.overlap_policy, 'allow');
    for (const f of ['last_run_at', 'last_run_status', 'last_run_error', 'last_run_id', 'finished_at']) assert.equal(cron[f], null, f);
    // 09:00 on a weekday in Paris is 07:00 or 08:00 UTC.
    const next = new Date(cron.next_run_date);
    assert.ok(next > new Date(cron.created_at));
    assert.ok([7, 8].includes(next.getUTCHours()) && next.getUTCMinutes() === 0, cron.next_run_date);

    // Update: a schedule without a timezone keeps the stored one; metadata is replaced whole;
    // end_time null clears it; payload fields merge.
    const updated: any = await sdk1.crons.update(run.cron_id, {
      schedule: '30 18 * * *',
      endTime: null,
      metadata: { team: 'other' },
      input: { hello: 'again' },
      context: { k: 'v' },
    });
    assert.equal(updated.schedule, '30 18 * * *');
    assert.equal(updated.timezone, 'Europe/Paris');
    assert.equal(updated.end_time, null);
    assert.deepEqual(updated.metadata, { team: 'other' });
    assert.deepEqual(updated.payload, {
      input: { hello: 'again' },
      config: { configurable: { a: 1 } },
      context: { k: 'v' },
      webhook: 'https://example.com/hook',
      stream_mode: ['values'],
    });
    assert.ok(updated.updated_at > cron.updated_at);
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(new Date(updated.next_run_date));
    assert.equal(local, '18:30');

    const tz: any = await sdk1.crons.update(run.cron_id, { timezone: 'Asia/Tokyo' });
    assert.equal(tz.timezone, 'Asia/Tokyo');
    assert.equal(new Date(tz.next_run_date).getUTCHours(), 9, 'now 18:30 in Tokyo = 09:30 UTC');

    const found: any[] = await sdk1.crons.search({ metadata: { team: 'other' } });
    assert.deepEqual(
      found.map((c) => c.cron_id),
      [run.cron_id],
    );
    assert.equal(await sdk1.crons.count({ metadata: { team: 'other' } }), 1);
    assert.equal(await sdk1.crons.count({ metadata: { team: 'nobody' } }), 0);

    await sdk1.crons.delete(run.cron_id);
    assert.equal((await get(`/runs/crons/${run.cron_id}`)).status, 404);
    await assert.rejects(sdk1.crons.delete(run.cron_id), (e: any) => e.status === 404);
    // The run already started stays to finish; the cron's ledger goes with it.
    assert.equal((await runsOf(run.cron_id)).length, 1);
    assert.deepEqual(await ledgerOf(run.cron_id), []);
  });

  test('SDK 2.0.0: create, createForThread, update, search, count, delete', async () => {
    const stateless: any = await sdk2.crons.create(ECHO, { schedule: '*/5 * * * *', input: { n: 1 }, metadata: { sdk: 2 } });
    assert.ok(stateless.cron_id);
    assert.ok(stateless.run_id);
    const ephemeral = await stack.db.pool.query(`SELECT ephemeral FROM threads WHERE thread_id = $1`, [stateless.thread_id]);
    assert.equal(ephemeral.rows[0].ephemeral, true, 'on_run_completed defaults to delete');

    const threadId = await newThread(stack);
    const onThread: any = await sdk2.crons.createForThread(threadId, 'echo', {
      schedule: '0 * * * *',
      input: { n: 2 },
      metadata: { sdk: 2 },
      multitaskStrategy: 'reject',
    });
    assert.equal(onThread.thread_id, threadId, 'a thread cron runs on its thread');
    assert.ok(onThread.cron_id);
    const threadCron = (await get(`/runs/crons/${onThread.cron_id}`)).body;
    assert.equal(threadCron.thread_id, threadId);
    assert.equal(threadCron.on_run_completed, null);
    assert.equal(threadCron.payload.multitask_strategy, 'reject');

    const updated: any = await sdk2.crons.update(onThread.cron_id, { enabled: false, metadata: { sdk: 2, paused: true } });
    assert.equal(updated.enabled, false);
    assert.deepEqual(updated.metadata, { sdk: 2, paused: true });

    const byThread: any[] = await sdk2.crons.search({ threadId });
    assert.deepEqual(
      byThread.map((c) => c.cron_id),
      [onThread.cron_id],
    );
    const disabled: any[] = await sdk2.crons.search({ enabled: false, assistantId: ECHO });
    assert.ok(disabled.some((c) => c.cron_id === onThread.cron_id));
    assert.ok(!disabled.some((c) => c.cron_id === stateless.cron_id));
    const selected: any[] = await sdk2.crons.search({ threadId, select: ['cron_id', 'enabled', 'now'] as any });
    assert.deepEqual(Object.keys(selected[0]).sort(), ['cron_id', 'enabled', 'now']);
    assert.equal(await sdk2.crons.count({ threadId }), 1);
    assert.equal(typeof (await sdk2.crons.count({ assistantId: 'echo' })), 'number');

    await sdk2.crons.delete(onThread.cron_id);
    await sdk2.crons.delete(stateless.cron_id);
    assert.equal(await sdk2.crons.count({ threadId }), 0);
  });

  test('create answers Content-Location; enabled: false answers the Cron and starts nothing', async () => {
    const created = await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {} });
    assert.equal(created.status, 200);
    assert.equal(created.headers.get('content-location'), `/threads/${created.body.thread_id}/runs/${created.body.run_id}`);

    const off = await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false });
    assert.equal(off.status, 200);
    assert.equal(off.body.enabled, false);
    assert.equal(off.body.run_id, undefined);
    assert.ok(off.body.cron_id);
    assert.ok(off.body.next_run_date);
    assert.equal(off.headers.get('content-location'), null);
    assert.deepEqual(await runsOf(off.body.cron_id), []);
    assert.deepEqual(await ledgerOf(off.body.cron_id), []);
  });

  test('assistants: a UUID or a graph id; system assistants for all, others only for their owner', async () => {
    const bobs = randomUUID();
    const mine = randomUUID();
    await stack.db.pool.query(`INSERT INTO assistants (assistant_id, graph_id, name, user_id) VALUES ($1, 'echo', 'bob''s', 'bob'), ($2, 'echo', 'mine', $3)`, [
      bobs,
      mine,
      USER,
    ]);
    const byUuid = await post('/runs/crons', { assistant_id: ECHO, schedule: '@daily', input: {}, enabled: false });
    assert.equal(byUuid.body.assistant_id, ECHO);
    const byGraph = await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false });
    assert.equal(byGraph.body.assistant_id, ECHO);
    const own = await post('/runs/crons', { assistant_id: mine, schedule: '@daily', input: {}, enabled: false });
    assert.equal(own.body.assistant_id, mine);
    for (const assistant_id of [bobs, randomUUID(), 'no-such-graph']) {
      const res = await post('/runs/crons', { assistant_id, schedule: '@daily', input: {} });
      assert.equal(res.status, 404, assistant_id);
      assert.deepEqual(res.body, { detail: 'Assistant not found' });
    }
    await assert.rejects(sdk1.crons.create('no-such-graph', { schedule: '@daily', input: {} }), (e: any) => e.status === 404);
  });

  test('thread crons: the thread must exist and be the caller\'s; if_not_exists "create" makes it', async () => {
    const bobsThread = await newThread(stack, 'bob');
    for (const threadId of [bobsThread, randomUUID(), 'not-a-uuid']) {
      const res = await post(`/threads/${threadId}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {} });
      assert.equal(res.status, 404, threadId);
      assert.deepEqual(res.body, { detail: 'Thread not found' });
    }
    await assert.rejects(sdk1.crons.createForThread(bobsThread, 'echo', { schedule: '@daily', input: {} }), (e: any) => e.status === 404);
    // Bob's thread stays out of reach even with if_not_exists.
    const stolen = await post(`/threads/${bobsThread}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {}, if_not_exists: 'create' });
    assert.equal(stolen.status, 404);

    const fresh = randomUUID();
    const made = await post(`/threads/${fresh}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {}, if_not_exists: 'create' });
    assert.equal(made.status, 200);
    assert.equal(made.body.thread_id, fresh);
    const owner = await stack.db.pool.query(`SELECT user_id FROM threads WHERE thread_id = $1`, [fresh]);
    assert.equal(owner.rows[0].user_id, USER);

    const overlap = await post(`/threads/${fresh}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {}, overlap_policy: 'skip' });
    assert.equal(overlap.status, 422);
    assert.match(overlap.body.detail, /^body\.overlap_policy: /);
  });

  test('validation: 422 naming the field, never a 500', async () => {
    const ok = { assistant_id: 'echo', schedule: '0 9 * * *', input: { a: 1 } };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['missing schedule', { assistant_id: 'echo', input: {} }, /^body\.schedule: required$/],
      ['malformed schedule', { ...ok, schedule: '61 * * * *' }, /^body\.schedule: invalid schedule "61 \* \* \* \*": .*minute/],
      ['too few fields', { ...ok, schedule: '0 12 * *' }, /^body\.schedule: .*got 4 fields/],
      ['empty schedule', { ...ok, schedule: '' }, /^body\.schedule: .*empty/],
      ['seconds schedule', { ...ok, schedule: '*/10 * * * * *' }, /^body\.schedule: .*CRON_ALLOW_SECONDS_SCHEDULE=true/],
      ['unknown timezone', { ...ok, timezone: 'Mars/Base' }, /^body\.timezone: invalid timezone "Mars\/Base"/],
      ['offset timezone', { ...ok, timezone: '+05:00' }, /^body\.timezone: /],
      ['end_time in the past', { ...ok, end_time: '2001-01-01T00:00:00Z' }, /^body\.end_time: must be in the future/],
      ['end_time not a date', { ...ok, end_time: 'tomorrow' }, /^body\.end_time: expected an ISO 8601 date-time/],
      ['ftp webhook', { ...ok, webhook: 'ftp://example.com/x' }, /^body\.webhook: must be an http\(s\) URL with a host$/],
      ['webhook without host', { ...ok, webhook: 'http:' }, /^body\.webhook: must be an http\(s\) URL with a host$/],
      ['webhook not a URL', { ...ok, webhook: 'example.com' }, /^body\.webhook: /],
      ['unknown on_run_completed', { ...ok, on_run_completed: 'archive' }, /^body\.on_run_completed: Invalid option/],
      // A missing (or null) input is no input: test/api-errors.test.ts.
      ['input not an object', { ...ok, input: 'hi' }, /^body\.input: /],
      ['missing assistant_id', { schedule: '@daily', input: {} }, /^body\.assistant_id: required$/],
      ['schedule a number', { ...ok, schedule: 5 }, /^body\.schedule: .*expected string, received number/],
      ['enabled a string', { ...ok, enabled: 'yes' }, /^body\.enabled: .*expected boolean/],
      ['metadata a list', { ...ok, metadata: [1] }, /^body\.metadata: /],
      ['unknown multitask_strategy', { ...ok, multitask_strategy: 'later' }, /^body\.multitask_strategy: /],
      ['unknown missed_policy', { ...ok, missed_policy: 'some' }, /^body\.missed_policy: /],
      ['unknown overlap_policy', { ...ok, overlap_policy: 'queue' }, /^body\.overlap_policy: /],
      ['interrupt_before a number', { ...ok, interrupt_before: 3 }, /^body\.interrupt_before: /],
      ['body a list', [] as any, /^body: /],
    ];
    for (const [name, body, detail] of cases) {
      const res = await post('/runs/crons', body);
      assert.equal(res.status, 422, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.detail, detail, name);
    }
    // The same rules hold on a thread cron.
    const threadId = await newThread(stack);
    const onThread = await post(`/threads/${threadId}/runs/crons`, { ...ok, timezone: 'Nowhere/Land' });
    assert.equal(onThread.status, 422);
    assert.match(onThread.body.detail, /^body\.timezone: /);

    // Through the SDK: a 422 is thrown with the detail.
    await assert.rejects(sdk1.crons.create('echo', { schedule: 'every day', input: {} }), (e: any) => e.status === 422 && /body\.schedule/.test(e.message));

    // Unknown keys are ignored.
    const extra = await post('/runs/crons', { ...ok, enabled: false, surprise: { deep: true }, if_not_exists: 'create' });
    assert.equal(extra.status, 200);
    assert.equal(extra.body.payload.surprise, undefined);
    assert.equal(extra.body.surprise, undefined);
  });

  test('malformed JSON is a 422; a body over CRON_MAX_PAYLOAD_BYTES is a 422; over the hard limit a 413', async () => {
    const bad = await call(url, 'POST', '/runs/crons', undefined, '{"assistant_id": "echo", "schedule": ');
    assert.equal(bad.status, 422);
    assert.match(bad.body.detail, /malformed JSON/);

    const big = { assistant_id: 'echo', schedule: '@daily', input: { blob: 'x'.repeat(70 * 1024) } };
    const over = await post('/runs/crons', big);
    assert.equal(over.status, 422);
    assert.match(over.body.detail, /^body: the cron body is \d+ bytes, over the limit of 65536 \(CRON_MAX_PAYLOAD_BYTES\)$/);
    const threadId = await newThread(stack);
    assert.equal((await post(`/threads/${threadId}/runs/crons`, big)).status, 422);
    const justUnder = await post('/runs/crons', { ...big, enabled: false, input: { blob: 'x'.repeat(60 * 1024) } });
    assert.equal(justUnder.status, 200);
    const patched = await patch(`/runs/crons/${justUnder.body.cron_id}`, { input: { blob: 'x'.repeat(70 * 1024) } });
    assert.equal(patched.status, 422);

    const huge = await post('/runs/crons', { ...big, input: { blob: 'x'.repeat(1100 * 1024) } });
    assert.equal(huge.status, 413);
    assert.match(huge.body.detail, /exceeds the limit/);
  });

  test('unknown, foreign or malformed cron ids answer 404 on every route', async () => {
    const bobs = await foreignCron(stack, 'bob', { owner: 'bob' });
    for (const id of [randomUUID(), bobs, 'not-a-uuid', '1234']) {
      const answers = await Promise.all([
        get(`/runs/crons/${id}`),
        patch(`/runs/crons/${id}`, { enabled: true }),
        call(url, 'DELETE', `/runs/crons/${id}`),
        post(`/runs/crons/${id}/trigger`),
        get(`/runs/crons/${id}/occurrences`),
        get(`/runs/crons/${id}/next`),
      ]);
      for (const a of answers) {
        assert.equal(a.status, 404, id);
        assert.deepEqual(a.body, { detail: 'Cron not found' });
      }
    }
    await assert.rejects(sdk2.crons.update(bobs, { enabled: true }), (e: any) => e.status === 404);
    // Bob's cron is untouched, and invisible to search and count.
    const { rows } = await stack.db.pool.query(`SELECT enabled FROM crons WHERE cron_id = $1`, [bobs]);
    assert.equal(rows[0].enabled, false);
    assert.deepEqual(await sdk1.crons.search({ metadata: { owner: 'bob' } }), []);
    assert.equal(await sdk1.crons.count({ metadata: { owner: 'bob' } }), 0);
  });

  test('update: re-enabling recomputes a passed next_run_date from now; a schedule change recomputes it; a finished cron comes back', async () => {
    const created = (await post('/runs/crons', { assistant_id: 'echo', schedule: '*/5 * * * *', input: {}, enabled: false })).body;
    await stack.db.pool.query(`UPDATE crons SET next_run_date = now() - interval '3 hours' WHERE cron_id = $1`, [created.cron_id]);
    const before = Date.now();
    const enabled = (await patch(`/runs/crons/${created.cron_id}`, { enabled: true })).body;
    const answered = Date.now();
    assert.equal(enabled.enabled, true);
    const next = new Date(enabled.next_run_date).getTime();
    assert.ok(next > before - 1000 && next <= answered + 5 * 60_000 + 1000, enabled.next_run_date);
    assert.equal(new Date(next).getUTCMinutes() % 5, 0);

    // A future next_run_date is kept when nothing about the schedule changes.
    const same = (await patch(`/runs/crons/${created.cron_id}`, { enabled: true, metadata: { x: 1 } })).body;
    assert.equal(same.next_run_date, enabled.next_run_date);
    // Sending the same schedule is no change either.
    assert.equal((await patch(`/runs/crons/${created.cron_id}`, { schedule: '*/5 * * * *' })).body.next_run_date, enabled.next_run_date);
    const hourly = (await patch(`/runs/crons/${created.cron_id}`, { schedule: '17 * * * *' })).body;
    assert.equal(new Date(hourly.next_run_date).getUTCMinutes(), 17);

    // The scheduler finished it (end_time passed): a new end_time brings it back, from now.
    await stack.db.pool.query(
      `UPDATE crons SET enabled = false, next_run_date = NULL, finished_at = now(), end_time = now() - interval '1 minute' WHERE cron_id = $1`,
      [created.cron_id],
    );
    const reviving = Date.now();
    const revived: any = await sdk1.crons.update(created.cron_id, { endTime: FUTURE });
    assert.equal(revived.enabled, true);
    assert.equal(revived.finished_at, null);
    assert.equal(revived.end_time, FUTURE);
    assert.ok(new Date(revived.next_run_date).getTime() > reviving - 1000);

    // ... and so does enabled: true (here after end_time was cleared).
    await stack.db.pool.query(`UPDATE crons SET enabled = false, next_run_date = NULL, finished_at = now(), end_time = NULL WHERE cron_id = $1`, [
      created.cron_id,
    ]);
    const reenabled: any = await sdk2.crons.update(created.cron_id, { enabled: true });
    assert.equal(reenabled.enabled, true);
    assert.equal(reenabled.finished_at, null);
    assert.ok(reenabled.next_run_date);

    // Disabling keeps next_run_date and end_time alone.
    const off = (await patch(`/runs/crons/${created.cron_id}`, { enabled: false })).body;
    assert.equal(off.enabled, false);
    assert.equal(off.next_run_date, reenabled.next_run_date);
  });

  test('update: payload fields merge, null removes one, policies and on_run_completed change, bad values are 422', async () => {
    const created = (
      await post('/runs/crons', {
        assistant_id: 'echo',
        schedule: '@hourly',
        input: { a: 1 },
        webhook: 'https://example.com/a',
        config: { x: 1 },
        enabled: false,
      })
    ).body;
    const id = created.cron_id;
    const res = await patch(`/runs/crons/${id}`, {
      webhook: null,
      config: { y: 2 },
      interrupt_before: ['node'],
      multitask_strategy: 'enqueue',
      on_run_completed: 'keep',
      missed_policy: 'all',
      overlap_policy: 'buffer_one',
      unknown_key: 1,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.payload, { input: { a: 1 }, config: { y: 2 }, interrupt_before: ['node'], multitask_strategy: 'enqueue' });
    assert.equal(res.body.on_run_completed, 'keep');
    assert.equal(res.body.missed_policy, 'all');
    assert.equal(res.body.overlap_policy, 'buffer_one');
    assert.equal(res.body.schedule, '@hourly');
    assert.equal(res.body.timezone, null);

    const cases: [Record<string, unknown>, RegExp][] = [
      [{ schedule: 'nope' }, /^body\.schedule: /],
      [{ schedule: '* * * * * *' }, /^body\.schedule: .*CRON_ALLOW_SECONDS_SCHEDULE/],
      [{ timezone: 'Atlantis/Capital' }, /^body\.timezone: /],
      [{ end_time: '2000-01-01T00:00:00Z' }, /^body\.end_time: must be in the future/],
      [{ webhook: 'mailto:a@b.c' }, /^body\.webhook: /],
      [{ on_run_completed: 'forget' }, /^body\.on_run_completed: /],
      [{ enabled: 1 }, /^body\.enabled: /],
      [{ input: 'text' }, /^body\.input: /],
      [{ metadata: 'x' }, /^body\.metadata: /],
    ];
    for (const [body, detail] of cases) {
      const bad = await patch(`/runs/crons/${id}`, body);
      assert.equal(bad.status, 422, JSON.stringify(body));
      assert.match(bad.body.detail, detail);
    }
    const bad = await call(url, 'PATCH', `/runs/crons/${id}`, undefined, '{oops');
    assert.equal(bad.status, 422);
    // Nothing above changed the cron.
    assert.deepEqual((await get(`/runs/crons/${id}`)).body.payload, res.body.payload);
  });

  test('CRON_MAX_PER_USER (default 100) answers 429 on the next create, disabled crons counting', async () => {
    const { rows } = await stack.db.pool.query(`SELECT count(*)::int AS n FROM crons WHERE user_id = $1`, [USER]);
    // Racing creates: the count is taken under a per-user lock, so exactly the free slots are used.
    const fill = 100 - rows[0].n - 2;
    assert.ok(fill > 0);
    await stack.db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, enabled, metadata)
       SELECT gen_random_uuid(), $1, $2, '@daily', false, '{"filler": true}' FROM generate_series(1, $3)`,
      [ECHO, USER, fill],
    );
    const racing = await Promise.all(
      Array.from({ length: 6 }, () => post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false })),
    );
    assert.deepEqual(racing.map((r) => r.status).sort(), [200, 200, 429, 429, 429, 429]);
    const res = await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {} });
    assert.equal(res.status, 429);
    assert.match(res.body.detail, /CRON_MAX_PER_USER is 100/);
    const threadId = await newThread(stack);
    assert.equal((await post(`/threads/${threadId}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false })).status, 429);
    // Someone else's crons do not count against this user.
    await foreignCron(stack, 'carol');
    const [one] = (await post('/runs/crons/search', { metadata: { filler: true }, limit: 1 })).body;
    await call(url, 'DELETE', `/runs/crons/${one.cron_id}`);
    assert.equal((await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false })).status, 200);
    assert.equal((await post('/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false })).status, 429);
    await stack.db.pool.query(`DELETE FROM crons WHERE metadata @> '{"filler": true}'`);
  });

  test('no request above made the api log an unhandled error (no 500s)', () => {
    assert.ok(
      stack.api.output.some((l) => /POST \/runs\/crons 422 /.test(l)),
      'request lines carry their status',
    );
    const failures = stack.api.output.filter((l) => /unhandled error| 5\d\d /.test(l));
    assert.deepEqual(failures, []);
  });

  test('the OpenAPI document describes the crons routes', async () => {
    const doc = (await get('/openapi.json')).body;
    for (const path of [
      '/runs/crons',
      '/threads/{thread_id}/runs/crons',
      '/runs/crons/search',
      '/runs/crons/count',
      '/runs/crons/{cron_id}',
      '/runs/crons/{cron_id}/trigger',
      '/runs/crons/{cron_id}/occurrences',
      '/runs/crons/{cron_id}/next',
    ]) {
      assert.ok(doc.paths[path], path);
    }
    assert.ok(doc.components.schemas.Cron.properties.last_run_status);
    assert.deepEqual(doc.components.schemas.CronCreate.required.sort(), ['assistant_id', 'schedule'], 'input is optional');
  });
});
