// Two static checks of `npm test` (test/checks.ts) on one set of TypeScript programs: the
// typecheck (the server, tsconfig.json, and the dashboard's JSDoc, libs/ui/tsconfig.json) and
// ESLint's type-aware rules. Run apart (tsc twice, then eslint's projectService), each built
// and checked the same programs again: ~40 CPU-s. Here the programs are built once, checked
// in full, and handed to typescript-eslint (parserOptions.programs), whose rules then ask a
// checker that already knows every type.
//
// Caches, in .agentcron/cache (gitignored), none of which can hide a finding:
// - the typecheck is incremental (TypeScript's .tsbuildinfo): its dependency tracking rechecks
//   what a change can affect.
// - the lint cache is kept only for a tree identical to the one it was made for: a type-aware
//   rule's finding in one file depends on the types of others, so any change to any file (or to
//   the dependencies) starts a new, empty cache. A re-run of an unchanged tree lints nothing again.
//
//   node test/typecheck-lint.ts typecheck   the typecheck only
//   node test/typecheck-lint.ts             both; the exit code is non-zero if either found anything
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(ROOT, '.agentcron/cache');

/** Every file of the tree but node_modules, .git and .agentcron, by path and content: a key that changes with any edit. */
function treeHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (['node_modules', '.git', '.agentcron'].includes(entry.name)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile())
        hash
          .update(`${path.relative(ROOT, full)}\0`)
          .update(readFileSync(full))
          .update('\0');
    }
  };
  walk(ROOT);
  // The installed dependencies (their types are part of every type-aware finding).
  hash.update(readFileSync(path.join(ROOT, 'node_modules/.package-lock.json')));
  return hash.digest('hex').slice(0, 16);
}

/** The lint cache of this exact tree; caches of other trees are removed. */
function eslintCache(): string {
  const name = `eslint-${treeHash()}`;
  for (const f of readdirSync(CACHE)) if (f.startsWith('eslint-') && f !== name) rmSync(path.join(CACHE, f), { force: true });
  return path.join(CACHE, name);
}

const host: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => ROOT,
  getNewLine: () => '\n',
};

/** A tsconfig's program, incremental on its .tsbuildinfo; its findings, as tsc prints them to a pipe. */
function typecheck(tsconfig: string, buildInfo: string): { program: ts.Program; report: string } {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, tsconfig),
    { incremental: true, tsBuildInfoFile: path.join(CACHE, buildInfo) },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.formatDiagnostic(d, host));
      },
    },
  );
  if (!parsed) throw new Error(`cannot read ${tsconfig}`);
  const builder = ts.createIncrementalProgram({ rootNames: parsed.fileNames, options: parsed.options, configFileParsingDiagnostics: parsed.errors });
  const diagnostics = [
    ...builder.getConfigFileParsingDiagnostics(),
    ...builder.getOptionsDiagnostics(),
    ...builder.getGlobalDiagnostics(),
    ...builder.getSyntacticDiagnostics(),
    ...builder.getSemanticDiagnostics(),
  ];
  // With noEmit, emit() writes the .tsbuildinfo only.
  builder.emit();
  return { program: builder.getProgram(), report: diagnostics.length ? ts.formatDiagnostics(diagnostics, host) : '' };
}

mkdirSync(CACHE, { recursive: true });
const server = typecheck('tsconfig.json', 'tsc.tsbuildinfo');
const dashboard = typecheck('libs/ui/tsconfig.json', 'tsc-ui.tsbuildinfo');
let failed = false;
for (const { report } of [server, dashboard]) {
  if (!report) continue;
  process.stdout.write(report);
  failed = true;
}

if (process.argv[2] !== 'typecheck') {
  // ESLint hashes the config into its cache's key: the programs (functions within) stand there by
  // name; the cache is of this tree only.
  const programs = Object.assign([dashboard.program, server.program], { toJSON: () => 'programs of libs/ui/tsconfig.json, tsconfig.json' });
  const eslint = new ESLint({
    cwd: ROOT,
    cache: true,
    cacheStrategy: 'content',
    cacheLocation: eslintCache(),
    // The dashboard's program first: libs/ui/types.ts is in both, and its nearest tsconfig (the
    // one eslint's projectService would take) is the dashboard's.
    overrideConfig: {
      files: ['**/*.ts', 'libs/ui/static/**/*.js'],
      languageOptions: { parserOptions: { projectService: false, programs } },
    },
  });
  const results = await eslint.lintFiles(['.']);
  const formatter = await eslint.loadFormatter(path.join(ROOT, 'eslint-formatter.js'));
  const findings = results.reduce((n, r) => n + r.errorCount + r.warningCount, 0);
  if (findings) {
    process.stdout.write(await formatter.format(results));
    failed = true;
  }
}
if (failed) process.exitCode = 1;
