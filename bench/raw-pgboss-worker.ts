// The raw pg-boss consumer of `npm run bench`: one process completing no-op jobs of QUEUE through
// pg-boss's work() API, batchSize 100 (agentcron's worker fetches at most 100 jobs at a time too),
// fetching again at once while batches come back full, woken by NOTIFY (the queue is created with
// notify: true, as agentcron's run queue is). pg-boss's own defaults otherwise (it supervises, as an
// agentcron worker does).
import { PgBoss } from 'pg-boss';

const queue = process.env.QUEUE ?? 'bench.raw';
const boss = new PgBoss({ connectionString: process.env.DATABASE_URL!, max: 10, schedule: false, migrate: false, useListenNotify: true });
boss.on('error', (err) => process.stderr.write(`raw worker: ${String(err)}\n`));
await boss.start();
await boss.createQueue(queue, { notify: true });
await boss.work(queue, { batchSize: 100, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, async () => {});
process.stdout.write('ready\n');
process.on('SIGTERM', () => void boss.stop({ graceful: true }).then(() => process.exit(0)));
