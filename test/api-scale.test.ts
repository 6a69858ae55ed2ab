import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { countCrons, lockAndCountUserCrons, searchCrons, searchScopedCrons } from '../libs/crons/index.ts';
import type { CronSearch, CronSortKey } from '../libs/crons/index.ts';
import type { CronRow } from '../libs/crons/index.ts';
import { MIGRATIONS_DIR, migrate, withTransaction } from '../libs/db/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';

// The crons API at scale (issue 11, migrations/007_cron_search_indexes.sql): search answers in
// the documented order from the indexes, count and the per-user cap read cron_user_counts, which
// the triggers keep equal to count(*) whatever writes the crons.

const ECHO = defaultAssistantId('echo');
const SORTS: CronSortKey[] = ['cron_id', 'assistant_id', 'thread_id', 'created_at', 'updated_at', 'next_run_date', 'end_time'];

/** The documented order: the key (nulls last either way), then cron_id, both in the direction asked. */
function reference(rows: CronRow[], key: CronSortKey, order: 'asc' | 'desc'): string[] {
  const value = (r: CronRow) => {
    const v = r[key];
    return v instanceof Date ? v.getTime() : v;
  };
  const sign = order === 'asc' ? 1 : -1;
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows]
    .sort((a, b) => {
      const va = value(a);
      const vb = value(b);
      if (va === null || vb === null) {
        if (va !== vb) return va === null ? 1 : -1;
      } else if (va !== vb) return sign * cmp(va, vb);
      return sign * cmp(a.cron_id, b.cron_id);
    })
    .map((r) => r.cron_id);
}

async function counts(db: TestDatabase): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ user_id: string; n: number; actual: number }>(
    `SELECT coalesce(k.user_id, c.user_id) AS user_id, coalesce(k.n, 0) AS n, coalesce(c.actual, 0)::int AS actual
       FROM cron_user_counts k FULL JOIN (SELECT user_id, count(*) AS actual FROM crons GROUP BY user_id) c USING (user_id)`,
  );
  for (const r of rows) assert.equal(r.n, r.actual, `cron_user_counts of ${r.user_id}`);
  return Object.fromEntries(rows.filter((r) => r.n !== 0).map((r) => [r.user_id, r.n]));
}

describe('crons at scale: search order and plans, counters', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('api_scale');
    await ensureDefaultAssistants(db.pool, ['echo']);
  });
  after(() => db?.drop());

  test('every sort, both directions, pages included, answers the documented order (nulls last, then cron_id)', async () => {
    const user = 'sorter';
    const threads = Array.from({ length: 3 }, () => randomUUID());
    await db.pool.query(`INSERT INTO threads (thread_id, user_id) SELECT unnest($1::uuid[]), $2`, [threads, user]);
    const assistants = Array.from({ length: 3 }, () => randomUUID());
    await db.pool.query(`INSERT INTO assistants (assistant_id, graph_id, name, user_id) SELECT unnest($1::uuid[]), 'echo', 'a', $2`, [assistants, user]);
    // Few distinct values per key, so ties (broken by cron_id) and nulls are everywhere.
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, end_time, enabled, next_run_date, created_at, updated_at)
       SELECT gen_random_uuid(), ($2::uuid[])[1 + i % 3], CASE WHEN i % 3 = 0 THEN ($3::uuid[])[1 + i % 2] END, $1, '@daily',
              CASE WHEN i % 4 = 0 THEN now() + (i % 5) * interval '1 day' END, i % 6 <> 0,
              CASE WHEN i % 6 <> 0 THEN now() + (i % 7) * interval '1 hour' END,
              now() - (i % 9) * interval '1 day', now() - (i % 8) * interval '1 hour'
         FROM generate_series(1, 120) i`,
      [user, assistants, threads],
    );
    const { rows: all } = await db.pool.query<CronRow>(`SELECT * FROM crons WHERE user_id = $1`, [user]);
    for (const key of SORTS) {
      for (const order of ['asc', 'desc'] as const) {
        const expected = reference(all, key, order);
        for (const [limit, offset] of [
          [120, 0],
          [7, 0],
          [10, 35],
          [50, 100],
        ]) {
          const { crons } = await searchCrons(db.pool, user, { sort_by: key, sort_order: order, limit, offset });
          assert.deepEqual(
            crons.map((c) => c.cron_id),
            expected.slice(offset, offset + limit),
            `${key} ${order} limit ${limit} offset ${offset}`,
          );
          // The admin routes' search (libs/crons/tenancy.ts) answers the same order.
          const scoped = await searchScopedCrons(db.pool, { user_id: user, sort_by: key, sort_order: order, limit, offset });
          assert.deepEqual(
            scoped.crons.map((c) => c.cron_id),
            expected.slice(offset, offset + limit),
            `scoped ${key} ${order} limit ${limit} offset ${offset}`,
          );
        }
        // With a filter too.
        const enabled = reference(
          all.filter((r) => r.enabled),
          key,
          order,
        );
        const { crons } = await searchCrons(db.pool, user, { sort_by: key, sort_order: order, limit: 15, offset: 5, enabled: true });
        assert.deepEqual(
          crons.map((c) => c.cron_id),
          enabled.slice(5, 20),
          `${key} ${order} enabled`,
        );
      }
    }
    await db.pool.query(`DELETE FROM crons WHERE user_id = $1`, [user]);
  });

  test('with many crons, every sort but assistant_id reads only the page from indexes (no Sort but the merge of two ranges)', async () => {
    const user = 'big';
    const threads = Array.from({ length: 20 }, () => randomUUID());
    await db.pool.query(`INSERT INTO threads (thread_id, user_id) SELECT unnest($1::uuid[]), $2`, [threads, user]);
    // A tenth with an end_time, a twentieth bound to a thread (as bench/api.ts).
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, end_time, enabled, next_run_date, created_at, updated_at)
       SELECT gen_random_uuid(), $2, CASE WHEN i % 20 = 7 THEN ($3::uuid[])[1 + i % 20] END, $1, '@daily',
              CASE WHEN i % 10 = 1 THEN now() + random() * interval '30 days' END,
              i % 20 <> 0, CASE WHEN i % 20 <> 0 THEN now() + random() * interval '1 day' END,
              now() - random() * interval '365 days', now() - random() * interval '30 days'
         FROM generate_series(1, 20000) i`,
      [user, ECHO, threads],
    );
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule) SELECT gen_random_uuid(), $1, 'small' || i % 50, '@daily' FROM generate_series(1, 2000) i`,
      [ECHO],
    );
    await db.pool.query(`VACUUM ANALYZE crons`);
    const plan = async (s: Partial<CronSearch>) => {
      const lines: string[] = [];
      const explaining = {
        query: async (text: string, params: unknown[]) => {
          const { rows } = await db.pool.query(`EXPLAIN (COSTS OFF) ${text}`, params);
          lines.push(...rows.map((r: Record<string, string>) => r['QUERY PLAN']));
          return { rows: [] };
        },
      };
      await searchCrons(explaining as never, user, { sort_by: 'created_at', sort_order: 'desc', limit: 10, offset: 0, ...s });
      return lines.join('\n');
    };
    for (const s of [
      {},
      { sort_order: 'asc' as const },
      { sort_by: 'updated_at' as const },
      { sort_by: 'updated_at' as const, sort_order: 'asc' as const },
      { sort_by: 'next_run_date' as const, sort_order: 'asc' as const },
      { sort_by: 'next_run_date' as const, sort_order: 'desc' as const },
      { sort_by: 'cron_id' as const },
      // migrations/023: partial indexes (non-null rows only), the null rows a second range.
      { sort_by: 'end_time' as const, sort_order: 'asc' as const },
      { sort_by: 'end_time' as const, sort_order: 'desc' as const },
      { sort_by: 'thread_id' as const, sort_order: 'asc' as const },
      { sort_by: 'thread_id' as const, sort_order: 'desc' as const },
    ]) {
      const p = await plan(s);
      assert.match(p, /Index Scan/, `${JSON.stringify(s)}:\n${p}`);
      assert.doesNotMatch(p, /Seq Scan|Bitmap/, `${JSON.stringify(s)}:\n${p}`);
      // Nullable keys are read as two ranges (non-null, then null by cron_id); only their merge
      // sorts (at most 2 × (limit + offset) rows): every range reads an index in order.
      const twoRanges = (s.sort_by === 'next_run_date' && s.sort_order === 'desc') || s.sort_by === 'end_time' || s.sort_by === 'thread_id';
      if (twoRanges) {
        // A Sort only of what a Limit above an index scan yields (the ranges' merge), never of a scan's rows.
        assert.doesNotMatch(p, /Sort\n\s*Sort Key:[^\n]*\n\s*->\s+(Index|Seq|Bitmap)/, `${JSON.stringify(s)}:\n${p}`);
        assert.match(p, /Append/, `${JSON.stringify(s)}:\n${p}`);
      } else assert.doesNotMatch(p, /Sort/, `${JSON.stringify(s)}:\n${p}`);
      if (s.sort_by === 'end_time') assert.match(p, /crons_user_end_time/, `${JSON.stringify(s)}:\n${p}`);
      if (s.sort_by === 'thread_id') assert.match(p, /crons_user_thread/, `${JSON.stringify(s)}:\n${p}`);
    }
    // Issue 21, a deep page: its keys come from narrow rows (cron_id and the key: no step that
    // reads more than the page outputs whole rows, no sort spills to disk), and the cron columns'
    // pending-runs subquery runs for the page's rows only, not the skipped ones.
    interface PlanNode {
      'Node Type': string;
      'Parent Relationship'?: string;
      'Actual Rows': number;
      'Actual Loops': number;
      Output?: string[];
      'Sort Method'?: string;
      Plans?: PlanNode[];
    }
    const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
    const limit = 100;
    const deep = async (run: (db: never) => Promise<unknown>) => {
      const plans: PlanNode[] = [];
      const explaining = {
        query: async (text: string, params: unknown[]) => {
          const { rows } = await db.pool.query(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${text}`, params);
          plans.push(rows[0]['QUERY PLAN'][0].Plan);
          return { rows: [{ now: new Date() }] };
        },
      };
      await run(explaining as never);
      return plans.flatMap(nodes);
    };
    for (const s of [
      { sort_by: 'end_time' as const, sort_order: 'desc' as const },
      { sort_by: 'thread_id' as const, sort_order: 'asc' as const },
      { sort_by: 'next_run_date' as const, sort_order: 'desc' as const },
      { sort_by: 'created_at' as const, sort_order: 'desc' as const },
    ]) {
      const page = { ...s, limit, offset: 5000 };
      for (const [label, run] of [
        ['search', (q: never) => searchCrons(q, user, page)],
        ['scoped search', (q: never) => searchScopedCrons(q, { user_id: user, ...page })],
      ] as const) {
        const all = await deep(run);
        const shown = all.map(({ Plans: _, ...n }) => n);
        const text = `${label} ${JSON.stringify(page)}:\n${JSON.stringify(shown, null, 1)}`;
        const subPlans = all.filter((n) => n['Parent Relationship'] === 'SubPlan');
        assert.ok(subPlans.length > 0, text);
        for (const n of subPlans) assert.ok(n['Actual Loops'] <= limit, `the subquery runs for skipped rows: ${text}`);
        for (const n of all) {
          if (n['Actual Rows'] > limit) assert.ok((n.Output ?? []).length <= 2, `${n['Node Type']} outputs whole rows: ${text}`);
          assert.doesNotMatch(n['Sort Method'] ?? '', /external/, text);
        }
      }
    }
    // And the answers are the big owner's newest.
    const { crons } = await searchCrons(db.pool, user, { sort_by: 'created_at', sort_order: 'desc', limit: 3, offset: 0 });
    const { rows } = await db.pool.query(`SELECT cron_id FROM crons WHERE user_id = $1 ORDER BY created_at DESC, cron_id DESC LIMIT 3`, [user]);
    assert.deepEqual(
      crons.map((c) => c.cron_id),
      rows.map((r) => r.cron_id),
    );
    assert.equal(await countCrons(db.pool, user, {}), 20000);
    assert.equal(await countCrons(db.pool, user, { enabled: false }), 1000);
    await db.pool.query(`DELETE FROM crons WHERE user_id = $1 OR user_id LIKE 'small%'`, [user]);
    await db.pool.query(`DELETE FROM threads WHERE user_id = $1`, [user]);
  });

  test('cron_user_counts follows inserts, deletes, cascades from threads and assistants, owner changes and TRUNCATE', async () => {
    const insert = (user: string, n: number, extra: { thread?: string; assistant?: string } = {}) =>
      db.pool.query(
        `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule) SELECT gen_random_uuid(), $1, $2, $3, '@daily' FROM generate_series(1, $4)`,
        [extra.assistant ?? ECHO, extra.thread ?? null, user, n],
      );
    await insert('alice', 5);
    await insert('bob', 3);
    // Several owners in one statement.
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule) SELECT gen_random_uuid(), $1, u, '@daily' FROM unnest(ARRAY['carol', 'alice', 'carol']) u`,
      [ECHO],
    );
    assert.deepEqual(await counts(db), { alice: 6, bob: 3, carol: 2 });
    assert.equal(await countCrons(db.pool, 'alice', {}), 6);
    assert.equal(await countCrons(db.pool, 'nobody', {}), 0);

    // A thread's deletion cascades to its crons; an assistant's too.
    const thread = randomUUID();
    await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'bob')`, [thread]);
    await insert('bob', 4, { thread });
    const assistant = randomUUID();
    await db.pool.query(`INSERT INTO assistants (assistant_id, graph_id, name, user_id) VALUES ($1, 'echo', 'x', 'carol')`, [assistant]);
    await insert('carol', 2, { assistant });
    assert.deepEqual(await counts(db), { alice: 6, bob: 7, carol: 4 });
    await db.pool.query(`DELETE FROM threads WHERE thread_id = $1`, [thread]);
    await db.pool.query(`DELETE FROM assistants WHERE assistant_id = $1`, [assistant]);
    assert.deepEqual(await counts(db), { alice: 6, bob: 3, carol: 2 });

    // A rolled-back insert leaves nothing behind.
    await withTransaction(db.pool, async (client) => {
      await client.query(`INSERT INTO crons (cron_id, assistant_id, user_id, schedule) VALUES (gen_random_uuid(), $1, 'alice', '@daily')`, [ECHO]);
      assert.equal(await lockAndCountUserCrons(client, 'alice'), 7);
      throw new Error('rollback');
    }).catch(() => {});
    assert.deepEqual(await counts(db), { alice: 6, bob: 3, carol: 2 });

    // A change of owner (an admin transfer), and an update that does not change it.
    await db.pool.query(`UPDATE crons SET user_id = 'dave' WHERE cron_id IN (SELECT cron_id FROM crons WHERE user_id = 'alice' LIMIT 4)`);
    await db.pool.query(`UPDATE crons SET user_id = user_id, enabled = false WHERE user_id = 'bob'`);
    assert.deepEqual(await counts(db), { alice: 2, bob: 3, carol: 2, dave: 4 });

    await db.pool.query(`DELETE FROM crons WHERE user_id IN ('alice', 'dave')`);
    assert.deepEqual(await counts(db), { bob: 3, carol: 2 });
    await db.pool.query(`TRUNCATE crons CASCADE`);
    assert.deepEqual(await counts(db), {});
  });

  test('the cap check holds under concurrent creates of one user (the advisory lock, then the counter)', async () => {
    const cap = 10;
    const attempts = await Promise.all(
      Array.from({ length: 30 }, () =>
        withTransaction(db.pool, async (client) => {
          const owned = await lockAndCountUserCrons(client, 'racer');
          if (owned >= cap) return false;
          await client.query(`INSERT INTO crons (cron_id, assistant_id, user_id, schedule) VALUES (gen_random_uuid(), $1, 'racer', '@daily')`, [ECHO]);
          return true;
        }),
      ),
    );
    assert.equal(attempts.filter(Boolean).length, cap);
    assert.equal(await countCrons(db.pool, 'racer', {}), cap);
    await counts(db);
  });
});

describe('migration 007 on a database with crons', () => {
  let db: TestDatabase;
  let dir: string;
  before(async () => {
    db = await createTestDatabase('api_scale_007', { migrate: false });
    dir = mkdtempSync(path.join(tmpdir(), 'agentcron-migrations-'));
    for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '007')) cpSync(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });

  test('backfills cron_user_counts from the existing crons', async () => {
    await migrate(db.pool, dir);
    await ensureDefaultAssistants(db.pool, ['echo']);
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule) SELECT gen_random_uuid(), $1, 'u' || i % 3, '@daily' FROM generate_series(1, 10) i`,
      [ECHO],
    );
    await migrate(db.pool);
    assert.deepEqual(await counts(db), { u0: 3, u1: 4, u2: 3 });
    const { rows } = await db.pool.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'crons' AND indexname LIKE 'crons_user%' ORDER BY 1`);
    // crons_user_name: migration 017 (cron names); crons_user_end_time and crons_user_thread:
    // migration 023 (partial search indexes); also applied by this roll forward.
    assert.deepEqual(
      rows.map((r) => r.indexname),
      ['crons_user_created', 'crons_user_end_time', 'crons_user_name', 'crons_user_next_run', 'crons_user_thread', 'crons_user_updated'],
    );
  });
});
