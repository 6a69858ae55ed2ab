import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ConfigError, databaseSettings, loadConfig } from '../libs/config/index.ts';
import { Listener, createPool, databaseTrouble, startEmbeddedPostgres, withTransaction } from '../libs/db/index.ts';
import type { EmbeddedDatabase, Pool } from '../libs/db/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, insertCron } from './support/engine.ts';
import { ROOT, freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// The database goes away under running processes (its backends terminated, the server stopped
// and started again), is not there when they start, runs out of connections: no process exits,
// and each goes on working as soon as the database is back.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  app: SpawnedApp;
  exitedEarly: () => number | string | undefined;
}

/** A spawned process, with a way to tell whether (and how) it has exited so far. */
function watch(app: SpawnedApp): Running {
  let code: number | string | undefined;
  void app.exited.then((c) => (code = c));
  return { app, exitedEarly: () => code };
}

async function health(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(8000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return -1;
  }
}

/** Occurrences of the cron scheduled after `since` that ran to success. */
async function successesAfter(pool: Pool, cronId: string, since: Date): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND scheduled_for > $2 AND status = 'success'`,
    [cronId, since],
  );
  return rows[0].n;
}

/** Occurrences of the cron scheduled after `since` (any status): the scheduler fired them. */
async function firedAfter(pool: Pool, cronId: string, since: Date): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND scheduled_for > $2`, [
    cronId,
    since,
  ]);
  return rows[0].n;
}

async function stopAll(apps: Running[]): Promise<void> {
  for (const { app } of apps) app.kill('SIGTERM');
  const codes = await Promise.all(apps.map(({ app }) => app.exited));
  assert.deepEqual(
    codes,
    apps.map(() => 0),
    apps.map(({ app }) => app.output.slice(-15).join('\n')).join('\n---\n'),
  );
}

function assertNoneExited(apps: Running[]): void {
  for (const { app, exitedEarly } of apps) assert.equal(exitedEarly(), undefined, `a process exited:\n${app.output.slice(-30).join('\n')}`);
}

describe('settings', () => {
  test('database settings: role defaults, overrides, and errors naming the variable and the rule', () => {
    const none = loadConfig({});
    assert.deepEqual(databaseSettings(none, 'api'), {
      connectionTimeoutMillis: 5000,
      session: { statementTimeoutMs: 30_000, lockTimeoutMs: 5000, idleInTransactionTimeoutMs: 30_000 },
    });
    for (const role of ['scheduler', 'worker'] as const) {
      assert.deepEqual(databaseSettings(none, role), {
        connectionTimeoutMillis: 10_000,
        session: { statementTimeoutMs: 60_000, lockTimeoutMs: 30_000, idleInTransactionTimeoutMs: 15_000 },
      });
    }
    const set = loadConfig({ DATABASE_STATEMENT_TIMEOUT_SECONDS: '0', DATABASE_LOCK_TIMEOUT_SECONDS: '2', DATABASE_CONNECT_TIMEOUT_SECONDS: '3' });
    assert.deepEqual(databaseSettings(set, 'worker'), {
      connectionTimeoutMillis: 3000,
      session: { statementTimeoutMs: 0, lockTimeoutMs: 2000, idleInTransactionTimeoutMs: 15_000 },
    });
    for (const [variable, value, rule] of [
      ['DATABASE_STATEMENT_TIMEOUT_SECONDS', 'soon', /DATABASE_STATEMENT_TIMEOUT_SECONDS must be a whole number \(got "soon"\)/],
      ['DATABASE_CONNECT_TIMEOUT_SECONDS', '0', /DATABASE_CONNECT_TIMEOUT_SECONDS must be between 1 and 600/],
      ['DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS', '-1', /DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS must be a whole number/],
      ['DATABASE_LOCK_TIMEOUT_SECONDS', '90000', /DATABASE_LOCK_TIMEOUT_SECONDS must be between 0 and 86400/],
    ] as const) {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && rule.test(err.message),
        `${variable}=${value}`,
      );
    }
  });
});

describe('surviving the database', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('dbsurvival');
  });
  after(() => db?.drop());

  test('a session of each role shows its settings (SHOW), the URL’s own options win', async () => {
    const config = loadConfig({});
    const expected = {
      api: { statement_timeout: '30s', lock_timeout: '5s', idle_in_transaction_session_timeout: '30s' },
      scheduler: { statement_timeout: '1min', lock_timeout: '30s', idle_in_transaction_session_timeout: '15s' },
      worker: { statement_timeout: '1min', lock_timeout: '30s', idle_in_transaction_session_timeout: '15s' },
    };
    for (const role of ['api', 'scheduler', 'worker'] as const) {
      const s = databaseSettings(config, role);
      const pool = createPool(db.url, { max: 1, applicationName: `agentcron-test-${role}`, ...s });
      try {
        const show = async (name: string) => (await pool.query(`SHOW ${name}`)).rows[0][name];
        for (const [name, value] of Object.entries(expected[role])) assert.equal(await show(name), value, `${role}: ${name}`);
        // Over TCP, the server drops a silent peer after 10 s + 4 × 5 s.
        assert.equal(await show('tcp_keepalives_idle'), '10', role);
        assert.equal(await show('tcp_keepalives_interval'), '5', role);
        assert.equal(await show('tcp_keepalives_count'), '4', role);
        assert.equal(await show('tcp_user_timeout'), '30000', role);
      } finally {
        await pool.end();
      }
    }
    const u = new URL(db.url);
    u.searchParams.set('options', '-c statement_timeout=7s');
    const pool = createPool(u.toString(), { max: 1, ...databaseSettings(config, 'api') });
    try {
      assert.equal((await pool.query('SHOW statement_timeout')).rows[0].statement_timeout, '7s');
      assert.equal((await pool.query('SHOW lock_timeout')).rows[0].lock_timeout, '5s');
    } finally {
      await pool.end();
    }
  });

  test('real errors are classified: refused and terminated are "unavailable", a lock timeout is "busy"', async () => {
    const closed = await freePort();
    const refused = await new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${closed}/x` }).connect().then(
      () => null,
      (err: unknown) => err,
    );
    assert.equal(databaseTrouble(refused), 'unavailable', String(refused));

    const holder = new pg.Client({ connectionString: db.url });
    const waiter = new pg.Client({ connectionString: db.url, options: '-c lock_timeout=100' });
    await holder.connect();
    await waiter.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE crons IN ACCESS EXCLUSIVE MODE');
      const busy = await waiter.query('SELECT count(*) FROM crons').then(
        () => null,
        (err: unknown) => err,
      );
      assert.equal(databaseTrouble(busy), 'busy', String(busy));
      await holder.query('ROLLBACK');
      // A terminated connection reports twice (the FATAL, then the socket closing): keep listening.
      const lost = new Promise<unknown>((resolve) => waiter.on('error', resolve));
      await holder.query('SELECT pg_terminate_backend($1)', [(waiter as unknown as { processID: number }).processID]);
      assert.equal(databaseTrouble(await lost), 'unavailable');
    } finally {
      await holder.end();
      await waiter.end().catch(() => {});
    }
  });

  test('Listener: notifications arrive, a terminated connection comes back (onReconnect), stop() ends it', async () => {
    const got: string[] = [];
    let connects = 0;
    const warnings: string[] = [];
    const listener = new Listener({
      connectionString: db.url,
      channels: ['agentcron_test_a', 'agentcron test "b"'],
      applicationName: 'agentcron-test-listen',
      backoff: { initialMs: 50, maxMs: 200 },
      logger: { warn: (m) => warnings.push(m), info: () => {} },
      onNotification: (channel, payload) => got.push(`${channel}:${payload}`),
      onReconnect: () => connects++,
    });
    try {
      await listener.start();
      assert.equal(listener.listening, true);
      assert.equal(connects, 1);
      await db.pool.query(`SELECT pg_notify('agentcron_test_a', 'one'), pg_notify('agentcron test "b"', 'two')`);
      await eventually(async () => got.length === 2, 'both notifications', 5000, 10);
      assert.deepEqual(got.sort(), ['agentcron test "b":two', 'agentcron_test_a:one']);

      await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'agentcron-test-listen'`, [
        db.name,
      ]);
      await eventually(async () => connects === 2 && listener.listening, 'the listener to reconnect', 5000, 10);
      assert.match(warnings.join('\n'), /LISTEN connection lost \(57P01: terminating connection due to administrator command\); reconnecting in/);
      await db.pool.query(`SELECT pg_notify('agentcron_test_a', 'three')`);
      await eventually(async () => got.includes('agentcron_test_a:three'), 'a notification after the reconnect', 5000, 10);
    } finally {
      await listener.stop();
    }
    assert.equal(listener.listening, false);
    const { rows } = await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'agentcron-test-listen'`, [db.name]);
    assert.equal(rows.length, 0, 'its connection is closed');
  });

  test('withTransaction: a connection terminated mid-transaction fails the transaction only; the pool discards it', async () => {
    const pool = createPool(db.url, { max: 1, applicationName: 'agentcron-test-tx' });
    try {
      const err = await withTransaction(pool, async (client) => {
        await client.query(`SELECT pg_terminate_backend(pg_backend_pid())`);
      }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.equal(databaseTrouble(err), 'unavailable', String(err));
      // The one connection of the pool was discarded: the next transaction gets a fresh one.
      assert.equal(await withTransaction(pool, async (client) => (await client.query('SELECT 41 + 1 AS n')).rows[0].n), 42);
    } finally {
      await pool.end();
    }
  });

  test('every backend of a running api, scheduler and worker terminated: none exits, firing goes on', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1', CRON_POLL_INTERVAL_SECONDS: '1' };
    const apps = [watch(spawnApp('api', env)), watch(spawnApp('scheduler', env)), watch(spawnApp('worker', env))];
    await Promise.all([apps[0].app.waitFor(/api listening on/), apps[1].app.waitFor(/scheduler started/), apps[2].app.waitFor(/worker started/)]);
    const cronId = await insertCron(db.pool, { schedule: '* * * * * *' });
    const t0 = new Date(0);
    await eventually(() => successesAfter(db.pool, cronId, t0), 'a first run of the every-second cron to succeed', 15_000, 100);

    // Connections checked out of a pool are the ones that used to crash a process: the api's
    // and the scheduler's are caught inside their transactions, waiting on a lock held here.
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => {});
    await holder.connect();
    await holder.query('BEGIN; LOCK TABLE crons IN ACCESS EXCLUSIVE MODE');
    const creating = fetch(`${url}/runs/crons`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ assistant_id: 'echo', schedule: '0 0 1 1 *', input: {} }),
    });
    const waiting = async () =>
      (
        await holder.query<{ application_name: string }>(
          `SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
          [db.name],
        )
      ).rows.map((r) => r.application_name);
    await eventually(
      async () => {
        const w = await waiting();
        return w.includes('agentcron-api') && w.includes('agentcron-scheduler');
      },
      'the api and the scheduler to wait on the lock inside their transactions',
      10_000,
      20,
    );

    // Then every connection of every process to this database (the test's own pool's included),
    // a few times over.
    let terminated = 0;
    for (let i = 0; i < 3; i++) {
      const { rows } = await holder.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [db.name],
      );
      terminated += rows[0].n;
      if (i === 0) {
        // The request whose transaction was cut answers 503, not 500.
        const res = await creating;
        const body: any = await res.json();
        assert.equal(res.status, 503, JSON.stringify(body));
        assert.ok(res.headers.get('retry-after'));
        assert.match(body.detail, /^database unavailable: /);
        await holder.query('ROLLBACK');
      }
      await sleep(200);
    }
    await holder.end();
    assert.ok(terminated >= 6, `only ${terminated} backends terminated`);
    const { rows } = await db.pool.query<{ now: Date }>('SELECT now()');
    const killedAt = rows[0].now;

    // New occurrences fire and their runs succeed (the scheduler, pg-boss and the worker all reconnected).
    await eventually(async () => (await successesAfter(db.pool, cronId, killedAt)) >= 2, 'runs scheduled after the kill to succeed', 15_000, 100);
    await eventually(async () => (await health(url)) === 200, '/health 200 again', 10_000, 100);
    assertNoneExited(apps);
    const lost = apps.flatMap(({ app }) => app.output).filter((l) => /lost/.test(l));
    assert.ok(lost.length > 0, 'lost connections are logged');
    assert.ok(!apps.some(({ app }) => app.output.some((l) => /Unhandled 'error'|unhandled error/i.test(l))), 'no unhandled error');
    await stopAll(apps);
    await db.pool.query('UPDATE crons SET enabled = false WHERE cron_id = $1', [cronId]);
  });

  test('api pool exhausted: 503 with Retry-After and a clear detail, 200 again once a connection is free', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // One connection, a 1 s wait for it, no lock timeout: a request stuck behind a lock holds it.
    const api = watch(
      spawnApp('api', {
        DATABASE_URL: db.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_POOL_MAX: '1',
        DATABASE_CONNECT_TIMEOUT_SECONDS: '1',
        DATABASE_LOCK_TIMEOUT_SECONDS: '0',
      }),
    );
    await api.app.waitFor(/api listening on/);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE crons IN ACCESS EXCLUSIVE MODE');
      const stuck = fetch(`${url}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await eventually(
        async () =>
          (
            await holder.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'agentcron-api' AND wait_event_type = 'Lock'`, [
              db.name,
            ])
          ).rowCount,
        'the api’s only connection to wait on the lock',
        10_000,
        20,
      );
      const started = Date.now();
      const res = await fetch(`${url}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      const body: any = await res.json();
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(res.headers.get('retry-after'), '5');
      assert.match(body.detail, /^database unavailable: no database connection free in time/);
      assert.ok(Date.now() - started < 4000, 'answered within about the connect timeout');
      const h = await fetch(`${url}/health`);
      assert.equal(h.status, 503);
      assert.equal(((await h.json()) as any).database.ok, false);
      await holder.query('COMMIT');
      const done = await stuck;
      assert.equal(done.status, 200, await done.text());
      await eventually(async () => (await health(url)) === 200, '/health 200 again', 10_000, 50);
    } finally {
      await holder.end().catch(() => {});
    }
    assertNoneExited([api]);
    await stopAll([api]);
  });
});

describe('a database of its own, stopped and started', () => {
  const dataDir = path.join(ROOT, '.agentcron', `test-survival-${randomBytes(4).toString('hex')}`);
  let port: number;
  let server: EmbeddedDatabase | undefined;
  let pool: Pool | undefined;
  const start = async () => {
    server = await startEmbeddedPostgres({ dataDir, port, database: 'survival' });
    return server;
  };
  const stop = async () => {
    await server?.stop();
    server = undefined;
  };
  before(async () => {
    port = await freePort();
    await start();
  });
  after(async () => {
    await pool?.end().catch(() => {});
    await stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  });

  test('stopped and started under a running api, scheduler and worker: none exits, /health 503 then 200, firing resumes', async () => {
    const dbUrl = server!.url;
    const httpPort = await freePort();
    const url = `http://127.0.0.1:${httpPort}`;
    const env = { DATABASE_URL: dbUrl, PORT: String(httpPort), HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1', CRON_POLL_INTERVAL_SECONDS: '1' };
    const apps = [watch(spawnApp('api', env)), watch(spawnApp('scheduler', env)), watch(spawnApp('worker', env))];
    await Promise.all([apps[0].app.waitFor(/api listening on/), apps[1].app.waitFor(/scheduler started/), apps[2].app.waitFor(/worker started/)]);
    pool = createPool(dbUrl, { max: 2, applicationName: 'agentcron-test' });
    const cronId = await insertCron(pool, { schedule: '* * * * * *' });
    await eventually(() => successesAfter(pool!, cronId, new Date(0)), 'a first run to succeed', 15_000, 100);

    await stop();
    await eventually(async () => (await health(url)) === 503, '/health 503 while the database is down', 10_000, 100);
    // Down for a while: every process meets the missing database (the scheduler polls every second).
    await sleep(2000);
    assertNoneExited(apps);

    await start();
    const backAt = Date.now();
    const { rows } = await pool.query<{ now: Date }>('SELECT now()');
    await eventually(async () => (await firedAfter(pool!, cronId, rows[0].now)) >= 1, 'an occurrence fired after the restart', 15_000, 100);
    const resumedMs = Date.now() - backAt;
    await eventually(async () => (await successesAfter(pool!, cronId, rows[0].now)) >= 1, 'a run after the restart to succeed', 15_000, 100);
    await eventually(async () => (await health(url)) === 200, '/health 200 again', 10_000, 100);
    assert.ok(resumedMs < 8000, `firing resumed ${resumedMs} ms after the database came back`);
    assertNoneExited(apps);
    await pool.query('UPDATE crons SET enabled = false WHERE cron_id = $1', [cronId]);
    await stopAll(apps);
  });

  test('started while the database is down: each process waits (one line per attempt), starts when it is up, exits 0 on SIGTERM', async () => {
    const dbUrl = server!.url;
    await pool?.end();
    pool = undefined;
    await stop();
    const httpPort = await freePort();
    const env = { DATABASE_URL: dbUrl, PORT: String(httpPort), HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1' };
    const apps = [watch(spawnApp('api', env)), watch(spawnApp('scheduler', env)), watch(spawnApp('worker', env))];
    // A SIGTERM during the wait is a clean, prompt exit.
    const quitter = watch(spawnApp('worker', env));
    for (const { app } of [...apps, quitter]) await app.waitFor(/database unreachable \(.*\); retrying in \d+(\.\d)?s/, 15_000);
    const signalled = Date.now();
    quitter.app.kill('SIGTERM');
    assert.equal(await quitter.app.exited, 0, quitter.app.output.join('\n'));
    assert.ok(Date.now() - signalled < 3000, 'exited promptly');

    await sleep(1000);
    assertNoneExited(apps);
    await start();
    await Promise.all([
      apps[0].app.waitFor(/api listening on/, 20_000),
      apps[1].app.waitFor(/scheduler started/, 20_000),
      apps[2].app.waitFor(/worker started/, 20_000),
    ]);
    assert.equal(await health(`http://127.0.0.1:${httpPort}`), 200);
    await stopAll(apps);
  });
});
