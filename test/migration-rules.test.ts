import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GRANDFATHERED, MIGRATIONS_DIR, checkMigration, listMigrations, splitStatements } from '../libs/db/index.ts';

// Every migration is held to the rules of migrations/README.md that can be checked mechanically:
// a release runs beside the old processes on a busy database (issue 23).

describe('migration rules', () => {
  test('every migration after the grandfathered ones follows them', () => {
    const files = listMigrations();
    assert.ok(
      files.some((f) => !GRANDFATHERED.has(f.id)),
      'no migration is checked',
    );
    const problems = files.flatMap(({ file }) => checkMigration(file, readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8')));
    assert.deepEqual(problems, []);
  });

  test('only 001-010 are grandfathered', () => {
    assert.deepEqual(
      [...GRANDFATHERED].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  // What the checker refuses, one case per rule (a checker that refuses nothing passes the test above).
  const refused: [string, string, RegExp][] = [
    ['plain index on a hot table', 'CREATE INDEX runs_x ON runs (status);', /plain CREATE INDEX on hot table runs/],
    ['concurrently without the marker', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_x ON runs (status);', /first line must be "-- agentcron:no-transaction"/],
    ['concurrently without IF NOT EXISTS', '-- agentcron:no-transaction\nCREATE INDEX CONCURRENTLY runs_x ON runs (status);', /must say IF NOT EXISTS/],
    ['a type change', 'ALTER TABLE crons ALTER COLUMN schedule TYPE varchar(100);', /ALTER \.\.\. TYPE on hot table crons/],
    ['SET NOT NULL', 'ALTER TABLE threads ALTER COLUMN status SET NOT NULL;', /SET NOT NULL on hot table threads/],
    ['a volatile default', 'ALTER TABLE cron_occurrences ADD COLUMN k uuid DEFAULT gen_random_uuid();', /volatile default on hot table cron_occurrences/],
    ['a serial column', 'ALTER TABLE runs ADD COLUMN n bigserial;', /serial on hot table runs/],
    ['a validated constraint', 'ALTER TABLE crons ADD CONSTRAINT c CHECK (jitter_seconds >= 0);', /add it NOT VALID/],
    ['a column with a CHECK', "ALTER TABLE runs ADD COLUMN w text CHECK (w IN ('a'));", /ADD COLUMN with a CHECK or REFERENCES/],
    [
      'VALIDATE inside the transaction',
      'ALTER TABLE crons ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\nALTER TABLE crons VALIDATE CONSTRAINT c;',
      /VALIDATE CONSTRAINT on hot table crons inside/,
    ],
    ['a whole-table update', 'UPDATE crons SET jitter_seconds = 0;', /whole-table UPDATE of hot table crons/],
    ['LOCK TABLE', 'LOCK TABLE runs IN ACCESS EXCLUSIVE MODE;', /LOCK TABLE runs/],
    ['a rename', 'ALTER TABLE flow_limits RENAME COLUMN name TO limit_name;', /RENAME breaks the old processes/],
    ['a dropped column', 'ALTER TABLE crons DROP COLUMN paused_reason;', /DROP COLUMN removes/],
    ['lock order', 'ALTER TABLE cron_occurrences ADD COLUMN a int;\nALTER TABLE crons ADD COLUMN b int;', /takes crons after cron_occurrences/],
    ['DROP INDEX on a hot table', 'DROP INDEX crons_due;', /DROP INDEX CONCURRENTLY/],
  ];
  for (const [what, sql, rule] of refused) {
    test(`refuses ${what}`, () => {
      const problems = checkMigration('099_case.sql', sql);
      assert.ok(
        problems.some((p) => rule.test(p)),
        problems.join('\n') || 'no problem found',
      );
    });
  }

  test('accepts what the rules allow', () => {
    const ok = [
      'ALTER TABLE crons ADD COLUMN a int;\nALTER TABLE runs ADD COLUMN b jsonb;\nALTER TABLE cron_occurrences ADD COLUMN c timestamptz DEFAULT now();',
      'ALTER TABLE crons ADD COLUMN j integer NOT NULL DEFAULT 0;',
      'ALTER TABLE crons ADD CONSTRAINT c CHECK (j >= 0) NOT VALID;',
      '-- agentcron:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS runs_x ON runs (status);\nALTER TABLE crons VALIDATE CONSTRAINT c;',
      '-- agentcron:no-transaction\n-- agentcron:batch\n' +
        'UPDATE crons SET j = 1 WHERE cron_id IN (SELECT cron_id FROM crons WHERE j IS NULL ORDER BY cron_id LIMIT 5000);',
      'CREATE TABLE t (id int PRIMARY KEY);\nCREATE INDEX t_x ON t (id);\nUPDATE t SET id = id;',
      '-- agentcron:contract\nALTER TABLE crons DROP COLUMN old_thing;',
    ];
    for (const sql of ok) assert.deepEqual(checkMigration('099_case.sql', sql), [], sql);
  });

  test('statements split outside quotes, comments and dollar-quoted bodies', () => {
    const sql = "SELECT ';';\n-- a; comment\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n/* x; */ SELECT 2";
    assert.deepEqual(
      splitStatements(sql).map((s) => s.text.replace(/\s+/g, ' ')),
      ["SELECT ';'", '-- a; comment CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql', '/* x; */ SELECT 2'],
    );
  });
});
