import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig, parseRetryAfter } from '../libs/agents/index.ts';
import { parseRetryPolicy, retryDelaySeconds, DEFAULT_RETRY_POLICY } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';
import { post, startProvider, writeConfig } from './support/provider.ts';
import type { Call } from './support/provider.ts';
import type { SpawnedApp } from './support/processes.ts';

// Flow control end to end (docs/flow-control.md): a fake model provider that rate-limits like a
// real one, real api and worker processes, the limits counted across workers.

describe('retry policy and Retry-After (pure)', () => {
  test('a policy: defaults for what it leaves out; each bad field named', () => {
    const ok = parseRetryPolicy({ max_attempts: 5 });
    assert.ok(ok.ok);
    assert.deepEqual(ok.policy, { ...DEFAULT_RETRY_POLICY, max_attempts: 5 });
    for (const [bad, field] of [
      [{ max_attempts: 0 }, 'max_attempts'],
      [{ max_attempts: 101 }, 'max_attempts'],
      [{ max_attempts: 2.5 }, 'max_attempts'],
      [{ initial_interval_seconds: -1 }, 'initial_interval_seconds'],
      [{ backoff_coefficient: 11 }, 'backoff_coefficient'],
      [{ initial_interval_seconds: 10, maximum_interval_seconds: 5 }, 'maximum_interval_seconds'],
      [{ non_retryable_errors: [''] }, 'non_retryable_errors'],
      [{ max_attempts: null }, 'max_attempts'],
    ] as const) {
      const parsed = parseRetryPolicy(bad);
      assert.equal(parsed.ok, false, JSON.stringify(bad));
      assert.ok(!parsed.ok && parsed.field.startsWith(field), `${JSON.stringify(bad)}: ${!parsed.ok && parsed.field}`);
    }
    const typo = parseRetryPolicy({ max_atempts: 3 });
    assert.ok(!typo.ok && /unknown key "max_atempts"/.test(typo.error));
  });

  test('backoff: full jitter under initial x coefficient^(n-1), capped by the maximum; Retry-After wins, capped too', () => {
    const p = { ...DEFAULT_RETRY_POLICY, initial_interval_seconds: 2, backoff_coefficient: 3, maximum_interval_seconds: 10 };
    assert.equal(
      retryDelaySeconds(p, 1, null, () => 0.999999),
      2 * 0.999999,
    );
    assert.equal(
      retryDelaySeconds(p, 2, null, () => 0.5),
      3,
    );
    assert.equal(
      retryDelaySeconds(p, 5, null, () => 1),
      10,
    );
    assert.equal(
      retryDelaySeconds(p, 1, null, () => 0),
      0,
    );
    assert.equal(
      retryDelaySeconds(p, 1, 7, () => 0),
      7,
    );
    assert.equal(
      retryDelaySeconds(p, 1, 3600, () => 0),
      10,
    );
  });

  test('Retry-After: seconds or an HTTP date; garbage ignored; a year capped', () => {
    const now = Date.parse('2026-12-07T10:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3);
    assert.equal(parseRetryAfter(' 120 ', now), 120);
    assert.equal(parseRetryAfter('Mon, 07 Dec 2026 10:00:30 GMT', now), 30);
    assert.equal(parseRetryAfter('Mon, 07 Dec 2026 09:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('31536000', now), 86_400);
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter('-5', now), null);
    assert.equal(parseRetryAfter('1.5', now), null);
    assert.equal(parseRetryAfter(undefined, now), null);
  });
});

describe('limits in agentcron.json', () => {
  const parse = (doc: unknown) => () => parseConfig('/srv/agentcron.json', JSON.stringify(doc), {});
  const graph = { url: 'http://127.0.0.1:1/run' };

  test('limits and the graphs they bind are read; each graph keeps its retry policy as written', () => {
    const { flow } = parseConfig(
      '/srv/agentcron.json',
      JSON.stringify({
        limits: { openai: { max_concurrency: 20, rate: { runs: 500, per_seconds: 60 } }, gpu: { max_concurrency: 2 } },
        graphs: { a: { ...graph, limits: ['openai', 'gpu', 'openai'], retry_policy: { max_attempts: 5 } }, b: graph },
      }),
      {},
    );
    assert.deepEqual(flow.limits.get('openai'), { name: 'openai', max_concurrency: 20, rate: { runs: 500, per_seconds: 60 } });
    assert.deepEqual(flow.graphs.get('a'), { limits: ['gpu', 'openai'], retry_policy: { max_attempts: 5 } });
    assert.equal(flow.graphs.get('b'), undefined);
  });

  test('a bad limit, or a graph naming an unknown one, is one line naming it', () => {
    assert.throws(
      parse({ limits: { x: { max_concurrency: 1 } }, graphs: { a: { ...graph, limits: ['openai'] } } }),
      /agentcron\.json: graph "a" names limit "openai", which "limits" does not define \(defined: x\)/,
    );
    assert.throws(parse({ limits: { openai: { max_concurrency: 0 } }, graphs: {} }), /limit "openai": max_concurrency must be an integer from 1/);
    assert.throws(parse({ limits: { openai: { max_concurrency: 2.5 } }, graphs: {} }), /limit "openai": max_concurrency must be an integer/);
    assert.throws(parse({ limits: { openai: { rate: { runs: 10 } } }, graphs: {} }), /limit "openai": rate.per_seconds must be an integer/);
    assert.throws(parse({ limits: { openai: { rate: { runs: 10, per_seconds: 60, burst: 1 } } }, graphs: {} }), /limit "openai": rate must be/);
    assert.throws(parse({ limits: { openai: {} }, graphs: {} }), /limit "openai": sets neither max_concurrency nor rate/);
    assert.throws(parse({ limits: { openai: { max_concurency: 3 } }, graphs: {} }), /limit "openai": unknown field "max_concurency"/);
    assert.throws(parse({ limits: [], graphs: {} }), /"limits" must be an object/);
    assert.throws(parse({ graphs: { a: { ...graph, limits: 'openai' } } }), /graph "a": limits must be a list of limit names/);
  });
});

describe('bad flow settings stop the process at startup', () => {
  test('a graph naming an unknown limit, or a bad retry_policy, exits 1 with one line naming it', async () => {
    const unknown = writeConfig({ limits: { gpu: { max_concurrency: 1 } }, graphs: { llm: { url: 'http://127.0.0.1:1/run', limits: ['openai'] } } });
    const badPolicy = writeConfig({ graphs: { llm: { url: 'http://127.0.0.1:1/run', retry_policy: { max_attempts: 0 } } } });
    try {
      // No database is reached: the graphs are checked first.
      const env = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };
      const worker = spawnApp('worker', { ...env, AGENTCRON_CONFIG: unknown.file });
      const api = spawnApp('api', { ...env, AGENTCRON_CONFIG: badPolicy.file });
      assert.equal(await worker.exited, 1);
      assert.deepEqual(worker.output, ['agentcron: agentcron.json: graph "llm" names limit "openai", which "limits" does not define (defined: gpu)']);
      assert.equal(await api.exited, 1);
      assert.equal(api.output.length, 1, api.output.join('\n'));
      assert.match(api.output[0], /^agentcron: agentcron\.json: graph "llm": retry_policy\.max_attempts /);
    } finally {
      unknown.cleanup();
      badPolicy.cleanup();
    }
  });
});

describe('a provider limited to 5 at once, failing every first attempt', () => {
  let db: TestDatabase;
  let api: SpawnedApp;
  const workers: SpawnedApp[] = [];
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let config: { file: string; cleanup: () => void };
  let url: string;

  before(async () => {
    provider = await startProvider({ maxConcurrent: 5, failFirst: true, delayMs: 150 });
    config = writeConfig({
      limits: { provider: { max_concurrency: 5 } },
      graphs: {
        llm: { url: provider.url, limits: ['provider'], retry_policy: { max_attempts: 3, initial_interval_seconds: 0.3, maximum_interval_seconds: 1 } },
      },
    });
    db = await createTestDatabase('flow_limit');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      HEARTBEAT_INTERVAL_SECONDS: '1',
      AGENTCRON_CONFIG: config.file,
      WORKER_HEARTBEAT_SECONDS: '10',
    };
    api = spawnApp('api', env);
    workers.push(spawnApp('worker', { ...env, WORKER_CONCURRENCY: '20' }), spawnApp('worker', { ...env, WORKER_CONCURRENCY: '20' }));
    await api.waitFor(/api listening on/);
    await Promise.all(workers.map((w) => w.waitFor(/worker started/)));
  });
  after(async () => {
    for (const p of [api, ...workers]) p?.kill('SIGTERM');
    await Promise.all([api, ...workers].filter(Boolean).map((p) => p.exited));
    await db?.drop();
    await provider?.close();
    config?.cleanup();
  });

  test('40 cron runs on 2 workers: never more than 5 at the provider, all succeed on the 2nd attempt, each ledger row keeps the 1st error', async () => {
    const crons: any[] = [];
    for (let i = 0; i < 40; i++) crons.push(await post(`${url}/runs/crons`, { assistant_id: 'llm', schedule: '0 0 1 1 *', input: { i } }));
    const ids = crons.map((c) => c.cron_id);
    const settled = await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `SELECT cron_id, status, attempt_log, error FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) AND status NOT IN ('enqueued', 'running')`,
          [ids],
        );
        return rows.length === 40 ? rows : null;
      },
      'the 40 occurrences to settle',
      60_000,
    );
    assert.ok(provider.peak() <= 5, `the provider saw ${provider.peak()} requests at once`);
    assert.equal(provider.calls.filter((c) => c.status === 429).length, 0, 'no request beyond the limit');
    for (const row of settled) {
      assert.equal(row.status, 'success', JSON.stringify(row));
      assert.equal(row.attempt_log.length, 1, 'one earlier attempt');
      assert.equal(row.attempt_log[0].attempt, 1);
      assert.equal(row.attempt_log[0].status, 'error');
      assert.match(row.attempt_log[0].error.message, /remote agent answered 503/);
      assert.ok(Date.parse(row.attempt_log[0].retry_at) >= Date.parse(row.attempt_log[0].ended_at));
    }
    // Two attempts per occurrence, the same idempotency key on both.
    const byKey = new Map<string, Call[]>();
    for (const c of provider.calls) byKey.set(c.key, [...(byKey.get(c.key) ?? []), c]);
    assert.equal(byKey.size, 40);
    for (const [key, calls] of byKey)
      assert.deepEqual(
        calls.map((c) => c.status),
        [503, 200],
        key,
      );
    // The cron says the final outcome only.
    const { rows: cronRows } = await db.pool.query(`SELECT last_run_status, last_run_error FROM cron_last_runs WHERE cron_id = ANY($1::uuid[])`, [ids]);
    for (const c of cronRows) assert.deepEqual(c, { last_run_status: 'success', last_run_error: null });
    // The slots went back: none held, nothing parked.
    assert.equal((await db.pool.query(`SELECT 1 FROM flow_limit_slots`)).rowCount, 0);
  });
});

describe('Retry-After pauses the limit', () => {
  let db: TestDatabase;
  let api: SpawnedApp;
  let worker: SpawnedApp;
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let config: { file: string; cleanup: () => void };
  let url: string;

  before(async () => {
    // The "slow" key's first attempt gets 429 + Retry-After 2; everything else succeeds.
    provider = await startProvider({
      maxConcurrent: 100,
      failFirst: false,
      delayMs: 20,
      retryAfter: (key, n) => (key.includes(slowKey.value) && n === 1 ? 2 : null),
    });
    config = writeConfig({
      limits: { provider: { max_concurrency: 10 } },
      graphs: { llm: { url: provider.url, limits: ['provider'] } },
    });
    db = await createTestDatabase('flow_pause');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1', AGENTCRON_CONFIG: config.file };
    api = spawnApp('api', env);
    worker = spawnApp('worker', env);
    await api.waitFor(/api listening on/);
    await worker.waitFor(/worker started/);
  });
  after(async () => {
    for (const p of [api, worker]) p?.kill('SIGTERM');
    await Promise.all([api, worker].filter(Boolean).map((p) => p.exited));
    await db?.drop();
    await provider?.close();
    config?.cleanup();
  });
  const slowKey = { value: '\u0000none' };

  test('the retry waits for Retry-After, and no other run of the limit starts before it either', async () => {
    // A cron created disabled has no run yet: its id is known before its first attempt.
    const slow = await post(`${url}/runs/crons`, { assistant_id: 'llm', schedule: '0 0 1 1 *', input: {}, enabled: false });
    slowKey.value = slow.cron_id;
    await post(`${url}/runs/crons/${slow.cron_id}/trigger`, {});
    const refused = await eventually(async () => provider.calls.find((c) => c.key.includes(slow.cron_id) && c.status === 429), 'the 429', 20_000);
    // Others of the limit, started once the worker has paused the limit on that 429 (a run it
    // started while the answer was still on its way to it was not yet paused: a loaded machine
    // let one start 110 ms after the 429).
    await eventually(
      async () => (await db.pool.query(`SELECT 1 FROM flow_limits WHERE name = 'provider' AND paused_until IS NOT NULL`)).rowCount === 1,
      'the limit paused',
      20_000,
      20,
    );
    const others: any[] = [];
    for (let i = 0; i < 3; i++) others.push(await post(`${url}/runs/crons`, { assistant_id: 'llm', schedule: '0 0 1 1 *', input: { i } }));
    const ids = [slow.cron_id, ...others.map((o) => o.cron_id)];
    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT 1 FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) AND status = 'success'`, [ids]);
        return rows.length === 4;
      },
      'all four runs',
      30_000,
    );
    const retry = provider.calls.find((c) => c.key.includes(slow.cron_id) && c.status === 200)!;
    assert.ok(retry.at - refused.ended >= 1900, `second attempt ${retry.at - refused.ended} ms after the 429 with Retry-After 2`);
    for (const o of others) {
      const call = provider.calls.find((c) => c.key.includes(o.cron_id))!;
      assert.ok(call.at - refused.ended >= 1900, `a run of the paused limit started ${call.at - refused.ended} ms after the Retry-After`);
    }
    const { rows } = await db.pool.query(`SELECT attempt_log FROM cron_occurrences WHERE cron_id = $1`, [slow.cron_id]);
    assert.match(rows[0].attempt_log[0].error.message, /answered 429/);
  });
});
