import type { MultitaskStrategy } from '../runs/index.ts';
import type { MissedPolicy } from '../firing/index.ts';

export type OverlapPolicy = 'allow' | 'skip' | 'buffer_one';
export type OnRunCompleted = 'delete' | 'keep';
/** What fired an occurrence: its schedule, the cron's create, a trigger (run now), a backfill of a past range. */
export type OccurrenceTrigger = 'schedule' | 'create' | 'manual' | 'backfill';

/** A crons row as stored. */
export interface CronRow {
  cron_id: string;
  assistant_id: string;
  thread_id: string | null;
  user_id: string;
  schedule: string;
  timezone: string | null;
  end_time: Date | null;
  enabled: boolean;
  /** Why the cron was paused (disabled), as its owner wrote it; null when enabled. */
  paused_reason: string | null;
  on_run_completed: OnRunCompleted | null;
  payload: CronPayload;
  metadata: Record<string, unknown>;
  next_run_date: Date | null;
  /** Every scheduled occurrence up to here has been handled; next_run_date stays after it. */
  fired_through: Date | null;
  missed_policy: MissedPolicy;
  overlap_policy: OverlapPolicy;
  /** Each scheduled occurrence starts at scheduled_for plus a deterministic offset in [0, jitter_seconds). */
  jitter_seconds: number;
  finished_at: Date | null;
  /** Read with the row (repository.ts AHEAD_NEXT): the earliest occurrence fired ahead that has not reached its instant. */
  ahead_next?: Date | null;
  last_run_at: Date | null;
  last_run_status: string | null;
  last_run_error: string | null;
  last_run_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * The run-body fields a cron stores in its payload and hands to every run it starts, in the order
 * they are stored (input first). The API's schema (libs/http/schemas/crons.ts) checks that its
 * fields are these.
 */
export const PAYLOAD_KEYS = [
  'input',
  'config',
  'context',
  'webhook',
  'multitask_strategy',
  'interrupt_before',
  'interrupt_after',
  'stream_mode',
  'stream_subgraphs',
  'stream_resumable',
  'checkpoint_during',
  'durability',
  'retry_policy',
] as const;

/** The stored run body every occurrence's run is made from. */
export interface CronPayload {
  input?: unknown;
  config?: Record<string, unknown>;
  context?: Record<string, unknown>;
  webhook?: string | null;
  multitask_strategy?: MultitaskStrategy;
  [key: string]: unknown;
}
