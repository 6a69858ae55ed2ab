import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ROOT, freePort, inheritedEnv, track } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// Each process loads what its role needs (docs/performance.md, Memory): started as the Procfile
// starts them (apps/start.sh), with the project's LangGraph example graph configured, the
// scheduler loads neither LangGraph nor the HTTP API, and the worker not the HTTP API; neither
// collects process metrics without METRICS_PORT. The api and the worker do load the example's
// LangGraph (it shows the probe sees what is loaded).

const PROBE = path.join(ROOT, 'test/support/loaded-modules.ts');

function start(role: 'api' | 'scheduler' | 'worker', env: Record<string, string>): SpawnedApp {
  const child = spawn(path.join(ROOT, 'apps/start.sh'), [role], {
    cwd: ROOT,
    env: {
      ...inheritedEnv(),
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_POOL_MAX: '2',
      AGENTCRON_CONFIG: path.join(ROOT, 'agentcron.json'),
      MIGRATE_ON_START: 'true',
      NODE_OPTIONS: `--import ${PROBE}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child);
}

/** The modules the process has loaded, as paths relative to the project (node_modules/<package>/... for packages). */
async function loadedModules(app: SpawnedApp): Promise<string[]> {
  app.child.kill('SIGUSR2');
  const count = Number((await app.waitFor(/^LOADED_MODULES \d+$/)).split(' ')[1]);
  const urls = app.output.filter((l) => l.startsWith('LOADED_MODULE ')).map((l) => l.slice('LOADED_MODULE '.length));
  assert.equal(urls.length, count);
  return urls.map((u) => (u.startsWith('file://') ? path.relative(ROOT, decodeURIComponent(new URL(u).pathname)) : u));
}

const packages = (mods: string[]) => new Set(mods.flatMap((m) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)?.[1] ?? []));
const langchain = (mods: string[]) => [...packages(mods)].filter((p) => p.startsWith('@langchain/'));

describe('what each role loads', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('role_modules');
  });
  after(() => db?.drop());

  test('the scheduler loads neither LangGraph nor the HTTP API; the worker not the HTTP API; the api and the worker the LangGraph graph', async () => {
    const port = await freePort();
    const apps = {
      scheduler: start('scheduler', { DATABASE_URL: db.url }),
      worker: start('worker', { DATABASE_URL: db.url }),
      api: start('api', { DATABASE_URL: db.url, PORT: String(port) }),
    };
    await Promise.all([
      apps.scheduler.waitFor(/scheduler started/, 60_000),
      apps.worker.waitFor(/worker started/, 60_000),
      apps.api.waitFor(/api listening/, 60_000),
    ]);
    const [scheduler, worker, api] = await Promise.all([loadedModules(apps.scheduler), loadedModules(apps.worker), loadedModules(apps.api)]);
    for (const app of Object.values(apps)) app.kill('SIGTERM');

    assert.deepEqual(langchain(scheduler), [], 'the scheduler loaded LangGraph');
    for (const [role, mods] of [
      ['scheduler', scheduler],
      ['worker', worker],
    ] as const) {
      assert.ok(!packages(mods).has('express'), `the ${role} loaded express`);
      assert.deepEqual(
        mods.filter((m) => m.startsWith('libs/http/') || m.startsWith('libs/ui/')),
        [],
        `the ${role} loaded the HTTP API`,
      );
      // Without METRICS_PORT nothing reads its process metrics: no event loop monitor waking it
      // 100 times a second (libs/metrics/registry.ts, collectProcessMetrics).
      assert.deepEqual(
        mods.filter((m) => m.includes('node_modules/prom-client/lib/metrics/')),
        [],
        `the ${role} collects process metrics nobody can read`,
      );
    }
    // The probe sees what is loaded: the api serves the HTTP API, both it and the worker the graph.
    assert.ok(packages(api).has('express') && api.includes('libs/http/app.ts'));
    assert.ok(api.includes('node_modules/prom-client/lib/metrics/eventLoopLag.js'), 'the api collects the process metrics its /metrics serves');
    assert.ok(langchain(api).includes('@langchain/langgraph') && langchain(worker).includes('@langchain/langgraph'));
    assert.ok(scheduler.includes('libs/crons/scheduler.ts') && worker.includes('libs/runs/worker.ts'));
    assert.deepEqual(await Promise.all(Object.values(apps).map((a) => a.exited)), [0, 0, 0]);
  });
});
