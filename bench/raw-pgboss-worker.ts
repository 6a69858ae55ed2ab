// The ceiling for `npm run bench`: one process completing no-op pg-boss jobs as fast as pg-boss
// allows (batchSize 100, burst fetching), the setup the pg-boss reference measured.
import { PgBoss } from 'pg-boss';

const boss = new PgBoss({ connectionString: process.env.DATABASE_URL!, supervise: false, schedule: false, migrate: false });
await boss.start();
await boss.work('bench.noop', { batchSize: 100, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, async () => {});
process.stdout.write('ready\n');
process.on('SIGTERM', () => void boss.stop({ graceful: true }).then(() => process.exit(0)));
