import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { LIFECYCLE_EXEMPTIONS, LIFECYCLE_OWNER } from '../libs/runs/owners.ts';
import type { Owned } from '../libs/runs/owners.ts';

// The run lifecycle has one owner (libs/runs/lifecycle.ts) and named exemptions (libs/runs/owners.ts).
// This reads the SQL of every .ts file of the product (libs/, apps/, bench/: the strings and
// templates, with a template's ${name} replaced by that file's constant of that name) and finds
// the statements that write what the owner owns. Tests are not read: their fixtures stand in for
// other processes.

const ROOT = path.resolve(import.meta.dirname, '..');
const UNKNOWN = '\u0000'; // a ${...} this reader cannot resolve: it may set anything

/** The SQL-looking texts of one file: every string and template, constants of the file resolved. */
function textsOf(source: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  // Every declaration of a name (a name declared in two functions is read as both: conservative).
  const constants = new Map<string, ts.Expression[]>();
  const texts: ts.Node[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer)
      constants.set(node.name.text, [...(constants.get(node.name.text) ?? []), node.initializer]);
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node)) texts.push(node);
    else ts.forEachChild(node, visit);
  };
  visit(sf);
  const text = (node: ts.Expression, depth: number): string => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
    if (ts.isTemplateExpression(node)) return node.head.text + node.templateSpans.map((s) => text(s.expression, depth + 1) + s.literal.text).join('');
    if (ts.isIdentifier(node) && constants.has(node.text) && depth < 5)
      return constants
        .get(node.text)!
        .map((e) => text(e, depth + 1))
        .join(', ');
    return UNKNOWN;
  };
  return texts.map((n) => text(n as ts.Expression, 0));
}

const TABLE = (name: string) => `(?:ONLY\\s+)?(?:"?public"?\\.)?"?${name}"?(?![\\w."])`;
/** The SET clause after `at` (up to WHERE, FROM or RETURNING): the columns it assigns, or UNKNOWN. */
const setClause = (sql: string) => /\bSET\b([\s\S]*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b|$)/i.exec(sql)?.[1] ?? '';
const assigns = (clause: string, columns: string[]) =>
  clause.includes(UNKNOWN) ||
  new RegExp(`(?<![\\w."])"?(?:${columns.join('|')})"?\\s*=`, 'i').test(clause) ||
  // SET (a, b) = (...)
  [...clause.matchAll(/\(([^()]*)\)\s*=/g)].some((m) => m[1].split(',').some((c) => columns.includes(c.trim().replace(/"/g, '').toLowerCase())));

/** Whether one statement text writes the owned columns of `table` (an INSERT's list, an UPDATE's SET, an upsert's SET). */
function writesColumns(sql: string, table: string, columns: string[]): string | null {
  for (const m of sql.matchAll(new RegExp(`\\b(INSERT\\s+INTO|UPDATE|MERGE\\s+INTO)\\s+${TABLE(table)}`, 'gi'))) {
    const rest = sql.slice(m.index + m[0].length);
    const statement = rest.split(/;|\)\s*,\s*\w+\s+AS\s*\(/i)[0];
    if (/^INSERT|^MERGE/i.test(m[1])) {
      const list = /^\s*(?:AS\s+\w+\s*|\w+\s*)?\(([^)]*)\)/i.exec(statement)?.[1] ?? UNKNOWN;
      const listed = list.includes(UNKNOWN) || list.split(',').some((c) => columns.includes(c.trim().replace(/"/g, '').toLowerCase()));
      const upsert = /\bDO\s+UPDATE\b/i.test(statement) && assigns(setClause(statement.slice(statement.search(/\bDO\s+UPDATE\b/i))), columns);
      if (listed || upsert) return m[0];
    } else if (assigns(setClause(statement), columns)) return m[0];
  }
  return null;
}

/** What one statement text writes of what the owner owns. */
function ownedWrites(sql: string): { owned: Owned; statement: string }[] {
  const found: { owned: Owned; statement: string }[] = [];
  const runs = new RegExp(`\\b(?:INSERT\\s+INTO|UPDATE|DELETE\\s+FROM|MERGE\\s+INTO|TRUNCATE(?:\\s+TABLE)?)\\s+${TABLE('runs')}`, 'i').exec(sql);
  if (runs) found.push({ owned: 'runs', statement: runs[0] });
  const threads = writesColumns(sql, 'threads', ['status', 'values']);
  if (threads) found.push({ owned: 'threads', statement: threads });
  const ledger = writesColumns(sql, 'cron_occurrences', ['status', 'error', 'ended_at']);
  if (ledger) found.push({ owned: 'ledger', statement: ledger });
  return found;
}

function productFiles(): string[] {
  return ['libs', 'apps', 'bench'].flatMap((dir) => fs.globSync(`${dir}/**/*.ts`, { cwd: ROOT })).sort();
}

/** file -> what it writes of the owner's, with a statement for each. */
function writers(): Map<string, Map<Owned, string>> {
  const byFile = new Map<string, Map<Owned, string>>();
  for (const file of productFiles()) {
    for (const sql of textsOf(fs.readFileSync(path.join(ROOT, file), 'utf8'), file)) {
      for (const w of ownedWrites(sql)) {
        const m = byFile.get(file) ?? new Map<Owned, string>();
        if (!m.has(w.owned)) m.set(w.owned, w.statement.replace(/\s+/g, ' '));
        byFile.set(file, m);
      }
    }
  }
  return byFile;
}

test('the reader finds writes in every form the code uses, and only writes', () => {
  const of = (sql: string) => ownedWrites(sql).map((w) => w.owned);
  assert.deepEqual(of(`UPDATE runs SET status = 'error' WHERE run_id = $1`), ['runs']);
  assert.deepEqual(of(`WITH gone AS (DELETE FROM runs r USING t WHERE r.run_id = t.run_id) SELECT 1`), ['runs']);
  assert.deepEqual(of(`INSERT INTO runs (run_id) VALUES ($1)`), ['runs']);
  assert.deepEqual(of(`SELECT status FROM runs WHERE run_id = $1 FOR UPDATE`), []);
  assert.deepEqual(of(`UPDATE threads t SET status = 'idle', "values" = $2 FROM x WHERE t.thread_id = x.id`), ['threads']);
  assert.deepEqual(of(`UPDATE threads SET metadata = $2, updated_at = now() WHERE status = 'idle'`), []);
  assert.deepEqual(of(`INSERT INTO threads (thread_id, user_id, metadata, "values") VALUES ($1, $2, $3, $4)`), ['threads']);
  assert.deepEqual(of(`INSERT INTO threads (thread_id, user_id) VALUES ($1, $2) ON CONFLICT (thread_id) DO NOTHING`), []);
  assert.deepEqual(of(`UPDATE cron_occurrences o SET status = 'error', error = $3 WHERE o.cron_id = $1`), ['ledger']);
  assert.deepEqual(of(`UPDATE cron_occurrences SET (ended_at, reason) = (now(), 'x') WHERE cron_id = $1`), ['ledger']);
  assert.deepEqual(of(`UPDATE cron_occurrences SET webhook_status = 'sent', webhook_error = NULL WHERE status = 'success'`), []);
  assert.deepEqual(
    of(`INSERT INTO cron_occurrences (cron_id, scheduled_for) VALUES ($1, $2) ON CONFLICT (cron_id, scheduled_for) DO UPDATE SET status = 'x'`),
    ['ledger'],
  );
  assert.deepEqual(of(`UPDATE cron_occurrences SET ${UNKNOWN} WHERE cron_id = $1`), ['ledger'], 'a SET this reader cannot see counts as a write');
  assert.deepEqual(
    textsOf("const set = `SET status = 'x'`; db.query(`UPDATE cron_occurrences ${set} WHERE a = 1`);").flatMap(of),
    ['ledger'],
    "a template's ${constant} is read",
  );
});

test(`only ${LIFECYCLE_OWNER} and its named exemptions (libs/runs/owners.ts) write runs, threads.status/values and the ledger's outcome`, () => {
  const found = writers();
  assert.ok(
    found.get(LIFECYCLE_OWNER)?.size === 3,
    `the owner writes all three (the reader sees them): ${JSON.stringify([...(found.get(LIFECYCLE_OWNER) ?? [])])}`,
  );
  const allowed = new Map(LIFECYCLE_EXEMPTIONS.map((e) => [e.file, new Set<Owned>(e.writes)]));
  const strays: string[] = [];
  for (const [file, writes] of found) {
    if (file === LIFECYCLE_OWNER) continue;
    for (const [owned, statement] of writes) if (!allowed.get(file)?.has(owned)) strays.push(`${file}: ${owned} (${statement} ...)`);
  }
  assert.deepEqual(strays, [], `statements outside the owner: move them into ${LIFECYCLE_OWNER}, or name the file and why in LIFECYCLE_EXEMPTIONS`);
  const stale = LIFECYCLE_EXEMPTIONS.flatMap((e) => e.writes.filter((w) => !found.get(e.file)?.has(w)).map((w) => `${e.file}: ${w}`));
  assert.deepEqual(stale, [], 'exemptions whose file no longer writes what they name: remove them');
});

// SQL on pg-boss's tables (not a public API) lives in libs/queue/ (sql.ts, as pg-boss keeps its
// own in plans.ts): the test fails on any other file with a statement on them.
const PGBOSS_TABLE = new RegExp(`(?:${UNKNOWN}|\\bpgboss)"?\\.\\s*"?(?:job|queue|schedule|subscription|version)\\b`);

test("SQL on pg-boss's tables is only in libs/queue/", () => {
  const found = new Set<string>();
  for (const file of productFiles().filter((f) => !f.startsWith('libs/queue/') && !f.startsWith('bench/'))) {
    if (textsOf(fs.readFileSync(path.join(ROOT, file), 'utf8'), file).some((sql) => PGBOSS_TABLE.test(sql))) found.add(file);
  }
  assert.ok(PGBOSS_TABLE.test(`SELECT 1 FROM ${UNKNOWN}.job j`) && PGBOSS_TABLE.test('DELETE FROM pgboss.job'), 'the pattern reads both spellings');
  assert.deepEqual([...found], [], 'statements on pg-boss tables outside libs/queue/: build them in libs/queue/sql.ts');
});
