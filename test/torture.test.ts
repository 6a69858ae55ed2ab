import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import { spawnApp } from './support/processes.ts';
import { run } from './support/torture/run.ts';

// A randomized torture run in the spirit of Jepsen (random operations and faults, then a checker): two
// schedulers, two workers and an api as real processes; ~50 every-second crons of every kind
// (stateless delete/keep, thread enqueue/reject/interrupt, overlap skip/buffer_one); for 30 s a
// driver PATCHes, deletes and replaces crons and threads, triggers and cancels runs, and SIGKILLs a
// worker and a scheduler every 10-15 s (5-6.5 s in a drive of 30 s or less: two kill rounds). Then every cron is disabled, the system settles and the
// checker (test/support/torture/checker.ts) verifies from the database: no 5xx; at most one run
// per occurrence and one job per run; one agent execution per idempotency key unless a killed
// worker explains the retry; every ledger row settled; no run left active; no occurrence lost
// while only the scheduler moved a cron; no overlap of runs that must queue. Some crons run under
// limits (a graph limited to 5 at once and 40 starts per 2 s, an assistant's config.max_concurrency
// 4) and fail some attempts retryably (planned by idempotency key, test/support/torture/plan.ts)
// under cron, graph or default retry policies: every retry is a new attempt of the same run, each
// earlier attempt on the ledger's attempt_log, no attempt started twice or before its retry_at,
// each outcome recorded once and only the final one in last_run_*, no limit ever exceeded. It prints one
// `# torture:` summary line. TORTURE_SECONDS changes the drive's length (default 20: the suite's
// share of two cores; `TORTURE_SECONDS=600 npm test -- test/torture.test.ts` for a long one);
// TORTURE_KEEP_DB=1 keeps the database afterwards for inspection (its name is printed).

const SECONDS = Number(process.env.TORTURE_SECONDS ?? 20);
// The default plan's rounds every 10-15 s, none in the last 10 s, fit one round into 30 s: a short
// drive kills more often, two rounds before its quiet tail.
const KILLS = SECONDS <= 30 ? { everyMs: [5_000, 6_500] as [number, number], quietTailMs: 6_000 } : undefined;

test(`torture: ${SECONDS} s of random API calls and SIGKILLs against 2 schedulers, 2 workers and an api`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  const db = await createTestDatabase('torture');
  try {
    const report = await run({
      databaseUrl: db.url,
      seconds: SECONDS,
      crons: 50,
      spawn: spawnApp,
      kills: KILLS,
      settleMs: 30_000,
      log: (line) => process.stdout.write(`# ${line}\n`),
    });
    process.stdout.write(`${report.summary}\n`);
    process.stdout.write(`# timings (s since start): ${JSON.stringify(report.timings)}\n`);
    process.stdout.write(`# api: ${report.apiStatuses}\n`);
    for (const r of report.reexecutions) process.stdout.write(`# re-execution ${r.idempotency_key} attempt ${r.attempt}: ${r.reason}\n`);
    if (report.failures.length) for (const l of report.errorLines.slice(0, 30)) process.stdout.write(`# process log: ${l}\n`);
    assert.deepEqual(report.failures, [], `the torture run broke ${report.failures.length} promise(s):\n- ${report.failures.join('\n- ')}\n${report.summary}`);
  } finally {
    if (process.env.TORTURE_KEEP_DB) {
      process.stdout.write(`# TORTURE_KEEP_DB: database ${db.name} kept for inspection\n`);
      await db.pool.end();
    } else await db.drop();
  }
});
