import { z } from 'zod';
import { databaseConnectionSettings } from './database.ts';
import { MAINTENANCE_SETTINGS_HINT, operationsSettings, unknownMaintenanceSetting } from './operations.ts';
import { bool, int, optionalBool, optionalInt } from './rules.ts';

// Every setting agentcron reads, validated once at startup. The README's configuration table
// mirrors this schema; keep them in step.

const databaseUrl = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '';
    } catch {
      return false;
    }
  },
  { message: 'must be a postgres:// or postgresql:// URL with a host' },
);

/** `key1:alice,key2:bob` → one entry per key; a key may not contain ':' or ','. */
const apiKeys = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const keys: { key: string; user: string }[] = [];
    for (const entry of v
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const at = entry.indexOf(':');
      const key = entry.slice(0, at).trim();
      const user = entry.slice(at + 1).trim();
      if (at < 1 || !key || !user) {
        ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of key:user_id pairs' });
        return z.NEVER;
      }
      if (keys.some((k) => k.key === key)) {
        ctx.addIssue({ code: 'custom', message: 'lists the same key twice' });
        return z.NEVER;
      }
      keys.push({ key, user });
    }
    return keys;
  });

/**
 * Default worker concurrency: agent runs mostly wait on I/O (model APIs), and a run in flight holds
 * no database connection (only its claim and its finish do, briefly, in batches): many at once.
 */
const defaultConcurrency = 100;

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test'], { message: 'must be development, production or test' }).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug'], { message: 'must be error, warn, info or debug' }).default('info'),
  // A worker's line counting its runs (each run's own lines are at debug).
  LOG_SUMMARY_INTERVAL_SECONDS: int(60, 1, 86_400),
  DATABASE_URL: databaseUrl.optional(),
  // A direct (unpooled) connection for migrations and LISTEN when DATABASE_URL is a transaction pooler.
  DATABASE_DIRECT_URL: databaseUrl.optional(),
  // Everything one process opens (database.ts connectionBudget); unset: its role's default.
  DATABASE_MAX_CONNECTIONS: optionalInt(1, 1000),
  // The older setting: the size of the process's pool alone (its LISTEN connections come on top).
  DATABASE_POOL_MAX: optionalInt(1, 1000),
  // Connect timeout and session limits; unset, each process role has its own default (database.ts).
  ...databaseConnectionSettings,
  PORT: int(8000, 0, 65535),
  HOST: z.string().min(1).default('0.0.0.0'),
  SHUTDOWN_GRACE_SECONDS: int(25, 0, 3600),
  // Unset: only `npm start` (apps/all) migrates at startup; the Procfile's release step migrates a deployment.
  MIGRATE_ON_START: optionalBool(),
  // How often a process that found the schema older than its code looks again (it waits for the release).
  SCHEMA_WAIT_POLL_SECONDS: int(5, 1, 300),
  PGBOSS_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, { message: 'must be a lower-case SQL identifier' })
    .default('pgboss'),
  HEARTBEAT_INTERVAL_SECONDS: int(10, 1, 3600),
  EMBEDDED_PG_DIR: z.string().min(1).default('.agentcron/pgdata'),
  EMBEDDED_PG_PORT: int(54329, 1, 65535),
  CRON_ENABLED: bool(true),
  CRON_POLL_INTERVAL_SECONDS: int(30, 1, 3600),
  CRON_BATCH_SIZE: int(1000, 1, 100000),
  CRON_ALLOW_SECONDS_SCHEDULE: bool(false),
  CRON_MAX_PER_USER: int(100, 0, 1_000_000),
  CRON_MAX_PAYLOAD_BYTES: int(65536, 1024, 10 * 1024 * 1024),
  CRON_MISSED_MAX: int(100, 1, 10000),
  CRON_MISSED_GRACE_SECONDS: int(60, 0, 86400),
  // How long before its instant a stateless cron's occurrence (overlap_policy allow) is fired: its
  // run and job written, started at the instant (0 = at the instant; docs/scheduling.md).
  CRON_LOOKAHEAD_MS: int(3000, 0, 60_000),
  // Most occurrences one POST /runs/crons/{id}/backfill may fire (a larger range is a 422 saying how many).
  CRON_BACKFILL_MAX: int(1000, 1, 100_000),
  // Bytes of a run's final values and of its error kept on its ledger row (0 = none kept).
  LEDGER_OUTPUT_EXCERPT_BYTES: int(4096, 0, 1024 * 1024),
  WORKER_CONCURRENCY: int(defaultConcurrency, 1, 1000),
  RUN_TIMEOUT_SECONDS: int(300, 1, 86400),
  RUN_MAX_ATTEMPTS: int(3, 1, 100),
  // The longest an assistant's config.timeout_seconds may make a run (never below RUN_TIMEOUT_SECONDS);
  // run jobs expire past it, so an agent can never outlive its job and be started twice.
  RUN_TIMEOUT_MAX_SECONDS: int(3600, 1, 86400),
  // Unset: webhooks are sent unsigned (the worker says so at startup).
  WEBHOOK_SECRET: z.string().min(1).optional(),
  // Deliver to loopback, private, link-local and metadata addresses (local receivers, tests).
  WEBHOOK_ALLOW_PRIVATE: bool(false),
  WEBHOOK_CONNECT_TIMEOUT_SECONDS: int(5, 1, 300),
  WEBHOOK_TIMEOUT_SECONDS: int(10, 1, 600),
  WEBHOOK_MAX_ATTEMPTS: int(5, 1, 50),
  WEBHOOK_RETRY_DELAY_SECONDS: int(10, 1, 3600),
  WORKER_HEARTBEAT_SECONDS: int(30, 10, 3600),
  QUEUE_SUPERVISE_INTERVAL_SECONDS: int(15, 1, 3600),
  AUTH_MODE: z.enum(['none', 'api_key'], { message: 'must be none or api_key' }).default('none'),
  AUTH_API_KEYS: apiKeys,
  // Unset: agentcron.json in the working directory, else langgraph.json, else the built-in graphs
  // only. Set: that file must exist (a typo must not start a worker that knows no graphs).
  AGENTCRON_CONFIG: z.string().min(1).optional(),
  CHECKPOINT_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, { message: 'must be a lower-case SQL identifier' })
    .default('langgraph'),
  // Maintenance jobs, their thresholds, METRICS_PORT, ADMIN_API_KEYS (operations.ts).
  ...operationsSettings,
});

// Never echoed back in a configuration error: they hold secrets.
const SECRET_VARIABLES = new Set(['AUTH_API_KEYS', 'WEBHOOK_SECRET', 'ADMIN_API_KEYS']);

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, rule: string) {
    super(`invalid configuration: ${variable} ${rule}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** Parse the environment into a typed config; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings are treated as unset, as shells and Procfiles often export VAR= .
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const unknown = unknownMaintenanceSetting(env);
  if (unknown) throw new ConfigError(unknown, `is not a setting agentcron knows (${MAINTENANCE_SETTINGS_HINT})`);
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? 'environment');
    const shown = input[variable] === undefined || SECRET_VARIABLES.has(variable) ? '' : ` (got ${JSON.stringify(input[variable])})`;
    throw new ConfigError(variable, `${issue.message}${shown}`);
  }
  return parsed.data;
}

/** loadConfig for process entry points: a bad value prints one line and exits 1, no stack trace. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`agentcron: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** The database URL a process must have; standalone processes need it set. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.DATABASE_URL) {
    process.stderr.write('agentcron: invalid configuration: DATABASE_URL is required (use `npm start` for an embedded database)\n');
    process.exit(1);
  }
  return config.DATABASE_URL;
}
