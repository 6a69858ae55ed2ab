// Preloaded into a process under benchmark (node --import): counts every query the process sends
// through `pg` (agentcron's and pg-boss's) and answers the count on SIGUSR2 through stderr.
// BENCH_LOG_QUERIES=1 also writes each query's first line to stderr (`QUERY <text>`), to see
// which ones they are.
import pg from 'pg';

let count = 0;
const log = process.env.BENCH_LOG_QUERIES === '1';
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the client as `this` (apply)
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  count++;
  if (log) {
    const first = args[0] as string | { text?: string } | undefined;
    const text = typeof first === 'string' ? first : (first?.text ?? '?');
    process.stderr.write(
      `QUERY ${(performance.now() / 1000).toFixed(1)} ${text.replace(/\s+/g, ' ').slice(0, Number(process.env.BENCH_LOG_QUERY_CHARS ?? 160))}\n`,
    );
  }
  return (original as (...a: unknown[]) => unknown).apply(this, args);
} as typeof original;

process.on('SIGUSR2', () => {
  process.stderr.write(`QUERY_COUNT ${count}\n`);
});
