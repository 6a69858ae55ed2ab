import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { call, foreignCron, newThread } from './support/crons-api.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// The crons API's reads and runs-now, as routes/crons.ts groups them: search, count and select;
// trigger and the occurrence ledger (one cron's, and the caller's across its crons); the next fire
// times. Create, update and delete are in api-crons.test.ts.

describe('crons API: search, trigger, ledger, next', () => {
  let stack: Stack;
  let url: string;
  let sdk1: InstanceType<typeof Client1>;
  let sdk2: InstanceType<typeof Client2>;
  const post = (path: string, body?: unknown) => call(url, 'POST', path, body);
  const get = (path: string) => call(url, 'GET', path);
  const patch = (path: string, body: unknown) => call(url, 'PATCH', path, body);

  before(async () => {
    stack = await startStack('api_crons_reads');
    url = stack.url;
    sdk1 = new Client1({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
    sdk2 = new Client2({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  after(() => stack?.stop());

  test('search: filters, sort, select, limit, offset; count', async () => {
    const threadA = await newThread(stack);
    const tag = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = {
        assistant_id: 'echo',
        schedule: `${i} 3 * * *`,
        input: { i },
        enabled: i % 2 === 0,
        metadata: { tag, i, parity: i % 2 === 0 ? 'even' : 'odd' },
        ...(i === 4 ? { end_time: '2098-01-01T00:00:00Z' } : {}),
      };
      const res = i === 3 ? await post(`/threads/${threadA}/runs/crons`, body) : await post('/runs/crons', body);
      assert.equal(res.status, 200);
      ids.push(res.body.cron_id);
    }
    const mine = { metadata: { tag } };
    const all: any[] = (await post('/runs/crons/search', { ...mine, limit: 100 })).body;
    assert.deepEqual(
      all.map((c) => c.cron_id),
      [...ids].reverse(),
      'default: created_at desc',
    );
    assert.deepEqual(
      (await post('/runs/crons/search', { ...mine, sort_by: 'created_at', sort_order: 'asc' })).body.map((c: any) => c.cron_id),
      ids,
    );
    const page = (await post('/runs/crons/search', { ...mine, sort_by: 'created_at', sort_order: 'asc', limit: 2, offset: 1 })).body;
    assert.deepEqual(
      page.map((c: any) => c.cron_id),
      ids.slice(1, 3),
    );
    // Sorting by next_run_date: "i 3 * * *" fires at 03:0i, today or tomorrow depending on the
    // clock, so the expected order comes from the stored dates (ties by cron_id).
    const byNext = [...all].sort((a, b) => a.next_run_date.localeCompare(b.next_run_date) || a.cron_id.localeCompare(b.cron_id));
    assert.ok(new Set(all.map((c) => c.next_run_date)).size > 1, 'distinct next_run_dates to sort');
    assert.deepEqual(
      (await post('/runs/crons/search', { ...mine, sort_by: 'next_run_date', sort_order: 'asc' })).body.map((c: any) => c.cron_id),
      byNext.map((c) => c.cron_id),
    );
    for (const sort_by of ['cron_id', 'assistant_id', 'thread_id', 'updated_at', 'end_time']) {
      for (const sort_order of ['asc', 'desc']) {
        const res = await post('/runs/crons/search', { ...mine, sort_by, sort_order, limit: 10 });
        assert.equal(res.status, 200, sort_by);
        assert.equal(res.body.length, 5);
      }
    }
    const byCronId = (await post('/runs/crons/search', { ...mine, sort_by: 'cron_id', sort_order: 'asc' })).body.map((c: any) => c.cron_id);
    assert.deepEqual(byCronId, [...ids].sort());
    const byEnd = (await post('/runs/crons/search', { ...mine, sort_by: 'end_time', sort_order: 'desc' })).body;
    assert.equal(byEnd[0].cron_id, ids[4], 'the only end_time first, nulls last');

    assert.deepEqual(
      (await post('/runs/crons/search', { metadata: { tag, parity: 'odd' }, sort_order: 'asc' })).body.map((c: any) => c.cron_id),
      [ids[1], ids[3]],
    );
    assert.deepEqual(
      (await post('/runs/crons/search', { ...mine, enabled: true, sort_order: 'asc' })).body.map((c: any) => c.cron_id),
      [ids[0], ids[2], ids[4]],
    );
    assert.deepEqual(
      (await post('/runs/crons/search', { ...mine, thread_id: threadA })).body.map((c: any) => c.cron_id),
      [ids[3]],
    );
    assert.equal((await post('/runs/crons/search', { ...mine, assistant_id: 'echo' })).body.length, 5);
    assert.equal((await post('/runs/crons/search', { ...mine, assistant_id: randomUUID() })).body.length, 0);

    const selected = (await post('/runs/crons/search', { ...mine, select: ['cron_id', 'schedule', 'next_run_date'], limit: 1 })).body;
    assert.deepEqual(Object.keys(selected[0]).sort(), ['cron_id', 'next_run_date', 'schedule']);
    const sdkSelected: any[] = await sdk1.crons.search({
      metadata: { tag },
      select: ['cron_id', 'metadata'],
      limit: 2,
      offset: 3,
      sortBy: 'created_at',
      sortOrder: 'asc',
    });
    assert.deepEqual(
      sdkSelected.map((c) => c.cron_id),
      ids.slice(3, 5),
    );
    assert.deepEqual(Object.keys(sdkSelected[0]).sort(), ['cron_id', 'metadata']);

    // The SDK's default limit is 10; the API's too.
    assert.ok((await post('/runs/crons/search', {})).body.length <= 10);

    const count = await post('/runs/crons/count', mine);
    assert.equal(count.status, 200);
    assert.equal(count.body, 5, 'a bare integer');
    assert.equal((await post('/runs/crons/count', { ...mine, thread_id: threadA })).body, 1);
    assert.equal((await post('/runs/crons/count', { ...mine, enabled: false })).body, 2);
    assert.equal(await sdk2.crons.count({ threadId: threadA }), 1);

    const invalid: [string, Record<string, unknown>, RegExp][] = [
      ['/runs/crons/search', { sort_by: 'schedule' }, /^body\.sort_by: /],
      ['/runs/crons/search', { sort_order: 'up' }, /^body\.sort_order: /],
      ['/runs/crons/search', { limit: 0 }, /^body\.limit: /],
      ['/runs/crons/search', { limit: 1001 }, /^body\.limit: /],
      ['/runs/crons/search', { offset: -1 }, /^body\.offset: /],
      ['/runs/crons/search', { limit: '5' }, /^body\.limit: /],
      ['/runs/crons/search', { select: ['cron_id', 'password'] }, /^body\.select/],
      ['/runs/crons/search', { thread_id: 'abc' }, /^body\.thread_id: must be a UUID$/],
      ['/runs/crons/search', { metadata: 'x' }, /^body\.metadata: /],
      ['/runs/crons/count', { enabled: 'no' }, /^body\.enabled: /],
      ['/runs/crons/count', { thread_id: 12 }, /^body\.thread_id: /],
    ];
    for (const [path, body, detail] of invalid) {
      const res = await post(path, body);
      assert.equal(res.status, 422, JSON.stringify(body));
      assert.match(res.body.detail, detail);
    }
  });

  test('trigger runs the cron now (ledger: manual); occurrences page the ledger newest first', async () => {
    const created = (await post('/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', input: { t: 1 }, on_run_completed: 'keep' })).body;
    const cronBefore = (await get(`/runs/crons/${created.cron_id}`)).body;
    const triggered = await post(`/runs/crons/${created.cron_id}/trigger`);
    assert.equal(triggered.status, 200);
    assert.equal(triggered.body.cron_id, created.cron_id);
    assert.notEqual(triggered.body.run_id, created.run_id);
    assert.notEqual(triggered.body.thread_id, created.thread_id, 'stateless: a fresh thread per run');
    assert.deepEqual(triggered.body.kwargs, { input: { t: 1 } });
    assert.equal(triggered.headers.get('content-location'), `/threads/${triggered.body.thread_id}/runs/${triggered.body.run_id}`);
    const second = (await post(`/runs/crons/${created.cron_id}/trigger`)).body;

    const cronAfter = (await get(`/runs/crons/${created.cron_id}`)).body;
    assert.equal(cronAfter.next_run_date, cronBefore.next_run_date, 'the schedule is not moved');

    const ledger = await get(`/runs/crons/${created.cron_id}/occurrences`);
    assert.equal(ledger.status, 200);
    assert.deepEqual(
      ledger.body.map((o: any) => [o.trigger, o.run_id, o.status]),
      [
        ['manual', second.run_id, 'enqueued'],
        ['manual', triggered.body.run_id, 'enqueued'],
        ['create', created.run_id, 'enqueued'],
      ],
    );
    const o = ledger.body[0];
    for (const key of [
      'cron_id',
      'scheduled_for',
      'run_id',
      'thread_id',
      'trigger',
      'status',
      'reason',
      'error',
      'skipped_count',
      'enqueued_at',
      'started_at',
      'ended_at',
      'created_at',
    ]) {
      assert.ok(key in o, key);
    }
    // The ledger's webhook columns: nothing to deliver for a cron without a webhook.
    assert.deepEqual([o.webhook_status, o.webhook_attempts, o.webhook_error, o.webhook_sent_at], [null, 0, null, null]);
    const pageTwo = (await get(`/runs/crons/${created.cron_id}/occurrences?limit=1&offset=1`)).body;
    assert.deepEqual(
      pageTwo.map((x: any) => x.run_id),
      [triggered.body.run_id],
    );
    for (const q of ['limit=0', 'limit=abc', 'offset=-1', 'limit=5000']) {
      const bad = await get(`/runs/crons/${created.cron_id}/occurrences?${q}`);
      assert.equal(bad.status, 422, q);
      assert.match(bad.body.detail, /^query\.(limit|offset): /);
    }

    // The caller's rows across its crons, since an instant, in one list (the dashboard's Health
    // chart): this cron's rows as its ledger has them, newest first, and never someone else's.
    const bobs = await foreignCron(stack, 'bob');
    await stack.db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, trigger, status) VALUES ($1, now(), 'manual', 'skipped')`, [bobs]);
    const since = ledger.body.at(-1).scheduled_for;
    const recent = await get(`/runs/crons/occurrences?scheduled_after=${encodeURIComponent(since)}`);
    assert.equal(recent.status, 200);
    assert.deepEqual(
      recent.body.filter((x: any) => x.cron_id === created.cron_id),
      ledger.body,
    );
    assert.ok(recent.body.every((x: any) => x.cron_id !== bobs && x.scheduled_for >= since));
    const times = recent.body.map((x: any) => Date.parse(x.scheduled_for));
    assert.deepEqual(
      times,
      [...times].sort((a: number, b: number) => b - a),
      'newest first',
    );
    assert.equal((await get(`/runs/crons/occurrences?scheduled_after=${encodeURIComponent(since)}&limit=1`)).body.length, 1);
    for (const q of [
      '',
      'scheduled_after=yesterday',
      `scheduled_after=${encodeURIComponent(since)}&limit=0`,
      `scheduled_after=${encodeURIComponent(since)}&limit=5001`,
    ]) {
      const bad = await get(`/runs/crons/occurrences?${q}`);
      assert.equal(bad.status, 422, q);
      assert.match(bad.body.detail, /^query\.(scheduled_after|limit): /);
    }

    // A disabled thread cron can still be triggered; the run is on its thread.
    const threadId = await newThread(stack);
    const onThread = (await post(`/threads/${threadId}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false })).body;
    const run = (await post(`/runs/crons/${onThread.cron_id}/trigger`)).body;
    assert.equal(run.thread_id, threadId);
  });

  test('next: the next N fire times in UTC and in the cron timezone; for a disabled cron, what it would fire if enabled', async () => {
    // 12:30 exists once every day in New York (a 02:30 schedule would fire at 03:00 on the day
    // DST starts, and fail the pattern below in the days before it).
    const created = (await post('/runs/crons', { assistant_id: 'echo', schedule: '30 12 * * *', timezone: 'America/New_York', input: {}, enabled: false }))
      .body;
    await patch(`/runs/crons/${created.cron_id}`, { enabled: true });
    const res = await get(`/runs/crons/${created.cron_id}/next?count=3`);
    assert.equal(res.status, 200);
    assert.equal(res.body.timezone, 'America/New_York');
    assert.equal(res.body.next.length, 3);
    const cron = (await get(`/runs/crons/${created.cron_id}`)).body;
    assert.equal(res.body.next[0].utc, cron.next_run_date);
    for (const n of res.body.next) {
      assert.match(n.local, /^\d{4}-\d{2}-\d{2}T12:30:00-0[45]:00$/);
      assert.equal(new Date(n.local).toISOString(), n.utc);
    }
    assert.equal((await get(`/runs/crons/${created.cron_id}/next`)).body.next.length, 5, 'default count');
    for (const q of ['count=0', 'count=1001', 'count=x']) assert.equal((await get(`/runs/crons/${created.cron_id}/next?${q}`)).status, 422, q);

    // Disabled: what it would fire if enabled now (test/api-schedules.test.ts covers `from` and DST marks).
    await patch(`/runs/crons/${created.cron_id}`, { enabled: false });
    const paused = (await get(`/runs/crons/${created.cron_id}/next?count=3`)).body;
    assert.equal(paused.enabled, false);
    assert.deepEqual(
      paused.next.map((n: any) => n.utc),
      res.body.next.map((n: any) => n.utc),
    );

    // Nothing past end_time.
    const ending = (await post('/runs/crons', { assistant_id: 'echo', schedule: '0 * * * *', input: {}, enabled: false })).body;
    // Whole UTC hours, whatever the server's TimeZone (date_trunc follows it otherwise).
    await stack.db.pool.query(
      `UPDATE crons SET enabled = true, next_run_date = date_trunc('hour', now(), 'UTC') + interval '1 hour', end_time = date_trunc('hour', now(),
        'UTC') + interval '150 minutes' WHERE cron_id = $1`,
      [ending.cron_id],
    );
    assert.equal((await get(`/runs/crons/${ending.cron_id}/next?count=10`)).body.next.length, 2);
  });

  test('select also arrives as JSON text or a comma-separated string', async () => {
    for (const select of ['["cron_id","enabled"]', 'cron_id,enabled']) {
      const res = await post('/runs/crons/search', { select, limit: 1 });
      assert.equal(res.status, 200, select);
      assert.deepEqual(Object.keys(res.body[0]).sort(), ['cron_id', 'enabled']);
    }
  });

  test('no request above made the api log an unhandled error (no 500s)', () => {
    const failures = stack.api.output.filter((l) => /unhandled error| 5\d\d /.test(l));
    assert.deepEqual(failures, []);
  });
});
