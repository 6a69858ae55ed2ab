import assert from 'node:assert/strict';
import type { Pool } from '../../libs/db/index.ts';
import { eventually, insertCron } from './engine.ts';
import { freePort, spawnApp } from './processes.ts';
import type { SpawnedApp } from './processes.ts';

// A deployment as a platform runs it (release, then web + scheduler + workers, each with default
// settings) and the every-second check: what hosted PostgreSQL (a 20-connection plan, a
// transaction pooler) must not break.

export interface Deployment {
  url: string;
  apps: SpawnedApp[];
  stop(): Promise<void>;
}

/**
 * The release step, then web + scheduler + `workers` workers on `env`, each with the default
 * connection settings (spawnApp's small test pools are taken off).
 */
export async function startDeployment(env: Record<string, string>, workers = 2): Promise<Deployment> {
  const defaults = { DATABASE_POOL_MAX: '', CRON_ALLOW_SECONDS_SCHEDULE: 'true', HEARTBEAT_INTERVAL_SECONDS: '1', HOST: '127.0.0.1', ...env };
  const release = spawnApp('migrate', defaults);
  assert.equal(await release.exited, 0, `release failed:\n${release.output.join('\n')}`);
  const port = await freePort();
  const api = spawnApp('api', { ...defaults, PORT: String(port) });
  const scheduler = spawnApp('scheduler', { ...defaults, PORT: '0' });
  const ws = Array.from({ length: workers }, () => spawnApp('worker', { ...defaults, PORT: '0' }));
  const apps = [api, scheduler, ...ws];
  await Promise.all([
    api.waitFor(/api listening on/, 60_000),
    scheduler.waitFor(/scheduler started/, 60_000),
    ...ws.map((w) => w.waitFor(/worker started/, 60_000)),
  ]);
  return {
    url: `http://127.0.0.1:${port}`,
    apps,
    async stop() {
      for (const a of apps) a.kill('SIGTERM');
      await Promise.all(apps.map((a) => a.exited));
    },
  };
}

export interface EverySecondResult {
  occurrences: number;
  apiCalls: number;
  api503: number;
}

/**
 * `crons` every-second crons for `seconds` seconds on a running deployment, then: every
 * occurrence of the window has its ledger row, none skipped, each ran exactly once (one run, one
 * attempt, success); the API answered every call meanwhile with a 2xx or a 503, never a 500.
 * `admin` is the test's own pool on the same database.
 */
export async function everySecond(admin: Pool, apiUrl: string, opts: { crons: number; seconds: number }): Promise<EverySecondResult> {
  const { rows } = await admin.query<{ start: Date }>(`SELECT date_trunc('second', now()) + interval '2 seconds' AS start`);
  const start = rows[0].start;
  const end = new Date(start.getTime() + (opts.seconds - 1) * 1000);
  const ids: string[] = [];
  for (let i = 0; i < opts.crons; i++) ids.push(await insertCron(admin, { schedule: '* * * * * *', next_run_date: start, on_run_completed: 'keep' }));
  // The API meanwhile: a read a client would make, every 200 ms.
  const statuses: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const res = await fetch(`${apiUrl}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"limit":5}' }).catch(
        () => null,
      );
      statuses.push(res?.status ?? 0);
      await res?.arrayBuffer().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    await eventually(
      async () =>
        (await admin.query(`SELECT 1 FROM crons WHERE cron_id = ANY($1) AND (fired_through IS NULL OR fired_through < $2)`, [ids, end])).rowCount === 0,
      `every cron to have fired through ${end.toISOString()}`,
      (opts.seconds + 30) * 1000,
      250,
    );
  } finally {
    polling = false;
    await poller;
  }
  await admin.query(`UPDATE crons SET enabled = false WHERE cron_id = ANY($1)`, [ids]);
  const expected = opts.crons * opts.seconds;
  const window = [ids, start, end];
  const ledger = await admin.query<{ status: string; reason: string | null; n: number }>(
    `SELECT status, reason, count(*)::int AS n FROM cron_occurrences
      WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 GROUP BY 1, 2 ORDER BY 1, 2`,
    window,
  );
  const skipped = ledger.rows.filter((r) => r.status === 'skipped');
  assert.deepEqual(skipped, [], 'no occurrence skipped');
  assert.equal(
    ledger.rows.reduce((n, r) => n + r.n, 0),
    expected,
    `one ledger row per occurrence: ${opts.crons} crons × ${opts.seconds} s (${JSON.stringify(ledger.rows)})`,
  );
  // Each occurrence ran once: one run, one attempt, and it succeeded.
  await eventually(
    async () =>
      (await admin.query(`SELECT 1 FROM runs WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 AND status <> 'success'`, window)).rowCount === 0,
    'every run of the window to succeed',
    60_000,
    250,
  );
  const runs = await admin.query<{ n: number; retried: number }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE attempts <> 1)::int AS retried FROM runs
      WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3`,
    window,
  );
  assert.deepEqual(runs.rows[0], { n: expected, retried: 0 }, 'one run per occurrence, each run once');
  const bad = statuses.filter((s) => !(s >= 200 && s < 300) && s !== 503);
  assert.deepEqual(bad, [], `the API answered 2xx or 503 (${statuses.length} calls)`);
  return { occurrences: expected, apiCalls: statuses.length, api503: statuses.filter((s) => s === 503).length };
}
