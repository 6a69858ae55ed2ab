// The static checks `npm test` runs before the suite: the typecheck (server and dashboard), the
// linter, the format check and the line length (test/line-length.ts), side by side (each uses one core; one after another they took
// about as long as half the suite). Every check's output is printed, a failing one's last; the
// exit code is non-zero if any failed.
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const bin = (name: string) => path.join(ROOT, 'node_modules/.bin', name);

const CHECKS: [string, string, string[]][] = [
  ['typecheck', bin('tsc'), ['-p', 'tsconfig.json']],
  ['typecheck dashboard', bin('tsc'), ['-p', 'libs/ui/tsconfig.json']],
  ['lint', bin('eslint'), ['--max-warnings', '0', '-f', './eslint-formatter.js', '.']],
  ['format', bin('prettier'), ['--check', '--log-level', 'warn', '**/*.{ts,js}']],
  ['line length', process.execPath, [path.join(ROOT, 'test/line-length.ts')]],
];

const results = await Promise.all(
  CHECKS.map(
    ([name, cmd, args]) =>
      new Promise<{ name: string; code: number; output: string; ms: number }>((resolve) => {
        const started = Date.now();
        const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (b: Buffer) => (output += b.toString()));
        child.stderr.on('data', (b: Buffer) => (output += b.toString()));
        child.on('close', (code) => resolve({ name, code: code ?? 1, output, ms: Date.now() - started }));
        child.on('error', (err) => resolve({ name, code: 1, output: err.message, ms: Date.now() - started }));
      }),
  ),
);
results.sort((a, b) => Number(a.code !== 0) - Number(b.code !== 0));
for (const r of results) {
  process.stdout.write(`# ${r.name}: ${r.code === 0 ? 'ok' : `failed (exit ${r.code})`} in ${(r.ms / 1000).toFixed(1)} s\n`);
  if (r.output.trim() && r.code !== 0) process.stdout.write(`${r.output.trimEnd()}\n`);
}
if (results.some((r) => r.code !== 0)) process.exitCode = 1;
