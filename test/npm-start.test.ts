import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { BUILTIN_ONLY, ROOT, freePort, track } from './support/processes.ts';

// `npm start` as a person runs it in a terminal: no DATABASE_URL (the embedded PostgreSQL), and
// Ctrl-C, which the terminal sends to the whole foreground process group.

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

test('npm start: says where its database is, helper commands find it, Ctrl-C drains cleanly and stops the database last', async () => {
  const [pgPort, httpPort] = [await freePort(), await freePort()];
  const dataDir = path.join(ROOT, `.agentcron/npm-start-${pgPort}`);
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    EMBEDDED_PG_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort),
    PORT: String(httpPort),
    HOST: '127.0.0.1',
    AGENTCRON_CONFIG: BUILTIN_ONLY,
  };
  // Its own process group, as a terminal's foreground job.
  const app = track(spawn(process.execPath, [path.join(ROOT, 'apps/all/main.ts')], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  try {
    await app.waitFor(/worker started/, 60_000);
    assert.ok(app.output.some((l) => l.includes(`embedded PostgreSQL at postgres://postgres:agentcron@127.0.0.1:${pgPort}/agentcron`)));
    // A helper command next to it, without DATABASE_URL.
    const keys = track(spawn(process.execPath, [path.join(ROOT, 'apps/keys/main.ts'), 'create', '--user', 'alice'], { cwd: ROOT, env }));
    assert.equal(await keys.exited, 0, keys.output.join('\n'));
    assert.match(keys.output.join('\n'), /created key .* for user "alice"/);

    process.kill(-app.child.pid!, 'SIGINT');
    assert.equal(await app.exited, 0);
    const afterSignal = app.output.slice(app.output.findIndex((l) => /SIGINT received/.test(l)));
    assert.match(afterSignal.join('\n'), /stopped/);
    // Short and clean: the database was up for the whole drain.
    assert.ok(afterSignal.length <= 4, afterSignal.join('\n'));
    for (const bad of [/terminating connection/, /ECONNREFUSED/, /shutting down/, / error /]) {
      assert.doesNotMatch(afterSignal.join('\n'), bad);
    }
    assert.equal(await portOpen(pgPort), false, 'the embedded PostgreSQL stopped with it');
  } finally {
    if (app.child.exitCode === null) process.kill(-app.child.pid!, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
