import type { Config } from '../config/index.ts';
import { MAINTENANCE_CATALOG, settingKey } from '../config/index.ts';

/** The thresholds and limits maintenance jobs work with, from the configuration. */
export interface MaintenanceSettings {
  timezone: string;
  /** 0 = keep forever. */
  runRetentionDays: number;
  /** 0 = thread TTL off. */
  threadTtlDays: number;
  fireLagWarnSeconds: number;
  ephemeralGraceMinutes: number;
  /** A run is stale past this many seconds pending or running (factor × the longest run timeout). */
  staleRunSeconds: number;
  queueRetentionDays: number;
  /** HEARTBEAT_INTERVAL_SECONDS: a process not seen within three of them is lost. */
  heartbeatSeconds: number;
  /** WORKER_HEARTBEAT_SECONDS: a run job not refreshed within three of them is held by nobody. */
  workerHeartbeatSeconds: number;
  pgbossSchema: string;
  /** HEALTH_MAX_START_LAG_SECONDS: the monitor warns when lag to start exceeds it (as /health degrades). */
  maxStartLagSeconds: number;
  /** HEALTH_START_LAG_WINDOW_SECONDS. */
  startLagWindowSeconds: number;
}

export function maintenanceSettings(config: Config): MaintenanceSettings {
  // An assistant may stretch a run's timeout up to RUN_TIMEOUT_MAX_SECONDS: "far longer than its
  // timeout" is measured against the longest a run may legitimately take.
  const longestRun = Math.max(config.RUN_TIMEOUT_SECONDS, config.RUN_TIMEOUT_MAX_SECONDS);
  return {
    timezone: config.MAINTENANCE_TIMEZONE,
    runRetentionDays: config.RUN_RETENTION_DAYS,
    threadTtlDays: config.THREAD_TTL_DAYS,
    fireLagWarnSeconds: config.MAINTENANCE_FIRE_LAG_WARN_SECONDS,
    ephemeralGraceMinutes: config.MAINTENANCE_EPHEMERAL_GRACE_MINUTES,
    staleRunSeconds: Math.round(longestRun * config.MAINTENANCE_STALE_RUN_FACTOR),
    queueRetentionDays: config.QUEUE_RETENTION_DAYS,
    heartbeatSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    workerHeartbeatSeconds: config.WORKER_HEARTBEAT_SECONDS,
    pgbossSchema: config.PGBOSS_SCHEMA,
    maxStartLagSeconds: config.HEALTH_MAX_START_LAG_SECONDS,
    startLagWindowSeconds: config.HEALTH_START_LAG_WINDOW_SECONDS,
  };
}

/** How a job is registered: its schedule and whether it fires. */
export interface JobRegistration {
  name: string;
  schedule: string;
  timezone: string;
  enabled: boolean;
}

/** Each built-in job with the schedule and enabled flag the configuration gives it. */
export function configuredJobs(config: Config): JobRegistration[] {
  return MAINTENANCE_CATALOG.map((job) => {
    const key = settingKey(job.name);
    const enabled = config[`MAINTENANCE_${key}_ENABLED`] ?? (job.enabled === true ? true : config.THREAD_TTL_DAYS > 0);
    return { name: job.name, schedule: config[`MAINTENANCE_${key}_SCHEDULE`], timezone: config.MAINTENANCE_TIMEZONE, enabled };
  });
}
