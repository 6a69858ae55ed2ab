import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { CRON_CHANGED_CHANNEL } from '../libs/crons/index.ts';
import type { CronScheduler } from '../libs/crons/index.ts';
import type { Pool } from '../libs/db/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { clearOfBoundary, eventually, insertCron, newPool, newScheduler, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LedgerRow {
  scheduled_for: Date;
  status: string;
  reason: string | null;
  run_id: string | null;
  skipped_count: number;
}

async function ledger(pool: Pool, cronId: string): Promise<LedgerRow[]> {
  const { rows } = await pool.query<LedgerRow>(
    `SELECT scheduled_for, status, reason, run_id, skipped_count FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for`,
    [cronId],
  );
  return rows;
}

describe('scheduler', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('scheduler');
    boss = await startTestQueue(db.url);
  });
  // Each test counts what runDue claims: none starts with crons another one left behind (a
  // failed one does not reach its own cleanup).
  afterEach(() => db?.pool.query(`DELETE FROM crons`));
  after(() =>
    teardown(
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('ten schedulers racing on the same crons fire every occurrence exactly once, with no gap', async () => {
    const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) - interval '20 seconds' AS start`);
    const start = rows[0].start;
    const crons: string[] = [];
    for (let i = 0; i < 40; i++) crons.push(await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, missed_policy: 'all' }));
    const pools = Array.from({ length: 10 }, () => newPool(db.url, 3));
    // Small batches so the ten contend for the same rows many times.
    const schedulers = pools.map((p) => newScheduler(p, boss, db.url, { batchSize: 7 }));
    try {
      await Promise.all(schedulers.map((s) => s.start()));
      await sleep(3500);
      // However slowly they got going, let them clear the backlog before stopping them.
      await eventually(
        async () =>
          (await db.pool.query(`SELECT 1 FROM crons WHERE cron_id = ANY($1) HAVING min(next_run_date) >= $2`, [crons, new Date(start.getTime() + 21_000)]))
            .rowCount,
        'every cron to advance past the backlog',
        30_000,
      );
    } finally {
      await Promise.all(schedulers.map((s) => s.stop()));
      await Promise.all(pools.map((p) => p.end()));
    }

    const { rows: ends } = await db.pool.query<{ cron_id: string; next_run_date: Date }>(`SELECT cron_id, next_run_date FROM crons WHERE cron_id = ANY($1)`, [
      crons,
    ]);
    for (const { cron_id, next_run_date } of ends) {
      const rows = await ledger(db.pool, cron_id);
      // Every second from the first due occurrence up to (not including) next_run_date: once each.
      const expected = (next_run_date.getTime() - start.getTime()) / 1000;
      assert.ok(expected >= 21, `cron advanced past the backlog (${expected})`);
      assert.equal(rows.length, expected, `ledger rows for ${cron_id}`);
      rows.forEach((r, i) => {
        assert.equal(r.scheduled_for.getTime(), start.getTime() + i * 1000);
        assert.equal(r.status, 'enqueued');
      });
      const runs = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT scheduled_for)::int AS d FROM runs WHERE cron_id = $1`, [cron_id]);
      assert.equal(runs.rows[0].n, expected);
      assert.equal(runs.rows[0].d, expected);
    }
    // One pg-boss job per run, with the run's id.
    const jobs = await db.pool.query(
      `SELECT count(*)::int AS jobs, count(r.run_id)::int AS matched FROM pgboss.job j LEFT JOIN runs r ON r.run_id = j.id WHERE j.name = 'agentcron.run'`,
    );
    const runs = await db.pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = ANY($1)`, [crons]);
    assert.equal(jobs.rows[0].jobs, runs.rows[0].n);
    assert.equal(jobs.rows[0].matched, runs.rows[0].n);
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [crons]);
  });

  test('after downtime each missed policy is applied and every skipped occurrence is recorded', async () => {
    // The counts below hold within one minute: start well clear of a minute boundary.
    await clearOfBoundary(db.pool, 'minute', 5);
    const { rows } = await db.pool.query<{ t0: Date }>(`SELECT date_trunc('minute', now()) AS t0`);
    const t0 = rows[0].t0;
    const tenAgo = new Date(t0.getTime() - 10 * 60_000);
    const latest = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'latest' });
    const all = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'all' });
    const none = await insertCron(db.pool, { schedule: '* * * * *', next_run_date: tenAgo, missed_policy: 'none' });
    // Grace 0: an occurrence later than "now" by any amount counts as missed for the none policy.
    const scheduler = newScheduler(db.pool, boss, db.url, { graceMs: 0 });
    const result = await scheduler.runDue();
    assert.equal(result.claimed, 3);

    const l = await ledger(db.pool, latest);
    assert.equal(l.length, 11);
    assert.deepEqual(
      l.filter((r) => r.status === 'enqueued').map((r) => r.scheduled_for.getTime()),
      [t0.getTime()],
    );
    assert.equal(l.find((r) => r.status === 'enqueued')!.skipped_count, 10);
    assert.equal(l.filter((r) => r.status === 'skipped' && r.reason === 'missed').length, 10);

    const a = await ledger(db.pool, all);
    assert.equal(a.length, 11);
    assert.ok(a.every((r) => r.status === 'enqueued'));

    const n = await ledger(db.pool, none);
    assert.equal(n.length, 11);
    assert.ok(n.every((r) => r.status === 'skipped' && r.reason === 'missed'));
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = $1`, [none])).rows[0].n, 0);

    // All three now wait for the next minute, computed from the scheduled occurrence.
    const next = await db.pool.query(`SELECT DISTINCT next_run_date FROM crons WHERE cron_id = ANY($1)`, [[latest, all, none]]);
    assert.deepEqual(
      next.rows.map((r) => r.next_run_date.getTime()),
      [t0.getTime() + 60_000],
    );
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [[latest, all, none]]);
  });

  test('end_time: no occurrence after it fires, the cron finishes visibly, and the ledger says why', async () => {
    const { rows } = await db.pool.query<{ start: Date }>(`SELECT date_trunc('second', now()) - interval '10 seconds' AS start`);
    const start = rows[0].start;
    const end = new Date(start.getTime() + 4500);
    const cronId = await insertCron(db.pool, { schedule: '* * * * * *', next_run_date: start, end_time: end, missed_policy: 'all' });
    await newScheduler(db.pool, boss, db.url).runDue();
    const { rows: c } = await db.pool.query(`SELECT enabled, next_run_date, finished_at FROM crons WHERE cron_id = $1`, [cronId]);
    assert.equal(c[0].enabled, false);
    assert.equal(c[0].next_run_date, null);
    assert.ok(c[0].finished_at);
    const l = await ledger(db.pool, cronId);
    const fired = l.filter((r) => r.status === 'enqueued').map((r) => r.scheduled_for.getTime() - start.getTime());
    assert.deepEqual(fired, [0, 1000, 2000, 3000, 4000]);
    const ended = l.filter((r) => r.reason === 'end_time');
    assert.deepEqual(
      ended.map((r) => r.scheduled_for.getTime() - start.getTime()),
      [5000],
    );
    // A finished cron is never claimed again.
    assert.equal((await newScheduler(db.pool, boss, db.url).runDue()).claimed, 0);
  });

  test('a disabled cron does not fire; a cron whose stored schedule no longer parses stops with a reason', async () => {
    const disabled = await insertCron(db.pool, { schedule: '* * * * *', enabled: false });
    const broken = await insertCron(db.pool, { schedule: 'not a schedule' });
    const result = await newScheduler(db.pool, boss, db.url).runDue();
    assert.equal(result.claimed, 1);
    assert.equal(result.fired, 0);
    assert.deepEqual(await ledger(db.pool, disabled), []);
    const { rows } = await db.pool.query(`SELECT enabled, next_run_date, last_run_error FROM crons WHERE cron_id = $1`, [broken]);
    assert.equal(rows[0].enabled, false);
    assert.equal(rows[0].next_run_date, null);
    assert.match(rows[0].last_run_error, /could not plan this cron: invalid schedule/);
    await db.pool.query(`DELETE FROM crons WHERE cron_id = ANY($1)`, [[disabled, broken]]);
  });

  test('a sleeping scheduler wakes on NOTIFY when a cron is created, long before its poll interval', async () => {
    // Poll interval 60 s: only the notification can wake it in time.
    let ticks = 0;
    const s: CronScheduler = newScheduler(db.pool, boss, db.url, { pollIntervalSeconds: 60, onTick: () => ticks++ });
    let cronId: string;
    try {
      await s.start();
      // Its first pass is over (nothing due): it is asleep until the poll interval ends.
      await eventually(async () => ticks > 0, 'the first pass');
      cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      const row = await eventually(
        async () => (await db.pool.query(`SELECT enqueued_at FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0],
        'the new cron to fire',
        20_000,
      );
      assert.ok(row.enqueued_at);
    } finally {
      await s.stop();
    }
    await db.pool.query(`DELETE FROM crons WHERE cron_id = $1`, [cronId]);
  });

  test('schedulers are woken by changes that can make a cron due sooner, not by deletions (a finished stateless run deletes its thread)', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.channel));
    try {
      await listener.query(`LISTEN ${CRON_CHANGED_CHANNEL}`);
      // A NOTIFY is delivered at commit, before the committing statement returns; one more round
      // trip on the listening connection makes sure it has been read.
      const heardAfter = async (sql: string, params: unknown[] = []) => {
        heard.length = 0;
        await db.pool.query(sql, params);
        await listener.query('SELECT 1');
        return heard.length;
      };
      const thread = randomUUID();
      await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'u')`, [thread]);
      // Deleting a thread cascades a DELETE onto crons (thread-bound crons go with it), even when none is bound.
      assert.equal(await heardAfter(`DELETE FROM threads WHERE thread_id = $1`, [thread]), 0, 'a thread deleted');
      const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      assert.ok((await heardAfter(`UPDATE crons SET schedule = '0 0 2 1 *' WHERE cron_id = $1`, [cronId])) > 0, 'a cron changed');
      assert.equal(await heardAfter(`DELETE FROM crons WHERE cron_id = $1`, [cronId]), 0, 'a cron deleted: nothing is due sooner');
      heard.length = 0;
      await insertCron(db.pool, { schedule: '0 0 1 1 *' });
      await listener.query('SELECT 1');
      assert.ok(heard.length > 0, 'a cron created');
    } finally {
      await listener.end();
    }
  });
});
