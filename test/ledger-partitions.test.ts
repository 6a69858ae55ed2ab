import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { MIGRATIONS_DIR, listMigrations, migrate } from '../libs/db/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { ledgerPartitions, maintainLedgerPartitions } from '../libs/maintenance/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { ECHO, eventually, insertCron, newScheduler, newWorker, startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { builtinJobs, MaintenanceWorker } from '../libs/maintenance/index.ts';
import type { MaintenanceSettings } from '../libs/maintenance/index.ts';
import { quietLogger } from './support/engine.ts';

// The occurrence ledger partitioned by scheduled_for, online (issues 20 and 23; migrations 019-020,
// the ledger_partitions and retention_purge maintenance jobs).

/** The migrations before the ledger's partitioning (001-018): the previous release's schema. */
function beforePartitioning(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-pre-partition-'));
  for (const { id, file } of listMigrations()) if (id < 19) symlinkSync(path.join(MIGRATIONS_DIR, file), path.join(dir, file));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const relkind = async (pool: Pool, table = 'cron_occurrences') =>
  (await pool.query<{ k: string }>(`SELECT relkind::text AS k FROM pg_class WHERE oid = $1::regclass`, [table])).rows[0].k;

const utcDay = (offsetDays: number) => {
  const d = new Date(Date.now() + offsetDays * 86_400_000);
  return `cron_occurrences_p${d.toISOString().slice(0, 10).replace(/-/g, '')}`;
};

/** N settled ledger rows of a cron, one a minute back from `ago`, written as the previous release's code writes them. */
async function oldRows(pool: Pool, cronId: string, n: number, ago = '1 hour'): Promise<void> {
  await pool.query(
    `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, enqueued_at, started_at, ended_at, created_at)
     SELECT $1, date_trunc('minute', now() - $3::interval) - make_interval(mins => g), 'success', now(), now(), now(), now() - $3::interval
       FROM generate_series(1, $2::int) g`,
    [cronId, n, ago],
  );
}

describe('ledger partitioning: the migration', () => {
  let pre: ReturnType<typeof beforePartitioning>;
  before(() => {
    pre = beforePartitioning();
  });
  after(() => pre?.remove());

  test('on a database with ledger rows, it partitions without copying them; the API reads them, new ones land', async () => {
    const db = await createTestDatabase('part_api', { migrate: false });
    let boss: PgBoss | undefined;
    let api: Awaited<ReturnType<typeof startInProcessApi>> | undefined;
    try {
      await migrate(db.pool, pre.dir);
      await ensureDefaultAssistants(db.pool, ['echo']);
      const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', next_run_date: new Date('2099-01-01') });
      await oldRows(db.pool, cronId, 500);
      const before = (await db.pool.query(`SELECT pg_relation_filenode('cron_occurrences') AS f, count(*) FROM cron_occurrences GROUP BY 1`)).rows[0];
      assert.equal(await relkind(db.pool), 'r');

      await migrate(db.pool);
      assert.equal(await relkind(db.pool), 'p');
      // The old table is the legacy partition, its file untouched (no rewrite, no copy).
      const legacy = await db.pool.query(`SELECT pg_relation_filenode('cron_occurrences_legacy') AS f, count(*) FROM cron_occurrences_legacy GROUP BY 1`);
      assert.deepEqual(legacy.rows[0], before);
      const parts = await ledgerPartitions(db.pool);
      assert.equal(parts[0].kind, 'legacy');
      assert.ok(parts.some((p) => p.kind === 'default'));
      assert.ok(parts.filter((p) => p.kind === 'day').length >= 5, JSON.stringify(parts));
      // Indexes the code names exist on the parent.
      const { rows: idx } = await db.pool.query<{ n: string }>(`SELECT relname AS n FROM pg_class WHERE relname = ANY($1) AND relkind = 'I' ORDER BY 1`, [
        ['cron_occurrences_pkey', 'cron_occurrences_created', 'cron_occurrences_run', 'cron_occurrences_retried', 'cron_occurrences_webhook_failed'],
      ]);
      assert.equal(idx.length, 5);

      boss = await startTestQueue(db.url);
      api = await startInProcessApi(db.pool, boss, db.url);
      const res = await api.call('GET', `/runs/crons/${cronId}/occurrences?limit=1000`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.length, 500);
      assert.equal(res.body[0].status, 'success');

      // A new occurrence through the API (trigger) lands, and the API reads it with the old ones.
      const trig = await api.call('POST', `/runs/crons/${cronId}/trigger`, {});
      assert.ok(trig.status < 300, JSON.stringify(trig.body));
      const after = await api.call('GET', `/runs/crons/${cronId}/occurrences?limit=1000`);
      assert.equal(after.body.length, 501);
      // Rows beyond the partitions made land too (the DEFAULT partition); their day's partition,
      // made later, starts after them and they stay where they are.
      const far = new Date(Date.now() + 40 * 86_400_000);
      await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status) VALUES ($1, $2, 'skipped')`, [cronId, far]);
      const where = async () =>
        (
          await db.pool.query<{ t: string }>(`SELECT tableoid::regclass::text AS t FROM cron_occurrences WHERE cron_id = $1 AND scheduled_for = $2`, [
            cronId,
            far,
          ])
        ).rows[0].t;
      assert.equal(await where(), 'cron_occurrences_default');
      await maintainLedgerPartitions(db.pool, 41);
      assert.equal(await where(), 'cron_occurrences_default');
      const bound = await db.pool.query<{ b: string }>(`SELECT pg_get_expr(relpartbound, oid) AS b FROM pg_class WHERE relname = $1`, [utcDay(40)]);
      const lower = new Date(/FROM \('([^']+)'\)/.exec(bound.rows[0].b)![1]);
      // (Date keeps milliseconds: the bound is one microsecond after the row.)
      assert.ok(lower.getTime() >= far.getTime() && bound.rows[0].b.includes(`'${utcDay(40).slice(18, 22)}-`), `${utcDay(40)} ${bound.rows[0].b}`);
      await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status) VALUES ($1, $2, 'skipped')`, [cronId, new Date(far.getTime() + 1000)]);
      assert.equal((await api.call('GET', `/runs/crons/${cronId}/occurrences?limit=1000`)).body.length, 503);
    } finally {
      await teardown(
        () => api?.close(),
        () => boss?.stop({ graceful: false }),
        () => db.drop(),
      );
    }
  });

  test('two migrators at once, and a held lock: it waits with short lock waits, writers go on, it applies once', async () => {
    const db = await createTestDatabase('part_race', { migrate: false });
    const holder = new pg.Client({ connectionString: db.url });
    const writer = new pg.Client({ connectionString: db.url });
    try {
      await migrate(db.pool, pre.dir);
      const cronId = randomUUID();
      await oldRows(db.pool, cronId, 300);
      await Promise.all([holder.connect(), writer.connect()]);
      // A long transaction reading the ledger: the NOT VALID constraint and the switch need it exclusively.
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM cron_occurrences');
      const waits: string[] = [];
      const logger = { info: () => {}, warn: (m: string) => void waits.push(m) };
      const opts = { lockTimeoutMs: 200, backoff: { initialMs: 100, maxMs: 300 }, logger };
      const migrating = Promise.all([migrate(db.pool, undefined, opts), migrate(db.url, undefined, opts)]);
      // Meanwhile writers insert occurrences: none waits longer than a lock_timeout or so.
      const latencies: number[] = [];
      let i = 0;
      while (waits.length < 3) {
        const t = Date.now();
        await writer.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status) VALUES ($1, now() + make_interval(secs => $2), 'enqueued')`, [
          cronId,
          i++,
        ]);
        latencies.push(Date.now() - t);
      }
      assert.ok(Math.max(...latencies) < 1500, `a writer waited ${Math.max(...latencies)} ms`);
      assert.match(waits[0], /migration waits for a lock \(a table is busy\): 020_ledger_partition_switch\.sql/);
      assert.equal(await relkind(db.pool), 'r');
      await holder.query('COMMIT');
      const [a, b] = await migrating;
      // Each migration from 019 on (the partitioning and any later one) applied once, by one of the two.
      const expected = listMigrations()
        .filter((m) => m.id >= 19)
        .map((m) => m.file);
      assert.deepEqual([...a.applied, ...b.applied].sort(), expected);
      assert.equal(await relkind(db.pool), 'p');
      const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1`, [cronId]);
      assert.equal(rows[0].n, 300 + i);
      assert.deepEqual((await migrate(db.url)).applied, []);
    } finally {
      await holder.end().catch(() => {});
      await writer.end().catch(() => {});
      await db.drop();
    }
  });

  test('with an older process alive the release prepares and waits; the ledger_partitions job switches once it is gone', async () => {
    const db = await createTestDatabase('part_skew', { migrate: false });
    try {
      await migrate(db.pool, pre.dir);
      const cronId = randomUUID();
      await oldRows(db.pool, cronId, 50);
      // A process of the previous release: its heartbeat row has no schema_version.
      const old = randomUUID();
      await db.pool.query(`INSERT INTO agentcron_processes (process_id, role, hostname, pid) VALUES ($1, 'worker', 'old', 1)`, [old]);
      await migrate(db.pool);
      assert.equal(await relkind(db.pool), 'r', 'switched under an old process');
      const { rows: check } = await db.pool.query(
        `SELECT convalidated FROM pg_constraint WHERE conrelid = 'cron_occurrences'::regclass AND conname = 'cron_occurrences_before_cutover'`,
      );
      assert.deepEqual(check, [{ convalidated: true }]);
      // The old process keeps writing (the cutover is days ahead).
      await db.pool.query(`INSERT INTO cron_occurrences (cron_id, scheduled_for, status) VALUES ($1, now() + interval '1 day', 'enqueued')`, [cronId]);
      const waiting = await maintainLedgerPartitions(db.pool);
      assert.match(waiting.partition, /waiting: 1 live process\(es\) predate migration 19/);
      await db.pool.query(`UPDATE agentcron_processes SET stopped_at = now() WHERE process_id = $1`, [old]);
      // Two jobs at once (workers of a deployment): one switches, the other finds it done.
      const both = await Promise.all([maintainLedgerPartitions(db.pool), maintainLedgerPartitions(db.pool)]);
      const answers = both.map((b) => b.partition).sort();
      assert.match(answers[0], /^partitioned( at cutover|$)/, JSON.stringify(both));
      assert.match(answers[1], /^partitioned( at cutover|$)|^busy/, JSON.stringify(both));
      assert.equal(answers.filter((a) => a.startsWith('partitioned at cutover')).length, 1, JSON.stringify(both));
      assert.equal(await relkind(db.pool), 'p');
      assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0].n, 51);
    } finally {
      await db.drop();
    }
  });
});

describe('ledger partitioning: running on it', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('part_run');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    // As if the database had been partitioned weeks ago: no legacy partition, daily ones from 45 days back.
    await db.pool.query(`ALTER TABLE cron_occurrences DETACH PARTITION cron_occurrences_legacy`);
    await db.pool.query(`DROP TABLE cron_occurrences_legacy`);
  });
  after(() =>
    teardown(
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('occurrences fired while their day has no partition land in DEFAULT and are moved, none lost; settles touch no other partition', async () => {
    // Bystanders: open rows of a cron that does not exist, at the first ctids of yesterday's
    // partition. Settling today's rows at the same ctids must leave them as they are.
    await db.pool.query(`SELECT agentcron_ledger_partitions_ahead(0, 1)`);
    await db.pool.query(`DROP TABLE ${utcDay(0)}`);
    const bystander = randomUUID();
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, status)
       SELECT $1, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(secs => g), 'enqueued'
         FROM generate_series(1, 200) g`,
      [bystander],
    );
    const cronId = await insertCron(db.pool, { schedule: '* * * * * *', assistant_id: ECHO });
    const scheduler = newScheduler(db.pool, boss, db.url);
    const worker = newWorker(db.pool, boss);
    try {
      await scheduler.start();
      await worker.start();
      const settled = (n: number) => async () =>
        (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 AND status = 'success'`, [cronId])).rows[0].n >=
          n || undefined;
      await eventually(settled(3), 'three occurrences settled in DEFAULT', 30_000);
      const inDefault = (await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences_default WHERE cron_id = $1`, [cronId])).rows[0].n;
      assert.ok(inDefault >= 3);
      // The job comes: today's partition is made while the scheduler fires, from just after the
      // last row in DEFAULT; the next occurrences land in it.
      const out = await maintainLedgerPartitions(db.pool, 2);
      assert.ok(Number(out.created) >= 1, JSON.stringify(out));
      const before = (await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1`, [cronId])).rows[0].n;
      await eventually(settled(before + 3), 'three more settled in their partition', 30_000);
    } finally {
      await scheduler.stop();
      await worker.stop();
    }
    // Every second from the first to the last fired has its row: nothing lost. (The first
    // occurrence is the cron's next_run_date as inserted, now(), not a whole second: left out.)
    const { rows } = await db.pool.query<{ n: number; span: number; default_rows: number; today: number }>(
      `SELECT count(*)::int AS n, extract(epoch FROM max(scheduled_for) - min(scheduled_for))::int + 1 AS span,
              count(*) FILTER (WHERE tableoid = 'cron_occurrences_default'::regclass)::int AS default_rows,
              count(*) FILTER (WHERE tableoid = $2::regclass)::int AS today
         FROM cron_occurrences WHERE cron_id = $1 AND trigger = 'schedule' AND scheduled_for = date_trunc('second', scheduled_for)`,
      [cronId, utcDay(0)],
    );
    const all = await db.pool.query(
      `SELECT scheduled_for, trigger, status, tableoid::regclass::text AS t FROM cron_occurrences WHERE cron_id = $1 ORDER BY 1`,
      [cronId],
    );
    assert.equal(rows[0].n, rows[0].span, `an occurrence is missing: ${JSON.stringify(all.rows)}`);
    assert.ok(rows[0].default_rows >= 2 && rows[0].today >= 3 && rows[0].default_rows + rows[0].today === rows[0].n, JSON.stringify(rows[0]));
    const by = await db.pool.query(`SELECT status, count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1 GROUP BY 1`, [bystander]);
    assert.deepEqual(by.rows, [{ status: 'enqueued', n: 200 }], 'a settle changed rows of another partition');
  });

  test('retention drops the day partitions wholly past RUN_RETENTION_DAYS, keeps the rest, and deletes row by row only where it must', async () => {
    await db.pool.query(`SELECT agentcron_ledger_partitions_ahead(0, 45)`);
    const cronId = await insertCron(db.pool, { schedule: '0 0 1 1 *', next_run_date: new Date('2099-01-01') });
    const gone = randomUUID();
    const put = (cron: string, daysAgo: number, status: string, createdAgo = daysAgo) =>
      db.pool.query(
        `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, created_at, ended_at)
         VALUES ($1, now() - make_interval(days => $2), $3, now() - make_interval(days => $4),
                 CASE WHEN $3 <> 'enqueued' THEN now() - make_interval(days => $4) END)`,
        [cron, daysAgo, status, createdAgo],
      );
    await put(cronId, 40, 'success');
    await put(gone, 40, 'enqueued');
    await put(cronId, 36, 'success');
    await put(cronId, 36, 'enqueued'); // open, its cron exists: kept, so its partition stays
    await put(cronId, 34, 'success', 0); // backfilled today into an old day: kept
    await put(cronId, 20, 'success');
    await put(cronId, 1, 'success');
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, status, created_at, ended_at)
       VALUES ($1, now() - interval '90 days', 'success', now() - interval '90 days', now() - interval '90 days')`,
      [cronId],
    );
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences_default WHERE cron_id = $1`, [cronId])).rows[0].n, 1);

    const worker = new MaintenanceWorker({
      pool: db.pool,
      boss,
      logger: quietLogger(),
      settings: { ...settingsFor(db), runRetentionDays: 30 },
      jobs: builtinJobs(),
    });
    const ex = await worker.execute('retention_purge');
    assert.equal(ex.status, 'success', ex.error ?? '');
    const dropped = ex.result!.ledger_partitions_dropped as string[];
    assert.ok(dropped.includes(utcDay(-40)), JSON.stringify(ex.result));
    assert.ok(!dropped.includes(utcDay(-36)) && !dropped.includes(utcDay(-34)));
    for (const d of [-45, -40, -32]) assert.equal((await db.pool.query(`SELECT to_regclass($1) AS r`, [utcDay(d)])).rows[0].r, null, utcDay(d));
    for (const d of [-36, -34, -29, -20, -1, 0]) assert.ok((await db.pool.query(`SELECT to_regclass($1) AS r`, [utcDay(d)])).rows[0].r, utcDay(d));
    const { rows } = await db.pool.query<{ t: string; status: string }>(
      `SELECT tableoid::regclass::text AS t, status FROM cron_occurrences WHERE cron_id = ANY($1) ORDER BY scheduled_for`,
      [[cronId, gone]],
    );
    assert.deepEqual(
      rows.map((r) => `${r.t}:${r.status}`),
      [`${utcDay(-36)}:enqueued`, `${utcDay(-34)}:success`, `${utcDay(-20)}:success`, `${utcDay(-1)}:success`],
    );
    // Rows deleted one by one: the DEFAULT partition's old row and the settled one beside the open row.
    assert.equal(ex.result!.ledger_rows_deleted, 2);
  });
});

function settingsFor(_db: TestDatabase): MaintenanceSettings {
  return {
    timezone: 'UTC',
    runRetentionDays: 30,
    threadTtlDays: 0,
    fireLagWarnSeconds: 60,
    ephemeralGraceMinutes: 60,
    staleRunSeconds: 3600,
    queueRetentionDays: 7,
    heartbeatSeconds: 10,
    workerHeartbeatSeconds: 10,
    pgbossSchema: 'pgboss',
    maxStartLagSeconds: 30,
    startLagWindowSeconds: 60,
  };
}
