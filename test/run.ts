// The suite's runner (`npm test`): node:test's run() with the longest files started first.
// `node --test` sorts its files by name, which started the 75 s torture drive after two thirds of
// the suite and made it the tail of every run; run() keeps the order it is given.
//
//   node test/run.ts                       every test/**/*.test.ts, longest first
//   node test/run.ts test/api-crons.test.ts one or more files
//   node test/run.ts --checks              every file, and the static checks beside them (`npm test`;
//                                          with files named, `npm test -- <file>`, the files only)
//
// --checks runs test/checks.ts's typecheck, lint and format check at the same time as the suite,
// niced: one after the other they added half a minute to `npm test`, while the suite's files
// spend much of their time waiting on timers with a core idle. Those still running when the suite
// ends go on at the usual priority. Their report follows the suite's.
//
// TEST_CONCURRENCY (default 8) sets how many files run at once.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { formatChecks, runChecks } from './checks.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Measured longest first (wall time of each file in a full run on a 2-core machine; the files
 * after flow-control by their time alone). The first eight spawn processes and hold the most
 * connections at once (peak ~80 of the server's 100). Files not listed run last, by name.
 */
const LONGEST_FIRST = [
  'test/torture.test.ts',
  'test/connections.test.ts',
  'test/db-survival.test.ts',
  'test/chaos.test.ts',
  'test/metrics.test.ts',
  'test/stalls.test.ts',
  'test/races.test.ts',
  'test/ui.test.ts',
  'test/pgbouncer.test.ts',
  'test/maintenance.test.ts',
  'test/cli.test.ts',
  'test/saturation.test.ts',
  'test/processes.test.ts',
  'test/flow-control.test.ts',
  'test/flow-limits.test.ts',
  'test/flow-api.test.ts',
  'test/controls.test.ts',
  'test/npm-start.test.ts',
  'test/webhooks.test.ts',
  'test/lost-worker.test.ts',
  'test/api-crons-firing.test.ts',
  'test/worker.test.ts',
  'test/sdk-compat.test.ts',
  'test/stats.test.ts',
  'test/procfile.test.ts',
  'test/scheduler.test.ts',
  'test/api-hostile.test.ts',
  'test/api-crons.test.ts',
  'test/agents.test.ts',
  'test/everyday.test.ts',
  'test/api-scale.test.ts',
  'test/api-errors.test.ts',
  'test/recorder-schema.test.ts',
  'test/api-threads-runs.test.ts',
  'test/api-tenancy.test.ts',
  'test/api-crons-overlap.test.ts',
  'test/migrate.test.ts',
  'test/api-schedules.test.ts',
  'test/cli-bin.test.ts',
  'test/api-openapi.test.ts',
  'test/upgrades.test.ts',
  'test/ownership.test.ts',
  'test/api-auth.test.ts',
  'test/schedule.test.ts',
  'test/queue-policy.test.ts',
  'test/config.test.ts',
];

const args = process.argv.slice(2);
const given = args.filter((a) => a !== '--checks');
const withChecks = args.includes('--checks') && given.length === 0;
const all = fs.globSync('test/**/*.test.ts', { cwd: ROOT }).sort();
for (const file of LONGEST_FIRST) if (!all.includes(file)) throw new Error(`test/run.ts lists ${file}, which does not exist`);
const files = given.length ? given : [...LONGEST_FIRST, ...all.filter((f) => !LONGEST_FIRST.includes(f))];

// globalSetupPath is in Node 24's run() but not yet in @types/node.
const options: NonNullable<Parameters<typeof run>[0]> & { globalSetupPath: string } = {
  files: files.map((f) => path.resolve(ROOT, f)),
  concurrency: Number(process.env.TEST_CONCURRENCY ?? 8),
  timeout: 300_000,
  globalSetupPath: path.join(ROOT, 'test/support/global-setup.ts'),
};
// V8's on-disk compile cache for every Node process of the run: the checks, the test files and
// the processes they spawn (through apps/start.sh, npm and bash too), which inherit it through the
// environment. The suite starts about 350 Node processes; a cached one loads its modules for ~half
// the CPU. Code cache only, checked against each module's source: it cannot hide a finding.
process.env.NODE_COMPILE_CACHE ??= path.join(ROOT, '.agentcron/cache/node-compile');
const started = Date.now();
const checks = withChecks ? runChecks({ nice: 10 }) : undefined;
// The cache filled once, before the files start (test/support/warm-compile-cache.ts says why).
const warm = spawnSync(process.execPath, [path.join(ROOT, 'test/support/warm-compile-cache.ts')], { stdio: 'inherit' });
if (warm.status !== 0) process.stdout.write(`# compile cache warm-up failed (${warm.status ?? warm.signal}); the suite goes on without it\n`);
const stream = run(options);
stream.on('test:fail', () => {
  process.exitCode = 1;
});
// Each file's wall time (its process's start to its end, exit included), printed slowest first
// after the spec report: where the suite's time goes.
const fileMs = new Map<string, number>();
stream.on('test:complete', (data) => {
  if (data.nesting === 0 && data.file && data.name === data.file) fileMs.set(path.relative(ROOT, data.file), data.details.duration_ms);
});
stream
  .compose(spec)
  .on('end', () => {
    const byTime = [...fileMs].sort((a, b) => b[1] - a[1]);
    process.stdout.write(`# files by wall time (s): ${byTime.map(([f, ms]) => `${path.basename(f, '.test.ts')} ${(ms / 1000).toFixed(1)}`).join(', ')}\n`);
    process.stdout.write(`# suite: ${files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    // Nothing left to make way for: checks still running go on at the usual priority.
    checks?.renice(0);
    void checks?.done.then((results) => {
      process.stdout.write(formatChecks(results));
      if (results.some((r) => r.code !== 0)) process.exitCode = 1;
    });
  })
  .pipe(process.stdout);
