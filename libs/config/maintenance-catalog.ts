// The built-in maintenance jobs by name, with their default schedules. Pure data: libs/config
// derives the MAINTENANCE_<JOB>_SCHEDULE / _ENABLED settings from it, libs/maintenance/jobs/index.ts
// gives each name its work.

export interface CatalogEntry {
  /** Stored name, also the admin endpoint's `{job}` and, upper-cased, the settings' <JOB>. */
  name: string;
  /** Default schedule (5-field cron, in MAINTENANCE_TIMEZONE). */
  schedule: string;
  /** Enabled unless configured otherwise (thread_ttl: only when THREAD_TTL_DAYS is set). */
  enabled: boolean | 'when THREAD_TTL_DAYS > 0';
  description: string;
}

export const MAINTENANCE_CATALOG = [
  {
    name: 'retention_purge',
    schedule: '30 3 * * *',
    enabled: true,
    description: 'delete ended runs, settled ledger rows and idle threads of keep crons older than RUN_RETENTION_DAYS',
  },
  {
    name: 'ephemeral_thread_sweep',
    schedule: '*/15 * * * *',
    enabled: true,
    description: 'delete ephemeral threads left behind with no run in progress, older than the grace period',
  },
  {
    name: 'stale_run_reaper',
    schedule: '*/5 * * * *',
    enabled: true,
    description: 'end as error the runs pending or running far past their timeout that no live worker holds',
  },
  { name: 'daily_stats', schedule: '15 0 * * *', enabled: true, description: 'snapshot per-cron and per-assistant run statistics for yesterday and today' },
  {
    name: 'heartbeat_monitor',
    schedule: '* * * * *',
    enabled: true,
    description: 'warn about lagging crons, lost schedulers and workers, dead-lettered runs, lag to start and a growing backlog',
  },
  { name: 'thread_ttl', schedule: '0 4 * * *', enabled: 'when THREAD_TTL_DAYS > 0', description: 'delete threads idle longer than THREAD_TTL_DAYS' },
  {
    name: 'queue_hygiene',
    schedule: '45 * * * *',
    enabled: true,
    description: "delete finished pg-boss jobs of agentcron's queues older than QUEUE_RETENTION_DAYS",
  },
  {
    name: 'ledger_partitions',
    schedule: '7 * * * *',
    enabled: true,
    description: "create the occurrence ledger's daily partitions a week ahead (and partition it once no older process runs)",
  },
] as const satisfies readonly CatalogEntry[];

export type MaintenanceJobName = (typeof MAINTENANCE_CATALOG)[number]['name'];

/** `retention_purge` → `RETENTION_PURGE`, as in MAINTENANCE_RETENTION_PURGE_SCHEDULE. */
export const settingKey = <N extends string>(name: N): Uppercase<N> => name.toUpperCase() as Uppercase<N>;
