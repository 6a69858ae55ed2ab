// How `npm run bench` prints: lines on stdout (the report and its final JSON line), progress on
// stderr, numbers formatted one way, tables with aligned columns.
import type { CpuUse } from './cpu.ts';

const t0 = Date.now();
export const elapsedSeconds = () => (Date.now() - t0) / 1000;
export const say = (line = '') => process.stdout.write(`${line}\n`);
export const progress = (line: string) => process.stderr.write(`[${elapsedSeconds().toFixed(0).padStart(4)} s] ${line}\n`);
export const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
export const mb = (bytes: number) => (Number.isFinite(bytes) ? Math.round(bytes / 1048576) : NaN);

/** Columns right-aligned but the first (and those in `left`). */
export function table(head: string[], rows: string[][], left: number[] = []): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    '   ' +
    cells
      .map((c, i) => (i === 0 || left.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  say(line(head));
  say('   ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) say(line(r));
}

/** "scheduler 8%, worker 5%, its PostgreSQL sessions 55%; anything else on the machine 12%" (of one core). */
export function cpuLine(c: CpuUse | undefined): string {
  if (!c) return 'not measured';
  const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '?');
  const backends = c.backends > 0 ? `, its PostgreSQL sessions ${pct(c.backends)}` : ' (PostgreSQL not on this machine)';
  return `${c.procs.map((p) => `${p.name} ${pct(p.cores)}`).join(', ')}${backends}; anything else on the machine ${pct(c.others)}`;
}

/** percentile_disc: the smallest value with at least a share p of the values at or below it. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
