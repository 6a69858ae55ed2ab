import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { healthRoutes } from '../libs/http/health.ts';
import { checkHeartbeats, maintenanceSettings } from '../libs/maintenance/index.ts';
import { loadConfig } from '../libs/config/index.ts';
import type { HealthDeps } from '../libs/http/health.ts';
import { apiRegistry, backlogGrowth, observeDatabase, saturation } from '../libs/metrics/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { QUEUES, enqueueRuns } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, startTestQueue } from './support/engine.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// Saturation is visible (issue 18): deployment-wide queue latency, runs waiting by reason and lag
// to start, on /metrics and /health; /health's status code follows its body.

/** GET /health of a health router on this database, served in this process. */
async function health(deps: HealthDeps): Promise<{ status: number; body: any }> {
  const app = express();
  app.use(healthRoutes(deps));
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
    return { status: res.status, body: (await res.json()) as any };
  } finally {
    server.close();
  }
}

describe('/health in-process', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('saturation');
    boss = await startTestQueue(db.url);
  });
  after(async () => {
    await boss?.stop({ graceful: false, close: true });
    await db?.drop();
  });

  test('a failing queue check answers 503 with ok false: the status code follows the body', async () => {
    const deps: HealthDeps = { pool: db.pool, boss, heartbeatSeconds: 1 };
    let h = await health(deps);
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.body.ok, true);
    // What the queue check reads (pg-boss's queue table) is gone: the database answers, the queue does not.
    await db.pool.query(`ALTER TABLE pgboss.queue RENAME TO queue_away`);
    try {
      h = await health(deps);
      assert.equal(h.body.ok, false, JSON.stringify(h.body));
      assert.equal(h.body.database.ok, true);
      assert.equal(h.body.queue.ok, false);
      assert.equal(h.status, 503, JSON.stringify(h.body));
    } finally {
      await db.pool.query(`ALTER TABLE pgboss.queue_away RENAME TO queue`);
    }
    h = await health(deps);
    assert.equal(h.status, 200, JSON.stringify(h.body));
  });
});

describe('saturation figures', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('saturation_figures');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
  });
  after(async () => {
    await boss?.stop({ graceful: false, close: true });
    await db?.drop();
  });

  const settings = { pgbossSchema: 'pgboss', maxStartLagSeconds: 5, windowSeconds: 60 };

  async function pendingRun(
    fields: { waiting?: string | null; not_before_secs?: number | null; status?: string; started_secs_ago?: number; created_secs_ago?: number } = {},
  ): Promise<string> {
    const runId = randomUUID();
    const threadId = randomUUID();
    await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'u')`, [threadId]);
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, waiting, not_before, created_at, started_at)
       VALUES ($1, $2, $3, 'u', $4, $5, now() + make_interval(secs => $6), now() - make_interval(secs => $7), now() - make_interval(secs => $8))`,
      [
        runId,
        threadId,
        ECHO,
        fields.status ?? 'pending',
        fields.waiting ?? null,
        fields.not_before_secs ?? null,
        fields.created_secs_ago ?? 0,
        fields.started_secs_ago ?? null,
      ],
    );
    return runId;
  }

  test('queue latency, runs waiting by reason, lag to start percentiles, backlog growth; judged on /health (200 degraded) and served on /metrics', async () => {
    // Waiting: 2 for a worker (one due at once, one whose not_before passed), 1 retry, 3 for limit openai, 1 for limit anthropic;
    // not counted: one not due yet (a future not_before and no reason), one running.
    await pendingRun();
    await pendingRun({ not_before_secs: -5 });
    await pendingRun({ waiting: 'retry', not_before_secs: 60 });
    for (let i = 0; i < 3; i++) await pendingRun({ waiting: 'limit:openai' });
    await pendingRun({ waiting: 'limit:anthropic', not_before_secs: 30 });
    await pendingRun({ not_before_secs: 60 });
    // A manual run running for 2 s that was made 10 s before: lag 8 s.
    await pendingRun({ status: 'running', created_secs_ago: 12, started_secs_ago: 2 });

    // Ledger: first attempts started in the last minute with lags 1..9 s (scheduled at planned_for when jittered);
    // not counted: a second attempt, one started 5 minutes ago, one not started.
    const cron = randomUUID();
    for (let lag = 1; lag <= 9; lag++) {
      await db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, planned_for, status, trigger, enqueued_at, started_at, created_at)
         SELECT $1, at, planned, 'running', 'schedule', at, coalesce(planned, at) + make_interval(secs => $2), at
           FROM (SELECT now() - interval '50 seconds' + make_interval(secs => $2) AS at) t,
                LATERAL (SELECT CASE WHEN $2::int % 2 = 0 THEN t.at + interval '3 seconds' END AS planned) p`,
        [cron, lag],
      );
    }
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, trigger, started_at, created_at, attempt_log) VALUES
         ($1, now() - interval '20 minutes', 'running', 'schedule', now() - interval '10 seconds', now() - interval '2 minutes', '[{"attempt": 1}]'),
         ($1, now() - interval '7 minutes', 'success', 'schedule', now() - interval '5 minutes', now() - interval '7 minutes', NULL),
         ($1, now() - interval '8 minutes', 'enqueued', 'schedule', NULL, now() - interval '30 seconds', NULL)`,
      [cron],
    );

    // The queue: the oldest job could start 20 s ago; an older one waits behind its thread's active run (not counted).
    const [free, blocked, busy] = [randomUUID(), randomUUID(), randomUUID()];
    await enqueueRuns(boss, [
      { run_id: free, group: 'g-free' },
      { run_id: blocked, group: 'g-busy' },
      { run_id: busy, group: 'g-busy' },
    ]);
    await db.pool.query(`UPDATE pgboss.job SET created_on = now() - interval '20 seconds', start_after = now() - interval '20 seconds' WHERE id = $1`, [free]);
    await db.pool.query(`UPDATE pgboss.job SET created_on = now() - interval '90 seconds', start_after = now() - interval '90 seconds' WHERE id = $1`, [
      blocked,
    ]);
    await db.pool.query(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = $1`, [busy]);

    // Backlog samples of the last 6 minutes, growing (the growth itself is judged with the backlog now: 6).
    for (let i = 0; i <= 6; i++) {
      await db.pool.query(`INSERT INTO saturation_samples (slot, sampled_at, backlog) VALUES ($1, now() - make_interval(secs => $2), $3)`, [
        -1000 + i,
        360 - i * 60,
        i === 6 ? 5 : i,
      ]);
    }

    const s = await saturation(db.pool, settings);
    assert.deepEqual(s.waiting, { worker: 2, retry: 1, limit: { openai: 3, anthropic: 1 } });
    assert.ok(s.queue_latency_seconds >= 19 && s.queue_latency_seconds < 60, `queue latency ${s.queue_latency_seconds}`);
    assert.equal(s.start_lag.started, 10, JSON.stringify(s.start_lag));
    // Lags 1..9 and 8: p50 6, p95 and p99 near 9.
    assert.ok(Math.abs(s.start_lag.p50! - 6) < 0.6, JSON.stringify(s.start_lag));
    assert.ok(s.start_lag.p95! > 8.4 && s.start_lag.p95! < 9.6, JSON.stringify(s.start_lag));
    assert.equal(s.backlog.now, 6);
    assert.equal(s.backlog.grew_for_5_minutes, true, JSON.stringify(s.backlog));
    assert.equal(s.status, 'degraded');
    assert.ok(
      s.reasons.some((r) =>
        /^lag to start p95 \d+\.\d s over the last minute exceeds HEALTH_MAX_START_LAG_SECONDS \(5\) \(4 run\(s\) wait for a limit now\)$/.test(r),
      ),
      JSON.stringify(s.reasons),
    );
    assert.ok(
      s.reasons.some((r) => /head of the queue has waited \d+\.\d s/.test(r)),
      JSON.stringify(s.reasons),
    );
    assert.ok(s.reasons.includes('backlog grew for 5 minutes (1 -> 6)'), JSON.stringify(s.reasons));

    // /health: degraded is 200 and ok; the figures are in the body.
    const h = await health({ pool: db.pool, boss, heartbeatSeconds: 1, saturation: { ...settings, maxStartLagSeconds: 6 } });
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.body.ok, true);
    assert.equal(h.body.status, 'degraded');
    assert.ok(
      h.body.reasons.some((r: string) => r.startsWith('lag to start p95')),
      JSON.stringify(h.body.reasons),
    );
    assert.deepEqual(h.body.waiting, s.waiting);
    assert.equal(h.body.start_lag.started, 10);
    assert.ok(h.body.queue_latency_seconds > 0);

    // /metrics (the api's deployment registry): the same figures.
    observeDatabase({ pool: db.pool, boss, queues: Object.values(QUEUES), heartbeatSeconds: 1, saturation: settings });
    const text = await apiRegistry().metrics();
    const gauge = (re: RegExp) => Number(re.exec(text)?.[1]);
    assert.ok(gauge(/^agentcron_queue_latency_seconds (\S+)$/m) >= 19, text);
    assert.equal(gauge(/^agentcron_runs_waiting\{reason="limit",limit="openai"\} (\S+)$/m), 3);
    assert.equal(gauge(/^agentcron_runs_waiting\{reason="worker"\} (\S+)$/m), 2);
    assert.ok(gauge(/^agentcron_start_lag_seconds\{quantile="0.95"\} (\S+)$/m) > 8.4);
    assert.equal(gauge(/^agentcron_health_degraded (\S+)$/m), 1);

    // The heartbeat monitor warns on lag to start (not only on lag to enqueue).
    const findings = await checkHeartbeats({ pool: db.pool, settings: { ...maintenanceSettings(loadConfig({})), maxStartLagSeconds: 5 } });
    assert.ok(
      findings.warnings.some((w) =>
        new RegExp(
          String.raw`^lag to start p95 \d+\.\d s over the last minute exceeds HEALTH_MAX_START_LAG_SECONDS \(5\) ` +
            String.raw`\(4 run\(s\) wait for a limit now\): workers are behind`,
        ).test(w),
      ),
      JSON.stringify(findings.warnings),
    );
    assert.equal(findings.saturation?.status, 'degraded');
    assert.equal(findings.saturation?.start_lag.started, 10);

    // Under a higher threshold and with the backlog back down, the same deployment is ok.
    await db.pool.query(`DELETE FROM runs WHERE status = 'pending' AND waiting IS NULL`);
    const calm = await saturation(db.pool, { ...settings, maxStartLagSeconds: 60 });
    assert.equal(calm.backlog.grew_for_5_minutes, false);
    assert.deepEqual(calm.reasons, []);
    assert.equal(calm.status, 'ok');

    // The ledger scan is bounded by the sample taken before the window began: a first attempt made
    // 3 minutes ago that starts now is read when that sample saw a run waiting since before it.
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, trigger, started_at, created_at)
       VALUES ($1, now() - interval '3 minutes', 'running', 'schedule', now() - interval '5 seconds', now() - interval '3 minutes')`,
      [cron],
    );
    await db.pool.query(`UPDATE saturation_samples SET oldest_queued_at = now() - interval '4 minutes' WHERE slot = -995`);
    const late = await saturation(db.pool, { ...settings, maxStartLagSeconds: 61 });
    assert.equal(late.start_lag.started, 11, JSON.stringify(late.start_lag));
    assert.ok(late.start_lag.p99! > 100, JSON.stringify(late.start_lag));
  });

  test('backlog growth: only a backlog that never went down over 5 minutes of samples at most 90 s apart', () => {
    const at = (secondsAgo: number, backlog: number) => ({ at: 1_000_000 - secondsAgo * 1000, backlog });
    const now = at(0, 900);
    assert.deepEqual(backlogGrowth([at(300, 120), at(240, 300), at(180, 400), at(120, 600), at(60, 800)], now), { grew: true, from: 120 });
    // Too short a history, a dip, a gap, flat.
    assert.equal(backlogGrowth([at(240, 120), at(120, 600)], now).grew, false);
    assert.equal(backlogGrowth([at(300, 120), at(240, 300), at(180, 200), at(120, 600), at(60, 800)], now).grew, false);
    assert.equal(backlogGrowth([at(330, 120), at(60, 800)], now).grew, false);
    assert.equal(backlogGrowth([at(300, 900), at(200, 900), at(100, 900)], now).grew, false);
  });
});

describe('saturation with processes', () => {
  let stack: Stack;
  before(async () => {
    // A short lag window so the deployment is judged again within seconds once it has caught up.
    stack = await startStack('saturation_procs', {
      worker: true,
      env: { WORKER_CONCURRENCY: '2', HEALTH_MAX_START_LAG_SECONDS: '2', HEALTH_START_LAG_WINDOW_SECONDS: '8' },
    });
  });
  after(() => stack?.stop());

  const getHealth = async () => {
    const res = await fetch(`${stack.url}/health`);
    return { status: res.status, body: (await res.json()) as any };
  };

  test("2 worker slots and 40 runs of 3 s: /health 200 degraded naming lag to start, queue latency on the api's /metrics; ok again once drained", async () => {
    const first = await getHealth();
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.status, 'ok', JSON.stringify(first.body));

    // 40 stateless crons: each starts its first run when created (trigger create).
    const create = async (i: number) => {
      const res = await fetch(`${stack.url}/runs/crons`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ assistant_id: 'echo', schedule: '0 0 1 1 *', input: { sleep_ms: 3000, i } }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    for (let i = 0; i < 40; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => create(i + k)));

    const degraded = await eventually(
      async () => {
        const h = await getHealth();
        return h.body.status === 'degraded' &&
          h.body.reasons.some((r: string) => /^lag to start p95 \d+\.\d s over the last 8 s exceeds HEALTH_MAX_START_LAG_SECONDS \(2\)$/.test(r))
          ? h
          : null;
      },
      '/health degraded by lag to start',
      30_000,
      250,
    );
    assert.equal(degraded.status, 200, 'degraded still serves: 200');
    assert.equal(degraded.body.ok, true);
    assert.ok(degraded.body.start_lag.p95 > 2, JSON.stringify(degraded.body.start_lag));
    assert.ok(degraded.body.waiting.worker > 0, JSON.stringify(degraded.body.waiting));

    // The api executes no run; its /metrics says how long the head of the queue has waited.
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    const latency = Number(/^agentcron_queue_latency_seconds (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(latency > 0, `agentcron_queue_latency_seconds ${latency}`);
    assert.ok(Number(/^agentcron_runs_waiting\{reason="worker"\} (\S+)$/m.exec(metrics)?.[1]) > 0);
    assert.ok(Number(/^agentcron_start_lag_seconds\{quantile="0.95"\} (\S+)$/m.exec(metrics)?.[1]) > 2);

    // Drain: cancel what has not started yet; the deployment is ok again once the late starts leave the window.
    const { rows } = await stack.db.pool.query<{ run_id: string; thread_id: string }>(`SELECT run_id, thread_id FROM runs WHERE status = 'pending'`);
    assert.ok(rows.length > 0);
    for (const r of rows) {
      const res = await fetch(`${stack.url}/threads/${r.thread_id}/runs/${r.run_id}/cancel`, { method: 'POST' });
      assert.ok(res.status === 202 || res.status === 409, `cancel ${res.status}`);
    }
    const ok = await eventually(
      async () => {
        const h = await getHealth();
        return h.body.status === 'ok' ? h : null;
      },
      '/health ok once drained',
      30_000,
      250,
    );
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.reasons, []);
    assert.equal(ok.body.queue_latency_seconds, 0);
  });
});
