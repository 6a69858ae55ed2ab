import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../libs/config/index.ts';
import { MIGRATIONS_DIR, listMigrations, migrate, readSchemaState } from '../libs/db/index.ts';
import { installQueueSchema, queueSettings } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { endRuns } from '../libs/runs/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, insertCron, insertThread, quietLogger, startTestQueue, useQueueDatabase } from './support/engine.ts';
import { startInProcessApi } from './support/inprocess.ts';
import { freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// Rolling upgrades (issues 20 and 23): new code started before its release waits for the schema
// (no claims, no passes, the api answering 503 saying why) and starts on its own once the release
// has run; old code on a newer schema runs.

/** A directory holding every migration of this code but the last `drop` (the previous release's set). */
function previousMigrations(drop = 1): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-prev-migrations-'));
  const files = listMigrations();
  for (const { file } of files.slice(0, files.length - drop)) symlinkSync(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('schema version gate', () => {
  let db: TestDatabase;
  let prev: ReturnType<typeof previousMigrations>;
  const procs: SpawnedApp[] = [];
  before(async () => {
    prev = previousMigrations();
    db = await createTestDatabase('upgrade_gate', { migrate: false });
    // The database as the previous release left it: its migrations and pg-boss's schema.
    await migrate(db.pool, prev.dir);
    await installQueueSchema({ connectionString: db.url, schema: 'pgboss', settings: queueSettings(loadConfig({})), logger: quietLogger() });
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await db?.drop();
    prev?.remove();
  });

  test('an old process on the newer schema is not behind; new code on the older one is', async () => {
    const older = listMigrations(prev.dir);
    const before = await readSchemaState(db.pool);
    assert.equal(before.behind, true);
    assert.deepEqual(before.missing, [listMigrations().at(-1)!.file]);
    assert.equal(before.found, older.at(-1)!.id);
    // The previous release's code on this database: exactly what it needs.
    assert.equal((await readSchemaState(db.pool, older)).behind, false);
  });

  test('new api, scheduler and worker started before the release wait (503 saying why), then start once it has run', async () => {
    const port = await freePort();
    const env = {
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      MIGRATE_ON_START: 'false',
      SCHEMA_WAIT_POLL_SECONDS: '1',
      HEARTBEAT_INTERVAL_SECONDS: '1',
    };
    const api = spawnApp('api', env);
    const scheduler = spawnApp('scheduler', env);
    const worker = spawnApp('worker', env);
    procs.push(api, scheduler, worker);
    const waitLine = /waiting for the schema: the database schema is behind/;
    await Promise.all([api.waitFor(/api waiting for the schema on port/), scheduler.waitFor(waitLine), worker.waitFor(waitLine)]);
    const base = `http://127.0.0.1:${port}`;
    const search = await fetch(`${base}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(search.status, 503);
    assert.ok(Number(search.headers.get('retry-after')) > 0);
    const body = (await search.json()) as { detail: string };
    assert.match(body.detail, /schema is behind .*missing \d+_\w+\.sql.*a release \(npm run migrate/);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    assert.match(((await health.json()) as { schema: { detail: string } }).schema.detail, /schema is behind/);
    const ok = await fetch(`${base}/ok`);
    assert.equal(ok.status, 503);
    assert.match(((await ok.json()) as { detail: string }).detail, /schema is behind/);
    // Nothing started: no passes, no claims, nothing registered.
    for (const p of [scheduler, worker]) assert.ok(!p.output.some((l) => /scheduler started|worker started/.test(l)), p.output.join('\n'));
    const registered = await db.pool.query('SELECT count(*)::int AS n FROM agentcron_processes');
    assert.equal(registered.rows[0].n, 0);

    // The release.
    const release = spawnApp('migrate', { DATABASE_URL: db.url });
    assert.equal(await release.exited, 0, release.output.join('\n'));
    await Promise.all([api.waitFor(/api listening on/), scheduler.waitFor(/scheduler started/), worker.waitFor(/worker started/)]);
    assert.ok(
      api.output.some((l) => /the release has run/.test(l)),
      api.output.join('\n'),
    );
    const after = await fetch(`${base}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(after.status, 200, await after.text());
    assert.equal((await fetch(`${base}/ok`)).status, 200);
    for (const p of [api, scheduler, worker]) assert.ok(!p.output.some((l) => /"level":"error"|\berror\b.*column/.test(l)), p.output.join('\n'));
  });
});

describe('a running api on a schema that does not match its code', () => {
  const ctx = useQueueDatabase('upgrade_mismatch');

  test('answers 503 with Retry-After, not 500, while a column it reads is missing', async () => {
    const api = await startInProcessApi(ctx.db.pool, ctx.boss, ctx.db.url);
    try {
      await ctx.db.pool.query('ALTER TABLE crons RENAME COLUMN schedule TO schedule_contracted');
      const res = await fetch(`${api.url}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 503);
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      assert.match(((await res.json()) as { detail: string }).detail, /schema does not match this version of agentcron/);
    } finally {
      await ctx.db.pool.query('ALTER TABLE crons RENAME COLUMN schedule_contracted TO schedule').catch(() => {});
      await api.close();
    }
  });
});

describe("a cron's last_run_* in cron_last_runs (migration 024) while old processes still write crons.last_run_*", () => {
  let db: TestDatabase;
  let boss: PgBoss | undefined;
  let prev: ReturnType<typeof previousMigrations>;
  before(async () => {
    // The schema before 024, as the previous release left it.
    prev = previousMigrations(listMigrations().filter((m) => m.id >= 24).length);
    db = await createTestDatabase('upgrade_last_runs', { migrate: false });
    await migrate(db.pool, prev.dir);
  });
  after(async () => {
    await boss?.stop({ graceful: false }).catch(() => {});
    await db?.drop();
    prev?.remove();
  });

  const at = (s: string) => new Date(`2026-01-01T00:00:${s}Z`);
  const lastRun = async (cronId: string) =>
    (await db.pool.query(`SELECT last_run_status, last_run_error, last_run_id, last_run_scheduled_for FROM cron_last_runs WHERE cron_id = $1`, [cronId]))
      .rows[0] ?? null;
  // An old worker's finish: its cron's last_run_* on the crons row, never over a newer occurrence's.
  const oldFinish = (cronId: string, runId: string, scheduledFor: Date, status: string, error: string | null) =>
    db.pool.query(
      `UPDATE crons SET last_run_at = now(), last_run_status = $3, last_run_error = $4, last_run_id = $2, last_run_scheduled_for = $5
        WHERE cron_id = $1 AND (last_run_scheduled_for IS NULL OR last_run_scheduled_for <= $5)`,
      [cronId, runId, status, error, scheduledFor],
    );

  test('the release copies what the crons rows held, old writes are copied, the newest occurrence wins, the api answers them', async () => {
    const ran = await insertCron(db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const never = await insertCron(db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const stopped = await insertCron(db.pool, { schedule: '0 0 1 1 *', enabled: false });
    const firstRun = randomUUID();
    await oldFinish(ran, firstRun, at('01'), 'success', null);
    // The old scheduler stopping a cron whose schedule it cannot plan.
    await db.pool.query(`UPDATE crons SET last_run_error = 'scheduler could not plan this cron: bad' WHERE cron_id = $1`, [stopped]);

    await migrate(db.pool);
    assert.deepEqual(await lastRun(ran), { last_run_status: 'success', last_run_error: null, last_run_id: firstRun, last_run_scheduled_for: at('01') });
    assert.equal(await lastRun(never), null);
    assert.deepEqual(await lastRun(stopped), {
      last_run_status: null,
      last_run_error: 'scheduler could not plan this cron: bad',
      last_run_id: null,
      last_run_scheduled_for: null,
    });

    // Old workers still running: their writes reach cron_last_runs.
    const secondRun = randomUUID();
    await oldFinish(ran, secondRun, at('02'), 'error', 'boom');
    assert.deepEqual(await lastRun(ran), { last_run_status: 'error', last_run_error: 'boom', last_run_id: secondRun, last_run_scheduled_for: at('02') });
    // A new worker's finish of a newer occurrence (the lifecycle's own write) ...
    boss = await startTestQueue(db.url);
    const threadId = await insertThread(db.pool);
    const thirdRun = randomUUID();
    await db.pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, status, attempts, started_at)
       VALUES ($1, $2, $3, 'anonymous', $4, $5, 'running', 1, now())`,
      [thirdRun, threadId, ECHO, ran, at('04')],
    );
    await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, status) VALUES ($1, $2, $3, 'running')`, [ran, at('04'), thirdRun]);
    assert.deepEqual(await endRuns(db.pool, boss, [thirdRun], { status: 'success', error: null }), [thirdRun]);
    assert.deepEqual(await lastRun(ran), { last_run_status: 'success', last_run_error: null, last_run_id: thirdRun, last_run_scheduled_for: at('04') });
    // ... is never overwritten by an old worker's finish of an older one (its crons row still moves on).
    await oldFinish(ran, randomUUID(), at('03'), 'error', 'late');
    assert.equal((await lastRun(ran)).last_run_id, thirdRun);

    const api = await startInProcessApi(db.pool, boss, db.url);
    try {
      const res = await fetch(`${api.url}/runs/crons/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sort_by: 'cron_id', sort_order: 'asc' }),
      });
      assert.equal(res.status, 200);
      const byId = new Map(((await res.json()) as Record<string, unknown>[]).map((c) => [c.cron_id, c]));
      const shown = (id: string) => {
        const c = byId.get(id)!;
        return [c.last_run_status, c.last_run_error, c.last_run_id, typeof c.last_run_at];
      };
      assert.deepEqual(shown(ran), ['success', null, thirdRun, 'string']);
      assert.deepEqual(shown(never), [null, null, null, 'object']);
      assert.deepEqual(shown(stopped), [null, 'scheduler could not plan this cron: bad', null, 'object']);
    } finally {
      await api.close();
    }
  });
});
