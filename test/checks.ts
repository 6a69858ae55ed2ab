// The static checks: the typecheck (server and dashboard) and the linter on one set of TypeScript
// programs (test/typecheck-lint.ts), the format check and the line length (test/line-length.ts),
// side by side. `npm test` (test/run.ts) runs them beside the suite, at a lower CPU priority, so
// they fill the cores while test files wait on timers; `npm run check` runs them alone. Every
// check's output is printed, a failing one's last; the exit code is non-zero if any failed.
//
// The typecheck's and the linter's caches are in .agentcron/cache (test/typecheck-lint.ts says why
// none can hide a finding). The format check is oxfmt (.oxfmtrc.json): Prettier's output, from a
// native formatter that checks the tree in ~0.2 CPU-s where Prettier took 7-10 (docs/performance.md).
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const bin = (name: string) => path.join(ROOT, 'node_modules/.bin', name);

const CHECKS = (): [string, string, string[]][] => [
  ['typecheck and lint', process.execPath, [path.join(ROOT, 'test/typecheck-lint.ts')]],
  ['format', bin('oxfmt'), ['--check', '**/*.ts', '**/*.js']],
  ['line length', process.execPath, [path.join(ROOT, 'test/line-length.ts')]],
];

export interface CheckResult {
  name: string;
  code: number;
  output: string;
  ms: number;
}

/** Sets a process's CPU priority, if this user may (raising a priority back needs root). */
function setNice(pid: number | undefined, nice: number): void {
  try {
    if (pid) os.setPriority(pid, nice);
  } catch {
    // not permitted: it keeps the priority it has
  }
}

/**
 * Starts every check at once, at priority `nice` (a background to the suite); `done` answers
 * their results, `renice` changes the priority of those still running.
 */
export function runChecks(opts: { nice?: number } = {}): { done: Promise<CheckResult[]>; renice(nice: number): void } {
  const pids = new Set<number>();
  const done = Promise.all(
    CHECKS().map(
      ([name, cmd, args]) =>
        new Promise<CheckResult>((resolve) => {
          const started = Date.now();
          const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
          if (child.pid) pids.add(child.pid);
          if (opts.nice) setNice(child.pid, opts.nice);
          let output = '';
          child.stdout.on('data', (b: Buffer) => (output += b.toString()));
          child.stderr.on('data', (b: Buffer) => (output += b.toString()));
          child.on('close', (code) => {
            pids.delete(child.pid!);
            resolve({ name, code: code ?? 1, output, ms: Date.now() - started });
          });
          child.on('error', (err) => resolve({ name, code: 1, output: err.message, ms: Date.now() - started }));
        }),
    ),
  ).then((results) => results.sort((a, b) => Number(a.code !== 0) - Number(b.code !== 0)));
  return {
    done,
    renice: (nice) => {
      for (const pid of pids) setNice(pid, nice);
    },
  };
}

/** The checks' report: a line each, a failing one's output after its line. */
export function formatChecks(results: CheckResult[]): string {
  let out = '';
  for (const r of results) {
    out += `# ${r.name}: ${r.code === 0 ? 'ok' : `failed (exit ${r.code})`} in ${(r.ms / 1000).toFixed(1)} s\n`;
    if (r.output.trim() && r.code !== 0) out += `${r.output.trimEnd()}\n`;
  }
  return out;
}

if (import.meta.main) {
  const results = await runChecks().done;
  process.stdout.write(formatChecks(results));
  if (results.some((r) => r.code !== 0)) process.exitCode = 1;
}
