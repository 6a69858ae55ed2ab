import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ROOT, freePort, spawnApp, track } from './support/processes.ts';

// The Procfile's own lines, run as a platform runs them (through a shell and npm), against a
// given DATABASE_URL: each starts, and exits 0 on SIGTERM.

const procfile = Object.fromEntries(
  readFileSync(path.join(ROOT, 'Procfile'), 'utf8')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
);

function runLine(name: string, env: Record<string, string>) {
  // bash -c, as Heroku runs a Procfile line (a single command replaces the shell).
  const child = spawn('bash', ['-c', procfile[name]], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, signalled whole, as a platform stops a dyno.
    detached: true,
  });
  const app = track(child);
  return { ...app, kill: (signal: NodeJS.Signals = 'SIGTERM') => process.kill(-child.pid!, signal) };
}

describe('Procfile', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('procfile', { migrate: false });
  });
  after(() => db?.drop());

  test('has release, web, scheduler and worker', () => {
    assert.deepEqual(Object.keys(procfile).sort(), ['release', 'scheduler', 'web', 'worker']);
  });

  test('release migrates; web, scheduler and worker start on DATABASE_URL and PORT and exit 0 on SIGTERM', async () => {
    const release = runLine('release', { DATABASE_URL: db.url });
    assert.equal(await release.exited, 0, release.output.join('\n'));
    const port = await freePort();
    const env = { DATABASE_URL: db.url, PORT: String(port), MIGRATE_ON_START: 'false' };
    const web = runLine('web', env);
    const scheduler = runLine('scheduler', env);
    const worker = runLine('worker', env);
    await web.waitFor(/api listening on/);
    await scheduler.waitFor(/scheduler started/);
    await worker.waitFor(/worker started/);
    const ok = await fetch(`http://127.0.0.1:${port}/ok`);
    assert.equal(ok.status, 200);
    // production logs are JSON lines
    const line = web.output.find((l) => l.includes('api listening on'))!;
    assert.equal(JSON.parse(line).service, 'api');
    for (const p of [web, scheduler, worker]) p.kill('SIGTERM');
    assert.deepEqual(await Promise.all([web.exited, scheduler.exited, worker.exited]), [0, 0, 0]);
  });

  test('only release migrates: web started first, with defaults, waits for it (503 meanwhile), then serves', async () => {
    const fresh = await createTestDatabase('procfile_order', { migrate: false });
    try {
      const port = await freePort();
      const web = runLine('web', { DATABASE_URL: fresh.url, PORT: String(port), SCHEMA_WAIT_POLL_SECONDS: '1' });
      await web.waitFor(/api waiting for the schema on port/);
      const waiting = await fetch(`http://127.0.0.1:${port}/ok`);
      assert.equal(waiting.status, 503);
      assert.match(((await waiting.json()) as { detail: string }).detail, /the database has none; missing 001_processes\.sql/);
      const release = runLine('release', { DATABASE_URL: fresh.url });
      assert.equal(await release.exited, 0, release.output.join('\n'));
      await web.waitFor(/api listening on/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/ok`)).status, 200);
      assert.ok(!web.output.some((l) => /migrations applied/.test(l)), web.output.join('\n'));
      web.kill('SIGTERM');
      assert.equal(await web.exited, 0);
    } finally {
      await fresh.drop();
    }
  });

  test('CRON_ENABLED=false keeps a scheduler up and idle, saying so', async () => {
    const scheduler = spawnApp('scheduler', { DATABASE_URL: db.url, CRON_ENABLED: 'false' });
    await scheduler.waitFor(/CRON_ENABLED=false: the scheduler is idle/);
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, payload, next_run_date)
       SELECT gen_random_uuid(), assistant_id, 'u', '* * * * *', '{"input": {}}', now() - interval '1 minute' FROM assistants LIMIT 1`,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(scheduler.child.exitCode, null, 'still running');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences`);
    assert.equal(rows[0].n, 0);
    scheduler.kill('SIGTERM');
    assert.equal(await scheduler.exited, 0);
  });
});

test('apps/start.sh on a Node older than 24 (a production install without dev dependencies): one line, exit 1', async () => {
  // A copy of the script with no node_modules beside it, and a `node` on PATH that is Node 20.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-start-'));
  try {
    mkdirSync(path.join(dir, 'apps'));
    mkdirSync(path.join(dir, 'bin'));
    copyFileSync(path.join(ROOT, 'apps/start.sh'), path.join(dir, 'apps/start.sh'));
    writeFileSync(path.join(dir, 'bin/node'), '#!/bin/sh\n[ "$1" = --version ] && echo v20.20.2 && exit 0\nexit 1\n', { mode: 0o755 });
    const run = track(spawn('sh', [path.join(dir, 'apps/start.sh'), 'worker'], { env: { PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin` } }));
    assert.equal(await run.exited, 1);
    assert.deepEqual(run.output, [
      'agentcron: needs Node.js 24 or newer to run its TypeScript sources (found v20.20.2); use a Node 24 runtime, or install the dev dependencies ' +
        '(npm ci), which bring one',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
