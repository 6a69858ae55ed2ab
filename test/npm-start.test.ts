import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { ROOT, freePort, inheritedEnv, track } from './support/processes.ts';
import { eventually } from './support/engine.ts';

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

test(
  'npm start: says where its database is, helper commands find it, Ctrl-C hands a run in progress back, drains cleanly and stops the ' + 'database last',
  async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    const dataDir = path.join(ROOT, `.agentcron/npm-start-${pgPort}`);
    const env = {
      ...inheritedEnv(),
      EMBEDDED_PG_DIR: dataDir,
      EMBEDDED_PG_PORT: String(pgPort),
      PORT: String(httpPort),
      HOST: '127.0.0.1',
      // `slow` takes a minute unless aborted: a run still going when Ctrl-C comes.
      AGENTCRON_CONFIG: path.join(ROOT, 'test/fixtures/slow.json'),
      SHUTDOWN_GRACE_SECONDS: '3',
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

      // A cron's first run starts at once and is still running when Ctrl-C comes.
      const created = await fetch(`http://127.0.0.1:${httpPort}/runs/crons`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ assistant_id: 'slow', schedule: '0 0 1 1 *' }),
      });
      assert.equal(created.status, 200);
      const { run_id: runId } = (await created.json()) as { run_id: string };
      const db = new pg.Client({ connectionString: `postgres://postgres:agentcron@127.0.0.1:${pgPort}/agentcron` });
      await db.connect();
      try {
        await eventually(async () => (await db.query(`SELECT status FROM runs WHERE run_id = $1`, [runId])).rows[0]?.status === 'running', 'the run to start');
      } finally {
        await db.end();
      }

      process.kill(-app.child.pid!, 'SIGINT');
      assert.equal(await app.exited, 0);
      const afterSignal = app.output.slice(app.output.findIndex((l) => /SIGINT received/.test(l)));
      assert.match(afterSignal.join('\n'), /aborted and handed back to the queue/);
      assert.match(afterSignal.join('\n'), /stopped/);
      // Short and clean: the database was up for the whole drain and until every session had
      // closed (a session still saying goodbye when it stopped reported itself lost: 57P01).
      const lines = afterSignal;
      assert.ok(lines.length <= 6, afterSignal.join('\n'));
      for (const bad of [/terminating connection/, /ECONNREFUSED/, /shutting down/, / error /, / lost /, /57P01/]) {
        assert.doesNotMatch(lines.join('\n'), bad);
      }
      assert.equal(await portOpen(pgPort), false, 'the embedded PostgreSQL stopped with it');
    } finally {
      if (app.child.exitCode === null) process.kill(-app.child.pid!, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
