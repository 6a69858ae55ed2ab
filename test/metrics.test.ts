import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// GET /metrics in Prometheus format, from real processes while a cron fires: every series the
// issue names is there, and the counts move between two scrapes. Split processes: the api serves
// the deployment's gauges (read from the database) and its own process metrics; the scheduler
// and worker serve what they count on METRICS_PORT. `npm start` (apps/all) serves it all on one.

type Labels = Record<string, string>;

/** The value of one sample (the first whose labels include `labels`), or undefined. */
function sample(text: string, name: string, labels: Labels = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const declared = (text: string, name: string) => text.includes(`# TYPE ${name} `);

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function createCron(api: string): Promise<string> {
  const res = await fetch(`${api}/runs/crons`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ assistant_id: 'echo', schedule: '*/2 * * * * *', input: { hello: 'metrics' } }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { cron_id: string }).cron_id;
}

async function successes(db: TestDatabase, cronId: string, atLeast: number): Promise<void> {
  await eventually(
    async () => (await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND status = 'success'`, [cronId])).rows[0].n >= atLeast,
    `${atLeast} successful occurrences`,
    30_000,
    100,
  );
}

const BASE_ENV = { HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1', CRON_POLL_INTERVAL_SECONDS: '1', CRON_ALLOW_SECONDS_SCHEDULE: 'true', QUEUE_SUPERVISE_INTERVAL_SECONDS: '1' };

async function stopAll(procs: SpawnedApp[]): Promise<void> {
  for (const p of procs) p.kill('SIGTERM');
  assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), procs.map(() => 0));
}

describe('/metrics', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('metrics');
  });
  after(() => db?.drop());

  test('split processes: the api serves the deployment gauges, scheduler and worker their counters on METRICS_PORT; values move as a cron fires', async () => {
    const [apiPort, schedulerPort, workerPort] = [await freePort(), await freePort(), await freePort()];
    // The monitor runs only when triggered below: its per-minute occurrence would add an execution
    // (and be 'running', without a last outcome, for a moment) whenever a minute boundary fell
    // within this test.
    const env = { ...BASE_ENV, DATABASE_URL: db.url, PORT: String(apiPort), MAINTENANCE_HEARTBEAT_MONITOR_SCHEDULE: '0 0 1 1 *' };
    const api = spawnApp('api', env);
    await api.waitFor(/api listening on/);
    const scheduler = spawnApp('scheduler', { ...env, METRICS_PORT: String(schedulerPort) });
    const worker = spawnApp('worker', { ...env, METRICS_PORT: String(workerPort) });
    await Promise.all([scheduler.waitFor(/scheduler started/), worker.waitFor(/worker started/)]);
    const urls = { api: `http://127.0.0.1:${apiPort}`, scheduler: `http://127.0.0.1:${schedulerPort}`, worker: `http://127.0.0.1:${workerPort}` };
    try {
      const first = { scheduler: await scrape(urls.scheduler), worker: await scrape(urls.worker) };
      const cronId = await createCron(urls.api);
      // Creating the cron runs it once (the API enqueues that run); the scheduler fires the rest.
      await successes(db, cronId, 4);
      const trigger = await fetch(`${urls.api}/admin/maintenance/heartbeat_monitor/trigger?wait_seconds=60`, { method: 'POST' });
      assert.equal(trigger.status, 200);
      const second = { api: await scrape(urls.api), scheduler: await scrape(urls.scheduler), worker: await scrape(urls.worker) };

      // Scheduler: occurrences fired with their lag, passes timed, skips by reason.
      const fired = (t: string) => sample(t, 'agentcron_occurrences_fired_total', { kind: 'cron' }) ?? 0;
      assert.ok(fired(second.scheduler) >= fired(first.scheduler) + 3, `fired ${fired(first.scheduler)} → ${fired(second.scheduler)}`);
      const lagCount = (t: string) => sample(t, 'agentcron_fire_lag_seconds_count', { kind: 'cron' }) ?? 0;
      assert.ok(lagCount(second.scheduler) >= lagCount(first.scheduler) + 3);
      assert.ok(sample(second.scheduler, 'agentcron_fire_lag_seconds_sum', { kind: 'cron' })! / lagCount(second.scheduler) < 5, 'mean fire lag under 5 s');
      const ticks = (t: string) => sample(t, 'agentcron_scheduler_tick_duration_seconds_count') ?? 0;
      assert.ok(ticks(second.scheduler) > ticks(first.scheduler));
      for (const reason of ['missed', 'overlap', 'end_time']) assert.equal(typeof sample(second.scheduler, 'agentcron_occurrences_skipped_total', { reason }), 'number', reason);

      // Worker: runs started and finished by graph and status, their durations, maintenance outcomes.
      const started = (t: string) => sample(t, 'agentcron_runs_started_total', { graph: 'echo' }) ?? 0;
      const succeeded = (t: string) => sample(t, 'agentcron_runs_finished_total', { graph: 'echo', status: 'success' }) ?? 0;
      assert.ok(started(second.worker) >= started(first.worker) + 3);
      assert.ok(succeeded(second.worker) >= succeeded(first.worker) + 3);
      assert.ok((sample(second.worker, 'agentcron_run_duration_seconds_count', { graph: 'echo', status: 'success' }) ?? 0) >= 3);
      assert.equal(sample(second.worker, 'agentcron_maintenance_runs_total', { job: 'heartbeat_monitor', outcome: 'success' }), 1);
      assert.ok(declared(second.worker, 'agentcron_webhook_deliveries_total'));

      // Api: the deployment as the database has it.
      assert.equal(sample(second.api, 'agentcron_database_up'), 1);
      assert.equal(sample(second.api, 'agentcron_processes_alive', { role: 'scheduler' }), 1);
      assert.equal(sample(second.api, 'agentcron_processes_alive', { role: 'worker' }), 1);
      for (const queue of ['agentcron.run', 'agentcron.maintenance']) {
        assert.equal(typeof sample(second.api, 'agentcron_queue_jobs', { queue, state: 'queued' }), 'number', queue);
      }
      assert.equal(typeof sample(second.api, 'agentcron_due_backlog', { kind: 'cron' }), 'number');
      assert.equal(sample(second.api, 'agentcron_maintenance_last_success', { job: 'heartbeat_monitor' }), 1);
      assert.ok(declared(second.api, 'agentcron_runs_in_progress'));
      // Every process reports its own process metrics.
      for (const text of Object.values(second)) assert.ok((sample(text, 'agentcron_process_resident_memory_bytes') ?? 0) > 0);
    } finally {
      await stopAll([api, scheduler, worker]);
    }
    // METRICS_PORT closes with its process.
    await assert.rejects(fetch(`${urls.worker}/metrics`));
  });

  test('npm start (apps/all): one /metrics with every series, moving between two scrapes', async () => {
    const port = await freePort();
    const all = spawnApp('all', { ...BASE_ENV, DATABASE_URL: db.url, PORT: String(port) });
    await all.waitFor(/worker started/);
    const url = `http://127.0.0.1:${port}`;
    try {
      const first = await scrape(url);
      const cronId = await createCron(url);
      await successes(db, cronId, 2);
      const second = await scrape(url);
      const moved = (name: string, labels: Labels = {}) => (sample(second, name, labels) ?? 0) > (sample(first, name, labels) ?? 0);
      assert.ok(moved('agentcron_runs_started_total', { graph: 'echo' }), 'runs started');
      assert.ok(moved('agentcron_runs_finished_total', { graph: 'echo', status: 'success' }), 'runs finished');
      assert.ok(moved('agentcron_run_duration_seconds_count', { graph: 'echo', status: 'success' }), 'run durations');
      assert.ok(moved('agentcron_fire_lag_seconds_count', { kind: 'cron' }), 'fire lag');
      assert.ok(moved('agentcron_occurrences_fired_total', { kind: 'cron' }), 'fired');
      assert.ok(moved('agentcron_scheduler_tick_duration_seconds_count'), 'ticks');
      for (const name of [
        'agentcron_occurrences_skipped_total',
        'agentcron_due_backlog',
        'agentcron_queue_jobs',
        'agentcron_webhook_deliveries_total',
        'agentcron_maintenance_runs_total',
        'agentcron_maintenance_last_success',
        'agentcron_processes_alive',
        'agentcron_process_cpu_user_seconds_total',
      ]) {
        assert.ok(declared(second, name), name);
      }
      assert.equal(sample(second, 'agentcron_processes_alive', { role: 'api' }), 1);
    } finally {
      await stopAll([all]);
    }
  });
});
