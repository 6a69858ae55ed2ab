import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { builtinAgents } from '../../libs/agents/index.ts';
import { defaultAssistantId, ensureDefaultAssistants } from '../../libs/assistants/index.ts';
import { CronScheduler } from '../../libs/crons/index.ts';
import type { MissedPolicy, OverlapPolicy } from '../../libs/crons/index.ts';
import { createPool } from '../../libs/db/index.ts';
import type { Pool } from '../../libs/db/index.ts';
import { createLogger } from '../../libs/log/index.ts';
import type { Logger } from '../../libs/log/index.ts';
import { queueSettings, startQueue } from '../../libs/queue/index.ts';
import type { PgBoss, QueueOptions, QueueSettings } from '../../libs/queue/index.ts';
import { loadConfig } from '../../libs/config/index.ts';
import { RunWorker } from '../../libs/runs/index.ts';
import { createTestDatabase } from './db.ts';
import type { TestDatabase } from './db.ts';

export const ECHO = defaultAssistantId('echo');

export const quietLogger = (): Logger => createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error', json: false, service: 'test' });

/** A started pg-boss with agentcron's queues on a test database; `overrides` replace the defaults (settings or options). */
export async function startTestQueue(url: string, overrides: Partial<QueueSettings> & Partial<Omit<QueueOptions, 'settings'>> = {}): Promise<PgBoss> {
  const settings: QueueSettings = {
    ...queueSettings(loadConfig({})),
    runTimeoutSeconds: 30,
    runMaxAttempts: 3,
    runHeartbeatSeconds: 10,
  };
  const options: Partial<Omit<QueueOptions, 'settings'>> = {};
  for (const [key, value] of Object.entries(overrides)) {
    if (key in settings) (settings as unknown as Record<string, unknown>)[key] = value;
    else (options as Record<string, unknown>)[key] = value;
  }
  return startQueue({
    connectionString: url,
    schema: 'pgboss',
    settings,
    supervise: false,
    superviseIntervalSeconds: 1,
    migrate: true,
    writePolicy: true,
    logger: quietLogger(),
    max: 2,
    ...options,
  });
}

export interface CronFixture {
  schedule: string;
  timezone?: string | null;
  thread_id?: string | null;
  input?: unknown;
  payload?: Record<string, unknown>;
  next_run_date?: Date | string;
  end_time?: Date | null;
  enabled?: boolean;
  on_run_completed?: 'delete' | 'keep' | null;
  missed_policy?: MissedPolicy;
  overlap_policy?: OverlapPolicy;
  user_id?: string;
  assistant_id?: string;
}

/** A cron row written directly (the API's create is tested elsewhere). next_run_date defaults to now(). */
export async function insertCron(pool: Pool, c: CronFixture): Promise<string> {
  const cronId = randomUUID();
  await ensureDefaultAssistants(pool, ['echo']);
  await pool.query(
    `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, timezone, end_time, enabled,
                        on_run_completed, payload, next_run_date, missed_policy, overlap_policy)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11::timestamptz, now()), $12, $13)`,
    [
      cronId,
      c.assistant_id ?? ECHO,
      c.thread_id ?? null,
      c.user_id ?? 'anonymous',
      c.schedule,
      c.timezone ?? null,
      c.end_time ?? null,
      c.enabled ?? true,
      c.thread_id ? null : (c.on_run_completed ?? 'delete'),
      JSON.stringify(c.payload ?? { input: c.input ?? { hello: 'world' } }),
      c.next_run_date ?? null,
      c.missed_policy ?? 'latest',
      c.overlap_policy ?? 'allow',
    ],
  );
  return cronId;
}

export async function insertThread(pool: Pool, userId = 'anonymous'): Promise<string> {
  const threadId = randomUUID();
  await pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, $2)`, [threadId, userId]);
  return threadId;
}

export function newScheduler(
  pool: Pool,
  boss: PgBoss,
  url: string,
  opts: { batchSize?: number; missedMax?: number; graceMs?: number; pollIntervalSeconds?: number; onTick?: () => void; lookaheadMs?: number } = {},
): CronScheduler {
  return new CronScheduler({
    pool,
    boss,
    logger: quietLogger(),
    pollIntervalSeconds: opts.pollIntervalSeconds ?? 1,
    batchSize: opts.batchSize ?? 1000,
    limits: { missedMax: opts.missedMax ?? 100, graceMs: opts.graceMs ?? 60_000, ledgerCap: 1000 },
    // 0 (at the instant) unless a test is about firing ahead (CRON_LOOKAHEAD_MS).
    lookaheadMs: opts.lookaheadMs ?? 0,
    listenUrl: url,
    onTick: opts.onTick,
  });
}

export function newWorker(pool: Pool, boss: PgBoss, opts: { concurrency?: number; runTimeoutSeconds?: number } = {}): RunWorker {
  return new RunWorker({
    pool,
    boss,
    logger: quietLogger(),
    agents: builtinAgents(),
    concurrency: opts.concurrency ?? 8,
    runTimeoutSeconds: opts.runTimeoutSeconds ?? 30,
    // As in production: new runs and cancels arrive through LISTEN.
    listenUrl: (pool as unknown as { options: { connectionString: string } }).options.connectionString,
  });
}

export function newPool(url: string, max = 10): Pool {
  return createPool(url, { max, applicationName: 'agentcron-test' });
}

/** Polls until fn answers truthy (bounded), then answers it. */
export async function eventually<T>(fn: () => Promise<T>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/**
 * Waits, if the database clock (UTC) is less than marginSeconds before the next minute or day
 * boundary, until just past it: for expectations computed from the current minute or day that
 * would not hold if the boundary fell in the middle of the test.
 */
export async function clearOfBoundary(pool: Pool, unit: 'minute' | 'day', marginSeconds: number): Promise<void> {
  const { rows } = await pool.query<{ left: number }>(
    `SELECT extract(epoch FROM date_trunc($1, now() AT TIME ZONE 'UTC') + ('1 ' || $1)::interval - now() AT TIME ZONE 'UTC')::float8 AS left`,
    [unit],
  );
  const left = rows[0].left;
  if (left < marginSeconds) await new Promise((r) => setTimeout(r, left * 1000 + 1000));
}

/**
 * A test file's (or describe's) database with agentcron's tables, pg-boss's queues and the echo
 * assistant, made before its tests and dropped after them: read `.db` and `.boss` inside tests.
 */
export function useQueueDatabase(label: string): { db: TestDatabase; boss: PgBoss } {
  const ctx = {} as { db: TestDatabase; boss: PgBoss };
  before(async () => {
    ctx.db = await createTestDatabase(label);
    ctx.boss = await startTestQueue(ctx.db.url);
    await ensureDefaultAssistants(ctx.db.pool, ['echo']);
  });
  after(async () => {
    // The database is dropped even when the queue fails to stop (or never started).
    await ctx.boss?.stop({ graceful: false }).catch(() => {});
    await ctx.db?.drop();
  });
  return ctx;
}
