import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';
import { post, startProvider, writeConfig } from './support/provider.ts';

// Deployment-wide limits across worker processes (docs/flow-control.md): exact while workers
// live and die, no head-of-line blocking, a rate spread over its windows.

describe('limits across workers', () => {
  let db: TestDatabase;
  let api: SpawnedApp;
  const workers: SpawnedApp[] = [];
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let config: { file: string; cleanup: () => void };
  let url: string;
  let env: Record<string, string>;
  const holdKeys = new Set<string>();

  before(async () => {
    // Runs whose cron is in holdKeys are held at the provider for a minute (until their worker dies).
    provider = await startProvider({
      maxConcurrent: 100,
      failFirst: false,
      delayMs: 50,
      delayOf: (key) => ([...holdKeys].some((k) => key.startsWith(k)) ? 60_000 : null),
    });
    config = writeConfig({
      limits: { gpu: { max_concurrency: 2 }, paced: { rate: { runs: 10, per_seconds: 2 } } },
      graphs: { slow: { url: provider.url, limits: ['gpu'] }, paced: { url: provider.url, limits: ['paced'] } },
    });
    db = await createTestDatabase('flow_limits');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      HEARTBEAT_INTERVAL_SECONDS: '1',
      AGENTCRON_CONFIG: config.file,
      WORKER_HEARTBEAT_SECONDS: '10',
      QUEUE_SUPERVISE_INTERVAL_SECONDS: '2',
      SHUTDOWN_GRACE_SECONDS: '3',
    };
    api = spawnApp('api', env);
    workers.push(spawnApp('worker', env));
    await api.waitFor(/api listening on/);
    await workers[0].waitFor(/worker started/);
  });
  after(async () => {
    for (const p of [api, ...workers]) p?.kill('SIGTERM');
    await Promise.all([api, ...workers].filter(Boolean).map((p) => p.exited));
    await db?.drop();
    await provider?.close();
    config?.cleanup();
  });

  const cron = (assistant: string, input: unknown = {}) => post(`${url}/runs/crons`, { assistant_id: assistant, schedule: '0 0 1 1 *', input, enabled: false });
  const trigger = async (cronId: string) => post(`${url}/runs/crons/${cronId}/trigger`, {});
  const statusOf = async (cronId: string) => (await db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0]?.status;

  test('a limit of 2 holds across two workers; a killed worker gives its slots back; an unlimited graph never waits behind it', async (t) => {
    // Worker A takes two runs held at the provider.
    const held = [await cron('slow'), await cron('slow')];
    for (const c of held) holdKeys.add(c.cron_id);
    for (const c of held) await trigger(c.cron_id);
    await eventually(async () => provider.inFlight() === 2, 'two runs at the provider', 20_000);
    // Worker B joins; two more runs of the limit wait, parked, whoever fetches them.
    workers.push(spawnApp('worker', env));
    await workers[1].waitFor(/worker started/);
    const waiting = [await cron('slow'), await cron('slow')];
    for (const c of waiting) await trigger(c.cron_id);
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM runs WHERE cron_id = ANY($1::uuid[]) AND status = 'pending' AND waiting = 'limit:gpu'`,
        [waiting.map((c) => c.cron_id)],
      );
      return rows[0].n === 2;
    }, 'both runs parked on the limit');
    // No head-of-line: a run of an unlimited graph starts at once meanwhile.
    const free = await cron('echo');
    const t0 = Date.now();
    await trigger(free.cron_id);
    await eventually(async () => (await statusOf(free.cron_id)) === 'success', 'the unlimited run', 10_000);
    assert.ok(Date.now() - t0 < 5000, `the unlimited run took ${Date.now() - t0} ms`);
    assert.equal(provider.inFlight(), 2);
    assert.equal(provider.peak(), 2, 'never more than 2 at the provider');
    for (const c of waiting) assert.equal(await statusOf(c.cron_id), 'enqueued');
    // Kill worker A: its two slots come back once its heartbeat lapses. Its two runs are retried
    // too (pg-boss, after the lapse) and, older, go first: the provider answers them at once now.
    workers[0].kill('SIGKILL');
    await workers[0].exited;
    const killedAt = Date.now();
    holdKeys.clear();
    await eventually(async () => provider.inFlight() === 0, 'the dead worker\u2019s requests cut');
    provider.resetPeak();
    const all = [...held, ...waiting];
    // Heartbeat 10 s: slots lapse 5-10 s after the kill (the last heartbeat was at most 5 s before
    // it), a supervise pass (2 s) retries the dead worker's runs after their backoff (1-2 s), the
    // oldest parked runs look again every 5 s: some 20 s on an idle machine. Waited for, not
    // timed: a loaded machine stretches every step (40 s and more beside CPU burners), so the
    // bound is a backstop; what the test proves is that the four runs all ran (both of the dead
    // worker's slots came back: with a limit of 2 none could run otherwise), none before the
    // slots could lapse, never more than 2 at once.
    await eventually(
      async () => {
        for (const c of all) if ((await statusOf(c.cron_id)) !== 'success') return false;
        return true;
      },
      'the four runs after the kill',
      150_000,
      200,
    );
    const started = provider.calls.filter((c) => c.status === 200 && all.some((w) => c.key.startsWith(w.cron_id))).map((c) => c.at - killedAt);
    assert.equal(started.length, 4);
    t.diagnostic(`the four runs started ${started.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after the kill`);
    for (const ms of started) assert.ok(ms > 4000, `a run of the limit started ${ms} ms after the kill, before the dead worker's slots could lapse`);
    assert.ok(provider.peak() <= 2, `${provider.peak()} at once at the provider after the kill`);
  });

  test('a rate of 10 runs per 2 s spreads 50 runs over its windows, never more than 10 in any 2 s', async () => {
    provider.calls.length = 0;
    const crons = [];
    for (let i = 0; i < 50; i++) crons.push(await cron('paced', { i }));
    await Promise.all(crons.map((c) => trigger(c.cron_id)));
    const ids = crons.map((c) => c.cron_id);
    await eventually(
      async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) AND status = 'success'`, [ids]);
        return rows[0].n === 50;
      },
      'the 50 paced runs',
      40_000,
    );
    const { rows } = await db.pool.query<{ started_at: Date }>(`SELECT started_at FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) ORDER BY started_at`, [
      ids,
    ]);
    const t = rows.map((r) => r.started_at.getTime());
    for (let i = 10; i < t.length; i++) assert.ok(t[i] - t[i - 10] >= 2000, `starts ${i - 10} and ${i} are ${t[i] - t[i - 10]} ms apart`);
    const span = t[t.length - 1] - t[0];
    assert.ok(span >= 8000 && span < 20_000, `50 starts spread over ${span} ms`);
  });
});

describe('a limit while a cancelled run’s agent is still executing', () => {
  let db: TestDatabase;
  let api: SpawnedApp;
  const workers: SpawnedApp[] = [];
  let config: { file: string; cleanup: () => void };
  let url: string;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-slots-'));
  const log = path.join(dir, 'executions.jsonl');

  before(async () => {
    config = writeConfig({
      limits: { solo: { max_concurrency: 1 } },
      graphs: { stubborn: { path: `${path.resolve('test/fixtures/agents/slow.ts')}:stubborn`, limits: ['solo'] } },
    });
    db = await createTestDatabase('flow_slots');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      AGENTCRON_CONFIG: config.file,
      HEARTBEAT_INTERVAL_SECONDS: '1',
      WORKER_HEARTBEAT_SECONDS: '30',
      SHUTDOWN_GRACE_SECONDS: '3',
    };
    api = spawnApp('api', env);
    // Two workers: while A's agent keeps its worker busy, the other is free to take B.
    workers.push(spawnApp('worker', env), spawnApp('worker', env));
    await api.waitFor(/api listening on/);
    for (const w of workers) await w.waitFor(/worker started/);
  });
  after(async () => {
    for (const p of [api, ...workers]) p?.kill('SIGTERM');
    await Promise.all([api, ...workers].filter(Boolean).map((p) => p.exited));
    await db?.drop();
    config?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const executions = (): { name: string; event: string; at: number }[] =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];

  test('its slot is held until the agent returns: a run of the limit due meanwhile waits for it', async () => {
    const run = async (name: string, ms: number) => {
      const c = await post(`${url}/runs/crons`, { assistant_id: 'stubborn', schedule: '0 0 1 1 *', input: { log, name, ms }, enabled: false });
      await post(`${url}/runs/crons/${c.cron_id}/trigger`, {});
      return c.cron_id as string;
    };
    const a = await run('A', 3000);
    await eventually(async () => executions().some((e) => e.name === 'A' && e.event === 'start'), 'A executing');
    const { rows } = await db.pool.query<{ run_id: string; thread_id: string }>(`SELECT run_id, thread_id FROM runs WHERE cron_id = $1`, [a]);
    const cancel = await fetch(`${url}/threads/${rows[0].thread_id}/runs/${rows[0].run_id}/cancel`, { method: 'POST' });
    assert.ok(cancel.status < 300, `cancel: ${cancel.status}`);
    await run('B', 100);
    await eventually(async () => executions().filter((e) => e.event === 'end').length === 2, 'both agents returned', 30_000);
    const at = (name: string, event: string) => executions().find((e) => e.name === name && e.event === event)!.at;
    assert.ok(at('B', 'start') >= at('A', 'end'), `B started ${at('A', 'end') - at('B', 'start')} ms before the cancelled A's agent returned`);
    // Woken when A's worker freed the slot, not at a parked run's next look (15 s with this heartbeat).
    assert.ok(at('B', 'start') - at('A', 'end') < 8000, `B started ${at('B', 'start') - at('A', 'end')} ms after A's agent returned`);
  });
});
