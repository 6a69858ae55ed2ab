import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import type { MaintenanceSettings } from './settings.ts';

/** What a maintenance job gets to do its work. */
export interface MaintenanceContext {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  settings: MaintenanceSettings;
  /** The occurrence this execution is for; null for a manual trigger. */
  scheduledFor: Date | null;
  /** Aborted when the worker shuts down or the job expires: long loops should stop between batches. */
  signal: AbortSignal;
}

/**
 * A maintenance job: a name (its row in maintenance_jobs) and its work. The summary it answers
 * (counts of what it did) is stored as last_result; a throw is recorded as last_run_error.
 */
export interface MaintenanceJob {
  name: string;
  run(ctx: MaintenanceContext): Promise<Record<string, unknown>>;
}

/** The payload of a job on the agentcron.maintenance queue. */
export interface MaintenanceJobData {
  job: string;
  /** ISO time of the occurrence; null for a manual trigger. */
  scheduled_for: string | null;
  trigger: 'schedule' | 'manual';
}
