// The BullMQ peer of `npm run bench`'s herds: N BullMQ job schedulers whose cron pattern names the
// same second a few seconds ahead (a six-field pattern, UTC: each fires once, at that instant), one
// Worker process at concurrency 100 (bench/bullmq-worker.ts, as agentcron's worker is a process of
// its own), on the Redis at REDIS_URL (default redis://127.0.0.1:6379) under a key prefix of its own,
// removed afterwards. Lag as agentcron's: scheduled instant to the processor starting. CPU of
// redis-server (with the children it reaped, e.g. a background save) and of the worker process.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { cpuParts, cpuSeconds, memory } from './cpu.ts';
import type { LagResult } from './herd.ts';
import { DEFAULTS } from './herd.ts';
import { progress } from './report.ts';
import { HERD_METER_LEAD_MS, ROOT, sleep, spawnNode } from './support.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new URL(REDIS_URL);
const connection = { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null };
export const BULLMQ_CONCURRENCY = 100;

/** One inline command to Redis over a plain socket; its reply's text (enough for PING and INFO). */
function redisCommand(command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: connection.host, port: connection.port });
    let reply = '';
    const done = (err?: Error) => {
      socket.destroy();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(reply);
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('error', (err) => done(err));
    socket.on('data', (b) => {
      reply += b.toString();
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (reply.startsWith('+') || reply.startsWith('-') ? reply.endsWith('\r\n') : bulk && Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2)
        done(reply.startsWith('-') ? new Error(reply.trim()) : undefined);
    });
  });
}

export interface Peer {
  pid: number | undefined;
  version: string;
  /** Settings that change what Redis costs (persistence). */
  settings: string;
}

/** The Redis the peer uses, or why there is none (the bench then skips the peer with that line). */
export async function bullmqPeer(): Promise<Peer | string> {
  try {
    await redisCommand('PING');
  } catch (err) {
    return `no Redis reachable at ${REDIS_URL} (${err instanceof Error ? err.message : String(err)})`;
  }
  const info = await redisCommand('INFO server');
  const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '?';
  const persistence = await redisCommand('INFO persistence');
  const aof = /^aof_enabled:(\d)/m.exec(persistence)?.[1] === '1';
  // BullMQ needs a Redis client: ioredis, its optional peer dependency (a devDependency, or on NODE_PATH).
  try {
    createRequire(import.meta.url).resolve('ioredis');
  } catch {
    return (
      'ioredis (the Redis client BullMQ loads, an optional peer dependency of it) is not installed: ' +
      '`npm install --save-dev ioredis`, or NODE_PATH=<a node_modules holding it>'
    );
  }
  try {
    const { Queue } = await import('bullmq');
    const q = new Queue('probe', { connection, prefix: `agentcron-bench-probe-${randomBytes(3).toString('hex')}` });
    await q.waitUntilReady();
    await q.obliterate({ force: true });
    await q.close();
  } catch (err) {
    return `BullMQ cannot connect: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
  const pid = Number(field('process_id'));
  return { pid: Number.isFinite(pid) ? pid : undefined, version: field('redis_version'), settings: `appendonly ${aof ? 'yes' : 'no'}` };
}

/** A six-field cron pattern (UTC) naming the second of `at`: a scheduler that fires at that instant, then a year later. */
function patternAt(at: Date): string {
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} *`;
}

/**
 * One herd: `schedulers` = N job schedulers due at the same second (BullMQ's cron: the worker
 * computes and stores each one's next occurrence before the job starts); `delayed` = N plain
 * delayed jobs due then (BullMQ's floor: no next occurrence).
 */
export async function bullmqHerd(peer: Peer, n: number, round: number, mode: 'schedulers' | 'delayed' = 'schedulers'): Promise<LagResult> {
  const { Queue } = await import('bullmq');
  const prefix = `agentcron-bench-${randomBytes(4).toString('hex')}`;
  const name = 'herd';
  const queue = new Queue(name, { connection, prefix });
  const worker = spawnNode('bullmq worker', [path.join(ROOT, 'bench/bullmq-worker.ts')], {
    REDIS_URL,
    PREFIX: prefix,
    QUEUE: name,
    JOBS: String(n),
    CONCURRENCY: String(BULLMQ_CONCURRENCY),
    ...(process.env.NODE_PATH ? { NODE_PATH: process.env.NODE_PATH } : {}),
  });
  try {
    await worker.waitFor(/ready/, 60_000);
    const done = worker.next(/DONE (\{[^\n]*\})\n/, 600_000);
    // Upserting takes ~0.3 ms a scheduler here: due after that, plus 3 s.
    const due = new Date((Math.ceil(Date.now() / 1000) + Math.ceil(3 + n / 2500)) * 1000);
    const pattern = patternAt(due);
    const data = { due: due.getTime() };
    for (let i = 0; i < n; i += 1000) {
      const size = Math.min(1000, n - i);
      if (mode === 'delayed') await queue.addBulk(Array.from({ length: size }, () => ({ name: 'echo', data, opts: { delay: due.getTime() - Date.now() } })));
      else await Promise.all(Array.from({ length: size }, (_, j) => queue.upsertJobScheduler(`cron-${i + j}`, { pattern, tz: 'UTC' }, { name: 'echo', data })));
    }
    const insertedLate = Date.now() >= due.getTime();
    // The meters start HERD_METER_LEAD_MS before the due instant (after the upserts), as agentcron's do: the same window in both.
    await sleep(Math.max(0, due.getTime() - HERD_METER_LEAD_MS - Date.now()));
    const meter = cpuParts({ redis: () => cpuSeconds(peer.pid, true), worker: () => cpuSeconds(worker.child.pid) });
    progress(`lag ${n} (BullMQ ${mode}): ${n} ${mode === 'delayed' ? 'delayed jobs added' : 'job schedulers upserted'}, due at ${due.toISOString()}`);
    const r = JSON.parse((await done)[1]) as { p50: number; p99: number; max: number; all_ended_ms: number; completed: number };
    const used = meter.stop();
    const mem = { worker: memory(worker.child.pid), redis: memory(peer.pid) };
    await worker.stop(10_000);
    const none = { p50: NaN, p99: NaN, max: NaN };
    return {
      system: mode === 'delayed' ? 'bullmq_delayed' : 'bullmq',
      crons: n,
      setup: { ...DEFAULTS, label: `BullMQ ${mode === 'delayed' ? 'delayed jobs' : 'job schedulers'}, 1 Worker process, concurrency ${BULLMQ_CONCURRENCY}` },
      round,
      enqueue: none,
      start: { p50: r.p50, p99: r.p99, max: r.max },
      queue: none,
      all_enqueued_s: NaN,
      all_started_s: r.max / 1000,
      all_ended_s: r.all_ended_ms / 1000,
      succeeded: r.completed,
      inserted_late: insertedLate,
      cost: { ...used, memory: mem },
    };
  } finally {
    await worker.stop(5000);
    // Everything under the prefix goes: the queue's jobs and its schedulers.
    await queue.obliterate({ force: true }).catch(async () => {
      await sleep(500);
      await queue.obliterate({ force: true });
    });
    await queue.close();
  }
}
