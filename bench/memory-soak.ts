// A memory soak: N every-second echo crons (BENCH_SOAK_CRONS, 50) run by the Procfile's
// processes (api, scheduler, worker, defaults, started by apps/start.sh as the Procfile does) on a fresh database for BENCH_SOAK_MINUTES (20),
// each process preloaded with bench/memory-probe.ts. Samples RSS and V8 heap every
// MEMORY_PROBE_SECONDS (30) into a CSV (BENCH_SOAK_CSV, /tmp/agentcron-soak.csv), asks the api a
// few questions a second (list runs, a cron, stats) so it is not idle, and takes heap
// snapshots of the worker: at the minutes BENCH_SOAK_SNAPSHOTS says (5; a list: 5,15) and at the end. Compare them
// with `node bench/heap-diff.ts a.heapsnapshot b.heapsnapshot`. Prints the snapshots' paths and,
// per process, RSS and heap at the start of the steady part and at the end, with the slope.
import { writeFileSync, appendFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, dbSecondFromNow, freshDatabase, insertCrons, killProcesses, onInterrupt, sleep, slope, spawnProcfileRole, STARTED, count } from './support.ts';
import type { Proc } from './support.ts';

const CRONS = Number(process.env.BENCH_SOAK_CRONS ?? 50);
// How many workers (issue 21's soak ran 2); the first one's heap is snapshotted.
const WORKERS = Number(process.env.BENCH_SOAK_WORKERS ?? 1);
const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 20);
// Minutes at which to snapshot the worker's heap (besides the end).
const SNAPSHOTS = (process.env.BENCH_SOAK_SNAPSHOTS ?? '5')
  .split(',')
  .filter((m) => m.trim() !== '')
  .map(Number);
const CSV = process.env.BENCH_SOAK_CSV ?? '/tmp/agentcron-soak.csv';
const PROBE_S = Number(process.env.MEMORY_PROBE_SECONDS ?? 30);
const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const say = (line: string) => process.stdout.write(`${line}\n`);

const db = await freshDatabase(server, 'soak');
onInterrupt(() => db.drop());
const snapDir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-soak-'));
const probe = path.join(ROOT, 'bench/memory-probe.ts');
const env = { MEMORY_PROBE_SECONDS: String(PROBE_S), MEMORY_PROBE_DIR: snapDir, PORT: String(18000 + Math.floor(Math.random() * 1000)) };
try {
  await insertCrons(db.pool, CRONS, '* * * * * *', await dbSecondFromNow(db.pool, 5));
  const procs: Proc[] = [
    spawnProcfileRole('api', db.url, env, probe),
    spawnProcfileRole('scheduler', db.url, env, probe),
    ...Array.from({ length: WORKERS }, () => spawnProcfileRole('worker', db.url, env, probe)),
  ];
  await Promise.all(procs.map((p) => p.waitFor(STARTED[p.name as keyof typeof STARTED], 90_000)));
  // Samples by process: the second worker is "worker 2".
  const label = (i: number) => (i > 2 ? `worker ${i - 1}` : procs[i].name);
  const t0 = Date.now();
  writeFileSync(CSV, 'process,seconds,rss,heap_used,heap_total,external,array_buffers,rss_anon,rss_file\n');
  const samples = new Map<string, { x: number; rss: number; heap: number }[]>();
  for (const [i, p] of procs.entries()) {
    const name = label(i);
    samples.set(name, []);
    p.child.stderr!.on('data', (b: Buffer) => {
      for (const m of b
        .toString()
        .matchAll(/MEMORY (\d+) rss=(\d+) heap_used=(\d+) heap_total=(\d+) external=(\d+) array_buffers=(\d+) rss_anon=(\d+) rss_file=(\d+)/g)) {
        const s = (Date.now() - t0) / 1000;
        appendFileSync(CSV, `${name},${s.toFixed(0)},${m.slice(2).join(',')}\n`);
        samples.get(name)!.push({ x: s, rss: Number(m[2]), heap: Number(m[3]) });
      }
    });
  }
  const api = `http://127.0.0.1:${env.PORT}`;
  const { rows } = await db.pool.query<{ cron_id: string }>('SELECT cron_id FROM crons LIMIT 1');
  let asked = 0;
  const asking = (async () => {
    while (Date.now() - t0 < MINUTES * 60_000) {
      for (const url of [
        `${api}/runs?limit=20`,
        `${api}/runs/crons/${rows[0].cron_id}`,
        `${api}/runs/crons/${rows[0].cron_id}/occurrences?limit=10`,
        `${api}/info`,
      ]) {
        await fetch(url)
          .then((r) => r.arrayBuffer())
          .catch(() => {});
        asked++;
      }
      await sleep(1000);
    }
  })();
  const worker = procs[2];
  const snapshot = async () => {
    const answer = worker.next(/HEAP_SNAPSHOT (\S+)/, 120_000);
    worker.child.kill('SIGUSR1');
    return (await answer)[1];
  };
  for (const minute of SNAPSHOTS) {
    await sleep(Math.max(0, t0 + minute * 60_000 - Date.now()));
    say(`snapshot at ${minute} min: ${await snapshot()}`);
  }
  await asking;
  say(`snapshot at the end (${MINUTES} min): ${await snapshot()}`);
  const succeeded = await count(db.pool, `SELECT count(*) AS n FROM runs WHERE status = 'success'`).catch(() => NaN);
  const ledger = await count(db.pool, `SELECT count(*) AS n FROM cron_occurrences WHERE status = 'success'`).catch(() => NaN);
  say(`api requests: ${asked}; runs kept with status success: ${succeeded}, ledger rows success: ${ledger}; samples in ${CSV}`);
  for (const [name, s] of samples) {
    const steady = s.filter((p) => p.x >= 120 && p.x <= MINUTES * 60); // past warm-up, before snapshot B
    if (!steady.length) continue;
    const mb = (x: number) => (x / 1048576).toFixed(1);
    const first = steady[0];
    const last = steady[steady.length - 1];
    const rssSlope = slope(steady.map((p) => ({ x: p.x / 60, y: p.rss / 1048576 })));
    const heapSlope = slope(steady.map((p) => ({ x: p.x / 60, y: p.heap / 1048576 })));
    const maxRss = Math.max(...s.map((p) => p.rss));
    say(
      `${name}: rss ${mb(first.rss)} -> ${mb(last.rss)} MB (max ${mb(maxRss)}), heap used ${mb(first.heap)} -> ${mb(last.heap)} MB, ` +
        `slope from minute 2: rss ${rssSlope.toFixed(2)} MB/min, heap ${heapSlope.toFixed(2)} MB/min`,
    );
  }
  await Promise.all(procs.map((p) => p.stop()));
} finally {
  await killProcesses();
  await db.drop();
}
