import { z } from 'zod';
import { MAINTENANCE_CATALOG, settingKey } from './maintenance-catalog.ts';
import type { MaintenanceJobName } from './maintenance-catalog.ts';
import { parseSchedule, validateTimezone } from '../schedule/index.ts';
import { decimal, int, optionalBool } from './rules.ts';

// Operational settings: the built-in maintenance jobs (one MAINTENANCE_<JOB>_SCHEDULE and
// MAINTENANCE_<JOB>_ENABLED per job of the catalog, typed key by key), their thresholds,
// metrics and the admin keys.

const schedule = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .superRefine((v, ctx) => {
      // The catalog's default is valid (test/config.test.ts parses each): not parsed at every
      // start (eight schedules were a third of reading the config, docs/performance.md, Start).
      if (v === fallback) return;
      try {
        // Seconds are allowed: a maintenance job is ours, not a user's, and tests fire them fast.
        parseSchedule(v, { allowSeconds: true });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a cron schedule: ${(err as Error).message}` });
      }
    });

const timezone = z
  .string()
  .default('UTC')
  .superRefine((v, ctx) => {
    // The default needs no check (nor ICU's time zone data loaded at start to make it).
    if (v === 'UTC') return;
    try {
      validateTimezone(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `must be an IANA time zone: ${(err as Error).message}` });
    }
  });

/** `k1,k2`: keys that may call /admin/* when AUTH_MODE=api_key. */
const adminKeys = z
  .string()
  .default('')
  .transform((v, ctx) => {
    const keys = v
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    if (keys.some((k) => k.includes(':'))) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of keys (no user: an admin key acts as the user "admin")' });
      return z.NEVER;
    }
    return keys;
  });

type JobSettings = {
  [N in MaintenanceJobName as `MAINTENANCE_${Uppercase<N>}_SCHEDULE`]: ReturnType<typeof schedule>;
} & {
  [N in MaintenanceJobName as `MAINTENANCE_${Uppercase<N>}_ENABLED`]: ReturnType<typeof optionalBool>;
};

function jobSettings(): JobSettings {
  const shape: Record<string, z.ZodType> = {};
  for (const job of MAINTENANCE_CATALOG) {
    shape[`MAINTENANCE_${settingKey(job.name)}_SCHEDULE`] = schedule(job.schedule);
    // Unset means the catalog's default (thread_ttl: on only when THREAD_TTL_DAYS is set).
    shape[`MAINTENANCE_${settingKey(job.name)}_ENABLED`] = optionalBool();
  }
  return shape as JobSettings;
}

export const operationsSettings = {
  MAINTENANCE_TIMEZONE: timezone,
  ...jobSettings(),
  /** Ended runs and settled ledger rows older than this are deleted; 0 keeps them forever. */
  RUN_RETENTION_DAYS: int(30, 0, 36_500),
  /** Threads idle longer than this are deleted; 0 (the default) turns the thread TTL off. */
  THREAD_TTL_DAYS: int(0, 0, 36_500),
  /** The heartbeat monitor warns about a cron whose occurrence was enqueued later than this after its time. */
  MAINTENANCE_FIRE_LAG_WARN_SECONDS: int(60, 1, 86_400),
  /** An ephemeral thread with no run in progress is swept once it is older than this. */
  MAINTENANCE_EPHEMERAL_GRACE_MINUTES: int(60, 1, 10_080),
  /** A run pending or running longer than this many times RUN_TIMEOUT_SECONDS, held by no live worker, is reaped. */
  MAINTENANCE_STALE_RUN_FACTOR: decimal(3, 1, 1000),
  /** Finished pg-boss jobs of agentcron's queues older than this are deleted by queue hygiene. */
  QUEUE_RETENTION_DAYS: int(7, 1, 3650),
  /** /health is degraded when lag to start p95 over the window (or the wait of the run at the head of the queue) exceeds this. */
  HEALTH_MAX_START_LAG_SECONDS: int(30, 1, 86_400),
  /** Lag to start is measured over the runs started within this many seconds (/health, /metrics, the heartbeat monitor). */
  HEALTH_START_LAG_WINDOW_SECONDS: int(60, 5, 3600),
  /** Scheduler and worker processes (without an api) serve /metrics on this port; 0 = not served. */
  METRICS_PORT: int(0, 0, 65_535),
  ADMIN_API_KEYS: adminKeys,
};

const KNOWN = new Set(Object.keys(operationsSettings));

/**
 * An environment variable that looks like a maintenance setting but is none (a typo such as
 * MAINTENANCE_RETENTON_PURGE_SCHEDULE would otherwise be ignored in silence), or undefined.
 */
export function unknownMaintenanceSetting(env: NodeJS.ProcessEnv): string | undefined {
  return Object.keys(env).find((k) => k.startsWith('MAINTENANCE_') && !KNOWN.has(k) && env[k] !== undefined && env[k] !== '');
}

export const MAINTENANCE_SETTINGS_HINT =
  `jobs are ${MAINTENANCE_CATALOG.map((j) => j.name).join(', ')}; set MAINTENANCE_<JOB>_SCHEDULE or ` + `MAINTENANCE_<JOB>_ENABLED with <JOB> upper-cased`;
