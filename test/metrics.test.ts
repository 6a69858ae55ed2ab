import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { apiRegistry, foldCounters, observeDatabase, readRollup } from '../libs/metrics/index.ts';
import type { Rollup } from '../libs/metrics/index.ts';
import { QUEUES } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, startTestQueue } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// GET /metrics in Prometheus format. The api serves the deployment's series: gauges of its state
// and counters of what happened in it, folded from the runs, the occurrence ledger and the webhook
// columns (libs/metrics/fold.ts), the same on every api instance and never going back when rows
// are deleted. A scheduler or worker process serves its own counts on METRICS_PORT; `npm start`
// (apps/all) serves the deployment's and its own on one /metrics.

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

/** The deployment's counters and histograms: the series that must be equal on every api instance. */
const DEPLOYMENT_COUNTERS = [
  'agentcron_runs_started_total',
  'agentcron_runs_finished_total',
  'agentcron_run_duration_seconds',
  'agentcron_fire_lag_seconds',
  'agentcron_occurrences_fired_total',
  'agentcron_occurrences_skipped_total',
  'agentcron_webhook_deliveries_total',
  'agentcron_maintenance_runs_total',
];

/** The sample lines of those series, sorted. */
const countersOf = (text: string): string[] =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#') && DEPLOYMENT_COUNTERS.some((n) => l.startsWith(`${n}{`) || l.startsWith(`${n}_`) || l.startsWith(`${n} `)))
    .sort();

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function request(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const createCron = async (api: string, body: Record<string, unknown>): Promise<string> =>
  (await request(api, 'POST', '/runs/crons', { assistant_id: 'echo', ...body })).cron_id;

/** The api reuses one scrape's reads for a second (every series of a scrape from one snapshot). */
const pastSnapshotReuse = () => new Promise((r) => setTimeout(r, 1100));

const count = async (db: TestDatabase, sql: string, params: unknown[] = []): Promise<number> => (await db.pool.query(sql, params)).rows[0].n;

const BASE_ENV = {
  HOST: '127.0.0.1',
  HEARTBEAT_INTERVAL_SECONDS: '1',
  CRON_POLL_INTERVAL_SECONDS: '1',
  CRON_ALLOW_SECONDS_SCHEDULE: 'true',
  QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
};

async function stopAll(procs: SpawnedApp[]): Promise<void> {
  for (const p of procs) p.kill('SIGTERM');
  const codes = await Promise.all(procs.map((p) => p.exited));
  const failed = procs.filter((_, i) => codes[i] !== 0).map((p) => p.output.slice(-30).join('\n'));
  assert.deepEqual(
    codes,
    procs.map(() => 0),
    failed.join('\n---\n'),
  );
}

/** A webhook receiver: /ok answers 200, /fail 500. */
async function receiver(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(req.url === '/ok' ? 200 : 500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('/metrics', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('metrics');
  });
  after(() => db?.drop());

  test(
    'two api processes answer the same deployment counters: what a separate scheduler and worker did, as the ledger has it; deletions and ' +
      'retention take nothing back',
    async () => {
      // api1, a scheduler and a worker (each serving its own counts on METRICS_PORT) run crons; then
      // the scheduler stops, a second api starts, and both apis answer the same counters.
      const hooks = await receiver();
      const [api1Port, api2Port, schedulerPort, workerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
      // The monitor runs only when triggered: its per-minute occurrence would add an execution now and then.
      const env = {
        ...BASE_ENV,
        DATABASE_URL: db.url,
        MAINTENANCE_HEARTBEAT_MONITOR_SCHEDULE: '0 0 1 1 *',
        // The pauses below withdraw the occurrences fired ahead: the ledger (and the deployment's
        // counters) forget them, the scheduler's own counter has counted them (docs/scheduling.md).
        CRON_LOOKAHEAD_MS: '0',
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_MAX_ATTEMPTS: '2',
        WEBHOOK_RETRY_DELAY_SECONDS: '1',
      };
      // The apis need few connections (a scrape takes two or three), and the second api starts once
      // the scheduler has stopped: the suite's test files share max_connections.
      const apiEnv = (port: number) => ({ ...env, PORT: String(port), DATABASE_POOL_MAX: '3' });
      const api1 = spawnApp('api', apiEnv(api1Port));
      await api1.waitFor(/api listening on/);
      const scheduler = spawnApp('scheduler', { ...env, METRICS_PORT: String(schedulerPort) });
      const worker = spawnApp('worker', { ...env, METRICS_PORT: String(workerPort) });
      await Promise.all([scheduler.waitFor(/scheduler started/), worker.waitFor(/worker started/)]);
      const running: SpawnedApp[] = [api1, scheduler, worker];
      const urls = {
        api1: `http://127.0.0.1:${api1Port}`,
        api2: `http://127.0.0.1:${api2Port}`,
        scheduler: `http://127.0.0.1:${schedulerPort}`,
        worker: `http://127.0.0.1:${workerPort}`,
      };
      try {
        const first = await scrape(urls.api1);
        for (const reason of ['missed', 'overlap', 'end_time']) assert.equal(sample(first, 'agentcron_occurrences_skipped_total', { reason }), 0, reason);
        for (const outcome of ['delivered', 'retried', 'failed', 'refused'])
          assert.equal(sample(first, 'agentcron_webhook_deliveries_total', { outcome }), 0, outcome);

        // Every second: successes whose webhooks are delivered, errors whose webhooks fail after one
        // retry, and slow runs whose overlapping occurrences are skipped.
        const crons = [
          await createCron(urls.api1, { schedule: '* * * * * *', input: { hello: 'metrics' }, webhook: `${hooks.url}/ok` }),
          await createCron(urls.api1, { schedule: '* * * * * *', input: { error: 'boom' }, webhook: `${hooks.url}/fail` }),
          await createCron(urls.api1, { schedule: '* * * * * *', input: { sleep_ms: 1500 }, overlap_policy: 'skip' }),
        ];
        // And a run no cron started, on a kept thread.
        const thread = (await request(urls.api1, 'POST', '/threads', {})).thread_id;
        await request(urls.api1, 'POST', `/threads/${thread}/runs/wait`, { assistant_id: 'echo', input: { direct: true } });

        await eventually(
          async () =>
            (await count(db, `SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND webhook_status = 'sent'`, [crons[0]])) >= 3 &&
            (await count(db, `SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND webhook_status = 'failed'`, [crons[1]])) >= 2 &&
            (await count(db, `SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND reason = 'overlap'`, [crons[2]])) >= 1,
          'deliveries sent and failed, and an overlap skipped',
          20_000,
          100,
        );
        // Then quiet: nothing fires, runs and deliveries settle.
        for (const id of crons) await request(urls.api1, 'PATCH', `/runs/crons/${id}`, { enabled: false });
        await eventually(
          async () =>
            (await count(
              db,
              `SELECT ((SELECT count(*) FROM runs WHERE status IN ('pending', 'running') OR webhook_status = 'pending')
                  + (SELECT count(*) FROM cron_occurrences WHERE status IN ('enqueued', 'running') OR webhook_status = 'pending'))::int AS n`,
            )) === 0,
          'runs and deliveries settled',
          15_000,
          100,
        ).catch(async (err) => {
          const open = await db.pool.query(
            `SELECT 'run' AS what, run_id::text, status, webhook_status, webhook_attempts FROM runs WHERE status IN ('pending', 'running') OR
              webhook_status = 'pending'
           UNION ALL SELECT 'occ', run_id::text, status, webhook_status, webhook_attempts FROM cron_occurrences
                      WHERE status IN ('enqueued', 'running') OR webhook_status = 'pending'`,
          );
          throw new Error(`${(err as Error).message}: ${JSON.stringify(open.rows)}`);
        });

        // The scheduler's own counts, then it stops and a second api starts.
        const own = { scheduler: await scrape(urls.scheduler), worker: await scrape(urls.worker) };
        scheduler.kill('SIGTERM');
        assert.equal(await scheduler.exited, 0);
        running.splice(running.indexOf(scheduler), 1);
        const api2 = spawnApp('api', apiEnv(api2Port));
        running.push(api2);
        await api2.waitFor(/api listening on/);

        // Both apis at once: one folds, the other waits for it; the same counters.
        const [one, two] = await Promise.all([scrape(urls.api1), scrape(urls.api2)]);
        assert.deepEqual(countersOf(two), countersOf(one));
        assert.ok(countersOf(one).length > 20);

        // What the ledger and the runs say, and what the scheduler and the worker counted themselves.
        const ledger = async (where: string) => count(db, `SELECT count(*)::int AS n FROM cron_occurrences WHERE ${where}`);
        const successes = (await ledger(`status = 'success'`)) + 1;
        const errors = await ledger(`status = 'error'`);
        const fired = await ledger(`trigger = 'schedule' AND enqueued_at IS NOT NULL`);
        const skipped = await ledger(`status = 'skipped' AND reason = 'overlap'`);
        const sent = await ledger(`webhook_status = 'sent'`);
        const failed = await ledger(`webhook_status = 'failed'`);
        // At least what the wait above saw (a create's first run is not a scheduled firing).
        assert.ok(successes >= 3 && errors >= 2 && fired >= 3 && skipped >= 1, JSON.stringify({ successes, errors, fired, skipped }));
        const expect = (name: string, labels: Labels, value: number, ownText?: string) => {
          assert.equal(sample(one, name, labels), value, `${name} ${JSON.stringify(labels)}`);
          if (ownText !== undefined) assert.equal(sample(ownText, name, labels), value, `${name} ${JSON.stringify(labels)} as its process counted it`);
        };
        const echo = { graph: 'echo' };
        expect('agentcron_runs_finished_total', { ...echo, status: 'success' }, successes, own.worker);
        expect('agentcron_runs_finished_total', { ...echo, status: 'error' }, errors, own.worker);
        expect('agentcron_run_duration_seconds_count', { ...echo, status: 'success' }, successes, own.worker);
        expect('agentcron_run_duration_seconds_bucket', { ...echo, status: 'success', le: '+Inf' }, successes);
        expect('agentcron_run_duration_seconds_count', { ...echo, status: 'error' }, errors, own.worker);
        expect('agentcron_runs_started_total', echo, successes + errors, own.worker);
        expect('agentcron_occurrences_fired_total', { kind: 'cron' }, fired, own.scheduler);
        expect('agentcron_fire_lag_seconds_count', { kind: 'cron' }, fired, own.scheduler);
        expect('agentcron_occurrences_skipped_total', { reason: 'overlap' }, skipped, own.scheduler);
        expect('agentcron_webhook_deliveries_total', { outcome: 'delivered' }, sent, own.worker);
        expect('agentcron_webhook_deliveries_total', { outcome: 'failed' }, failed, own.worker);
        // WEBHOOK_MAX_ATTEMPTS=2: every failed delivery was retried once.
        expect('agentcron_webhook_deliveries_total', { outcome: 'retried' }, failed, own.worker);
        expect('agentcron_webhook_deliveries_total', { outcome: 'refused' }, 0, own.worker);
        // Buckets are cumulative; the lag of a one-second schedule is well under 5 s on average.
        const buckets = one
          .split('\n')
          .filter((l) => l.startsWith('agentcron_run_duration_seconds_bucket{') && l.includes('status="success"'))
          .map((l) => Number(l.split(' ')[1]));
        assert.deepEqual(
          buckets,
          [...buckets].sort((a, b) => a - b),
        );
        assert.ok(sample(one, 'agentcron_fire_lag_seconds_sum', { kind: 'cron' })! / fired < 5, 'mean fire lag under 5 s');
        // The deployment's state, as before.
        assert.equal(sample(one, 'agentcron_database_up'), 1);
        assert.equal(sample(one, 'agentcron_processes_alive', { role: 'api' }), 2);
        assert.equal(sample(one, 'agentcron_processes_alive', { role: 'scheduler' }), 0, 'stopped');
        assert.equal(sample(one, 'agentcron_processes_alive', { role: 'worker' }), 1);
        for (const queue of ['agentcron.run', 'agentcron.maintenance'])
          assert.equal(typeof sample(one, 'agentcron_queue_jobs', { queue, state: 'queued' }), 'number', queue);
        assert.equal(typeof sample(one, 'agentcron_due_backlog', { kind: 'cron' }), 'number');
        assert.ok(declared(one, 'agentcron_runs_in_progress'));
        assert.ok(sample(one, 'agentcron_metrics_horizon_lag_seconds')! < 5, 'counters within seconds of now');
        // A scheduler's and a worker's METRICS_PORT: their own counts and process metrics only.
        assert.ok((sample(own.scheduler, 'agentcron_scheduler_tick_duration_seconds_count') ?? 0) > 0);
        for (const text of [one, own.scheduler, own.worker]) assert.ok((sample(text, 'agentcron_process_resident_memory_bytes') ?? 0) > 0);
        assert.ok(!declared(own.worker, 'agentcron_database_up'), "the deployment's gauges are the api's");

        // Deleting a cron (its ledger rows go with it) and a thread (its runs), then retention
        // purging everything else, takes nothing back.
        await request(urls.api1, 'DELETE', `/runs/crons/${crons[0]}`);
        await request(urls.api2, 'DELETE', `/threads/${thread}`);
        await db.pool.query(`UPDATE cron_occurrences SET created_at = created_at - interval '40 days', ended_at = ended_at - interval '40 days'`);
        await db.pool.query(`UPDATE runs SET ended_at = ended_at - interval '40 days' WHERE ended_at IS NOT NULL`);
        const purge = await request(urls.api2, 'POST', '/admin/maintenance/retention_purge/trigger?wait_seconds=30');
        assert.equal(purge.maintenance_job.last_run_status, 'success');
        assert.equal(await count(db, `SELECT count(*)::int AS n FROM cron_occurrences`), 0);
        await pastSnapshotReuse();
        const [after1, after2] = await Promise.all([scrape(urls.api1), scrape(urls.api2)]);
        const withoutMaintenance = (lines: string[]) => lines.filter((l) => !l.startsWith('agentcron_maintenance_runs_total'));
        assert.deepEqual(withoutMaintenance(countersOf(after1)), withoutMaintenance(countersOf(one)));
        assert.deepEqual(countersOf(after2), countersOf(after1));
        assert.equal(sample(after1, 'agentcron_maintenance_runs_total', { job: 'retention_purge', outcome: 'success' }), 1);

        // And they move on from there, on both.
        const thread2 = (await request(urls.api1, 'POST', '/threads', {})).thread_id;
        await request(urls.api1, 'POST', `/threads/${thread2}/runs/wait`, { assistant_id: 'echo', input: {} });
        await pastSnapshotReuse();
        for (const url of [urls.api1, urls.api2]) {
          assert.equal(sample(await scrape(url), 'agentcron_runs_finished_total', { ...echo, status: 'success' }), successes + 1);
        }
      } finally {
        // The receiver closes whatever happens: an open server would keep this file from ever ending.
        await stopAll(running).finally(() => hooks.close());
      }
      // METRICS_PORT closes with its process.
      await assert.rejects(fetch(`${urls.worker}/metrics`));
    },
  );

  test('npm start (apps/all): one /metrics with every series, moving between two scrapes', async () => {
    const port = await freePort();
    const all = spawnApp('all', { ...BASE_ENV, DATABASE_URL: db.url, PORT: String(port) });
    await all.waitFor(/worker started/);
    const url = `http://127.0.0.1:${port}`;
    try {
      const first = await scrape(url);
      const cronId = await createCron(url, { schedule: '*/2 * * * * *', input: { hello: 'metrics' } });
      await eventually(
        async () => (await count(db, `SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND status = 'success'`, [cronId])) >= 2,
        'two successful occurrences',
        30_000,
        100,
      );
      await pastSnapshotReuse();
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

describe('the fold (libs/metrics/fold.ts)', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  const CRON = '00000000-0000-4000-8000-00000000c001';
  before(async () => {
    db = await createTestDatabase('metrics_fold');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    await db.pool.query(`INSERT INTO crons (cron_id, assistant_id, user_id, schedule, enabled) VALUES ($1, $2, 'u', '* * * * *', false)`, [CRON, ECHO]);
  });
  after(async () => {
    await boss?.stop({ graceful: false }).catch(() => {});
    await db?.drop();
  });

  const value = (r: Rollup, metric: string, labels: Labels = {}): number =>
    r.series.filter((s) => s.metric === metric && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.count, 0);
  const finished = async (status = 'success') => value(await readRollup(db.pool), 'agentcron_runs_finished_total', { status });

  // A ledger row of CRON at `at` seconds from now (negative: earlier), as its transaction writes it.
  const occurrence = (status: string, extra = '') =>
    `INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status, enqueued_at, started_at, ended_at
      ${extra ? ', webhook_status, webhook_attempts' : ''})
     VALUES ('${CRON}', now() - random() * interval '1 day', gen_random_uuid(), '${status}', now(), now(),
             ${status === 'running' ? 'NULL' : 'now()'} ${extra ? `, ${extra}` : ''})`;

  test('each event exactly once: a transaction open across folds, runs settled and reopened between folds, deletions', async () => {
    await foldCounters(db.pool);
    const base = await finished();

    // A finishing transaction that started before the fold and commits after it: its timestamps
    // are its start, behind the fold's horizon, so a fold that took now() as its horizon would
    // never see them. The horizon waits for it instead.
    const slow = await db.pool.connect();
    let open = false;
    try {
      await slow.query('BEGIN');
      open = true;
      await slow.query(occurrence('success'));
      // A fold that moves the horizon while it is open: up to its start. (Another session's
      // transaction older than the previous horizon, pg-boss's on a loaded machine, holds every
      // fold back until it ends: wait for it, do not assume it is over.)
      await eventually(async () => (await foldCounters(db.pool)).folded, 'a fold to move the horizon while a transaction is open');
      assert.equal(await finished(), base);
      await slow.query('COMMIT');
      open = false;
    } finally {
      // Never back to the pool inside a transaction (the next test would get it): a failed
      // assertion above leaves it open, so it is destroyed instead.
      slow.release(open);
    }
    await foldCounters(db.pool);
    assert.equal(await finished(), base + 1);
    await foldCounters(db.pool);
    assert.equal(await finished(), base + 1, 'not counted again');

    // A run open at one fold (a stateless cron's: nothing else will show it) ends before the next.
    await db.pool.query(occurrence('running'));
    await foldCounters(db.pool);
    await db.pool.query(`UPDATE cron_occurrences SET status = 'error', ended_at = now() WHERE status = 'running'`);
    await foldCounters(db.pool);
    assert.equal(await finished('error'), 1);

    // A retry reopens that old row, runs and ends again, all between two folds.
    await db.pool.query(
      `UPDATE cron_occurrences SET status = 'enqueued', retried_at = clock_timestamp(), started_at = NULL, ended_at = NULL WHERE status = 'error'`,
    );
    await db.pool.query(`UPDATE cron_occurrences SET status = 'success', started_at = now(), ended_at = now() WHERE status = 'enqueued'`);
    await foldCounters(db.pool);
    assert.equal(await finished(), base + 2);
    assert.equal(await finished('error'), 1);

    // A delivery pending when its run is counted, settled later: one delivered, two retried.
    await db.pool.query(occurrence('success', `'pending', 1`));
    await foldCounters(db.pool);
    await db.pool.query(`UPDATE cron_occurrences SET webhook_status = 'sent', webhook_attempts = 3 WHERE webhook_status = 'pending'`);
    await foldCounters(db.pool);
    let r = await readRollup(db.pool);
    assert.equal(value(r, 'agentcron_webhook_deliveries_total', { outcome: 'delivered' }), 1);
    assert.equal(value(r, 'agentcron_webhook_deliveries_total', { outcome: 'retried' }), 2);

    // Deleting every row (a deleted cron, retention) takes nothing back.
    const before = JSON.stringify(r.series);
    await db.pool.query(`DELETE FROM cron_occurrences`);
    await foldCounters(db.pool);
    r = await readRollup(db.pool);
    assert.equal(JSON.stringify(r.series), before);
  });

  test("folds racing each other while rows are written: the counts are the ledger's", async () => {
    await foldCounters(db.pool);
    const base = await finished();
    let writing = true;
    const writer = (async () => {
      let n = 0;
      while (writing) {
        await db.pool.query(occurrence('success'));
        n++;
      }
      return n;
    })();
    const folders = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 10; i++) await foldCounters(db.pool);
    });
    await Promise.all(folders);
    writing = false;
    const written = await writer;
    await foldCounters(db.pool);
    assert.equal(await finished(), base + written);
  });

  test('cost: a scrape with 100,000 ledger rows and 10,000 runs; the run path keeps its triggers and indexes', async (t) => {
    // Written since the last fold (a catch-up fold counts them all), then folded (a steady-state
    // scrape reads past them).
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status, enqueued_at, started_at, ended_at)
       SELECT $1, now() - make_interval(secs => i), gen_random_uuid(), CASE WHEN i % 10 = 0 THEN 'error' ELSE 'success' END, now(), now(), now()
         FROM generate_series(1, 100000) i`,
      [CRON],
    );
    const thread = (await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES (gen_random_uuid(), 'u') RETURNING thread_id`)).rows[0].thread_id;
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, status, started_at, ended_at)
       SELECT gen_random_uuid(), $1, $2, 'u', 'success', now(), now() FROM generate_series(1, 10000) i`,
      [thread, ECHO],
    );
    await db.pool.query('ANALYZE cron_occurrences; ANALYZE runs');
    const before = await finished();
    let started = performance.now();
    await foldCounters(db.pool);
    const catchUp = performance.now() - started;
    assert.equal(await finished(), before + 90_000 + 10_000);
    assert.equal(await finished('error'), 10_000 + 1);

    // Steady state: the fold of a scrape after 100 more runs ended, then a whole scrape (every series).
    const more = (i: number) =>
      db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status, enqueued_at, started_at, ended_at)
         SELECT $1, now() + make_interval(days => 1, secs => $2 * 100 + i), gen_random_uuid(), 'success', now(), now(), now() FROM generate_series(1, 100) i`,
        [CRON, i],
      );
    const folds: number[] = [];
    for (let i = 0; i < 5; i++) {
      await more(i);
      started = performance.now();
      await foldCounters(db.pool);
      await readRollup(db.pool);
      folds.push(performance.now() - started);
    }
    assert.equal(await finished(), before + 100_000 + 500);
    await more(5);
    observeDatabase({ pool: db.pool, boss, queues: Object.values(QUEUES), heartbeatSeconds: 1 });
    started = performance.now();
    const text = await apiRegistry().metrics();
    const scrapeMs = performance.now() - started;
    assert.equal(sample(text, 'agentcron_runs_finished_total', { graph: 'echo', status: 'success' }), before + 100_000 + 600);
    const median = [...folds].sort((a, b) => a - b)[2];
    t.diagnostic(
      `catch-up fold of 110,000 events: ${catchUp.toFixed(0)} ms; fold of 100 new runs with 100,000 in the ledger: median ${median.toFixed(1)} ms ` +
        `(${folds.map((x) => x.toFixed(1)).join(', ')}); whole scrape: ${scrapeMs.toFixed(1)} ms`,
    );
    // The times are figures for the reader (speed is measured in benches, never asserted here: a
    // loaded machine would fail a bound); what is asserted is that the counts are right.

    // The run path: no trigger on runs or the ledger, and the only index added there covers retried rows only.
    const { rows: triggers } = await db.pool.query(
      `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN ('runs'::regclass, 'cron_occurrences'::regclass)`,
    );
    assert.deepEqual(triggers, []);
    const { rows: partial } = await db.pool.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'cron_occurrences_retried'`);
    assert.match(partial[0].indexdef, /WHERE \(retried_at IS NOT NULL\)/);
  });
});
