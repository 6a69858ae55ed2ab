// Output for people: aligned tables and key/value lists, times and durations.

/** Columns padded to their widest cell; cells cut at `max` characters (with …). */
export function formatTable(headers: string[], rows: (string | number | null | undefined)[][], max = 60): string {
  const cells = rows.map((r) => r.map((c) => cut(c === null || c === undefined || c === '' ? '-' : String(c), max)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - [...c].length)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `label: value` lines, labels aligned; empty values skipped. */
export function formatFields(fields: [string, unknown][]): string {
  const shown = fields.filter(([, v]) => v !== undefined);
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v === null || v === '' ? '-' : json(v)}`).join('\n');
}

export function cut(s: string, max: number): string {
  const oneLine = s.replace(/\s+/g, ' ');
  const chars = [...oneLine];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : oneLine;
}

/** An ISO time without its milliseconds (`2030-01-01T09:00:00Z`), or '-'. */
export const time = (iso: string | null | undefined): string => (iso ? iso.replace(/\.\d{3}(?=Z|[+-])/, '') : '-');

/** Milliseconds from a to b, or null when either is missing. */
export function between(a: string | null | undefined, b: string | null | undefined): number | null {
  return a && b ? new Date(b).getTime() - new Date(a).getTime() : null;
}

/** 850ms, 4.2s, 3m02s, 2h05m. */
export function duration(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)}ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(1)}s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${sign}${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Compact JSON for a cell. */
export const json = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
