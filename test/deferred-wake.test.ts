import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';
import { post, startProvider, writeConfig } from './support/provider.ts';

// An idle worker sleeps until its next job rather than polling (its backstop poll is 30 s): a run
// deferred by ANOTHER process (a background run's after_seconds through the api, a retry scheduled
// by another worker) wakes it through NOTIFY when it falls due, so it starts no later than with the
// 2-second poll it replaced. Real api and worker processes, on a database of their own.

const LATE_MS = 2000;

describe('runs deferred by another process start on time on an idle worker', () => {
  let db: TestDatabase;
  let api: SpawnedApp;
  const workers: SpawnedApp[] = [];
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let config: { file: string; cleanup: () => void };
  let url: string;

  before(async () => {
    // Every first attempt answers 503 with Retry-After 3: the retry is due exactly 3 s later.
    provider = await startProvider({ maxConcurrent: 100, failFirst: true, delayMs: 10, retryAfter: (_key, n) => (n === 1 ? 3 : null) });
    config = writeConfig({ graphs: { llm: { url: provider.url, retry_policy: { max_attempts: 3 } } } });
    db = await createTestDatabase('deferred_wake');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', AGENTCRON_CONFIG: config.file };
    api = spawnApp('api', env);
    await api.waitFor(/api listening on/);
    workers.push(spawnApp('worker', env), spawnApp('worker', env));
    await Promise.all(workers.map((w) => w.waitFor(/worker started/)));
  });
  after(async () => {
    for (const p of [api, ...workers]) p?.kill('SIGTERM');
    await Promise.all([api, ...workers].filter(Boolean).map((p) => p.exited));
    await db?.drop();
    await provider?.close();
    config?.cleanup();
  });

  async function runOf(threadId: string, runId: string): Promise<any> {
    return (await fetch(`${url}/threads/${threadId}/runs/${runId}`)).json();
  }

  test("a background run's after_seconds, deferred by the api: started within 2 s of its time", async () => {
    const thread = await post(`${url}/threads`, {});
    const run = await post(`${url}/threads/${thread.thread_id}/runs`, { assistant_id: 'echo', input: {}, after_seconds: 3 });
    const ended = await eventually(
      async () => {
        const r = await runOf(thread.thread_id, run.run_id);
        return ['pending', 'running'].includes(r.status) ? null : r;
      },
      'the deferred run',
      60_000,
      100,
    );
    assert.equal(ended.status, 'success', JSON.stringify(ended.error));
    const late = Date.parse(ended.run_started_at) - (Date.parse(ended.created_at) + 3000);
    assert.ok(late >= -100, `started ${late} ms before its time`);
    assert.ok(late < LATE_MS, `started ${late} ms after its time`);
  });

  test('a retry scheduled by a worker that then stops: the other, idle worker starts it within 2 s of its time', async () => {
    const thread = await post(`${url}/threads`, {});
    const run = await post(`${url}/threads/${thread.thread_id}/runs`, { assistant_id: 'llm', input: {} });
    // The worker that ran the first attempt says so (before it records the retry), then stops: its
    // drain records the retry, due 3 s after the 503 (Retry-After), for the other worker to start.
    const first = await Promise.any(workers.map(async (w) => (await w.waitFor(/retrying in/, 30_000), w)));
    first.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    const other = workers.find((w) => w !== first)!;
    const failed = provider.calls.find((c) => c.key === run.run_id && c.status === 503);
    assert.ok(failed, 'the first attempt reached the provider');
    const retried = await eventually(async () => provider.calls.find((c) => c.key === run.run_id && c.status === 200), 'the retry', 60_000, 50);
    const late = retried.at - (failed.ended + 3000);
    assert.ok(late >= -100, `retried ${late} ms before its Retry-After`);
    assert.ok(late < LATE_MS, `retried ${late} ms after its Retry-After`);
    const ended = await eventually(async () => {
      const r = await runOf(thread.thread_id, run.run_id);
      return r.status === 'success' ? r : null;
    }, 'the run to succeed');
    assert.equal(ended.status, 'success');
    assert.equal(other.child.exitCode, null, 'the other worker ran the retry');
  });
});
