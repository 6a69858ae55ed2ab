// Which queries an idle deployment sends, and how often: `node bench/idle-queries.ts` starts the
// Procfile's api, scheduler and worker (defaults) on a fresh database with no crons, each with
// bench/count-queries.ts preloaded (BENCH_LOG_QUERIES=1), lets them settle 5 s, then lists each
// process's queries over BENCH_IDLE_SECONDS (120) grouped by their first 110 characters: count and
// mean period. ROLES=scheduler,worker picks the processes. Uses DATABASE_URL's server (an embedded
// PostgreSQL without it).
import path from 'node:path';
import { ROOT, STARTED, freshDatabase, killProcesses, sleep, spawnRole, startServer } from './support.ts';

const SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 120);
const roles = (process.env.ROLES ?? 'api,scheduler,worker').split(',') as ('api' | 'scheduler' | 'worker')[];
const server = await startServer();
const db = await freshDatabase(server.url, 'idleq');
try {
  const preload = path.join(ROOT, 'bench/count-queries.ts');
  const procs = roles.map((r) => spawnRole(r, db.url, { BENCH_LOG_QUERIES: '1', PORT: '0' }, preload));
  await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as keyof typeof STARTED], 90_000)));
  await sleep(5000);
  // What each process writes from now on (its output's tail is 64 KiB: enough for minutes of idle queries).
  const marks = procs.map((p) => p.tail().length);
  await sleep(SECONDS * 1000);
  let total = 0;
  const lines: string[] = [];
  for (const [i, p] of procs.entries()) {
    if (p.tail().length >= 65536) throw new Error(`${p.name} wrote more than 64 KiB: shorten BENCH_IDLE_SECONDS`);
    const groups = new Map<string, number[]>();
    let n = 0;
    for (const l of p.tail().slice(marks[i]).split('\n')) {
      const m = /^QUERY ([\d.]+) (.*)$/.exec(l);
      if (!m) continue;
      n++;
      const text = m[2].slice(0, 110);
      groups.set(text, [...(groups.get(text) ?? []), Number(m[1])]);
    }
    total += n;
    lines.push(`${p.name}: ${n} queries in ${SECONDS} s (${(n / SECONDS).toFixed(2)}/s)`);
    for (const [text, ts] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      const period = ts.length > 1 ? `every ~${((ts[ts.length - 1] - ts[0]) / (ts.length - 1)).toFixed(1)} s` : 'once';
      lines.push(`  ${String(ts.length).padStart(4)}  ${period.padEnd(16)} ${text}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\nall: ${total} queries in ${SECONDS} s (${(total / SECONDS).toFixed(2)}/s)\n`);
} finally {
  await killProcesses();
  await db.drop();
  await server.stop();
}
