import { listMigrations } from './migrate.ts';
import type { MigrationFile } from './migrate.ts';
import { PgErrorCode, pgErrorCode } from './pool.ts';
import type { Queryable } from './pool.ts';

// The schema version gate (migrations/README.md, "Versions"): the schema a process's code needs is
// the highest migration of its migrations/ directory, read once at startup; the one it finds is
// what agentcron_migrations records. Newer code on an older schema waits for the release; older
// code on a newer schema runs (every migration is an expansion old code tolerates).

export interface SchemaState {
  /** The highest migration number this code ships. */
  needed: number;
  /** The highest migration number applied to the database (0: none). */
  found: number;
  /** This code's migrations not applied yet, by file name. */
  missing: string[];
  /** Some migration of this code is not applied: the code must not run on this database yet. */
  behind: boolean;
}

let shipped: MigrationFile[] | undefined;

/** The migrations this code ships, read once per process. */
export function codeMigrations(): MigrationFile[] {
  shipped ??= listMigrations();
  return shipped;
}

/** The schema version this code needs: the highest migration it ships. */
export function neededSchemaVersion(migrations: MigrationFile[] = codeMigrations()): number {
  return migrations.reduce((max, m) => Math.max(max, m.id), 0);
}

/** What the database has against what the code needs. A database never migrated is behind by all. */
export async function readSchemaState(db: Queryable, migrations: MigrationFile[] = codeMigrations()): Promise<SchemaState> {
  let applied: number[] = [];
  try {
    const { rows } = await db.query<{ id: number }>('SELECT id FROM agentcron_migrations');
    applied = rows.map((r) => r.id);
  } catch (err) {
    if (pgErrorCode(err) !== PgErrorCode.undefinedTable) throw err;
  }
  const have = new Set(applied);
  const missing = migrations.filter((m) => !have.has(m.id)).map((m) => m.file);
  return {
    needed: neededSchemaVersion(migrations),
    found: applied.reduce((max, id) => Math.max(max, id), 0),
    missing,
    behind: missing.length > 0,
  };
}

/** One sentence for logs, /health and 503 answers. */
export function describeSchemaState(s: SchemaState): string {
  if (!s.behind) return `database schema at migration ${s.found} (this code needs ${s.needed})`;
  const list = s.missing.length > 3 ? `${s.missing.slice(0, 3).join(', ')} and ${s.missing.length - 3} more` : s.missing.join(', ');
  return (
    `the database schema is behind this version of agentcron (it needs migration ${s.needed}, the database has ${s.found || 'none'}; ` +
    `missing ${list}): a release (npm run migrate, the Procfile's release) must run`
  );
}

/**
 * The statement names a column, table, function or type the database does not have: a schema
 * older (or newer, contracted) than the code, not a bug in the statement (a syntax error is one).
 */
export function isSchemaMismatch(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code === '42703' || code === '42P01' || code === '42883' || code === '42704';
}
