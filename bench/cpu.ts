// Where a measurement's CPU and memory go, read from Linux /proc: a process's CPU (utime + stime,
// in clock ticks of `getconf CLK_TCK`), a PostgreSQL server's whole process tree (the postmaster,
// the children it reaped meanwhile and those alive), this database's sessions, Redis, and a
// process's resident memory. Off Linux, or for a server on another machine, the figures are NaN.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { Pool } from '../libs/db/index.ts';
import type { Proc } from './support.ts';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** /proc/<pid>/stat's fields after the command name (fields[0] is field 3, the state). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) a process has used, or NaN when /proc cannot tell; with `reaped`,
 * plus what its children that ended and were waited for used (cutime + cstime).
 */
export function cpuSeconds(pid: number | undefined, reaped = false): number {
  const f = pid ? statFields(pid) : undefined;
  if (!f) return NaN;
  const own = Number(f[11]) + Number(f[12]);
  return (reaped ? own + Number(f[13]) + Number(f[14]) : own) / CLOCK_TICKS;
}

/** Resident memory of a process now and at its peak (VmRSS, VmHWM), in bytes; NaN when unknown. */
export function memory(pid: number | undefined): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: NaN, peak: NaN };
  }
}

/** The PostgreSQL server's postmaster, found as the parent of one of its backends (undefined when not on this machine). */
export async function postmasterPid(pool: Pool): Promise<number | undefined> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const ppid = Number(statFields(rows[0].pid)?.[1]);
  return ppid > 1 ? ppid : undefined;
}

/**
 * CPU seconds of a whole server process tree: the process itself, its children that ended (reaped:
 * a backend of a session that closed meanwhile), and its live children (backends, autovacuum,
 * checkpointer, WAL writer). On a shared server it counts other people's sessions too.
 */
export function treeCpu(root: number | undefined): number {
  if (!root) return NaN;
  let sum = cpuSeconds(root, true);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === root) sum += cpuSeconds(Number(name));
  }
  return sum;
}

/** CPU seconds of every backend serving this database, by pid (empty when the server is not on this machine). */
export async function backendCpu(pool: Pool): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`);
  const out = new Map<number, number>();
  for (const r of rows) {
    const s = cpuSeconds(r.pid);
    if (Number.isFinite(s)) out.set(r.pid, s);
  }
  return out;
}

/** CPU seconds the backends used between two snapshots (a backend new in the second counts from 0). */
export function backendCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/** Busy CPU seconds of the whole machine since boot (all cores), or NaN off Linux. */
function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

export interface CpuUse {
  seconds: number;
  /** Share of one core each process used (1 = a whole core). */
  procs: { name: string; cores: number }[];
  /** The database's backends (this measurement's sessions), in cores. */
  backends: number;
  /** Everything else busy on the machine meanwhile, in cores: other people's work, PostgreSQL's background processes. */
  others: number;
}

/** Measures the CPU a measurement's processes and database sessions use, and what else the machine does meanwhile. */
export async function cpuMeter(procs: Proc[], pool: Pool): Promise<{ stop(): Promise<CpuUse> }> {
  const t0 = performance.now();
  const machine0 = machineBusySeconds();
  const procs0 = procs.map((p) => cpuSeconds(p.child.pid));
  const backends0 = await backendCpu(pool);
  const self0 = process.cpuUsage();
  return {
    async stop() {
      const backends1 = await backendCpu(pool);
      const procs1 = procs.map((p) => cpuSeconds(p.child.pid));
      const machine1 = machineBusySeconds();
      const seconds = (performance.now() - t0) / 1000;
      const perProc = procs.map((p, i) => ({ name: p.name, cores: (procs1[i] - procs0[i]) / seconds }));
      const backends = backendCpuDelta(backends0, backends1) / seconds;
      const own = perProc.reduce((s, p) => s + (Number.isFinite(p.cores) ? p.cores : 0), 0) + backends + cpuOf(process.cpuUsage(self0)) / seconds;
      return { seconds, procs: perProc, backends, others: Math.max(0, (machine1 - machine0) / seconds - own) };
    },
  };
}

const cpuOf = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

/**
 * CPU seconds per part over a stretch of work: each named process (with the children it reaped
 * when `reaped`), and the machine's other busy time (anything not listed, the bench included).
 */
export function cpuParts(parts: Record<string, () => number>): { stop(): { parts: Record<string, number>; others: number; seconds: number } } {
  const t0 = performance.now();
  const machine0 = machineBusySeconds();
  const before = Object.fromEntries(Object.entries(parts).map(([k, f]) => [k, f()]));
  return {
    stop() {
      const after = Object.fromEntries(Object.entries(parts).map(([k, f]) => [k, f()]));
      const used = Object.fromEntries(Object.keys(parts).map((k) => [k, after[k] - before[k]]));
      const listed = Object.values(used).reduce((s, x) => s + (Number.isFinite(x) ? x : 0), 0);
      return { parts: used, others: Math.max(0, machineBusySeconds() - machine0 - listed), seconds: (performance.now() - t0) / 1000 };
    },
  };
}
