import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, startEmbeddedPostgres, withTransaction } from '../libs/db/index.ts';
import { enqueueRuns } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { EmbeddedDatabase, Pool } from '../libs/db/index.ts';
import { eventually, insertCron, startTestQueue } from './support/engine.ts';
import { everySecond, startDeployment } from './support/hosted.ts';
import type { Deployment } from './support/hosted.ts';
import { ROOT, freePort, spawnApp } from './support/processes.ts';

// A 20-connection PostgreSQL, as hosted plans sell it (Heroku's Essential plans): 3 of the 20 are
// kept for superusers, so the app's role has 17. Web + scheduler + 2 workers with default
// settings must fit, and fire every occurrence of 50 every-second crons: none skipped as missed
// because the scheduler could not get a connection, none twice, the API answering meanwhile.

// 20 s in the suite (1,000 occurrences; its budget is two minutes on two cores): CONNECTIONS_TEST_SECONDS=60 for the full minute.
const SECONDS = Number(process.env.CONNECTIONS_TEST_SECONDS ?? 20);
const CRONS = 50;
// README "Deploying" measures larger plans with these (e.g. 60 and 12 workers); the suite runs 20 and 2.
const MAX_CONNECTIONS = Number(process.env.CONNECTIONS_TEST_MAX ?? 20);
const WORKERS = Number(process.env.CONNECTIONS_TEST_WORKERS ?? 2);
// The defaults' budget: web 5, scheduler 3, 4 a worker, 1 for a release beside them.
const BUDGET = 5 + 3 + 4 * WORKERS + 1;
const APP_SLOTS = MAX_CONNECTIONS - 3;

describe(`a ${MAX_CONNECTIONS}-connection PostgreSQL: web + scheduler + ${WORKERS} workers with default settings`, () => {
  const dataDir = path.join(ROOT, '.agentcron', `test-connections-${randomBytes(4).toString('hex')}`);
  let server: EmbeddedDatabase | undefined;
  let admin: Pool | undefined;
  let appUrl: string;
  let deployment: Deployment | undefined;
  before(async () => {
    const port = await freePort();
    server = await startEmbeddedPostgres({
      dataDir,
      port,
      database: 'postgres',
      settings: { max_connections: MAX_CONNECTIONS, superuser_reserved_connections: 3 },
    });
    // The app as an ordinary role, as on a hosted plan: it cannot use the superusers' 3.
    const su = createPool(server.url, { max: 1, applicationName: 'test-admin' });
    await su.query(`CREATE ROLE app LOGIN PASSWORD 'app'`);
    await su.query(`CREATE DATABASE hosted OWNER app`);
    await su.end();
    const u = new URL(server.url);
    u.pathname = '/hosted';
    // The test's own connection: a superuser's, from the reserved 3.
    admin = createPool(u.toString(), { max: 2, applicationName: 'test-admin' });
    u.username = 'app';
    u.password = 'app';
    appUrl = u.toString();
  });
  after(async () => {
    await deployment?.stop().catch(() => {});
    await admin?.end().catch(() => {});
    await server?.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  });

  test(
    `${CRONS} every-second crons for ${SECONDS} s: nothing missed, nothing twice, the API answering, a release beside it, at most ${BUDGET} ` + `connections`,
    async () => {
      assert.ok(BUDGET <= APP_SLOTS, `the deployment's budget (${BUDGET}) fits the app's ${APP_SLOTS} connections`);
      deployment = await startDeployment({ DATABASE_URL: appUrl }, WORKERS);
      // What the app's role has open, sampled throughout.
      let peak = 0;
      const byApp = new Map<string, number>();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { rows } = await admin!.query<{ app: string; n: number }>(
            `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' GROUP BY 1`,
          );
          peak = Math.max(
            peak,
            rows.reduce((n, r) => n + r.n, 0),
          );
          for (const r of rows) byApp.set(r.app, Math.max(byApp.get(r.app) ?? 0, r.n));
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      let result;
      // A release beside the running deployment (a deploy on Heroku): one connection more, still within the 17.
      const release = spawnApp('migrate', { DATABASE_URL: appUrl, DATABASE_POOL_MAX: '' });
      try {
        result = await everySecond(admin!, deployment.url, { crons: CRONS, seconds: SECONDS });
        assert.equal(await release.exited, 0, release.output.join('\n'));
      } finally {
        sampling = false;
        await sampler;
      }
      console.log(
        `# connections: peak ${peak} of the app's ${APP_SLOTS} (budget ${BUDGET}); by process (peak) ` +
          `${JSON.stringify(Object.fromEntries([...byApp].sort()))}; ` +
          `${JSON.stringify(result)}`,
      );
      // 5 (web) + 3 (scheduler) + 4 a worker + 1 (release): the defaults' budget, kept.
      assert.ok(peak <= BUDGET, `at most ${BUDGET} connections open at once (saw ${peak})`);
      const refused = [...deployment.apps, release]
        .flatMap((a) => a.output)
        .filter((l) => /53300|too many (clients|connections)|remaining connection slots/i.test(l));
      assert.deepEqual(refused, [], 'no process was refused a connection');
      await deployment.stop();
      deployment = undefined;
    },
  );

  test('a scheduler cut off from the database for a few seconds fires what fell due meanwhile, late: nothing is skipped as missed', async () => {
    const scheduler = spawnApp('scheduler', { DATABASE_URL: appUrl, DATABASE_POOL_MAX: '', CRON_ALLOW_SECONDS_SCHEDULE: 'true', PORT: '0' });
    await scheduler.waitFor(/scheduler started/);
    const { rows } = await admin!.query<{ start: Date }>(`SELECT date_trunc('second', now()) + interval '1 second' AS start`);
    const start = rows[0].start;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await insertCron(admin!, { schedule: '* * * * * *', next_run_date: start, on_run_completed: 'keep' }));
    const firedThrough = async (t: Date) =>
      (await admin!.query(`SELECT 1 FROM crons WHERE cron_id = ANY($1) AND (fired_through IS NULL OR fired_through < $2)`, [ids, t])).rowCount === 0;
    await eventually(() => firedThrough(new Date(start.getTime() + 1000)), 'the scheduler to fire', 20_000, 100);
    // The app's role may not connect, and loses what it has: the scheduler is alive and cannot pass.
    await admin!.query(`ALTER ROLE app CONNECTION LIMIT 0`);
    let cutOffUntil: Date;
    try {
      await admin!.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'`);
      await scheduler.waitFor(/scheduler pass failed/, 20_000);
      // Cut off for at least 4 more occurrences.
      const { rows: later } = await admin!.query<{ t: Date }>(`SELECT now() + interval '4 seconds' AS t`);
      cutOffUntil = later[0].t;
      await eventually(async () => (await admin!.query(`SELECT now() > $1 AS past`, [cutOffUntil])).rows[0].past, 'four seconds cut off', 20_000, 100);
    } finally {
      await admin!.query(`ALTER ROLE app CONNECTION LIMIT -1`);
    }
    await eventually(() => firedThrough(new Date(cutOffUntil.getTime() + 1000)), 'the scheduler to fire again', 30_000, 100);
    await admin!.query(`UPDATE crons SET enabled = false WHERE cron_id = ANY($1)`, [ids]);
    const ledger = await admin!.query<{ status: string; reason: string | null; n: number }>(
      `SELECT status, reason, count(*)::int AS n FROM cron_occurrences WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 GROUP BY 1, 2`,
      [ids, start, new Date(cutOffUntil.getTime() + 1000)],
    );
    assert.deepEqual(
      ledger.rows.filter((r) => r.status === 'skipped'),
      [],
      `nothing skipped while the scheduler ran (ledger: ${JSON.stringify(ledger.rows)})`,
    );
    const seconds = Math.floor((cutOffUntil.getTime() + 1000 - start.getTime()) / 1000) + 1;
    assert.equal(
      ledger.rows.reduce((n, r) => n + r.n, 0),
      ids.length * seconds,
      'every occurrence of the window has its row',
    );
    scheduler.kill('SIGTERM');
    assert.equal(await scheduler.exited, 0);
  });

  test('a budget too small for the process stops it at startup naming the variable', async () => {
    const worker = spawnApp('worker', { DATABASE_URL: appUrl, DATABASE_POOL_MAX: '', DATABASE_MAX_CONNECTIONS: '2' });
    assert.equal(await worker.exited, 1);
    assert.match(
      worker.output.join('\n'),
      /invalid configuration: DATABASE_MAX_CONNECTIONS must be at least 3 for this process \(worker: 1 LISTEN connection \+ a pool of 2\)/,
    );
  });
});

describe('pg-boss on the process pool', () => {
  test('an enqueue inside a transaction needs no second connection of the pool (a pool of one does not wait on itself)', async () => {
    const db = await createTestDatabase('pgboss-shared-pool');
    const pool = createPool(db.url, { max: 1, connectionTimeoutMillis: 3000 });
    const boss = await startTestQueue(db.url, { pool });
    try {
      const started = Date.now();
      await withTransaction(pool, (client) => enqueueRuns(boss, [{ run_id: randomUUID(), group: 'g' }], client));
      assert.ok(Date.now() - started < 2000, `enqueued in ${Date.now() - started} ms`);
    } finally {
      await boss.stop({ graceful: false });
      await pool.end();
      await db.drop();
    }
  });
});
