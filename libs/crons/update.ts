import type { MissedPolicy } from '../firing/index.ts';
import type { Schedule } from '../schedule/index.ts';
import { canonicalTimezone, pauseNote, scheduleOf, zonedSchedule } from './input.ts';
import { invalid } from '../refusal/index.ts';
import type { CronChanges, CronWithGraph } from './repository.ts';
import { PAYLOAD_KEYS } from './types.ts';
import type { OnRunCompleted, OverlapPolicy } from './types.ts';

// What a PATCH (or a bulk enable/disable) makes of a cron: the update semantics, pure.

/**
 * An update as given (the API's CronUpdate, validated): a field left out (undefined) stays; null
 * clears the fields it can clear (end_time, timezone, the payload's). Payload fields by name.
 */
export interface CronUpdate {
  schedule?: string | null;
  timezone?: string | null;
  end_time?: Date | null;
  enabled?: boolean | null;
  paused_reason?: string | null;
  on_run_completed?: OnRunCompleted | null;
  metadata?: Record<string, unknown> | null;
  missed_policy?: MissedPolicy | null;
  overlap_policy?: OverlapPolicy | null;
  jitter_seconds?: number | null;
  config?: Record<string, unknown> | null;
  [payloadField: string]: unknown;
}

/**
 * The cron after an update (pure; the caller holds the row lock and read `now` after taking it).
 * Fields not sent stay; a new schedule or timezone recomputes next_run_date from now; a cron
 * enabled again whose next date passed (or that had finished) restarts from now instead of firing
 * the stale occurrence. A recomputed next_run_date is never at or before fired_through: an
 * occurrence already fired is never due again.
 */
export function planUpdate(row: CronWithGraph, sent: CronUpdate, now: Date, allowSeconds: boolean): CronChanges {
  const body = sent.schedule != null ? { ...sent, ...zonedSchedule(sent.schedule, sent.timezone) } : sent;
  const given = body.timezone !== undefined ? body.timezone : row.timezone;
  let schedule: Schedule | null = null;
  if (body.schedule != null) schedule = scheduleOf(body.schedule, given, allowSeconds);
  // The stored schedule was validated when written; only the new timezone needs checking here.
  else if (body.timezone !== undefined) schedule = scheduleOf(row.schedule, given, true);
  const timezone = body.timezone !== undefined ? canonicalTimezone(body.timezone) : row.timezone;
  const scheduleChanged = schedule !== null && (schedule.expression !== row.schedule || timezone !== row.timezone);

  let endTime = row.end_time;
  if (body.end_time === null) endTime = null;
  else if (body.end_time !== undefined) {
    if (body.end_time.getTime() <= now.getTime()) throw invalid('end_time', `must be in the future (got ${body.end_time.toISOString()})`);
    endTime = body.end_time;
  }

  // A finished cron (its end_time passed) runs again when enabled or given a new end_time.
  const finished = row.finished_at !== null;
  const revive = finished && body.enabled !== false && (body.enabled === true || body.end_time !== undefined);
  const enabled = body.enabled ?? (revive ? true : row.enabled);
  const restarted = enabled && (!row.enabled || finished);
  const stale = row.next_run_date === null || row.next_run_date.getTime() <= now.getTime();
  let nextRunDate = row.next_run_date;
  if (scheduleChanged || (restarted && stale)) {
    const from = row.fired_through && row.fired_through.getTime() > now.getTime() ? row.fired_through : now;
    nextRunDate = (schedule ?? scheduleOf(row.schedule, row.timezone, true)).nextAfter(from);
  }

  if (row.thread_id !== null && body.overlap_policy && body.overlap_policy !== 'allow') {
    throw invalid('overlap_policy', 'applies to stateless crons only; a thread cron follows multitask_strategy');
  }
  const payloadSet: Record<string, unknown> = {};
  const payloadRemove: string[] = [];
  const fields = body as Record<string, unknown>;
  for (const key of PAYLOAD_KEYS) {
    if (fields[key] === null) payloadRemove.push(key);
    else if (fields[key] !== undefined) payloadSet[key] = fields[key];
  }
  return {
    schedule: schedule?.expression ?? row.schedule,
    timezone,
    end_time: endTime,
    enabled,
    on_run_completed: row.thread_id === null ? (body.on_run_completed ?? row.on_run_completed) : null,
    metadata: body.metadata ?? row.metadata,
    payload_set: payloadSet,
    payload_remove: payloadRemove,
    next_run_date: nextRunDate,
    finished_at: restarted ? null : row.finished_at,
    missed_policy: body.missed_policy ?? row.missed_policy,
    overlap_policy: body.overlap_policy ?? row.overlap_policy,
    paused_reason: pauseNote(body.paused_reason, enabled, row.paused_reason),
    jitter_seconds: body.jitter_seconds ?? row.jitter_seconds,
  };
}
