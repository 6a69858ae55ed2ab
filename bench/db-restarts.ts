// `node bench/db-restarts.ts`: how agentcron lives through its database restarting. Starts an
// embedded PostgreSQL of its own (data under .agentcron/, removed afterwards unless BENCH_KEEP=1),
// an api, 2 schedulers and 2 workers as real processes, 100 every-second crons of every kind on
// the torture test's recording agent (test/fixtures/agents/torture.ts), then restarts the database
// BENCH_RESTARTS times (stop, 2-5 s down, start) BENCH_UP_SECONDS apart, lets the system run on,
// disables the crons, settles and prints what the torture checker (test/support/torture/checker.ts)
// finds: processes that crashed, duplicate runs per occurrence, lost occurrences (a second with no
// ledger row between two that have one), stuck runs and ledger rows, agent re-executions and why.
// A crashed process is restarted (and counted) so the run goes on. Nothing is asserted; the last
// line is one JSON object with the counts.
//
//   BENCH_CRONS=100 BENCH_RESTARTS=5 BENCH_UP_SECONDS=25 BENCH_TAIL_SECONDS=20 node bench/db-restarts.ts
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { migrate, startEmbeddedPostgres } from '../libs/db/index.ts';
import type { EmbeddedDatabase } from '../libs/db/index.ts';
import { Api } from '../test/support/torture/api.ts';
import { check } from '../test/support/torture/checker.ts';
import { Cluster } from '../test/support/torture/cluster.ts';
import { Driver } from '../test/support/torture/driver.ts';
import type { Span } from '../test/support/torture/driver.ts';
import { setupRecording } from '../test/support/torture/recording.ts';
import { addShutdown, observerPool, settle, tortureEnv, tortureLimits } from '../test/support/torture/run.ts';
import { ROOT, freePort, spawnProcess } from '../test/support/torture/spawn.ts';

const CRONS = Number(process.env.BENCH_CRONS ?? 100);
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 5);
const UP_SECONDS = Number(process.env.BENCH_UP_SECONDS ?? 25);
const TAIL_SECONDS = Number(process.env.BENCH_TAIL_SECONDS ?? 20);
const SETTLE_SECONDS = Number(process.env.BENCH_SETTLE_SECONDS ?? 60);

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const say = (line: string) => process.stdout.write(`[${elapsed()}] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString();

const dataDir = path.join(ROOT, '.agentcron', `bench-db-restarts-${randomBytes(3).toString('hex')}`);
const pgPort = await freePort();
const startDb = () => startEmbeddedPostgres({ dataDir, port: pgPort, database: 'agentcron' });

say(`embedded PostgreSQL on port ${pgPort}, data in ${path.relative(ROOT, dataDir)}`);
let db: EmbeddedDatabase = await startDb();
const pool = observerPool(db.url);
await migrate(pool);
await setupRecording(pool);

const apiPort = await freePort();
const cluster = new Cluster({
  spawn: spawnProcess,
  env: tortureEnv(db.url, apiPort),
  schedulers: 2,
  workers: 2,
  // A process that cannot reach the database at startup exits at once: do not spin while it is down.
  restartDelayMs: 2000,
  log: say,
});
const outages: Span[] = [];
let exitCode = 0;

try {
  await cluster.start();
  say('api, 2 schedulers and 2 workers ready');
  const api = new Api(`http://127.0.0.1:${apiPort}`);
  const driver = new Driver({ api, pool, cluster, log: say, steadyEvery: 1 });
  await driver.createCrons(CRONS);
  say(`${driver.crons.length} every-second crons created`);

  for (let i = 1; i <= RESTARTS; i++) {
    await sleep(UP_SECONDS * 1000);
    const down = 2000 + Math.random() * 3000;
    const from = Date.now();
    await db.stop();
    say(`restart ${i}/${RESTARTS}: database stopped; down for ${(down / 1000).toFixed(1)} s`);
    await sleep(down);
    db = await startDb();
    outages.push({ from, to: Date.now() });
    say(`restart ${i}/${RESTARTS}: database up again (${((Date.now() - from) / 1000).toFixed(1)} s without it)`);
  }
  await sleep(TAIL_SECONDS * 1000);
  driver.closeWindows(Date.now());

  let recovered = true;
  await cluster.ready(30_000).catch((err: Error) => {
    recovered = false;
    say(`not every process recovered: ${err.message}`);
  });
  await driver.disableAll();
  const failedDisables = api.calls.filter((c) => c.op === 'disable' && c.status !== 200).length;
  if (failedDisables) {
    // The api could not disable them: stop them underneath so the system can settle at all.
    say(`${failedDisables} PATCH enabled=false failed; disabling the crons in SQL instead`);
    await pool.query(`UPDATE crons SET enabled = false`);
  }
  const settled = await settle(pool, SETTLE_SECONDS * 1000);
  say(`settle: ${JSON.stringify(settled)}`);
  const report = await check({
    pool,
    crons: driver.crons,
    deaths: cluster.deaths,
    calls: api.calls,
    outages,
    settled: settled.settled,
    limits: tortureLimits(driver),
  });
  await cluster.stop(15_000);
  addShutdown(report, cluster);

  const c = report.counts;
  const inOutage = (at: number) => outages.some((o) => at >= o.from && at <= o.to + 5000);
  say('');
  say(`database restarts: ${outages.length} (${outages.map((o) => `${iso(o.from)} +${((o.to - o.from) / 1000).toFixed(1)}s`).join(', ')})`);
  say(`processes: ${cluster.pids.length} started; all recovered after the last restart: ${recovered ? 'yes' : 'NO'}`);
  const crashes = cluster.deaths.filter((d) => d.cause !== 'killed');
  say(`processes crashed (exited on their own while running): ${c.crashes}; failed to start: ${c.failed_starts}`);
  for (const d of crashes) {
    const when = inOutage(d.at.getTime()) ? 'during an outage' : 'with the database up';
    say(`  ${d.role} pid ${d.pid} ${d.cause} (exit ${d.code}) at ${d.at.toISOString()} ${when}: ${d.tail.slice(-2).join(' | ').slice(0, 400)}`);
  }
  say(`duplicate runs per occurrence: ${c.duplicate_runs}`);
  say(`lost occurrences (gaps between fired/skipped seconds): ${c.lost_occurrences} over ${c.gap_checked_seconds} cron-seconds checked`);
  say(`stuck runs: ${c.stuck_runs}; ledger rows left enqueued/running: ${c.unsettled}; settled: ${settled.settled} in ${settled.ms} ms`);
  say(
    `occurrences: ${c.occurrences} (fired ${c.fired}, skipped ${c.skipped}: missed ${c.skipped_missed}, overlap ${c.skipped_overlap}, end_time ` +
      `${c.skipped_end_time})`,
  );
  say(`ledger outcomes: success ${c.ledger_success}, error ${c.ledger_error}, timeout ${c.ledger_timeout}, interrupted ${c.ledger_interrupted}`);
  const { rows: errors } = await pool.query<{ error: string | null; n: number }>(
    `SELECT left(error, 160) AS error, count(*)::int AS n FROM cron_occurrences WHERE status IN ('error', 'timeout') GROUP BY 1 ORDER BY 2 DESC LIMIT 8`,
  );
  for (const e of errors) say(`  ${e.n}× ledger error: ${e.error ?? '(no message)'}`);
  say(`agent executions: ${c.executions} for ${c.keys_executed} idempotency keys; re-executions: ${c.reexecutions}`);
  const byReason = new Map<string, number>();
  for (const r of report.reexecutions) {
    const reason = r.reason.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'T').replace(/pid \d+|worker \d+/g, (m) => m.replace(/\d+/, 'N'));
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  }
  for (const [reason, n] of [...byReason.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) say(`  ${n}× ${reason}`);
  say(`API calls: ${c.api_calls}, 5xx: ${c['5xx']}, no answer: ${c.api_no_answer}`);
  say(`broken promises: ${report.failures.length}`);
  for (const f of report.failures) say(`  - ${f.slice(0, 600)}`);
  say(report.summary.replace('# torture:', '# db-restarts:'));
  process.stdout.write(
    `${JSON.stringify({ bench: 'db-restarts', restarts: outages.length, crons: CRONS, seconds: Math.round((Date.now() - t0) / 1000), ...c })}\n`,
  );
} catch (err) {
  exitCode = 1;
  say(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cluster.stop(5_000).catch(() => {});
  await pool.end().catch(() => {});
  await db.stop().catch(() => {});
  if (!process.env.BENCH_KEEP) rmSync(dataDir, { recursive: true, force: true });
  else say(`BENCH_KEEP: data kept in ${dataDir} (port ${pgPort})`);
}
process.exit(exitCode);
