import { isNoTransaction, splitStatements, stripComments } from './migrate.ts';

// What can be checked mechanically of the rules in migrations/README.md: every migration file
// after the grandfathered ones is held to them by test/migration-rules.test.ts.

/** The tables running processes read and write all the time, in the lock order of libs/runs/lifecycle.ts. */
export const HOT_TABLES = ['crons', 'threads', 'runs', 'cron_occurrences', 'cron_last_runs'] as const;

/**
 * Migrations written before these rules (history: they have run on every deployment and are never
 * edited). 006 rewrote crons and validated a constraint under an exclusive lock, 007 built indexes
 * holding crons exclusively, 008 took cron_occurrences before crons: what the rules now forbid.
 */
export const GRANDFATHERED = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

/** Marks a contract migration (drops or renames what an earlier release stopped using). */
export const CONTRACT_MARKER = '-- agentcron:contract';

// Defaults PostgreSQL evaluates per row: ADD COLUMN with one rewrites the table.
const VOLATILE = /\b(random|clock_timestamp|timeofday|gen_random_uuid|uuid_generate_v\d\w*|nextval|statement_timestamp)\s*\(/;

const TABLE = String.raw`(?:only\s+)?(?:public\.)?"?(\w+)"?`;

/** The hot table a statement locks, and how (null when it touches none). */
function target(s: string): { table: string; kind: string } | null {
  const patterns: [string, RegExp][] = [
    ['alter', new RegExp(String.raw`^alter\s+table\s+(?:if\s+exists\s+)?${TABLE}`)],
    ['index', new RegExp(String.raw`^create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(?:"?\w+"?\s+)?on\s+${TABLE}`)],
    ['update', new RegExp(String.raw`^(?:with\s[\s\S]*?\)\s*)?update\s+${TABLE}`)],
    ['delete', new RegExp(String.raw`^(?:with\s[\s\S]*?\)\s*)?delete\s+from\s+${TABLE}`)],
    ['insert', new RegExp(String.raw`^insert\s+into\s+${TABLE}`)],
    ['lock', new RegExp(String.raw`^lock\s+(?:table\s+)?${TABLE}`)],
    ['truncate', new RegExp(String.raw`^truncate\s+(?:table\s+)?${TABLE}`)],
    ['trigger', new RegExp(String.raw`^(?:create|drop)\s+(?:or\s+replace\s+)?(?:constraint\s+)?trigger\s+(?:if\s+exists\s+)?\w+[\s\S]*?\bon\s+${TABLE}`)],
    ['cluster', new RegExp(String.raw`^cluster\s+(?:verbose\s+)?${TABLE}`)],
    ['vacuum', new RegExp(String.raw`^vacuum\s*(?:\([^)]*\)\s*)?(?:full\s+)?(?:verbose\s+)?${TABLE}`)],
    ['reindex', new RegExp(String.raw`^reindex\s+(?:\([^)]*\)\s*)?table\s+(?:concurrently\s+)?${TABLE}`)],
    ['drop table', new RegExp(String.raw`^drop\s+table\s+(?:if\s+exists\s+)?${TABLE}`)],
  ];
  for (const [kind, re] of patterns) {
    const table = re.exec(s)?.[1];
    if (table && (HOT_TABLES as readonly string[]).includes(table)) return { table, kind };
  }
  return null;
}

/** String literals blanked (their contents never match a rule); comments gone; one line, lower case. */
function normalise(statement: string): string {
  return stripComments(statement.replace(/'(?:[^']|'')*'/g, "''"))
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * The rules a migration file breaks, one sentence each (empty: none). `file` is NNN_name.sql;
 * grandfathered numbers are not checked.
 */
export function checkMigration(file: string, sql: string): string[] {
  const id = Number(file.slice(0, file.indexOf('_')));
  if (GRANDFATHERED.has(id)) return [];
  const problems: string[] = [];
  const noTransaction = isNoTransaction(sql);
  const contract = sql.split('\n').some((l) => l.trim().toLowerCase() === CONTRACT_MARKER);
  const order: { table: string; at: string }[] = [];
  // A table this file creates has no traffic yet: not hot here.
  const created = new Set([...sql.toLowerCase().matchAll(/create\s+table\s+(?:if\s+not\s+exists\s+)?(?:public\.)?"?(\w+)"?/g)].map((m) => m[1]));
  for (const statement of splitStatements(sql)) {
    const s = normalise(statement.text);
    const short = s.slice(0, 90);
    const found = target(s);
    const hot = found && !created.has(found.table) ? found : null;
    const say = (rule: string) => problems.push(`${file}: ${rule} [${short}]`);

    if (/\bconcurrently\b/.test(s) && !noTransaction)
      say(`CONCURRENTLY runs only outside a transaction: the file's first line must be "-- agentcron:no-transaction"`);
    if (/^create\s+(unique\s+)?index\s+concurrently\b/.test(s) && !/\bif not exists\b/.test(s)) {
      say('CREATE INDEX CONCURRENTLY must say IF NOT EXISTS (a no-transaction migration cut short runs again)');
    }
    if (/\brename\b/.test(s) && /^alter\s/.test(s) && !contract)
      say('RENAME breaks the old processes still running: add the new name, move over, contract a release later ("-- agentcron:contract")');
    if (/^alter\s+table\b.*\bdrop\s+(column\b|(?!constraint|default|not|expression|identity)\w)/.test(s) && !contract) {
      say(
        'DROP COLUMN removes what old processes still read: only in a contract migration ("-- agentcron:contract"), a release after the code stopped using it',
      );
    }
    if (/^drop\s+table\b/.test(s) && !contract) say('DROP TABLE only in a contract migration ("-- agentcron:contract")');
    if (/^drop\s+index\b(?!\s+concurrently)/.test(s) && new RegExp(String.raw`^drop\s+index\s+(?:if\s+exists\s+)?(?:${HOT_TABLES.join('|')})_`).test(s)) {
      say('DROP INDEX on a hot table locks it exclusively: DROP INDEX CONCURRENTLY in a no-transaction migration');
    }
    if (!hot) continue;
    const where = `hot table ${hot.table}`;
    order.push({ table: hot.table, at: short });
    switch (hot.kind) {
      case 'index':
        if (!/\bconcurrently\b/.test(s))
          say(`plain CREATE INDEX on ${where} blocks its writes while it builds: CREATE INDEX CONCURRENTLY IF NOT EXISTS in a no-transaction migration`);
        break;
      case 'alter':
        if (/\balter\s+(column\s+)?\w+\s+(set\s+data\s+)?type\b/.test(s))
          say(`ALTER ... TYPE on ${where} rewrites it under an exclusive lock: add a new column, backfill in batches, switch, contract later`);
        if (/\bset\s+not\s+null\b/.test(s))
          say(`SET NOT NULL on ${where} scans it under an exclusive lock: ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT`);
        if (/\badd\s+(column\s+)?/.test(s) && /\bdefault\b/.test(s) && VOLATILE.test(s))
          say(`ADD COLUMN with a volatile default on ${where} rewrites it: add it nullable (or with a constant default) and backfill in batches`);
        if (/\badd\s+(column\s+)?(if\s+not\s+exists\s+)?\w+\s+(small|big)?serial\b/.test(s)) say(`ADD COLUMN serial on ${where} rewrites it`);
        if (/\bgenerated\s+always\s+as\b.*\bstored\b/.test(s)) say(`a stored generated column on ${where} rewrites it`);
        if (/\bset\s+(logged|unlogged|tablespace|without\s+oids)\b/.test(s)) say(`SET LOGGED/UNLOGGED/TABLESPACE on ${where} rewrites it`);
        if (/\badd\s+(constraint\s+\w+\s+)?(primary\s+key|unique)\b/.test(s) && !/\busing\s+index\b/.test(s))
          say(`ADD PRIMARY KEY/UNIQUE on ${where} builds an index under an exclusive lock: build it CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX`);
        if (/\badd\s+(constraint\s+\w+\s+)?(check|foreign\s+key)\b/.test(s) && !/\bnot\s+valid\b/.test(s))
          say(`ADD CONSTRAINT on ${where} checks every row under its lock: add it NOT VALID, then VALIDATE CONSTRAINT (in a later statement)`);
        if (/\bvalidate\s+constraint\b/.test(s) && !noTransaction)
          say(
            `VALIDATE CONSTRAINT on ${where} inside the migration's transaction keeps the exclusive lock of its other statements while it ` +
              `scans: validate in a no-transaction migration`,
          );
        if (/\badd\s+(column\s+)?(if\s+not\s+exists\s+)?(?!constraint\b)\w+\s[^;]*(\bcheck\s*\(|\breferences\b)/.test(s)) {
          say(
            `ADD COLUMN with a CHECK or REFERENCES on ${where} checks every row under its lock: add the column, then ADD CONSTRAINT ... NOT ` +
              `VALID and VALIDATE CONSTRAINT`,
          );
        }
        break;
      case 'update':
      case 'delete':
        if (!statement.batch || !noTransaction)
          say(
            `a whole-table ${hot.kind.toUpperCase()} of ${where} holds its rows for the whole migration: a "-- agentcron:batch" statement (a ` +
              `few thousand rows by key) in a no-transaction migration`,
          );
        break;
      case 'lock':
        say(`LOCK TABLE ${hot.table} queues every request behind the migration: take no explicit lock on a hot table`);
        break;
      case 'truncate':
      case 'cluster':
      case 'drop table':
        say(`${hot.kind.toUpperCase()} of ${where} is not an expansion`);
        break;
      case 'vacuum':
        if (/\bfull\b/.test(s)) say(`VACUUM FULL rewrites ${where} under an exclusive lock`);
        break;
      case 'reindex':
        if (!/\bconcurrently\b/.test(s)) say(`REINDEX on ${where} blocks it: REINDEX ... CONCURRENTLY`);
        break;
    }
  }
  // One transaction holds every lock it took until COMMIT: it must take them in the lock order.
  if (!noTransaction) {
    let highest = -1;
    let highestAt = '';
    for (const { table, at } of order) {
      const rank = (HOT_TABLES as readonly string[]).indexOf(table);
      if (rank < highest) {
        problems.push(
          `${file}: takes ${table} after ${HOT_TABLES[highest]} (at [${at}] after [${highestAt}]): hot tables in the lock order ${HOT_TABLES.join(', ')} ` +
            `(libs/runs/lifecycle.ts), or an old process's transaction deadlocks with it`,
        );
        break;
      }
      if (rank > highest) {
        highest = rank;
        highestAt = at;
      }
    }
  }
  return problems;
}
