import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { jitterOffsetMs, plannedStart } from '../libs/firing/index.ts';
import { resolveRetryPolicy } from '../libs/runs/retry.ts';
import { DEFAULT_RETRY_POLICY, parseRetryPolicy } from '../libs/runs/retry-policy.ts';
import { eventually } from './support/engine.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// Flow control on the API side (docs/flow-control.md): retry_policy on crons (and config.retry_policy
// / config.max_concurrency on crons and assistants), jitter_seconds and what it does to firing
// (with a scheduler and a worker as processes), and the answers' new fields.

describe('jitter offset (pure)', () => {
  test('the same (cron_id, scheduled_for) always gives the same offset, in [0, jitter)', () => {
    const cron = randomUUID();
    const at = new Date('2030-01-01T09:00:00Z');
    const first = jitterOffsetMs(cron, at, 20);
    for (let i = 0; i < 5; i++) assert.equal(jitterOffsetMs(cron, new Date(at.getTime()), 20), first);
    assert.equal(jitterOffsetMs(cron.toUpperCase(), at, 20), first, 'the id is read case-insensitively');
    assert.equal(plannedStart(cron, at, 20).getTime(), at.getTime() + first);
    assert.equal(jitterOffsetMs(cron, at, 0), 0);
    assert.equal(plannedStart(cron, at, 0), at);

    const offsets = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const o = jitterOffsetMs(randomUUID(), at, 8);
      assert.ok(Number.isInteger(o) && o >= 0 && o < 8000, `offset ${o} out of [0, 8000)`);
      offsets.add(Math.floor(o / 1000));
    }
    assert.equal(offsets.size, 8, 'every second of the window is used');
    // Another occurrence of the same cron lands elsewhere (not one fixed offset per cron).
    const perOccurrence = new Set(Array.from({ length: 20 }, (_, i) => jitterOffsetMs(cron, new Date(at.getTime() + i * 60_000), 3600)));
    assert.ok(perOccurrence.size > 15);
  });

  test('parseRetryPolicy fills the defaults and names the field at fault', () => {
    assert.deepEqual(parseRetryPolicy({}), { ok: true, policy: { ...DEFAULT_RETRY_POLICY } });
    assert.deepEqual(parseRetryPolicy({ max_attempts: 5, initial_interval_seconds: 600 }), {
      ok: true,
      policy: { max_attempts: 5, initial_interval_seconds: 600, backoff_coefficient: 2, maximum_interval_seconds: 600, non_retryable_errors: [] },
    });
    assert.deepEqual(parseRetryPolicy({ max_attempts: 0 }), { ok: false, field: 'max_attempts', error: 'must be at least 1 (1 = no retry)' });
    assert.match((parseRetryPolicy({ maxAttempts: 3 }) as { error: string }).error, /^unknown key "maxAttempts"/);
    assert.equal((parseRetryPolicy({ initial_interval_seconds: 5, maximum_interval_seconds: 2 }) as { field: string }).field, 'maximum_interval_seconds');
    // The worker's resolution reads the same schema: a cron's policy wins whole over its config's.
    assert.equal(resolveRetryPolicy([{ max_attempts: 2 }, { max_attempts: 9 }]).max_attempts, 2);
    assert.equal(resolveRetryPolicy([undefined, { max_attempts: 9 }]).max_attempts, 9);
  });
});

describe('flow control through the API', () => {
  let stack: Stack;
  let url: string;
  let sdk: InstanceType<typeof Client2>;

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
  const FAR = '0 0 1 1 *';

  before(async () => {
    stack = await startStack('flow_api', {
      scheduler: true,
      worker: true,
      env: { CRON_ALLOW_SECONDS_SCHEDULE: 'true', AGENTCRON_CONFIG: fileURLToPath(new URL('./fixtures/flaky.json', import.meta.url)) },
    });
    url = stack.url;
    sdk = new Client2({ apiUrl: url, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  after(() => stack?.stop());

  test('bad retry_policy, jitter_seconds and config flow keys are 422s naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ retry_policy: { max_attempts: 3, max_attempt: 2 } }, /^body\.retry_policy: unknown key "max_attempt"/],
      [{ retry_policy: { max_attempts: 0 } }, /^body\.retry_policy\.max_attempts: must be at least 1/],
      [{ retry_policy: { max_attempts: 101 } }, /^body\.retry_policy\.max_attempts: must be at most 100/],
      [{ retry_policy: { max_attempts: 2.5 } }, /^body\.retry_policy\.max_attempts: expected an integer/],
      [{ retry_policy: { initial_interval_seconds: -1 } }, /^body\.retry_policy\.initial_interval_seconds: must be greater than 0/],
      [{ retry_policy: { initial_interval_seconds: 86401 } }, /^body\.retry_policy\.initial_interval_seconds: must be at most 86400/],
      [{ retry_policy: { backoff_coefficient: 0.5 } }, /^body\.retry_policy\.backoff_coefficient: must be at least 1/],
      [{ retry_policy: { initial_interval_seconds: 10, maximum_interval_seconds: 5 } }, /^body\.retry_policy\.maximum_interval_seconds: must be at least/],
      [{ retry_policy: { non_retryable_errors: [''] } }, /^body\.retry_policy\.non_retryable_errors\.0: must not be empty/],
      [{ retry_policy: 'often' }, /^body\.retry_policy: expected an object/],
      [{ jitter_seconds: 3601 }, /^body\.jitter_seconds: must be at most 3600/],
      [{ jitter_seconds: -1 }, /^body\.jitter_seconds: must be at least 0/],
      [{ jitter_seconds: 1.5 }, /^body\.jitter_seconds: expected an integer/],
      [{ config: { retry_policy: { max_attempts: 0 } } }, /^body\.config\.retry_policy\.max_attempts: must be at least 1/],
      [{ config: { retry_policy: { tries: 3 } } }, /^body\.config\.retry_policy: unknown key "tries"/],
      [{ config: { max_concurrency: 0 } }, /^body\.config\.max_concurrency: must be between 1 and 10000/],
      [{ config: { max_concurrency: 2.5 } }, /^body\.config\.max_concurrency: expected an integer/],
    ];
    const { body: cron } = await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: FAR, enabled: false });
    const thread = (await call('POST', '/threads', {})).body.thread_id;
    for (const [extra, detail] of cases) {
      for (const [method, path, base] of [
        ['POST', '/runs/crons', { assistant_id: 'echo', schedule: FAR }],
        ['POST', `/threads/${thread}/runs/crons`, { assistant_id: 'echo', schedule: FAR }],
        ['PATCH', `/runs/crons/${cron.cron_id}`, {}],
      ] as const) {
        const res = await call(method, path, { ...base, ...(extra as object) });
        assert.equal(res.status, 422, `${method} ${path} ${JSON.stringify(extra)}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.detail, detail, `${method} ${path} ${JSON.stringify(extra)}`);
      }
    }
    // Nothing was created by the refused bodies: only the disabled cron above.
    assert.equal((await call('POST', '/runs/crons/count', {})).body, 1);
    // The OpenAPI document carries the same rules.
    const doc = (await call('GET', '/openapi.json')).body;
    assert.equal(doc.components.schemas.RetryPolicy.properties.max_attempts.maximum, 100);
    assert.equal(doc.components.schemas.RetryPolicy.additionalProperties, false);
    assert.equal(doc.components.schemas.CronCreate.properties.jitter_seconds.maximum, 3600);
    assert.ok(doc.components.schemas.CronOccurrence.properties.attempt_log);
    assert.ok(doc.components.schemas.Run.properties.waiting);
    // The SDK's config path is checked the same way (it cannot send retry_policy itself).
    await assert.rejects(
      sdk.crons.create('echo', { schedule: FAR, config: { retry_policy: { max_attempts: 101 } } as any }),
      /config\.retry_policy\.max_attempts/,
    );
  });

  test('assistants: config.max_concurrency and config.retry_policy are checked on create and update', async () => {
    for (const [config, detail] of [
      [{ max_concurrency: 0 }, /^body\.config\.max_concurrency: must be between 1 and 10000, got 0/],
      [{ max_concurrency: 10001 }, /^body\.config\.max_concurrency: /],
      [{ max_concurrency: '5' }, /^body\.config\.max_concurrency: expected an integer/],
      [{ retry_policy: { max_attempts: 0 } }, /^body\.config\.retry_policy\.max_attempts: /],
      [{ retry_policy: { jitter: 1 } }, /^body\.config\.retry_policy: unknown key "jitter"/],
    ] as const) {
      const res = await call('POST', '/assistants', { graph_id: 'echo', config });
      assert.equal(res.status, 422, JSON.stringify(config));
      assert.match(res.body.detail, detail);
    }
    const ok = await call('POST', '/assistants', {
      graph_id: 'echo',
      config: { max_concurrency: 5, retry_policy: { max_attempts: 4, non_retryable_errors: ['ValueError'] } },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.config.retry_policy, { max_attempts: 4, non_retryable_errors: ['ValueError'] });
    const bad = await call('PATCH', `/assistants/${ok.body.assistant_id}`, { config: { max_concurrency: 0 } });
    assert.equal(bad.status, 422);
    assert.match(bad.body.detail, /^body\.config\.max_concurrency: /);
    const patched = await call('PATCH', `/assistants/${ok.body.assistant_id}`, { config: { max_concurrency: 10000 } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
  });

  test('retry_policy round trip: stored in the payload, carried by every run as kwargs.retry_policy, replaced and cleared by PATCH', async () => {
    const policy = { max_attempts: 5, initial_interval_seconds: 2, backoff_coefficient: 3, maximum_interval_seconds: 60, non_retryable_errors: ['AuthError'] };
    const created = await call('POST', '/runs/crons', {
      assistant_id: 'echo',
      schedule: FAR,
      input: { n: 1 },
      retry_policy: policy,
      jitter_seconds: 30,
      on_run_completed: 'keep',
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const first = created.body;
    assert.deepEqual(first.kwargs.retry_policy, policy, "the first run's kwargs");
    for (const key of ['attempts', 'attempt_log', 'waiting', 'not_before']) assert.ok(key in first, `the Run answer has ${key}`);
    assert.equal(first.waiting, null);
    assert.deepEqual(first.attempt_log, []);
    const cronId = first.cron_id;

    const cron = (await call('GET', `/runs/crons/${cronId}`)).body;
    assert.deepEqual(cron.payload.retry_policy, policy);
    assert.equal(cron.jitter_seconds, 30);
    const selected = (await call('POST', '/runs/crons/search', { select: ['cron_id', 'jitter_seconds'], limit: 1000 })).body.find(
      (c: any) => c.cron_id === cronId,
    );
    assert.deepEqual(selected, { cron_id: cronId, jitter_seconds: 30 });

    // A trigger's run carries it too (and starts at once: no jitter).
    const triggered = await call('POST', `/runs/crons/${cronId}/trigger`);
    assert.equal(triggered.status, 200);
    assert.deepEqual(triggered.body.kwargs.retry_policy, policy);

    // The run ends; its answer and the ledger say one attempt, nothing waiting.
    const ended = await eventually(async () => {
      const r = await call('GET', `/threads/${first.thread_id}/runs/${first.run_id}`);
      return r.body.status === 'success' ? r.body : null;
    }, 'the first run to end');
    assert.equal(ended.attempts, 1);
    assert.deepEqual(ended.attempt_log, []);
    assert.equal(ended.waiting, null);
    const listed = await call('GET', `/threads/${first.thread_id}/runs?select=${encodeURIComponent(JSON.stringify(['run_id', 'attempts', 'waiting']))}`);
    assert.deepEqual(listed.body, [{ run_id: first.run_id, attempts: 1, waiting: null }], 'the new fields can be selected');
    const ledger = (await call('GET', `/runs/crons/${cronId}/occurrences`)).body;
    assert.equal(ledger.length, 2);
    for (const row of ledger) {
      assert.equal(row.planned_for, row.scheduled_for, `${row.trigger}: no jitter on a create-run or a trigger`);
      for (const key of ['attempts', 'attempt_log', 'waiting', 'not_before']) assert.ok(key in row, `the ledger row has ${key}`);
    }
    const created_row = ledger.find((r: any) => r.trigger === 'create');
    assert.equal(created_row.attempts, 1);

    const replaced = await call('PATCH', `/runs/crons/${cronId}`, { retry_policy: { max_attempts: 1 } });
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.body.payload.retry_policy, { max_attempts: 1 }, 'replaced whole: left-out fields take the defaults');
    assert.deepEqual(replaced.body.payload.input, { n: 1 }, 'other payload fields stay');
    assert.equal(replaced.body.jitter_seconds, 30, 'jitter stays when not sent');
    const cleared = await call('PATCH', `/runs/crons/${cronId}`, { retry_policy: null, jitter_seconds: 0 });
    assert.equal(cleared.status, 200);
    assert.equal('retry_policy' in cleared.body.payload, false, 'null clears it');
    assert.equal(cleared.body.jitter_seconds, 0);

    // What the LangGraph SDK can send: the policy inside config (kept in the run's config).
    const viaSdk: any = await sdk.crons.create('echo', { schedule: FAR, config: { retry_policy: { max_attempts: 7 } } as any });
    assert.deepEqual(viaSdk.kwargs.config.retry_policy, { max_attempts: 7 });
  });

  test("a retried occurrence: while it waits, the run and its ledger row say retry until not_before; then 2 attempts, the first one's error kept", async () => {
    const created = await call('POST', '/runs/crons', {
      assistant_id: 'flaky',
      schedule: FAR,
      input: { n: 2 },
      on_run_completed: 'keep',
      retry_policy: { max_attempts: 3, initial_interval_seconds: 0.5 },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const run = created.body;
    const ledgerRow = async () => (await call('GET', `/runs/crons/${run.cron_id}/occurrences`)).body[0];
    const runAnswer = async () => (await call('GET', `/threads/${run.thread_id}/runs/${run.run_id}`)).body;

    // The first attempt failed (RetryableError, Retry-After 1 s): pending again, waiting for its retry.
    const waitingRun = await eventually(async () => {
      const r = await runAnswer();
      return r.waiting === 'retry' ? r : r.status === 'success' ? Promise.reject(new Error('the retry wait was never seen')) : null;
    }, 'the run to wait for its retry');
    assert.equal(waitingRun.status, 'pending');
    assert.equal(waitingRun.attempts, 1, 'one attempt made, the next not started');
    assert.equal(waitingRun.attempt_log.length, 1);
    assert.ok(waitingRun.not_before && new Date(waitingRun.not_before).getTime() > new Date(waitingRun.attempt_log[0].ended_at).getTime());
    const waitingRow = await ledgerRow();
    if (waitingRow.status === 'enqueued') {
      assert.equal(waitingRow.waiting, 'retry');
      assert.equal(waitingRow.not_before, waitingRun.not_before);
      assert.equal(waitingRow.attempts, 1);
    }

    const ended = await eventually(async () => {
      const r = await runAnswer();
      return r.status === 'success' ? r : null;
    }, 'the second attempt to succeed');
    assert.equal(ended.attempts, 2);
    assert.equal(ended.waiting, null);
    assert.equal(ended.not_before, null);
    assert.equal(ended.attempt_log[0].error.error, 'RetryableError');
    assert.match(ended.attempt_log[0].error.message, /429/);
    const row = await ledgerRow();
    assert.equal(row.status, 'success');
    assert.equal(row.attempts, 2);
    assert.equal(row.waiting, null);
    assert.deepEqual(
      row.attempt_log.map((a: any) => [a.attempt, a.status, a.error?.error]),
      [[1, 'error', 'RetryableError']],
    );
  });

  test('next shows each occurrence planned start (scheduled_for + its offset); preview shows the window', async () => {
    const { body: cron } = await call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 9 * * *', enabled: false, jitter_seconds: 600 });
    const next = (await call('GET', `/runs/crons/${cron.cron_id}/next?count=3`)).body;
    assert.equal(next.jitter_seconds, 600);
    assert.equal(next.next.length, 3);
    for (const t of next.next) {
      const at = new Date(t.utc);
      assert.equal(t.planned_for, plannedStart(cron.cron_id, at, 600).toISOString());
      const offset = new Date(t.planned_for).getTime() - at.getTime();
      assert.ok(offset >= 0 && offset < 600_000);
    }
    const preview = (await call('POST', '/runs/crons/preview', { schedule: '0 9 * * *', count: 2, jitter_seconds: 60 })).body;
    assert.equal(preview.jitter_seconds, 60);
    assert.equal(preview.next[0].planned_for, null, 'no cron id yet: the offset is not known');
    const plain = (await call('POST', '/runs/crons/preview', { schedule: '0 9 * * *', count: 1 })).body;
    assert.equal(plain.next[0].planned_for, plain.next[0].utc);
    assert.equal((await call('POST', '/runs/crons/preview', { schedule: '0 9 * * *', jitter_seconds: 4000 })).status, 422);
  });

  test(
    'jitter with processes: 50 crons on one seconds schedule start spread over [scheduled_for, +jitter), each at its computed ' + 'offset, each once',
    async () => {
      const JITTER = 4;
      const N = 50;
      const tag = randomUUID();
      // Created disabled (a cron's create-run starts at once, without jitter), then enabled together.
      const ids: string[] = [];
      for (let i = 0; i < N; i++) {
        const res = await call('POST', '/runs/crons', {
          assistant_id: 'echo',
          schedule: '*/5 * * * * *',
          enabled: false,
          jitter_seconds: JITTER,
          on_run_completed: 'keep',
          metadata: { tag },
          // Only the first due occurrence fires after a pause; the test stops them after one each.
          missed_policy: 'latest',
        });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        ids.push(res.body.cron_id);
      }
      assert.equal((await call('POST', '/runs/crons/bulk', { action: 'enable', metadata: { tag } })).body.count, N);

      // Every cron's first scheduled occurrence has started (its run claimed by the worker).
      const started = await eventually(
        async () => {
          const { rows } = await stack.db.pool.query<{ cron_id: string; n: number }>(
            `SELECT cron_id, count(*)::int AS n FROM cron_occurrences
            WHERE cron_id = ANY($1::uuid[]) AND trigger = 'schedule' AND started_at IS NOT NULL GROUP BY cron_id`,
            [ids],
          );
          return rows.length === N ? rows : null;
        },
        'every cron to have started a scheduled occurrence',
        25_000,
        200,
      );
      assert.equal(started.length, N);
      assert.equal((await call('POST', '/runs/crons/bulk', { action: 'disable', metadata: { tag } })).body.count, N);

      const offsets: number[] = [];
      for (const id of ids) {
        const ledger = (await call('GET', `/runs/crons/${id}/occurrences?limit=100`)).body;
        const scheduled = ledger.filter((r: any) => r.trigger === 'schedule' && r.status !== 'skipped');
        assert.ok(scheduled.length >= 1);
        for (const row of scheduled) {
          const at = new Date(row.scheduled_for);
          const planned = new Date(row.planned_for);
          const offset = planned.getTime() - at.getTime();
          assert.ok(offset >= 0 && offset < JITTER * 1000, `planned_for ${row.planned_for} outside [${row.scheduled_for}, +${JITTER}s)`);
          assert.equal(row.planned_for, plannedStart(id, at, JITTER).toISOString(), 'planned_for is the offset computed again');
          if (row.started_at) {
            assert.ok(new Date(row.started_at).getTime() >= planned.getTime(), `started ${row.started_at} before its planned start ${row.planned_for}`);
          }
          offsets.push(offset);
        }
      }
      // Spread over the window, not one instant.
      assert.ok(new Set(offsets).size >= N * 0.9, `${new Set(offsets).size} distinct offsets of ${offsets.length}`);
      assert.ok(Math.max(...offsets) - Math.min(...offsets) > JITTER * 1000 * 0.5, 'the offsets cover most of the window');

      // Each occurrence has one run, claimed once (pg-boss attempt 1), and its job waited for the planned start.
      const { rows: runs } = await stack.db.pool.query<{ cron_id: string; scheduled_for: Date; attempts: number; started_at: Date | null; n: number }>(
        `SELECT r.cron_id, r.scheduled_for, r.attempts, r.started_at, count(*) OVER (PARTITION BY r.cron_id, r.scheduled_for)::int AS n
         FROM runs r JOIN cron_occurrences o ON o.run_id = r.run_id
        WHERE r.cron_id = ANY($1::uuid[]) AND o.trigger = 'schedule'`,
        [ids],
      );
      assert.ok(runs.length >= N);
      for (const r of runs) {
        assert.equal(r.n, 1, 'one run per occurrence');
        if (r.started_at) assert.equal(r.attempts, 1, 'claimed once');
      }
    },
  );
});
