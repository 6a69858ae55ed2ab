import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import { eventually } from './support/engine.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// Crons firing end to end (api + scheduler + worker processes, AUTH_MODE=api_key): a schedule
// change without a restart, SDK-created crons firing (ledger, last_run_*, thread cleanup, delete),
// two users each seeing only their own crons.

const ECHO = defaultAssistantId('echo');
const ALICE_KEY = 'test-key-alice';
const BOB_KEY = 'test-key-bob';

const until = <T>(what: string, check: () => Promise<T>, timeoutMs = 20_000) => eventually(check, what, timeoutMs, 100);

describe('crons firing end to end, two users (api + scheduler + worker, AUTH_MODE=api_key)', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack('api_crons_e2e', {
      scheduler: true,
      worker: true,
      env: {
        CRON_ALLOW_SECONDS_SCHEDULE: 'true',
        CRON_MAX_PER_USER: '0',
        // Only a notification can wake the scheduler early: a change taking effect at once proves it.
        // (The maintenance jobs would wake it at minute boundaries too: they are off here.)
        CRON_POLL_INTERVAL_SECONDS: '60',
        ...Object.fromEntries(
          ['RETENTION_PURGE', 'EPHEMERAL_THREAD_SWEEP', 'STALE_RUN_REAPER', 'DAILY_STATS', 'HEARTBEAT_MONITOR', 'THREAD_TTL', 'QUEUE_HYGIENE'].map((job) => [
            `MAINTENANCE_${job}_ENABLED`,
            'false',
          ]),
        ),
        AUTH_MODE: 'api_key',
        AUTH_API_KEYS: `${ALICE_KEY}:alice,${BOB_KEY}:bob`,
      },
    });
  });
  after(() => stack?.stop());

  test('a schedule change takes effect on the next wake-up, without a restart', async () => {
    const sdk1 = new Client1({ apiUrl: stack.url, apiKey: ALICE_KEY });
    const pool = stack.db.pool;
    const yearly: any = await sdk1.crons.create('echo', { schedule: '0 0 1 1 *', input: {}, onRunCompleted: 'keep' });
    // Let the scheduler settle into its long sleep (nothing due for a year; poll interval 60 s).
    await until(
      'the scheduler to tick',
      async () => (await pool.query(`SELECT 1 FROM agentcron_processes WHERE role = 'scheduler' AND last_tick_at IS NOT NULL`)).rowCount,
    );
    // And to listen: its LISTEN connection is set up beside the loop, not before it (a busy
    // machine can take a moment), and a NOTIFY sent before it listens reaches nobody.
    await until(
      'the scheduler to LISTEN',
      async () =>
        (
          await pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'agentcron-scheduler-listen' AND query LIKE 'LISTEN%'`,
          )
        ).rowCount,
    );
    const changedAt = Date.now();
    const updated: any = await sdk1.crons.update(yearly.cron_id, { schedule: '*/1 * * * * *' });
    // Recomputed from the time of the change: the next whole second after it.
    const next = new Date(updated.next_run_date).getTime();
    assert.ok(next > changedAt - 1000 && next <= Date.now() + 1000, updated.next_run_date);
    // Well before the 60 s poll interval: the change woke the scheduler.
    await until(
      'the new schedule to fire',
      async () => (await pool.query(`SELECT 1 FROM cron_occurrences WHERE cron_id = $1 AND trigger = 'schedule'`, [yearly.cron_id])).rowCount,
      20_000,
    );
    assert.ok(Date.now() - changedAt < 20_000);
    await sdk1.crons.delete(yearly.cron_id);
  });

  test('an SDK-created every-second cron fires; ledger, last_run_*, thread cleanup, delete stops it', async () => {
    const sdk1 = new Client1({ apiUrl: stack.url, apiKey: ALICE_KEY });
    const sdk2 = new Client2({ apiUrl: stack.url, apiKey: ALICE_KEY });
    const pool = stack.db.pool;
    // CRON_MAX_PER_USER=0: no cap, however many crons the user owns.
    await pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, enabled) SELECT gen_random_uuid(), $1, $2, '@daily', false FROM generate_series(1, 150)`,
      [ECHO, 'alice'],
    );

    const dropping: any = await sdk2.crons.create('echo', { schedule: '*/1 * * * * *', input: { from: 'delete' } });
    const keeping: any = await sdk1.crons.create('echo', { schedule: '*/1 * * * * *', input: { from: 'keep' }, onRunCompleted: 'keep' });
    const threadId = randomUUID();
    await pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, $2)`, [threadId, 'alice']);
    const onThread: any = await sdk2.crons.createForThread(threadId, 'echo', { schedule: '*/1 * * * * *', input: { from: 'thread' } });

    const fired = async (cronId: string) => {
      const { rows } = await pool.query(
        `SELECT count(*) FILTER (WHERE trigger = 'schedule')::int AS n, count(*) FILTER (WHERE trigger = 'create')::int AS first FROM cron_occurrences
          WHERE cron_id = $1 AND status = 'success'`,
        [cronId],
      );
      return rows[0].n >= 3 && rows[0].first === 1;
    };
    await until(
      'the first run and three scheduled successes each',
      async () => (await fired(dropping.cron_id)) && (await fired(keeping.cron_id)) && (await fired(onThread.cron_id)),
      60_000,
    );

    // The ledger endpoint: newest first, the create run last, scheduled runs a second apart.
    const ledger: any = await (
      await fetch(`${stack.url}/runs/crons/${keeping.cron_id}/occurrences?limit=1000`, { headers: { 'x-api-key': ALICE_KEY } })
    ).json();
    assert.equal(ledger.at(-1).trigger, 'create');
    assert.equal(ledger.at(-1).run_id, keeping.run_id);
    const scheduled = ledger.filter((o: any) => o.trigger === 'schedule');
    assert.ok(scheduled.length >= 3);
    for (let i = 1; i < scheduled.length; i++) assert.ok(scheduled[i - 1].scheduled_for > scheduled[i].scheduled_for, 'newest first');
    for (const o of scheduled) assert.equal(new Date(o.scheduled_for).getUTCMilliseconds(), 0, 'on the second');

    // last_run_* follow the runs.
    const cron = await until('last_run_status', async () => {
      const c: any = await (await fetch(`${stack.url}/runs/crons/${keeping.cron_id}`, { headers: { 'x-api-key': ALICE_KEY } })).json();
      return c.last_run_status === 'success' && c;
    });
    assert.ok(cron.last_run_at);
    assert.ok(cron.last_run_id);
    assert.equal(cron.last_run_error, null);
    // The next occurrence not yet at its instant: after every one that ran (the ledger's newest rows
    // may be occurrences fired ahead, CRON_LOOKAHEAD_MS, still waiting for theirs).
    assert.ok(new Date(cron.next_run_date) > new Date(scheduled.find((o: any) => o.status === 'success').scheduled_for));
    assert.ok(new Date(cron.next_run_date) > new Date(cron.last_run_at));

    // on_run_completed: delete → the finished runs' threads are gone; keep → they remain, naming the cron.
    const doneThreads = async (cronId: string) => {
      const { rows } = await pool.query(`SELECT thread_id FROM cron_occurrences WHERE cron_id = $1 AND status = 'success'`, [cronId]);
      return rows.map((r) => r.thread_id);
    };
    const deleted = await doneThreads(dropping.cron_id);
    assert.ok(deleted.includes(dropping.thread_id), 'the first run counts too');
    const left = await pool.query(`SELECT count(*)::int AS n FROM threads WHERE thread_id = ANY($1::uuid[])`, [deleted]);
    assert.equal(left.rows[0].n, 0);
    const kept = await doneThreads(keeping.cron_id);
    const keptRows = await pool.query(`SELECT thread_id, metadata, "values" FROM threads WHERE thread_id = ANY($1::uuid[])`, [kept]);
    assert.equal(keptRows.rows.length, kept.length);
    assert.equal(new Set(kept).size, kept.length, 'a fresh thread per occurrence');
    for (const t of keptRows.rows) {
      assert.equal(t.metadata.cron_id, keeping.cron_id);
      assert.deepEqual(t.values, { from: 'keep' });
    }
    // Scheduled runs run as the cron's owner.
    const owners = await pool.query(`SELECT DISTINCT user_id FROM runs WHERE cron_id = ANY($1::uuid[])`, [[keeping.cron_id, onThread.cron_id]]);
    assert.deepEqual(
      owners.rows.map((r) => r.user_id),
      ['alice'],
    );
    // The thread cron ran every time on its one thread.
    assert.deepEqual([...new Set(await doneThreads(onThread.cron_id))], [threadId]);

    // Deleted, a cron enqueues nothing more; what had started finishes.
    await sdk1.crons.delete(keeping.cron_id);
    await sdk2.crons.delete(dropping.cron_id);
    await sdk2.crons.delete(onThread.cron_id);
    const runCount = async () =>
      (await pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = ANY($1::uuid[])`, [[keeping.cron_id, onThread.cron_id]])).rows[0].n;
    const atDelete = await runCount();
    await until('runs in flight to finish', async () => {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = ANY($1::uuid[]) AND status IN ('pending', 'running')`, [
        [keeping.cron_id, dropping.cron_id, onThread.cron_id],
      ]);
      return rows[0].n === 0;
    });
    await new Promise((r) => setTimeout(r, 2000)); // two more seconds of the schedule
    assert.equal(await runCount(), atDelete);
  });

  test('two API keys: each user sees and changes only their own crons', async () => {
    const alice = new Client1({ apiUrl: stack.url, apiKey: ALICE_KEY, callerOptions: { maxRetries: 0 } });
    const bob = new Client2({ apiUrl: stack.url, apiKey: BOB_KEY, callerOptions: { maxRetries: 0 } });
    const tag = randomUUID();
    const cron: any = await alice.crons.create('echo', { schedule: '@daily', input: {}, metadata: { tag }, enabled: false });
    assert.equal(cron.user_id, 'alice');
    const alicesThread = randomUUID();
    await stack.db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'alice')`, [alicesThread]);

    const asBob = (method: string, path: string, body?: unknown) =>
      fetch(`${stack.url}${path}`, {
        method,
        headers: { 'x-api-key': BOB_KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    for (const [method, path, body] of [
      ['GET', `/runs/crons/${cron.cron_id}`],
      ['PATCH', `/runs/crons/${cron.cron_id}`, { enabled: true }],
      ['DELETE', `/runs/crons/${cron.cron_id}`],
      ['POST', `/runs/crons/${cron.cron_id}/trigger`],
      ['GET', `/runs/crons/${cron.cron_id}/occurrences`],
      ['GET', `/runs/crons/${cron.cron_id}/next`],
      ['POST', `/threads/${alicesThread}/runs/crons`, { assistant_id: 'echo', schedule: '@daily', input: {} }],
    ] as [string, string, unknown?][]) {
      const res = await asBob(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    await assert.rejects(bob.crons.update(cron.cron_id, { enabled: true }), (e: any) => e.status === 404);
    await assert.rejects(bob.crons.delete(cron.cron_id), (e: any) => e.status === 404);
    assert.deepEqual(await bob.crons.search({ assistantId: 'echo', limit: 1000 }), []);
    assert.equal(await bob.crons.count({}), 0);
    assert.equal((await alice.crons.search({ metadata: { tag } })).length, 1);
    // Bob uses the system assistant too, and owns what he makes.
    const bobs: any = await bob.crons.create('echo', { schedule: '@daily', input: {}, enabled: false });
    assert.equal(bobs.user_id, 'bob');
    assert.equal(await bob.crons.count({}), 1);
    assert.equal(
      (await alice.crons.search({ limit: 1000 })).some((c: any) => c.cron_id === bobs.cron_id),
      false,
    );

    const anonymous = await fetch(`${stack.url}/runs/crons/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anonymous.status, 401);
  });
});
