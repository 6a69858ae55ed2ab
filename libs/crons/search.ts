import type { Queryable } from '../db/index.ts';
import type { CronRow } from './types.ts';
import { CRON_COLUMNS, ownedCronCount } from './repository.ts';

// The crons API's search and count of an owner's crons (and the filters tenancy.ts shares).

export interface CronFilters {
  assistant_id?: string | null;
  thread_id?: string | null;
  enabled?: boolean | null;
  metadata?: Record<string, unknown> | null;
  /** agentcron: crons whose id starts with these hex digits (8 or more; dashes ignored). */
  cron_id_prefix?: string | null;
}

/** The uuid range [lo, hi] of the ids starting with a hex prefix (dashes ignored), for the primary key's index. */
export function idPrefixRange(prefix: string): [string, string] {
  const hex = prefix.replace(/-/g, '').toLowerCase();
  const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  return [uuid(hex.padEnd(32, '0')), uuid(hex.padEnd(32, 'f'))];
}

/**
 * WHERE clause and parameters for crons matching the filters, of one owner ($1) or of everyone
 * (userId null: the admin routes).
 */
export function cronsWhere(userId: string | null, f: CronFilters): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replace('?', `$${params.length}`));
  };
  if (userId != null) add('c.user_id = ?', userId);
  if (f.assistant_id != null) add('c.assistant_id = ?::uuid', f.assistant_id);
  if (f.thread_id != null) add('c.thread_id = ?::uuid', f.thread_id);
  if (f.enabled != null) add('c.enabled = ?', f.enabled);
  // jsonb containment. No GIN index (see migrations/002_domain.sql): the search reads the owner's
  // rows in its sort's index order until the page is full, so a rare match reads many rows.
  if (f.metadata != null) add('c.metadata @> ?::jsonb', JSON.stringify(f.metadata));
  if (f.cron_id_prefix != null) {
    const [lo, hi] = idPrefixRange(f.cron_id_prefix);
    add('c.cron_id >= ?::uuid', lo);
    add('c.cron_id <= ?::uuid', hi);
  }
  return { where: clauses.length ? clauses.join(' AND ') : 'true', params };
}

export type CronSortKey = 'cron_id' | 'assistant_id' | 'thread_id' | 'created_at' | 'updated_at' | 'next_run_date' | 'end_time';

export interface CronSearch extends CronFilters {
  sort_by: CronSortKey;
  sort_order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** The column of each sort key the search offers (whitelisted: only these are spliced into SQL). */
export const SORT_COLUMNS: Record<CronSortKey, string> = {
  cron_id: 'c.cron_id',
  assistant_id: 'c.assistant_id',
  thread_id: 'c.thread_id',
  created_at: 'c.created_at',
  updated_at: 'c.updated_at',
  next_run_date: 'c.next_run_date',
  end_time: 'c.end_time',
};

/**
 * Sort keys the table never holds NULL in (NOT NULL columns). "Nulls last" is moot for them, so
 * their ORDER BY leaves NULLS to the default, which is what an index scan on (user_id, key,
 * cron_id) yields in either direction: DESC NULLS LAST would match no index and sort every row.
 */
const NOT_NULL_SORTS: ReadonlySet<CronSortKey> = new Set(['cron_id', 'assistant_id', 'created_at', 'updated_at']);

/**
 * Nullable sort keys with a (user_id, key, cron_id) index (migrations/007_cron_search_indexes.sql).
 * Ascending, nulls last is the index's order; descending with nulls last is read as two ranges of
 * it, the non-null rows then the null ones.
 */
const INDEXED_NULLABLE_SORTS: ReadonlySet<CronSortKey> = new Set(['next_run_date']);

/**
 * Nullable sort keys with a PARTIAL (user_id, key, cron_id) WHERE key IS NOT NULL index
 * (migrations/023_cron_search_partial_indexes.sql: free on the firing path for the many crons
 * without one). Both directions are read as two ranges: the non-null rows from that index, then
 * the null rows in cron_id order.
 */
const PARTIAL_NULLABLE_SORTS: ReadonlySet<CronSortKey> = new Set(['end_time', 'thread_id']);

/**
 * The user's crons matching the filters, with the database's now (for `select: ["now"]`).
 * Ordered by the sort key, nulls last either way (no end_time, finished crons, stateless crons),
 * then by cron_id in the same direction, which makes pages stable. The ORDER BY is written so
 * that the indexes of migrations/007 serve the default sort (created_at desc), updated_at and
 * next_run_date in both directions, and cron_id (the primary key), reading only the page; the
 * partial indexes of migrations/023 serve end_time and thread_id's non-null rows, their null rows
 * come from the primary key (in cron_id order, filtered by owner). assistant_id still sorts.
 * Only the page's rows are read whole, by a deferred join (pageOf).
 */
export async function searchCrons(db: Queryable, userId: string, s: CronSearch): Promise<{ crons: CronRow[]; now: Date }> {
  const { where, params } = cronsWhere(userId, s);
  const direction = s.sort_order === 'asc' ? 'ASC' : 'DESC';
  const key = SORT_COLUMNS[s.sort_by];
  // ASC is NULLS LAST by default; a NOT NULL key has no nulls to place.
  const plain = NOT_NULL_SORTS.has(s.sort_by) || (direction === 'ASC' && !PARTIAL_NULLABLE_SORTS.has(s.sort_by));
  const order = sortOrder(direction, plain ? '' : ' NULLS LAST');
  let keys: string;
  if (plain || !(INDEXED_NULLABLE_SORTS.has(s.sort_by) || PARTIAL_NULLABLE_SORTS.has(s.sort_by))) {
    // Or, not plain, a nullable key without an index: it sorts (none today, assistant_id is NOT NULL).
    params.push(s.limit, s.offset);
    keys = `SELECT ${pageKeys(key)} FROM crons c WHERE ${where}
             ORDER BY ${order(key, 'c.cron_id')} LIMIT $${params.length - 1} OFFSET $${params.length}`;
  } else {
    // Nulls last: the non-null rows (a scan of the key's index, backward for DESC), then the null
    // rows by cron_id in the same direction (next_run_date: the index's null range; end_time and
    // thread_id: the rows outside the partial index). The page is the non-null rows' own LIMIT and
    // OFFSET, followed by the null rows' LIMIT with the OFFSET less the non-null rows before it
    // (counted up to OFFSET, from the index alone): each range reads only what precedes the page
    // in it, and only the at most 2 × limit rows of the two parts are sorted.
    params.push(s.limit, s.offset);
    const [limit, offset] = [params.length - 1, params.length];
    // The null rows by cron_id: next_run_date's index holds them (its null range, in cron_id
    // order); a partial index does not, and ORDER BY cron_id alone lets the primary key serve them:
    // a scan in cron_id order that skips other owners' rows, cheap while the owner's null rows are
    // a good share of the table (the owner with 100,000 crons). For a small owner the planner
    // sorts their few rows instead. No (user_id, cron_id) index: it would take an entry on every
    // firing (migrations/023).
    const nullOrder = INDEXED_NULLABLE_SORTS.has(s.sort_by) ? `${key} ${direction}, c.cron_id ${direction}` : `c.cron_id ${direction}`;
    // (Not counted for the first page: a plan for LIMIT 0 may pick any scan.)
    const before = s.offset === 0 ? '0' : `(SELECT count(*) FROM (SELECT 1 FROM crons c WHERE ${where} AND ${key} IS NOT NULL LIMIT $${offset}) n)`;
    keys = `SELECT c.cron_id, c.k FROM (
              (SELECT ${pageKeys(key)} FROM crons c WHERE ${where} AND ${key} IS NOT NULL
                ORDER BY ${key} ${direction}, c.cron_id ${direction} LIMIT $${limit} OFFSET $${offset})
              UNION ALL
              (SELECT ${pageKeys(key)} FROM crons c WHERE ${where} AND ${key} IS NULL
                ORDER BY ${nullOrder} LIMIT $${limit} OFFSET $${offset} - ${before})
            ) c
            ORDER BY ${order('c.k', 'c.cron_id')} LIMIT $${limit}`;
  }
  const { rows } = await db.query<CronRow & { now: Date }>(pageOf(keys, key, order), params);
  return { crons: rows, now: rows[0]?.now ?? new Date() };
}

/** The ORDER BY of a sort: the key (nulls as given), then cron_id (unless it is the key), both in the direction. */
export function sortOrder(direction: 'ASC' | 'DESC', nulls: '' | ' NULLS LAST'): (key: string, id: string) => string {
  return (key, id) => `${key} ${direction}${nulls}${key === id ? '' : `, ${id} ${direction}`}`;
}

/** What a page's keys select from crons c: cron_id, and the sort key as k (for pageOf's order). */
export function pageKeys(key: string): string {
  return `c.cron_id, ${key} AS k`;
}

/**
 * A deferred join (issue 21): `keys` finds the page (pageKeys, ORDER BY, LIMIT, OFFSET) reading
 * narrow rows, from the sort's index alone where it covers them; then only the page's rows are
 * read whole and given CRON_COLUMNS, whose pending-runs subquery would otherwise run for every
 * skipped row too (and whole rows sort on disk at deep offsets). The page keeps the keys' order
 * (a nested loop over them keeps it: no sort is added).
 */
export function pageOf(keys: string, key: string, order: (key: string, id: string) => string): string {
  const onPage = order(key === 'c.cron_id' ? 'p.cron_id' : 'p.k', 'p.cron_id');
  return `SELECT ${CRON_COLUMNS}, now() AS now FROM (${keys}) p JOIN crons c ON c.cron_id = p.cron_id ORDER BY ${onPage}`;
}

/** How many of the user's crons match the filters; without filters, their cron_user_counts row (no scan). */
export async function countCrons(db: Queryable, userId: string, f: CronFilters): Promise<number> {
  if (f.assistant_id == null && f.thread_id == null && f.enabled == null && f.metadata == null) return ownedCronCount(db, userId);
  const { where, params } = cronsWhere(userId, f);
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM crons c WHERE ${where}`, params);
  return rows[0].n;
}
