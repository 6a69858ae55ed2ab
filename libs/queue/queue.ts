import { createHash } from 'node:crypto';
import { PgBoss } from 'pg-boss';
import type { ConstructorOptions, Db, Queue } from 'pg-boss';
import type { Config } from '../config/index.ts';
import { PgErrorCode, connectionConfig, isDatabaseUnavailable, pgErrorCode } from '../db/index.ts';
import type { ConnectionOptions, Pool, PoolClient } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { QUEUE_POLICY_VERSION, guardPolicyWrite, storedPolicyDifferences } from './policy.ts';
import { QueueSupervisor } from './supervisor.ts';

/** Every pg-boss queue agentcron uses, by duty. */
export const QUEUES = {
  /** One job per run (cron occurrence or manual run); job id = run id. */
  run: 'agentcron.run',
  /** Run jobs whose every attempt failed outside the agent (worker crashes, lost heartbeats). */
  runDead: 'agentcron.run.dead',
  /** One job per webhook delivery of an ended run; job id = run id. */
  webhook: 'agentcron.webhook',
  /** Webhook jobs lost on every attempt (workers died mid-delivery): their failure is recorded from here. */
  webhookDead: 'agentcron.webhook.dead',
  /** One job per occurrence of a built-in maintenance job (libs/maintenance), apart from runs so it never waits behind them. */
  maintenance: 'agentcron.maintenance',
} as const;

/** The run timeout bound when a caller gives none (RUN_TIMEOUT_MAX_SECONDS's default). */
export const QUEUE_DEFAULTS = { runTimeoutMaxSeconds: 3600 } as const;

/** Everything queue policy is derived from; built from the configuration by queueSettings() alone. */
export interface QueueSettings {
  runTimeoutSeconds: number;
  runMaxAttempts: number;
  /** A run job whose worker has not refreshed it for this long is failed and retried (a dead worker frees it this fast). */
  runHeartbeatSeconds: number;
  /** The longest an assistant may make a run (RUN_TIMEOUT_MAX_SECONDS): run jobs must outlive it. */
  runTimeoutMaxSeconds: number;
  webhookMaxAttempts: number;
  webhookRetryDelaySeconds: number;
  webhookConnectTimeoutSeconds: number;
  webhookTimeoutSeconds: number;
}

/**
 * The one place queue policy comes from: every setting of every queue follows from these
 * variables. Whoever writes policy (see startQueue's `writePolicy`) writes all of it.
 */
export function queueSettings(config: Config): QueueSettings {
  return {
    runTimeoutSeconds: config.RUN_TIMEOUT_SECONDS,
    runMaxAttempts: config.RUN_MAX_ATTEMPTS,
    runHeartbeatSeconds: config.WORKER_HEARTBEAT_SECONDS,
    runTimeoutMaxSeconds: config.RUN_TIMEOUT_MAX_SECONDS,
    webhookMaxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    webhookRetryDelaySeconds: config.WEBHOOK_RETRY_DELAY_SECONDS,
    webhookConnectTimeoutSeconds: config.WEBHOOK_CONNECT_TIMEOUT_SECONDS,
    webhookTimeoutSeconds: config.WEBHOOK_TIMEOUT_SECONDS,
  };
}

/** pg-boss's NOTIFY channel for its schema (pg-boss's notifyChannelSql): a payload is the queue name that got jobs. */
export function queueNotifyChannel(schema: string): string {
  return `pgboss_${createHash('sha224').update(schema).digest('hex').slice(0, 24)}`;
}

/** The longest a run may execute: RUN_TIMEOUT_SECONDS, or an assistant's longer timeout up to the max. */
export const longestRunSeconds = (s: QueueSettings): number => Math.max(s.runTimeoutSeconds, s.runTimeoutMaxSeconds);

/** Queue policies: retry, expiry, retention, dead letter; LISTEN/NOTIFY so workers wake at once. */
export function queueDefinitions(s: QueueSettings): Queue[] {
  return [
    { name: QUEUES.runDead, retentionSeconds: 14 * 86400, deleteAfterSeconds: 14 * 86400 },
    {
      name: QUEUES.run,
      notify: true,
      // A retry means a worker died or lost its claim; the agent's own failure completes the job.
      retryLimit: s.runMaxAttempts - 1,
      // The heartbeat already waited for the lost worker: the retry may start soon (1 s, 2 s, 4 s ...).
      retryDelay: 1,
      retryBackoff: true,
      retryDelayMax: 300,
      // The worker enforces the run timeout itself; expiry is the backstop if it cannot. It must
      // outlast the longest timeout an assistant may set, or a run still going would be retried.
      expireInSeconds: longestRunSeconds(s) + 60,
      heartbeatSeconds: s.runHeartbeatSeconds,
      retentionSeconds: 7 * 86400,
      deleteAfterSeconds: 86400,
      deadLetter: QUEUES.runDead,
    },
    ...webhookQueues(s),
    // A failed maintenance job waits for its next occurrence (no retry); expiry only catches a stuck worker.
    { name: QUEUES.maintenance, notify: true, retryLimit: 0, expireInSeconds: 3600, retentionSeconds: 86400, deleteAfterSeconds: 7 * 86400 },
  ];
}

/**
 * Webhook deliveries: retried with exponential backoff (delay, 2x, 4x ... up to an hour) until
 * WEBHOOK_MAX_ATTEMPTS; the handler records the final failure itself, the dead letter queue
 * catches jobs whose workers died on every attempt.
 */
function webhookQueues(s: QueueSettings): Queue[] {
  const attemptSeconds = s.webhookConnectTimeoutSeconds + s.webhookTimeoutSeconds;
  return [
    { name: QUEUES.webhookDead, retentionSeconds: 14 * 86400, deleteAfterSeconds: 14 * 86400 },
    {
      name: QUEUES.webhook,
      notify: true,
      retryLimit: s.webhookMaxAttempts - 1,
      retryDelay: s.webhookRetryDelaySeconds,
      retryBackoff: true,
      retryDelayMax: 3600,
      // One attempt is bounded by its connect and response timeouts; expiry only catches a stuck worker.
      expireInSeconds: attemptSeconds + 60,
      retentionSeconds: 7 * 86400,
      deleteAfterSeconds: 86400,
      deadLetter: QUEUES.webhookDead,
    },
  ];
}

export interface QueueOptions {
  settings: QueueSettings;
  connectionString: string;
  /** Run pg-boss's statements on this pool instead of a pool of its own (`max` is then unused). */
  pool?: Pool;
  schema: string;
  max?: number;
  /** Run pg-boss's own maintenance (expiry, lost heartbeats, retention) in this process. */
  supervise: boolean;
  superviseIntervalSeconds?: number;
  /**
   * LISTEN for new jobs (pg-boss's notifier: a work() loop wakes at once instead of at its next
   * poll). Only processes that work queues need it; to others it is a connection and a heartbeat
   * query every few seconds for nothing. Default true.
   */
  listen?: boolean;
  /** Install or upgrade pg-boss's schema (MIGRATE_ON_START, or the release step). */
  migrate: boolean;
  /**
   * Write queue policy: every queue's settings from `settings`, replacing what is stored. Only the
   * process that migrates does (release, or MIGRATE_ON_START); others create a missing queue and
   * otherwise leave the stored policy alone, so no process silently weakens what another set.
   */
  writePolicy: boolean;
  /** The queue policy version this process writes (default QUEUE_POLICY_VERSION; tests play older writers). */
  policyVersion?: number;
  /** Connect timeout and session limits of pg-boss's connections (the process role's; lock_timeout is left off). */
  connection?: Pick<ConnectionOptions, 'connectionTimeoutMillis' | 'session'>;
  logger: Logger;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

const schemas = new WeakMap<PgBoss, string>();

/** The schema of a pg-boss instance made by startQueue (its statements on pg-boss's tables name it). */
export const queueSchemaOf = (boss: PgBoss): string => schemas.get(boss) ?? 'pgboss';

/** Creates, starts and prepares the pg-boss instance: the one place that knows queue names and policies. */
export async function startQueue(opts: QueueOptions): Promise<PgBoss> {
  // TCP keepalive and the role's session limits, as on agentcron's own connections. Without a
  // lock_timeout: pg-boss's maintenance waits for its advisory locks on purpose.
  const { lockTimeoutMs: _lock, ...session } = opts.connection?.session ?? {};
  const connection = connectionConfig(opts.connectionString, {
    applicationName: 'agentcron-queue',
    connectionTimeoutMillis: opts.connection?.connectionTimeoutMillis,
    session,
  });
  const shared = opts.pool;
  const options: ConstructorOptions = {
    ...(shared
      ? { db: { executeSql: (text: string, values?: unknown[]) => shared.query(text, values) } }
      : { ...(connection as Partial<ConstructorOptions>), connectionString: connection.connectionString }),
    schema: opts.schema,
    max: opts.max ?? 5,
    useListenNotify: opts.listen ?? true,
    // Supervision runs on agentcron's timer (supervisor.ts): pg-boss's pass, when there may be work for it.
    supervise: false,
    // Lost heartbeats and expired jobs are found by the monitor pass, which runs at most this often.
    superviseIntervalSeconds: opts.superviseIntervalSeconds ?? 15,
    monitorIntervalSeconds: opts.superviseIntervalSeconds ?? 15,
    migrate: opts.migrate,
    schedule: false,
    // agentcron sends no flows (jobs with dependsOn): pg-boss's flow resolver would poll every 5 s for nothing.
    flowIntervalSeconds: 3600,
    // pg-boss's cache of queue rows (table, notify, policy; the statistics of supervise passes),
    // refreshed every minute by default in every process: queue settings change only at a release.
    queueCacheIntervalSeconds: 300,
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return await startBoss(options, opts);
    } catch (err) {
      // Processes installing pg-boss's schema at the same instant: one wins, another may fail with
      // a unique violation on the schema it created (pg-boss's IF NOT EXISTS under its advisory
      // lock still races); looking again finds it installed.
      if (pgErrorCode(err) !== PgErrorCode.uniqueViolation || attempt >= 3) throw err;
      opts.logger.info('pg-boss schema installed by another process meanwhile: starting again');
    }
  }
}

async function startBoss(options: ConstructorOptions, opts: QueueOptions): Promise<PgBoss> {
  const boss = new PgBoss(options);
  schemas.set(boss, opts.schema);
  boss.on('error', (err) => {
    const message = err instanceof Error ? err.message : JSON.stringify(err);
    // A lost connection is an ordinary event (pg-boss reconnects); anything else is worth an error line.
    if (isDatabaseUnavailable(err)) opts.logger.warn('queue connection lost', { err: message });
    else opts.logger.error('queue error', { err: message });
  });
  boss.on('warning', (w) => opts.logger.warn('queue warning', { warning: w }));
  try {
    await boss.start();
  } catch (err) {
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    throw err;
  }
  if (opts.supervise) {
    const supervisor = new QueueSupervisor({
      boss,
      schema: opts.schema,
      intervalSeconds: opts.superviseIntervalSeconds ?? 15,
      // Not the maintenance queue: its jobs have no heartbeat, expire after an hour, and one is
      // enqueued every minute (heartbeat_monitor); the five-minute pass covers it.
      queues: [QUEUES.run, QUEUES.webhook, QUEUES.runDead, QUEUES.webhookDead],
      announce: [QUEUES.run, QUEUES.webhook, QUEUES.runDead, QUEUES.webhookDead],
      channel: queueNotifyChannel(opts.schema),
      logger: opts.logger,
    });
    supervisor.start();
    // Stopped before pg-boss, so no pass runs on a closing pool.
    const stop = boss.stop.bind(boss);
    boss.stop = async (options) => {
      await supervisor.stop();
      return stop(options);
    };
  }
  try {
    await ensureQueues(boss, opts.settings, {
      writePolicy: opts.writePolicy,
      connectionString: opts.connectionString,
      logger: opts.logger,
      policyVersion: opts.policyVersion,
    });
    // createQueue and updateQueue drop pg-boss's cached queue rows; the first insert into a queue
    // would then read its row on the pool while the caller's transaction holds a connection of the
    // same pool (pg-boss shares it): with every connection in such a transaction none is left, and
    // each waits out its connect timeout. Read them now, outside any transaction.
    if (opts.pool) for (const q of queueDefinitions(opts.settings)) await boss.getJobById(q.name, NIL_UUID);
  } catch (err) {
    // Startup retries the whole of startQueue: a half-started instance must not be left polling.
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    throw err;
  }
  return boss;
}

/**
 * Creates missing queues with the full policy; with writePolicy, also brings existing ones up to
 * it, unless a newer agentcron wrote them (QUEUE_POLICY_VERSION, libs/queue/policy.ts): an older
 * process never overwrites a newer policy. Says in one warning line which settings a running
 * process depends on (heartbeatSeconds, retryDelayMax) differ from what is stored and stay so.
 */
export async function ensureQueues(
  boss: PgBoss,
  s: QueueSettings,
  opts: { writePolicy: boolean; connectionString: string; logger: Logger; policyVersion?: number },
): Promise<void> {
  const definitions = queueDefinitions(s);
  // createQueue keeps an existing queue as it was.
  for (const { name, ...options } of definitions) await boss.createQueue(name, options);
  const names = definitions.map((q) => q.name);
  let written = false;
  if (opts.writePolicy) {
    const version = opts.policyVersion ?? QUEUE_POLICY_VERSION;
    const guard = await guardPolicyWrite(opts.connectionString, names, version);
    if (!guard.allowed) {
      opts.logger.warn(`queue policy left as it is: a newer agentcron wrote it (policy version ${guard.newer}, this process has ${version})`);
    } else {
      try {
        for (const { name, ...options } of definitions) {
          // policy and partition cannot be changed on an existing queue.
          const { policy: _p, partition: _pt, ...updatable } = options;
          await boss.updateQueue(name, updatable);
        }
      } catch (err) {
        await guard.abandon();
        throw err;
      }
      await guard.commit();
      written = true;
    }
  }
  if (!written) {
    const differ = storedPolicyDifferences(definitions, await boss.getQueues(names));
    if (differ) opts.logger.warn(`stored queue settings differ from this process's and stay as stored: ${differ} (the release writes them)`);
  }
}

/** Installs or upgrades pg-boss's schema and queues (the release step). */
export async function installQueueSchema(opts: Omit<QueueOptions, 'supervise' | 'migrate' | 'writePolicy'>): Promise<void> {
  const boss = await startQueue({ ...opts, supervise: false, migrate: true, writePolicy: true });
  await boss.stop({ graceful: false, close: true });
}

/** Lets pg-boss write through a client inside the caller's transaction (send/insert `db` option). */
export function transactionDb(client: PoolClient): Db {
  return { executeSql: (text: string, values?: unknown[]) => client.query(text, values) };
}
