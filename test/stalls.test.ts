import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, insertCron, newScheduler, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';
import { ROOT, spawnApp } from './support/processes.ts';
import type { SpawnedApp } from './support/processes.ts';

// Peers that stop without dying (a long GC pause, a frozen VM, a partition), made real with
// SIGSTOP: a scheduler frozen inside its pass cannot hold its crons for longer than its session's
// idle-in-transaction timeout; a worker frozen past its heartbeat has its run retried elsewhere,
// and its late result, once it wakes, is not stored over the newer attempt's.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The local TCP ports of a process's sockets (Linux /proc): its sessions' client_port in pg_stat_activity. */
function localPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) ports.push(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

describe('stalled peers', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  const procs: SpawnedApp[] = [];
  before(async () => {
    db = await createTestDatabase('stalls');
    boss = await startTestQueue(db.url);
  });
  after(() =>
    teardown(
      async () => {
        for (const p of procs) p.kill('SIGCONT');
        for (const p of procs) p.kill('SIGKILL');
        await Promise.all(procs.map((p) => p.exited));
      },
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const spawn = (name: 'scheduler' | 'worker', env: Record<string, string>) => {
    const p = spawnApp(name, { DATABASE_URL: db.url, DATABASE_POOL_MAX: '4', HEARTBEAT_INTERVAL_SECONDS: '1', ...env });
    procs.push(p);
    return p;
  };

  test('a scheduler frozen mid-pass: another fires its crons within the idle-in-transaction bound', async () => {
    const bound = 3;
    const crons: string[] = [];
    for (let i = 0; i < 300; i++) crons.push(await insertCron(db.pool, { schedule: '* * * * * *', missed_policy: 'all' }));
    const env = { DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: String(bound), CRON_BATCH_SIZE: '100' };
    const a = spawn('scheduler', env);
    const b = spawn('scheduler', env);
    await Promise.all([a.waitFor(/scheduler started/), b.waitFor(/scheduler started/)]);
    // Freeze A until it is caught inside a pass that holds crons: a backend idle in a transaction
    // for a while, with a lock on crons and a transaction id (its FOR UPDATE locked rows; not a
    // pass over the maintenance jobs, whose failure reads differently). Caught after BEGIN, or
    // after a claim that found every due cron taken by B, A held nothing: B fired at once, A was
    // woken before the server had ended its session, went on with its pass and never failed.
    let frozen: { at: Date; pid: number } | null = null;
    for (let tries = 0; tries < 40 && !frozen; tries++) {
      await sleep(20 + Math.random() * 150);
      a.kill('SIGSTOP');
      await sleep(400);
      const { rows } = await db.pool.query<{ at: Date; pid: number }>(
        // A's own pool (a pass): not B's, which a busy machine can leave idle in a transaction for
        // a moment too, nor pg-boss's (agentcron-queue: its maintenance holds transactions under a
        // timeout of its own). A's sessions are those whose client port is one of A's sockets.
        `SELECT clock_timestamp() AS at, pid FROM pg_stat_activity s
          WHERE datname = $1 AND application_name = 'agentcron-scheduler' AND state LIKE 'idle in transaction%'
            AND backend_xid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = s.pid AND l.relation = 'crons'::regclass)
            AND state_change < clock_timestamp() - interval '300 milliseconds' AND client_port = ANY($2::int[])`,
        [db.name, localPorts(a.child.pid!)],
      );
      if (rows.length) frozen = rows[0];
      else a.kill('SIGCONT');
    }
    assert.ok(frozen, 'caught the scheduler inside a pass');
    const { at: frozenAt, pid: frozenPid } = frozen;
    // Every cron gets an occurrence after the freeze fired (or skipped) by B, within the bound plus a margin.
    const settledAt = await eventually(
      async () => {
        const { rows } = await db.pool.query<{ late: number }>(
          `SELECT count(*)::int AS late FROM crons c
            WHERE NOT EXISTS (SELECT 1 FROM cron_occurrences o WHERE o.cron_id = c.cron_id AND o.scheduled_for > $1)`,
          [frozenAt],
        );
        return rows[0].late === 0 ? Date.now() : 0;
      },
      'every cron to fire again while one scheduler is frozen',
      (bound + 6) * 1000,
      100,
    );
    const tookS = (settledAt - frozenAt.getTime()) / 1000;
    assert.ok(tookS <= bound + 4, `took ${tookS.toFixed(1)} s`);
    // The server has ended A's session (B could not have fired the crons it held otherwise).
    await eventually(
      async () => (await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [frozenPid])).rowCount === 0,
      "the server to end the frozen scheduler's session",
      10_000,
      100,
    );
    a.kill('SIGCONT');
    // A wakes, finds its session gone, and carries on: it neither exits nor fires anything twice.
    await a.waitFor(/scheduler pass failed/, 10_000);
    await sleep(1500);
    assert.equal(a.child.exitCode, null);
    const dup = await db.pool.query(`SELECT cron_id, scheduled_for FROM runs GROUP BY 1, 2 HAVING count(*) > 1`);
    assert.equal(dup.rowCount, 0);
    for (const p of [a, b]) p.kill('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
    await db.pool.query(`DELETE FROM crons`);
  });

  test('a worker frozen past its heartbeat: the run is retried elsewhere and the late result is not stored', async () => {
    const env = {
      AGENTCRON_CONFIG: path.join(ROOT, 'test/fixtures/slow.json'),
      WORKER_HEARTBEAT_SECONDS: '10',
      QUEUE_SUPERVISE_INTERVAL_SECONDS: '1',
    };
    const a = spawn('worker', env);
    await a.waitFor(/worker started/);
    const cronId = await insertCron(db.pool, {
      schedule: '0 0 1 1 *',
      assistant_id: defaultAssistantId('pid'),
      on_run_completed: 'keep',
      input: { ms: 3000 },
    });
    await newScheduler(db.pool, boss, db.url).runDue();
    const run = await eventually(
      async () => (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1 AND status = 'running'`, [cronId])).rows[0],
      'worker A to start the run',
    );
    a.kill('SIGSTOP');
    const b = spawn('worker', env);
    await b.waitFor(/worker started/);
    // A's heartbeat expires; pg-boss retries the job; B claims the run as attempt 2.
    await eventually(
      async () => (await db.pool.query(`SELECT attempts FROM runs WHERE run_id = $1`, [run.run_id])).rows[0].attempts === 2,
      'worker B to claim the run again',
      30_000,
      100,
    );
    // A wakes while B executes: its own agent's timer is long due, its result arrives first.
    a.kill('SIGCONT');
    const ended = await eventually(async () => {
      const { rows } = await db.pool.query(`SELECT status, output, attempts FROM runs WHERE run_id = $1`, [run.run_id]);
      return rows[0].status !== 'running' ? rows[0] : null;
    }, 'the run to end');
    assert.equal(ended.status, 'success');
    assert.equal(ended.attempts, 2);
    assert.deepEqual(ended.output, { pid: b.child.pid }, "the stored result is attempt 2's, from worker B");
    const ledger = (await db.pool.query(`SELECT status FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows;
    assert.deepEqual(ledger, [{ status: 'success' }]);
    await sleep(500);
    assert.equal(a.child.exitCode, null, 'worker A carries on');
  });
});
