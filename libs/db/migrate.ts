import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { backoffDelay, sleep } from './backoff.ts';
import type { Backoff } from './backoff.ts';
import { PgErrorCode, guardClient, pgErrorCode } from './pool.ts';
import type { Pool } from './pool.ts';

// The online migration runner (rules for migration files: migrations/README.md).
//
// - Migrators are serialised by a transaction-scoped advisory lock held by a connection of its
//   own, in a transaction kept open while the migrations run on a second connection. Nothing
//   session-scoped is left anywhere: both connections are the runner's own (never a pool's) and
//   closed afterwards, every setting is SET LOCAL, so it works through a transaction pooler.
// - Every transaction runs with a short lock_timeout: a migration that needs a lock a busy table
//   holds gives up after lockTimeoutMs (the sessions queued behind it go on), waits with backoff
//   and tries again. It waits for a gap; it never queues everyone behind an exclusive lock.
// - A file whose first line is `-- agentcron:no-transaction` runs statement by statement: each in
//   a transaction of its own (with the same lock_timeout), except those PostgreSQL refuses inside
//   one (CREATE INDEX CONCURRENTLY ...), which run bare. A statement preceded by `-- agentcron:batch`
//   is a batched backfill: repeated, each time its own short transaction, until it changes no row.

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/** First line of a migration that must run outside a transaction (CREATE INDEX CONCURRENTLY). */
export const NO_TRANSACTION_MARKER = '-- agentcron:no-transaction';
/** Line before a statement of a no-transaction migration that is repeated until it changes no row. */
export const BATCH_MARKER = '-- agentcron:batch';

// One advisory lock key for every migrator: the second one waits, then finds nothing to do.
const MIGRATION_LOCK_KEY = 7_245_001;

export const MIGRATION_DEFAULTS = {
  /** How long one statement may wait for a table lock before it steps aside and retries. */
  lockTimeoutMs: 2_000,
  /** How long a migration keeps retrying a lock it cannot get before the release fails. */
  retryForMs: 15 * 60_000,
  backoff: { initialMs: 500, maxMs: 10_000 },
} as const;

export interface MigrationResult {
  applied: string[];
}

export interface MigrationFile {
  id: number;
  file: string;
}

export interface MigrateOptions {
  lockTimeoutMs?: number;
  retryForMs?: number;
  backoff?: Backoff;
  /** Told when a migration waits for a lock, and what each applied. */
  logger?: { info(message: string, meta?: Record<string, unknown>): unknown; warn(message: string, meta?: Record<string, unknown>): unknown };
}

/** The numbered migration files of a directory, in order (read once at startup: the schema version the code needs). */
export function listMigrations(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => ({ id: Number(file.slice(0, file.indexOf('_'))), file }));
}

/**
 * Applies numbered migrations/NNN_name.sql files not yet recorded in agentcron_migrations, in
 * order. `target` is a pool (its connection settings are used for two connections of the
 * runner's own, closed afterwards) or a connection string. Safe when several processes call it
 * at once: the second waits for the first, then finds nothing to do.
 */
export async function migrate(target: Pool | string, dir: string = MIGRATIONS_DIR, opts: MigrateOptions = {}): Promise<MigrationResult> {
  const files = listMigrations(dir);
  const config = clientConfig(target);
  const lock = await openClient(config);
  let work: pg.Client | undefined;
  const applied: string[] = [];
  try {
    await takeMigrationLock(lock, opts);
    work = await openClient(config);
    const runner = new Runner(work, opts);
    await runner.inTransaction('the migrations table', async () => {
      await work!.query(`CREATE TABLE IF NOT EXISTS agentcron_migrations (
        id integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    });
    const { rows } = await work.query<{ id: number }>('SELECT id FROM agentcron_migrations');
    const done = new Set(rows.map((r) => r.id));
    for (const { id, file } of files) {
      if (done.has(id)) continue;
      const sql = await readFile(path.join(dir, file), 'utf8');
      const started = Date.now();
      try {
        if (isNoTransaction(sql)) await runner.statementByStatement(id, file, sql);
        else await runner.whole(id, file, sql);
      } catch (err) {
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      opts.logger?.info(`migration ${file} applied`, { ms: Date.now() - started });
      applied.push(file);
    }
    await lock.query('COMMIT');
  } finally {
    await work?.end().catch(() => {});
    await lock.end().catch(() => {});
  }
  return { applied };
}

/**
 * Takes the migrators' lock in a transaction left open on `lock`: released by COMMIT, or by the
 * server if this process dies. Holding it, the transaction has no xid and, between statements, no
 * snapshot, so CREATE INDEX CONCURRENTLY does not wait for it. A migrator that finds it taken
 * does not wait inside a statement (its snapshot would make the other's CREATE INDEX CONCURRENTLY
 * wait for it while it waits for the other: a deadlock the server cannot see); it tries again in
 * a new transaction a moment later.
 */
async function takeMigrationLock(lock: pg.Client, opts: MigrateOptions): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    await lock.query('BEGIN');
    await lock.query(`SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0`);
    // The simple query protocol: a parameterised query leaves its portal (and its snapshot, the
    // xmin CREATE INDEX CONCURRENTLY waits for) open until the transaction ends.
    const { rows } = await lock.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}) AS got`);
    if (rows[0].got) return;
    await lock.query('ROLLBACK');
    if (attempt === 0) opts.logger?.info('another process is migrating this database: waiting for it');
    await sleep(backoffDelay(attempt, { initialMs: 100, maxMs: 1_000 }));
  }
}

export function isNoTransaction(sql: string): boolean {
  return (
    sql
      .replace(/^\uFEFF/, '')
      .split('\n', 1)[0]
      .trim()
      .toLowerCase() === NO_TRANSACTION_MARKER
  );
}

/**
 * The runner's connections: the pool's settings without its `options` startup parameter (the
 * process's statement and lock timeouts are not the migration's; a transaction pooler refuses it).
 */
function clientConfig(target: Pool | string): pg.ClientConfig {
  if (typeof target === 'string') return { connectionString: target, application_name: 'agentcron-migrate' };
  const { options: _options, max: _max, idleTimeoutMillis: _idle, ...rest } = (target as unknown as { options: pg.PoolConfig }).options;
  return { ...rest, application_name: 'agentcron-migrate' };
}

async function openClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  guardClient(client);
  await client.connect();
  return client;
}

const RETRYABLE = new Set<string>([PgErrorCode.lockNotAvailable, PgErrorCode.deadlockDetected]);

class Runner {
  #client: pg.Client;
  #lockTimeoutMs: number;
  #retryForMs: number;
  #backoff: Backoff;
  #logger: MigrateOptions['logger'];

  constructor(client: pg.Client, opts: MigrateOptions) {
    this.#client = client;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? MIGRATION_DEFAULTS.lockTimeoutMs;
    this.#retryForMs = opts.retryForMs ?? MIGRATION_DEFAULTS.retryForMs;
    this.#backoff = opts.backoff ?? MIGRATION_DEFAULTS.backoff;
    this.#logger = opts.logger;
  }

  /** A transactional migration: the whole file and its record in one transaction, retried as a whole. */
  async whole(id: number, file: string, sql: string): Promise<void> {
    await this.inTransaction(file, async () => {
      // Recorded first: a migrator that somehow got past the lock collides on the key instead of re-applying.
      await this.#client.query('INSERT INTO agentcron_migrations (id, name) VALUES ($1, $2)', [id, file]);
      await this.#client.query(sql);
    });
  }

  /**
   * A no-transaction migration: each statement on its own, recorded once all have run. A
   * migration cut short runs again from its first statement: each must be idempotent (IF NOT
   * EXISTS, a backfill that finds nothing left to do).
   */
  async statementByStatement(id: number, file: string, sql: string): Promise<void> {
    for (const statement of splitStatements(sql)) {
      const what = `${file}: ${statement.text.replace(/\s+/g, ' ').slice(0, 80)}`;
      if (statement.batch) {
        let total = 0;
        for (;;) {
          const changed = await this.inTransaction(what, async () => (await this.#client.query(statement.text)).rowCount ?? 0);
          total += changed;
          if (changed === 0) break;
        }
        this.#logger?.info(`${file}: backfill batch done`, { rows: total });
      } else if (cannotRunInTransaction(statement.text)) {
        await this.#retryLocked(what, () => this.#bare(statement.text));
      } else {
        await this.inTransaction(what, () => this.#client.query(statement.text));
      }
    }
    await this.inTransaction(file, () =>
      this.#client.query('INSERT INTO agentcron_migrations (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, file]),
    );
  }

  /** fn inside BEGIN ... COMMIT with the migration's limits (SET LOCAL), retried while a lock is not available. */
  inTransaction<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.#retryLocked(what, async () => {
      const c = this.#client;
      await c.query('BEGIN');
      try {
        await c.query(
          `SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.#lockTimeoutMs))}; SET LOCAL statement_timeout = 0; SET LOCAL ` +
            `idle_in_transaction_session_timeout = 0`,
        );
        const result = await fn();
        await c.query('COMMIT');
        return result;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  /**
   * A statement PostgreSQL runs only outside a transaction block. No session setting is sent
   * (it would stay on a pooled backend): its lock is one ordinary reads and writes do not queue
   * behind (SHARE UPDATE EXCLUSIVE for CONCURRENTLY). An index a failed CREATE INDEX CONCURRENTLY
   * left invalid is dropped first, or IF NOT EXISTS would keep it.
   */
  async #bare(text: string): Promise<void> {
    const index = /^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?("?[\w.]+"?)/i.exec(text)?.[1];
    if (index) {
      const { rows } = await this.#client.query<{ invalid: boolean }>(
        `SELECT NOT i.indisvalid AS invalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
        [index],
      );
      if (rows[0]?.invalid) await this.#client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index}`);
    }
    await this.#client.query(text);
  }

  async #retryLocked<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = pgErrorCode(err);
        if (!code || !RETRYABLE.has(code)) throw err;
        if (Date.now() >= deadline) {
          throw new Error(`gave up after ${Math.round(this.#retryForMs / 1000)}s waiting for a lock (${(err as Error).message})`, { cause: err });
        }
        const wait = backoffDelay(attempt, this.#backoff);
        this.#logger?.warn(
          `migration waits for a lock (${code === PgErrorCode.lockNotAvailable ? 'a table is busy' : 'deadlock'}): ${what}; retrying in ` +
            `${(wait / 1000).toFixed(1)}s`,
        );
        await sleep(wait);
      }
    }
  }
}

/** Statements PostgreSQL refuses inside a transaction block. */
export function cannotRunInTransaction(statement: string): boolean {
  const s = stripComments(statement).trim();
  return /^(create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b[\s\S]*\bconcurrently\b|vacuum\b|alter\s+system\b)/i.test(s);
}

export interface Statement {
  text: string;
  /** Preceded by `-- agentcron:batch`: a batched backfill, repeated until it changes no row. */
  batch: boolean;
}

/**
 * The statements of a SQL file, split on semicolons outside quotes, comments and dollar-quoted
 * bodies. Comment-only pieces are dropped.
 */
export function splitStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (stripComments(text).trim()) out.push({ text, batch: text.split('\n').some((l) => l.trim().toLowerCase() === BATCH_MARKER) });
    start = end + 1;
  };
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? sql.length : nl + 1;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === ch && sql[j + 1] === ch) j += 2;
        else if (sql[j] === ch) break;
        else j++;
      }
      i = j + 1;
    } else if (ch === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        i = end === -1 ? sql.length : end + tag.length;
      } else i++;
    } else if (ch === ';') {
      push(i);
      i++;
    } else i++;
  }
  push(sql.length);
  return out;
}

/** The SQL without its comments (string literals and dollar-quoted bodies kept). */
export function stripComments(sql: string): string {
  return sql.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--[^\n]*/g, ' ');
}
