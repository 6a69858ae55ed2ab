import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configSchema, DATABASE_ROLE_DEFAULTS, MAINTENANCE_CATALOG, settingKey } from '../libs/config/index.ts';

// The README's configuration table is what operators read; libs/config's schema is what the
// processes do. They list the same variables with the same defaults (the maintenance jobs'
// schedules from the job table under Operations, which the configuration table points to).

const ROOT = path.resolve(import.meta.dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The rows of the first table after `heading`: its cells, backticks kept. */
function tableAfter(heading: string): string[][] {
  const at = README.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README has a "${heading}" section`);
  const lines = README.slice(at)
    .split('\n')
    .map((l) => l.trim());
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const code = (cell: string) => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
// A cell that starts with NONE has no default (what follows says what unset means).
const NONE = '—';

/** The README's default of every variable it lists, as text (NONE for none). */
function readmeDefaults(): Map<string, string> {
  const jobs = new Map(tableAfter('## Operations').map((row) => [code(row[0])[0], code(row[1])[0]]));
  const defaults = new Map<string, string>();
  for (const [names, dflt] of tableAfter('## Configuration')) {
    const variables = code(names);
    const perRole = /^`(\d+)` api \/ `(\d+)` others$/.exec(dflt);
    // `a` / `b` for `A` / `B`; one default otherwise.
    const parts = variables.length > 1 ? dflt.split(' / ').map((p) => code(p)[0] ?? p.trim()) : [dflt.trim().startsWith(NONE) ? NONE : (code(dflt)[0] ?? dflt)];
    for (const [i, variable] of variables.entries()) {
      if (variable.includes('<JOB>')) {
        for (const job of MAINTENANCE_CATALOG) {
          const name = variable.replace('<JOB>', settingKey(job.name));
          // _SCHEDULE: "see below" (the job table); _ENABLED: `true`, with the exceptions named in the cell.
          defaults.set(
            name,
            name.endsWith('_SCHEDULE') ? (jobs.get(job.name) ?? `no row for ${job.name} in the job table`) : code(dflt).includes(job.name) ? 'when' : parts[0],
          );
        }
      } else if (perRole) defaults.set(variable, `api ${perRole[1]}, others ${perRole[2]}`);
      else defaults.set(variable, parts[i] ?? `no default for ${variable}`);
    }
  }
  return defaults;
}

/** The schema's default of every variable, as the README writes it. */
function schemaDefaults(): Map<string, string> {
  const parsed = configSchema.parse({}) as Record<string, unknown>;
  const defaults = new Map<string, string>();
  for (const variable of Object.keys(configSchema.shape)) {
    const value = parsed[variable];
    const job = MAINTENANCE_CATALOG.find((j) => variable === `MAINTENANCE_${settingKey(j.name)}_ENABLED`);
    const roleKey = {
      DATABASE_CONNECT_TIMEOUT_SECONDS: 'connectSeconds',
      DATABASE_STATEMENT_TIMEOUT_SECONDS: 'statementSeconds',
      DATABASE_LOCK_TIMEOUT_SECONDS: 'lockSeconds',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: 'idleInTransactionSeconds',
    }[variable] as keyof (typeof DATABASE_ROLE_DEFAULTS)['api'] | undefined;
    if (job && value === undefined) defaults.set(variable, job.enabled === true ? 'true' : 'when');
    else if (roleKey && value === undefined) {
      const others = new Set([DATABASE_ROLE_DEFAULTS.scheduler[roleKey], DATABASE_ROLE_DEFAULTS.worker[roleKey]]);
      defaults.set(variable, `api ${DATABASE_ROLE_DEFAULTS.api[roleKey]}, others ${[...others].join(' or ')}`);
    } else if (value === undefined || (Array.isArray(value) && value.length === 0)) defaults.set(variable, NONE);
    else defaults.set(variable, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return defaults;
}

test("the README's configuration table and libs/config list the same variables with the same defaults", () => {
  const readme = readmeDefaults();
  const schema = schemaDefaults();
  assert.ok(schema.size > 40 && readme.size > 40, `both read: ${schema.size} in the schema, ${readme.size} in the README`);
  const onlySchema = [...schema.keys()].filter((v) => !readme.has(v));
  const onlyReadme = [...readme.keys()].filter((v) => !schema.has(v));
  const differ = [...schema].filter(([v, d]) => readme.has(v) && readme.get(v) !== d).map(([v, d]) => `${v}: README ${readme.get(v)}, schema ${d}`);
  assert.deepEqual(
    { onlySchema, onlyReadme, differ },
    { onlySchema: [], onlyReadme: [], differ: [] },
    'variables in one and not the other, or defaults that differ',
  );
});
