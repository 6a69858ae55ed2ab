import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, startEmbeddedPostgres } from '../libs/db/index.ts';
import type { EmbeddedDatabase, Pool } from '../libs/db/index.ts';
import { everySecond, startDeployment } from './support/hosted.ts';
import type { Deployment } from './support/hosted.ts';
import { ROOT, freePort, spawnApp } from './support/processes.ts';

// A 20-connection PostgreSQL, as hosted plans sell it (Heroku's Essential plans): 3 of the 20 are
// kept for superusers, so the app's role has 17. Web + scheduler + 2 workers with default
// settings must fit, and fire every occurrence of 50 every-second crons: none skipped as missed
// because the scheduler could not get a connection, none twice, the API answering meanwhile.

const SECONDS = Number(process.env.CONNECTIONS_TEST_SECONDS ?? 30);
const CRONS = 50;

describe('a 20-connection PostgreSQL: web + scheduler + 2 workers with default settings', () => {
  const dataDir = path.join(ROOT, '.agentcron', `test-connections-${randomBytes(4).toString('hex')}`);
  let server: EmbeddedDatabase | undefined;
  let admin: Pool | undefined;
  let appUrl: string;
  let deployment: Deployment | undefined;
  before(async () => {
    const port = await freePort();
    server = await startEmbeddedPostgres({ dataDir, port, database: 'postgres', settings: { max_connections: 20, superuser_reserved_connections: 3 } });
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

  test(`${CRONS} every-second crons for ${SECONDS} s: nothing missed, nothing twice, the API answering, at most 16 connections`, async () => {
    deployment = await startDeployment({ DATABASE_URL: appUrl });
    // What the app's role has open, sampled throughout.
    let peak = 0;
    const byApp = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await admin!.query<{ app: string; n: number }>(
          `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' GROUP BY 1`,
        );
        peak = Math.max(peak, rows.reduce((n, r) => n + r.n, 0));
        for (const r of rows) byApp.set(r.app, Math.max(byApp.get(r.app) ?? 0, r.n));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let result;
    try {
      result = await everySecond(admin!, deployment.url, { crons: CRONS, seconds: SECONDS });
    } finally {
      sampling = false;
      await sampler;
    }
    console.log(`# connections: peak ${peak} of the app's 17; by process (peak) ${JSON.stringify(Object.fromEntries([...byApp].sort()))}; ${JSON.stringify(result)}`);
    // 5 (web) + 3 (scheduler) + 4 + 4 (workers): the defaults' budget, kept.
    assert.ok(peak <= 16, `at most 16 connections open at once (saw ${peak})`);
    const refused = deployment.apps.flatMap((a) => a.output).filter((l) => /53300|too many (clients|connections)|remaining connection slots/i.test(l));
    assert.deepEqual(refused, [], 'no process was refused a connection');
    await deployment.stop();
    deployment = undefined;
  });

  test('a budget too small for the process stops it at startup naming the variable', async () => {
    const worker = spawnApp('worker', { DATABASE_URL: appUrl, DATABASE_POOL_MAX: '', DATABASE_MAX_CONNECTIONS: '2' });
    assert.equal(await worker.exited, 1);
    assert.match(worker.output.join('\n'), /invalid configuration: DATABASE_MAX_CONNECTIONS must be at least 3 for this process \(worker: 1 LISTEN connection \+ a pool of 2\)/);
  });
});
