// The raw pg-boss producer of `npm run bench`: from START_AT (ISO instant) on, at every whole
// second for SECONDS seconds, inserts RATE jobs into QUEUE in batches of 1,000 (as a scheduler pass
// writes its jobs: CRON_BATCH_SIZE 1000 per transaction). Each job has the shape of an agentcron run
// job: id = a fresh UUID, data {run_id}, a group id (the thread's). Prints "done" at the end.
import { randomUUID } from 'node:crypto';
import { PgBoss } from 'pg-boss';

const queue = process.env.QUEUE ?? 'bench.raw';
const rate = Number(process.env.RATE ?? 2000);
const seconds = Number(process.env.SECONDS ?? 40);
const startAt = Date.parse(process.env.START_AT ?? new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000).toISOString());

const boss = new PgBoss({ connectionString: process.env.DATABASE_URL!, max: 5, supervise: false, schedule: false, migrate: false });
boss.on('error', (err) => process.stderr.write(`producer: ${String(err)}\n`));
await boss.start();
await boss.createQueue(queue, { notify: true });
process.stdout.write('ready\n');
let late = 0;
for (let i = 0; i < seconds; i++) {
  const at = startAt + i * 1000;
  const wait = at - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  else late++;
  for (let sent = 0; sent < rate; sent += 1000) {
    const jobs = Array.from({ length: Math.min(1000, rate - sent) }, () => {
      const id = randomUUID();
      return { id, data: { run_id: id }, group: { id: randomUUID() } };
    });
    await boss.insert(queue, jobs);
  }
}
process.stdout.write(`done (${late} seconds started late)\n`);
await boss.stop({ graceful: false });
