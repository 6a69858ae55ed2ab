import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../libs/config/index.ts';
import { MIGRATIONS_DIR, listMigrations, migrate, readSchemaState } from '../libs/db/index.ts';
import { installQueueSchema, queueSettings } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { quietLogger, useQueueDatabase } from './support/engine.ts';
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
