import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clearOfBoundary, eventually } from './support/engine.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// GET /runs/crons/{cron_id}/stats and GET /assistants/{assistant_id}/stats: what the daily_stats
// job wrote, through HTTP on real processes (an api and a worker). Alice's crons run (created
// runs start at once; no scheduler needed), the job runs through the admin API, and the figures
// come back per cron and per assistant, owner-scoped like every other route.

const KEYS = { alice: 'alice-stats-key', bob: 'bob-stats-key', admin: 'admin-stats-key' } as const;
type Who = keyof typeof KEYS | 'nobody';

describe('daily statistics through the API', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack('stats', {
      worker: true,
      env: { AUTH_MODE: 'api_key', AUTH_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`, ADMIN_API_KEYS: KEYS.admin },
    });
    // Today's row and the period are cut by the day: not across midnight.
    await clearOfBoundary(stack.db.pool, 'day', 20);
  });
  after(() => stack?.stop());

  async function call(who: Who, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (who !== 'nobody') headers['x-api-key'] = KEYS[who];
    const res = await fetch(`${stack.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
  async function ok(who: Who, method: string, path: string, body?: unknown): Promise<any> {
    const r = await call(who, method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${who} ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  test('per cron and per assistant, days and totals; others see 404, bad input 422, a default assistant only admins', async () => {
    const pool = stack.db.pool;
    const assistant = (await ok('alice', 'POST', '/assistants', { graph_id: 'echo', name: 'stats' })).assistant_id as string;
    // A yearly schedule: each cron's only run is the one its creation starts.
    const cron = (body: Record<string, unknown>) => ok('alice', 'POST', '/runs/crons', { assistant_id: assistant, schedule: '0 0 1 1 *', ...body });
    const good = (await cron({ input: { hello: 'stats' } })).cron_id as string;
    const bad = (await cron({ input: { error: 'boom' } })).cron_id as string;
    // A run no cron started, on a kept thread of the same assistant.
    const thread = (await ok('alice', 'POST', '/threads', {})).thread_id as string;
    await ok('alice', 'POST', `/threads/${thread}/runs/wait`, { assistant_id: assistant, input: { direct: true } });
    for (const [id, status] of [
      [good, 'success'],
      [bad, 'error'],
    ]) {
      await eventually(async () => (await ok('alice', 'GET', `/runs/crons/${id}/occurrences`))[0]?.status === status, `${id} ${status}`, 15_000, 100);
    }

    // Before the job has run: the period, no days, zero totals.
    const empty = await ok('alice', 'GET', `/runs/crons/${good}/stats`);
    assert.deepEqual(empty.days, []);
    assert.deepEqual(empty.totals, { runs: 0, successes: 0, failures: 0, timeouts: 0, interrupted: 0, skipped: 0 });

    const job = await call('admin', 'POST', '/admin/maintenance/daily_stats/trigger?wait_seconds=60');
    assert.equal(job.status, 200, JSON.stringify(job.body));
    assert.equal(job.body.maintenance_job.last_run_status, 'success');

    // Older days, as the job would have left them: 3 days ago (in a week) and 10 days ago (not).
    const { rows } = await pool.query<{ today: string }>(`SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS today`);
    const today = rows[0].today;
    const daysAgo = (n: number) => new Date(Date.parse(`${today}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
    for (const [n, runs] of [
      [3, 5],
      [10, 7],
    ]) {
      await pool.query(
        `INSERT INTO run_daily_stats (day, scope, scope_id, timezone, runs, successes, failures, timeouts, interrupted, skipped, p50_duration_ms,
          p95_duration_ms, p95_fire_lag_ms)
         VALUES ($1, 'cron', $2, 'UTC', $3, $3 - 1, 1, 0, 0, 2, 10, 20, 5)`,
        [daysAgo(n), good, runs],
      );
    }

    const week = await ok('alice', 'GET', `/runs/crons/${good}/stats`);
    assert.equal(week.cron_id, good);
    assert.equal(week.timezone, 'UTC');
    assert.equal(week.to, today);
    assert.equal(week.from, daysAgo(6));
    assert.deepEqual(
      week.days.map((d: any) => d.day),
      [today, daysAgo(3)],
      'newest first, 7 days',
    );
    const [todays] = week.days;
    assert.equal(todays.timezone, 'UTC');
    assert.deepEqual([todays.runs, todays.successes, todays.failures, todays.timeouts, todays.interrupted, todays.skipped], [1, 1, 0, 0, 0, 0]);
    assert.equal(typeof todays.p50_duration_ms, 'number');
    assert.ok(todays.p95_duration_ms >= todays.p50_duration_ms);
    assert.equal(todays.p95_fire_lag_ms, null, 'a created run is no scheduled occurrence: no fire lag');
    assert.ok(!Number.isNaN(Date.parse(todays.computed_at)));
    assert.deepEqual(week.totals, { runs: 6, successes: 5, failures: 1, timeouts: 0, interrupted: 0, skipped: 2 });

    const month = await ok('alice', 'GET', `/runs/crons/${good}/stats?days=30`);
    assert.deepEqual(
      month.days.map((d: any) => d.day),
      [today, daysAgo(3), daysAgo(10)],
    );
    assert.equal(month.totals.runs, 13);
    const one = await ok('alice', 'GET', `/runs/crons/${good}/stats?days=1`);
    assert.deepEqual([one.from, one.to, one.days.length], [today, today, 1]);

    const failing = await ok('alice', 'GET', `/runs/crons/${bad}/stats`);
    assert.deepEqual([failing.days[0].runs, failing.days[0].successes, failing.days[0].failures], [1, 0, 1]);

    // The assistant: its crons' occurrences plus its run no cron started.
    const mine = await ok('alice', 'GET', `/assistants/${assistant}/stats`);
    assert.equal(mine.assistant_id, assistant);
    assert.deepEqual([mine.days.length, mine.days[0].day], [1, today]);
    assert.deepEqual([mine.days[0].runs, mine.days[0].successes, mine.days[0].failures], [3, 2, 1]);
    assert.deepEqual(mine.totals, { runs: 3, successes: 2, failures: 1, timeouts: 0, interrupted: 0, skipped: 0 });

    // Owner-scoped: Bob's view of Alice's cron and assistant is the view of missing ones.
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const path of [`/runs/crons/${good}/stats`, `/runs/crons/${missing}/stats`, '/runs/crons/not-a-uuid/stats']) {
      const r = await call('bob', 'GET', path);
      assert.deepEqual([r.status, r.body.detail], [404, 'Cron not found'], path);
    }
    for (const path of [`/assistants/${assistant}/stats`, `/assistants/${missing}/stats`, '/assistants/no_such_graph/stats']) {
      const r = await call('bob', 'GET', path);
      assert.deepEqual([r.status, r.body.detail], [404, 'Assistant not found'], path);
    }
    assert.equal((await call('nobody', 'GET', `/runs/crons/${good}/stats`)).status, 401);

    for (const q of ['days=0', 'days=367', 'days=abc', 'days=1.5']) {
      for (const path of [`/runs/crons/${good}/stats?${q}`, `/assistants/${assistant}/stats?${q}`]) {
        const r = await call('alice', 'GET', path);
        assert.equal(r.status, 422, `${path}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.detail, /^query\.days: /);
      }
    }

    // A graph's default assistant counts every user's runs: admins only.
    const shared = await call('alice', 'GET', '/assistants/echo/stats');
    assert.equal(shared.status, 403);
    assert.match(shared.body.detail, /default assistant of graph echo/);
    const asAdmin = await ok('admin', 'GET', '/assistants/echo/stats?days=2');
    assert.deepEqual(asAdmin.days, []);

    // Documented.
    const doc = await ok('nobody', 'GET', '/openapi.json');
    assert.ok(doc.paths['/runs/crons/{cron_id}/stats'].get);
    assert.ok(doc.paths['/assistants/{assistant_id}/stats'].get);
  });
});
