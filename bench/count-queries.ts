// Preloaded into a process under benchmark (node --import): counts every query the process sends
// through `pg` (agentcron's and pg-boss's) and answers the count on SIGUSR2 through stderr.
import pg from 'pg';

let count = 0;
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  count++;
  return (original as (...a: unknown[]) => unknown).apply(this, args);
} as typeof original;

process.on('SIGUSR2', () => {
  process.stderr.write(`QUERY_COUNT ${count}\n`);
});
