import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { detectPooler, migrate } from '../libs/db/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, insertCron } from './support/engine.ts';
import { everySecond, startDeployment } from './support/hosted.ts';
import type { Deployment } from './support/hosted.ts';
import { startPgBouncer } from './support/pgbouncer.ts';
import type { Bouncer } from './support/pgbouncer.ts';
import { spawnApp } from './support/processes.ts';

// DATABASE_URL through PgBouncer in transaction mode (a session is ours only for a transaction),
// DATABASE_DIRECT_URL straight to PostgreSQL for migrations and LISTEN.

/** What fresh sessions through the pooler see: nobody's SET may have stayed on a pooled backend. */
async function pooledSessionSettings(url: string, n: number): Promise<string[]> {
  const clients = Array.from({ length: n }, () => new pg.Client({ connectionString: url }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    return await Promise.all(
      clients.map(async (c) => {
        const { rows } = await c.query(
          `SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') || ' ' ||
            current_setting('idle_in_transaction_session_timeout') AS s`,
        );
        return rows[0].s as string;
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

describe('behind PgBouncer (transaction pooling)', () => {
  let db: TestDatabase;
  let bouncer: Bouncer;
  let deployment: Deployment | undefined;
  before(async () => {
    db = await createTestDatabase('pgbouncer', { migrate: false });
    // The database's own defaults: what every pooled session must still see after agentcron ran.
    await db.pool.query(`ALTER DATABASE ${db.name} SET statement_timeout = '61s'`);
    bouncer = await startPgBouncer(db.url, { poolSize: 8 });
  });
  after(async () => {
    await deployment?.stop().catch(() => {});
    await bouncer?.stop().catch(() => {});
    await db?.drop();
  });

  test('a pooler is told from PostgreSQL itself', async () => {
    assert.deepEqual(await detectPooler(db.url), { pooled: false, reason: null });
    const behind = await detectPooler(bouncer.url);
    assert.equal(behind.pooled, true);
    assert.match(behind.reason!, /refused the options startup parameter/);
    assert.match((await detectPooler(`${db.url}?pgbouncer=true`)).reason!, /pgbouncer=true/);
    // Told to ignore `options` (a common setup), PgBouncer still answers for the server: its pid gives it away.
    const lenient = await startPgBouncer(db.url, { poolSize: 2, ignoreStartupParameters: 'options' });
    try {
      const check = await detectPooler(lenient.url);
      assert.equal(check.pooled, true);
      assert.match(check.reason!, /backend pid \(\d+\) is not the one announced at connect/);
    } finally {
      await lenient.stop();
    }
  });

  test(
    'release, web, scheduler and 2 workers through PgBouncer with a direct URL: every-second crons fire once each, no session state left ' +
      'on pooled backends',
    async () => {
      const started = Date.now();
      deployment = await startDeployment({ DATABASE_URL: bouncer.url, DATABASE_DIRECT_URL: db.url });
      console.log(`# started in ${Date.now() - started} ms`);
      // LISTEN went to the direct URL: the scheduler's and each worker's listener are on the server.
      await eventually(
        async () =>
          JSON.stringify(
            (
              await db.pool.query(
                `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity
                WHERE datname = $1 AND query ILIKE 'LISTEN%' AND application_name LIKE '%-listen' GROUP BY 1 ORDER BY 1`,
                [db.name],
              )
            ).rows,
          ) ===
          JSON.stringify([
            { app: 'agentcron-scheduler-listen', n: 1 },
            { app: 'agentcron-worker-listen', n: 2 },
          ]),
        'a LISTEN connection for the scheduler and each worker, on the server',
        20_000,
        100,
      );
      const result = await everySecond(db.pool, deployment.url, { crons: 20, seconds: 10 });
      console.log(`# through PgBouncer: ${JSON.stringify(result)}`);
      const lines = deployment.apps.flatMap((a) => a.output);
      assert.deepEqual(
        lines.filter((l) => /unsupported startup parameter|polls every second/.test(l)),
        [],
        'no options startup parameter sent to PgBouncer; LISTEN in place',
      );
      await deployment.stop();
      deployment = undefined;
      assert.deepEqual(new Set(await pooledSessionSettings(bouncer.url, 8)), new Set(['61s 0 0']), 'pooled sessions have the database defaults');
    },
  );

  test('without a direct URL: each process says so in one line, polls, and still fires every occurrence', async () => {
    await migrate(db.pool);
    const env = { DATABASE_URL: bouncer.url, DATABASE_POOL_MAX: '', CRON_ALLOW_SECONDS_SCHEDULE: 'true', PORT: '0', HEARTBEAT_INTERVAL_SECONDS: '1' };
    // The release step needs a session of its own: it says so and fails, never hangs.
    const release = spawnApp('migrate', env);
    assert.equal(await release.exited, 1);
    assert.match(release.output.join('\n'), /migrations need a session of their own: set DATABASE_DIRECT_URL/);
    const scheduler = spawnApp('scheduler', env);
    const worker = spawnApp('worker', { ...env, LOG_SUMMARY_INTERVAL_SECONDS: '2' });
    try {
      await Promise.all([scheduler.waitFor(/scheduler started/, 60_000), worker.waitFor(/worker started/, 60_000)]);
      for (const app of [scheduler, worker]) {
        assert.equal(
          app.output.filter((l) =>
            l.includes(
              'DATABASE_URL goes through a connection pooler (it refused the options startup parameter): ' +
                'no LISTEN, this process polls every second instead; set DATABASE_DIRECT_URL',
            ),
          ).length,
          1,
        );
      }
      // A cron created while the scheduler sleeps: no NOTIFY reaches it, its next look finds it.
      const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) + interval '2 seconds' AS start`);
      const start = rows[0].start;
      const end = new Date(start.getTime() + 5000);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, on_run_completed: 'keep' }));
      await eventually(
        async () =>
          (await db.pool.query(`SELECT 1 FROM runs WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 AND status = 'success'`, [ids, start, end]))
            .rowCount === 30,
        'every run of 6 seconds of 5 crons to succeed',
        30_000,
        200,
      );
      await db.pool.query(`UPDATE crons SET enabled = false WHERE cron_id = ANY($1)`, [ids]);
      const skipped = await db.pool.query(`SELECT 1 FROM cron_occurrences WHERE cron_id = ANY($1) AND scheduled_for BETWEEN $2 AND $3 AND status = 'skipped'`, [
        ids,
        start,
        end,
      ]);
      assert.equal(skipped.rowCount, 0);
      // Runs are counted, a line every interval, not written one line each at info.
      await worker.waitFor(/info \[worker\] last \d+s: \d+ succeeded/, 10_000);
      assert.deepEqual(
        worker.output.filter((l) => /run succeeded/.test(l)),
        [],
      );
      const listeners = await db.pool.query(
        `SELECT application_name, query, backend_start, client_port FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE '%-listen'`,
        [db.name],
      );
      assert.equal(listeners.rowCount, 0, `no LISTEN through the pooler ${JSON.stringify(listeners.rows)}`);
    } finally {
      scheduler.kill('SIGTERM');
      worker.kill('SIGTERM');
      assert.equal(await scheduler.exited, 0);
      assert.equal(await worker.exited, 0);
    }
    // MIGRATE_ON_START (the default) is not done through the pooler: its session lock and settings would stay on pooled backends.
    for (const app of [scheduler, worker])
      assert.ok(
        app.output.some((l) => /MIGRATE_ON_START: migrations skipped/.test(l)),
        app.output.join('\n'),
      );
    assert.deepEqual(new Set(await pooledSessionSettings(bouncer.url, 8)), new Set(['61s 0 0']), 'pooled sessions have the database defaults');
  });
});
