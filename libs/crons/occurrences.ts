import type { Queryable } from '../db/index.ts';
import { attemptsMade } from '../runs/index.ts';
import { iso } from './repository.ts';

// The occurrence ledger as the crons API reads it: a cron's rows and their answer shape.

export interface OccurrenceRow {
  cron_id: string;
  scheduled_for: Date;
  run_id: string | null;
  thread_id: string | null;
  trigger: string;
  status: string;
  reason: string | null;
  error: string | null;
  skipped_count: number;
  enqueued_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  created_at: Date;
  /** Delivery of the run's webhook (migrations/004_webhooks.sql): null when the run has none, pending, sent or failed. */
  webhook_status: string | null;
  webhook_attempts: number;
  webhook_error: string | null;
  webhook_sent_at: Date | null;
  /** Excerpts of the run's final values and error (migrations/008; LEDGER_OUTPUT_EXCERPT_BYTES). */
  output_excerpt: string | null;
  output_truncated: boolean;
  error_excerpt: string | null;
  error_truncated: boolean;
  /** Retries of this occurrence (POST .../retry) and when the last one was asked for. */
  retries: number;
  retried_at: Date | null;
  /** With jitter: when it was planned to start (migrations/011); null: at scheduled_for. */
  planned_for: Date | null;
  /** The ledger's copy of the earlier attempts (null when it ran once). */
  attempt_log: unknown[] | null;
  /** The occurrence's run as it is now (null once it is gone: an ended ephemeral run is deleted). */
  run_status: string | null;
  run_started_at: Date | null;
  run_attempt_log: unknown[] | null;
  run_waiting: string | null;
  run_not_before: Date | null;
}

/** An occurrence row `o` as the ledger reads answer it, with its run `r` while it exists (OccurrenceRow). */
const OCCURRENCE_COLUMNS = `o.cron_id, o.scheduled_for, o.run_id, o.thread_id, o.trigger, o.status, o.reason, o.error, o.skipped_count,
            o.enqueued_at, o.started_at, o.ended_at, o.created_at, o.webhook_status, o.webhook_attempts, o.webhook_error, o.webhook_sent_at,
            o.output_excerpt, o.output_truncated, o.error_excerpt, o.error_truncated, o.retries, o.retried_at,
            o.planned_for, o.attempt_log,
            r.status AS run_status, r.started_at AS run_started_at, r.attempt_log AS run_attempt_log,
            r.waiting AS run_waiting, r.not_before AS run_not_before`;

/**
 * A page of a cron's ledger, newest occurrence first (the caller has checked ownership), with the
 * occurrence's run while it exists: a run waiting (for a retry or a limit) says why from there.
 */
export async function listOccurrences(db: Queryable, cronId: string, limit: number, offset: number): Promise<OccurrenceRow[]> {
  const { rows } = await db.query<OccurrenceRow>(
    `SELECT ${OCCURRENCE_COLUMNS}
       FROM (SELECT * FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for DESC LIMIT $2 OFFSET $3) o
       LEFT JOIN runs r ON r.run_id = o.run_id
      ORDER BY o.scheduled_for DESC`,
    [cronId, limit, offset],
  );
  return rows;
}

/**
 * The owner's occurrences scheduled at or after `since`, across its crons, newest first (at most
 * `limit`), with each occurrence's run as listOccurrences has it.
 */
export async function listRecentOccurrences(db: Queryable, userId: string, since: Date, limit: number): Promise<OccurrenceRow[]> {
  const { rows } = await db.query<OccurrenceRow>(
    `SELECT ${OCCURRENCE_COLUMNS}
       FROM (SELECT o.* FROM cron_occurrences o JOIN crons c ON c.cron_id = o.cron_id
              WHERE c.user_id = $1 AND o.scheduled_for >= $2
              ORDER BY o.scheduled_for DESC, o.cron_id LIMIT $3) o
       LEFT JOIN runs r ON r.run_id = o.run_id
      ORDER BY o.scheduled_for DESC, o.cron_id`,
    [userId, since, limit],
  );
  return rows;
}

/**
 * The attempts of an occurrence: from its run while the run exists (it logs each attempt as it
 * ends), else from the ledger's copy. attempts counts the earlier ones plus the current one once
 * it has started.
 */
function occurrenceAttempts(o: OccurrenceRow): { attempts: number; attempt_log: unknown[] } {
  if (o.run_status !== null) {
    const log = o.run_attempt_log ?? o.attempt_log ?? [];
    return { attempts: attemptsMade(log, o.run_status !== 'pending' && o.run_started_at !== null), attempt_log: log };
  }
  const log = o.attempt_log ?? [];
  return { attempts: attemptsMade(log, o.status !== 'enqueued' && o.status !== 'skipped' && o.started_at !== null), attempt_log: log };
}

export function toOccurrenceResponse(o: OccurrenceRow) {
  const pending = o.run_status === 'pending';
  return {
    cron_id: o.cron_id,
    scheduled_for: o.scheduled_for.toISOString(),
    run_id: o.run_id,
    thread_id: o.thread_id,
    trigger: o.trigger,
    status: o.status,
    reason: o.reason,
    error: o.error,
    skipped_count: o.skipped_count,
    enqueued_at: iso(o.enqueued_at),
    started_at: iso(o.started_at),
    ended_at: iso(o.ended_at),
    created_at: o.created_at.toISOString(),
    webhook_status: o.webhook_status,
    webhook_attempts: o.webhook_attempts,
    webhook_error: o.webhook_error,
    webhook_sent_at: iso(o.webhook_sent_at),
    output_excerpt: o.output_excerpt,
    output_truncated: o.output_truncated,
    error_excerpt: o.error_excerpt,
    error_truncated: o.error_truncated,
    retries: o.retries,
    retried_at: iso(o.retried_at),
    planned_for: iso(o.planned_for ?? o.scheduled_for),
    ...occurrenceAttempts(o),
    waiting: pending ? o.run_waiting : null,
    not_before: pending ? iso(o.run_not_before) : null,
  };
}

/** An instant as ISO 8601 wall-clock time in `timezone`, with its UTC offset: 2030-03-10T03:00:00-04:00. */
export function localIso(at: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(at);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  const offsetMin = Math.round((wall - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const ms = at.getUTCMilliseconds();
  const frac = ms ? `.${String(ms).padStart(3, '0')}` : '';
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${frac}${offset}`;
}
