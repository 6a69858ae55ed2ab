// The BullMQ peer's worker process in `npm run bench` (bench/bullmq.ts): one BullMQ Worker at
// concurrency CONCURRENCY (100, agentcron's WORKER_CONCURRENCY default) on QUEUE under PREFIX,
// BullMQ's defaults otherwise, with a no-op processor (agentcron's herd runs the echo agent). Its
// lag is agentcron's: from the scheduled instant (the job's data.due, ms) to the processor starting
// (Date.now(): the same machine's clock). Once JOBS jobs have completed it writes one line,
// `DONE {"p50":…,"p99":…,"max":…,"all_ended_ms":…,"completed":…}`, and keeps running until stopped.
import { Worker } from 'bullmq';

const jobs = Number(process.env.JOBS);
const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const connection = { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null };
const lags: number[] = [];
let due = NaN;
let completed = 0;

const worker = new Worker(
  process.env.QUEUE ?? 'bench',
  async (job: { data: { due: number } }) => {
    const now = Date.now();
    due = job.data.due;
    lags.push(now - due);
    return {};
  },
  { connection, prefix: process.env.PREFIX, concurrency: Number(process.env.CONCURRENCY ?? 100) },
);
worker.on('error', (err) => process.stderr.write(`bullmq worker: ${String(err)}\n`));
worker.on('completed', () => {
  if (++completed !== jobs) return;
  const ended = Date.now() - due;
  const sorted = [...lags].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  process.stdout.write(`DONE ${JSON.stringify({ p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], all_ended_ms: ended, completed })}\n`);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
