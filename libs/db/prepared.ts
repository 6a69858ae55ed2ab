import { createHash } from 'node:crypto';
import type pg from 'pg';

// Named (protocol-level) prepared statements for the hot path, only on connections that reach
// PostgreSQL itself. A statement sent whole (node-postgres's unnamed statement) is parsed,
// analysed and planned by the server at every call: for the claim and the finish of a herd that
// was ~12 % of PostgreSQL's CPU per occurrence (docs/performance.md, "CPU per occurrence").
// Prepared once per connection, the server keeps the parsed statement and, after five calls,
// plans it once for good when its generic plan costs no more than the custom ones (every such
// statement here looks rows up by key: a nested loop of index probes either way).
// Through a transaction pooler (PgBouncer's pool_mode=transaction, issue 20) a server session is
// not ours between transactions, so a statement prepared on one may be missing on the next:
// there, and on any pool not made by createPool, statements stay unnamed. A named statement's
// result columns must not change under it (PostgreSQL then refuses to run it: "cached plan must
// not change result type"): each one here names its columns, and the migrations' rules forbid
// changing a column's type. pg-boss's own statements (its tables are not ours) stay unnamed.

/** Pools (and their clients) createPool made on a direct connection: they may keep named statements. */
const DIRECT = new WeakSet<object>();

/** Marks a pool or client of a direct connection (createPool, for connections not through a pooler). */
export function markDirect(db: object): void {
  DIRECT.add(db);
}

const NAMES = new Map<string, string>();
/** At most this many texts are named (each is kept on every connection that ran it); later ones stay unnamed. */
const MAX_NAMED = 100;

/** One name per text: a connection never sees one name for two texts. Null past MAX_NAMED texts. */
function nameOf(text: string): string | null {
  let name = NAMES.get(text);
  if (!name) {
    if (NAMES.size >= MAX_NAMED) return null;
    name = `agentcron_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    NAMES.set(text, name);
  }
  return name;
}

/**
 * A hot-path statement as node-postgres runs it (`db.query(prepared(db, SQL, values))`): named,
 * so prepared once per connection, when `db` is a direct connection's pool or client; unnamed
 * (sent whole, nothing kept on the server) otherwise.
 */
export function prepared(db: object, text: string, values: unknown[]): pg.QueryConfig {
  const name = DIRECT.has(db) ? nameOf(text) : null;
  return name ? { name, text, values } : { text, values };
}
