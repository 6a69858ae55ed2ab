// `node bench/herd-cpu.ts [N]`: the CPU one occurrence costs, measured over a herd of N (default
// 10,000) stateless echo crons due at the same instant, with the Procfile's scheduler and worker
// (defaults, DATABASE_URL only), as bench/main.ts's lag measurement starts them. From the insert
// until every ledger row has ended it counts:
//   - CPU (utime + stime, /proc) of the scheduler, the worker, and the whole PostgreSQL server
//     (every process of an embedded server, reaped children included: its backends, walwriter,
//     autovacuum ...), divided by N: µs per occurrence;
//   - rows inserted / updated (HOT share) / deleted per occurrence, per table (pg_stat_user_tables);
//   - statements per occurrence, by statement (pg_stat_statements), with their execution time.
// It starts an embedded PostgreSQL of its own (port EMBEDDED_PG_PORT, default 54381, data in
// $HERD_PGDATA or /tmp/agentcron-herd-pgdata) with pg_stat_statements preloaded, so the figures
// are the deployment's alone. HERD_ROUNDS (default 1) repeats the herd, each on a fresh database.
// Ends with one JSON line. Nothing is asserted.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { createPool, startEmbeddedPostgres } from '../libs/db/index.ts';
import { cpuSeconds } from './cpu.ts';
import { STARTED, dbSecondFromNow, freshDatabase, insertCrons, killProcesses, round, spawnRole, waitForCount } from './support.ts';
import type { BenchDb, Proc } from './support.ts';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.env.HERD_ROUNDS ?? 1);
const PORT = Number(process.env.EMBEDDED_PG_PORT ?? 54381);
const DATA = process.env.HERD_PGDATA ?? '/tmp/agentcron-herd-pgdata';
const say = (line = '') => process.stdout.write(`${line}\n`);

/** CPU seconds of a process and its reaped children (cutime + cstime). */
function treeOwnSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

/** CPU seconds of the PostgreSQL server whose postmaster is `pid`: itself, its live children, its reaped ones. */
function serverSeconds(pid: number): number {
  let sum = treeOwnSeconds(pid);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid) sum += cpuSeconds(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

function postmasterPid(): number {
  return Number(readFileSync(`${DATA}/postmaster.pid`, 'utf8').split('\n')[0]);
}

const TABLES = `
  SELECT schemaname || '.' || relname AS t, n_tup_ins::int AS ins, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot, n_tup_del::int AS del
    FROM pg_stat_user_tables`;

type TableStats = Map<string, { ins: number; upd: number; hot: number; del: number }>;
async function tableStats(db: BenchDb): Promise<TableStats> {
  const { rows } = await db.pool.query<{ t: string; ins: number; upd: number; hot: number; del: number }>(TABLES);
  return new Map(rows.map((r) => [r.t, r]));
}

async function round1(serverUrl: string): Promise<Record<string, number>> {
  const db = await freshDatabase(serverUrl, 'herdcpu');
  try {
    await db.pool.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    // HERD_PROF=dir: both processes write a CPU profile there when they exit.
    const env: Record<string, string> = process.env.HERD_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.HERD_PROF}` } : {};
    const procs: Proc[] = [spawnRole('scheduler', db.url, env), spawnRole('worker', db.url, env)];
    await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as 'scheduler' | 'worker'], 90_000)));
    const due = await dbSecondFromNow(db.pool, 5);
    // On connections of their own, closed afterwards: a session's table counters reach
    // pg_stat_user_tables when it ends (else at most once a second).
    const inserter = createPool(db.url, { max: 1, applicationName: 'herd-insert' });
    await insertCrons(inserter, N, '0 0 1 1 *', due);
    await inserter.end();
    // Everything before this instant (start-up, the insert) is not counted.
    await db.pool.query(`SELECT pg_stat_statements_reset()`);
    const tables0 = await tableStats(db);
    const pm = postmasterPid();
    const cpu0 = { pg: serverSeconds(pm), procs: procs.map((p) => cpuSeconds(p.child.pid)) };
    const t0 = performance.now();
    await waitForCount(db.pool, `SELECT count(*)::int AS n FROM cron_occurrences WHERE ended_at IS NOT NULL`, N, 120_000 + N * 20, 500);
    const cpu1 = { pg: serverSeconds(pm), procs: procs.map((p) => cpuSeconds(p.child.pid)) };
    const wall = (performance.now() - t0) / 1000;
    await Promise.all(procs.map((p) => p.stop(10_000)));
    await new Promise((r) => setTimeout(r, 1100));
    const tables1 = await tableStats(db);
    const { rows: lag } = await db.pool.query<{ p99: number; failed: number }>(
      `SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for) * 1000) AS p99,
              count(*) FILTER (WHERE status <> 'success')::int AS failed FROM cron_occurrences`,
    );
    const { rows: stmts } = await db.pool.query<{ calls: number; ms: number; plan_ms: number; rows: number; q: string }>(
      `SELECT calls::int, total_exec_time AS ms, total_plan_time AS plan_ms, rows::int, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS q
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = current_database() AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%cron_occurrences WHERE ended_at IS NOT NULL%'
        ORDER BY total_exec_time DESC`,
    );
    const us = (s: number) => round((s * 1e6) / N);
    const out: Record<string, number> = {
      n: N,
      wall_s: round(wall, 2),
      lag_to_start_p99_ms: round(Number(lag[0].p99)),
      failed: lag[0].failed,
      cpu_us_scheduler: us(cpu1.procs[0] - cpu0.procs[0]),
      cpu_us_worker: us(cpu1.procs[1] - cpu0.procs[1]),
      cpu_us_postgres: us(cpu1.pg - cpu0.pg),
    };
    out.cpu_us_per_occurrence = out.cpu_us_scheduler + out.cpu_us_worker + out.cpu_us_postgres;
    say(`\nherd of ${N}: ${JSON.stringify(out)}`);
    say('rows per occurrence (ins / upd (hot) / del):');
    for (const [t, b] of tables1) {
      const a = tables0.get(t) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
      const d = { ins: b.ins - a.ins, upd: b.upd - a.upd, hot: b.hot - a.hot, del: b.del - a.del };
      if (d.ins + d.upd + d.del === 0) continue;
      say(`  ${t.padEnd(36)} ${(d.ins / N).toFixed(2)} / ${(d.upd / N).toFixed(2)} (${(d.hot / N).toFixed(2)}) / ${(d.del / N).toFixed(2)}`);
      out[`rows_${t}`] = round((d.ins + d.upd + d.del) / N, 2);
    }
    const calls = stmts.reduce((s, r) => s + r.calls, 0);
    const ms = stmts.reduce((s, r) => s + r.ms + r.plan_ms, 0);
    out.statements_per_occurrence = round(calls / N, 3);
    out.statement_us_per_occurrence = round((ms * 1000) / N);
    say(
      `statements: ${calls} (${(calls / N).toFixed(3)} per occurrence), ` +
        `exec+plan ${ms.toFixed(0)} ms (${((ms * 1000) / N).toFixed(0)} µs per occurrence); top:`,
    );
    for (const s of stmts.slice(0, 22)) {
      say(
        `  ${String(s.calls).padStart(6)} calls ${s.ms.toFixed(0).padStart(6)} ms exec ` +
          `${s.plan_ms.toFixed(0).padStart(5)} ms plan ${String(s.rows).padStart(6)} rows  ${s.q}`,
      );
    }
    return out;
  } finally {
    await killProcesses();
    await db.drop().catch(() => {});
  }
}

const server = await startEmbeddedPostgres({
  dataDir: DATA,
  port: PORT,
  database: 'herd',
  settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track_planning': 'on', 'pg_stat_statements.max': 5000 },
});
try {
  say(
    `# herd-cpu: ${N} crons due at once, ${ROUNDS} round(s), embedded PostgreSQL :${PORT}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const results: Record<string, number>[] = [];
  for (let i = 0; i < ROUNDS; i++) results.push(await round1(server.url));
  const median = (k: string) => {
    const xs = results.map((r) => r[k]).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)];
  };
  const keys = Object.keys(results[0]);
  say(JSON.stringify({ ...Object.fromEntries(keys.map((k) => [k, median(k)])), rounds: ROUNDS, load_after: round(os.loadavg()[0], 2) }));
} finally {
  await server.stop();
}
