import type { PoolClient } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import type { NewRun } from '../runs/index.ts';
import type { Schedule } from '../schedule/index.ts';
import { activeRuns, fireOccurrences, firingCron, overlapAllowance, runsToSupersede } from './fire.ts';
import type { Superseded } from './fire.ts';
import type { CronWithGraph } from './repository.ts';

// Backfill: every occurrence of a cron's schedule in a past range fires once, also before the cron
// existed (POST /runs/crons/{id}/backfill). It goes through fireOccurrences like a scheduler pass,
// under the cron's row lock held by the caller, so the ledger row of (cron_id, scheduled_for) is
// the guard: an occurrence already in the ledger (fired, skipped, backfilled before) fires nothing.
// The overlap rule (overlapAllowance) limits how many may start now; the others are not recorded
// (as a refused trigger is not), so a later backfill of the range fires them. next_run_date and
// fired_through are never touched: a backfill is not the schedule's position.

/** Counting the occurrences of a refused range stops here (the answer then says "more than"). */
export const BACKFILL_COUNT_LIMIT = 1_000_000;

export interface BackfillOutcome {
  /** Occurrences of the schedule in the range (none past the cron's end_time). */
  occurrences: number;
  fired: number;
  /** Already in the ledger: not fired again. */
  skipped_existing: number;
  /** Held back by the cron's overlap rule (not recorded: a later backfill may fire them). */
  skipped_overlap: number;
  /** The runs written, oldest occurrence first. */
  runs: NewRun[];
  /** Runs on a thread cron's thread that interrupt/rollback stop: cancel them after the commit. */
  superseded: Superseded;
}

/** The range holds more occurrences than the cap: nothing was written. */
export interface BackfillTooMany {
  tooMany: true;
}

/** The occurrences in [from, to], none past end_time, at most `max` (truncated when there are more). */
export function occurrencesIn(schedule: Schedule, from: Date, to: Date, endTime: Date | null, max: number): { dates: Date[]; truncated: boolean } {
  const until = endTime && endTime.getTime() < to.getTime() ? endTime : to;
  if (until.getTime() < from.getTime()) return { dates: [], truncated: false };
  return schedule.occurrencesBetween(new Date(from.getTime() - 1), until, max);
}

/** How many occurrences [from, to] holds, counted up to BACKFILL_COUNT_LIMIT (`more` past it). */
export function countOccurrences(schedule: Schedule, from: Date, to: Date, endTime: Date | null): { count: number; more: boolean } {
  const { dates, truncated } = occurrencesIn(schedule, from, to, endTime, BACKFILL_COUNT_LIMIT);
  return { count: dates.length, more: truncated };
}

const EXISTING = `SELECT scheduled_for FROM cron_occurrences WHERE cron_id = $1 AND scheduled_for = ANY($2::timestamptz[])`;

/**
 * Fires the occurrences of `cron`'s schedule in [from, to] (the caller holds the cron's row lock
 * and has checked that `to` is past). Answers what it did, or tooMany (nothing written) when the
 * range holds more than `cap` occurrences.
 */
export async function backfillOccurrences(
  client: PoolClient,
  boss: PgBoss,
  cron: CronWithGraph,
  schedule: Schedule,
  range: { from: Date; to: Date },
  cap: number,
  /** 'allow': every fresh occurrence fires, whatever the stateless cron's overlap_policy (the caller checks it is stateless). */
  overlap: 'cron' | 'allow' = 'cron',
): Promise<BackfillOutcome | BackfillTooMany> {
  const { dates, truncated } = occurrencesIn(schedule, range.from, range.to, cron.end_time, cap);
  if (truncated) return { tooMany: true };
  const none = { interrupt: [], rollback: [] };
  if (dates.length === 0) return { occurrences: 0, fired: 0, skipped_existing: 0, skipped_overlap: 0, runs: [], superseded: none };
  const { rows } = await client.query<{ scheduled_for: Date }>(EXISTING, [cron.cron_id, dates]);
  const existing = new Set(rows.map((r) => r.scheduled_for.getTime()));
  const fresh = dates.filter((d) => !existing.has(d.getTime()));
  const firing = firingCron(cron, cron.graph_id);
  const allowed = fresh.length === 0 ? 0 : overlap === 'allow' ? fresh.length : overlapAllowance(firing, await activeRuns(client, [firing]));
  // Oldest first: a backfill replays the range in order, and a later one carries on where this stopped.
  const fire = fresh.slice(0, allowed);
  const written = await fireOccurrences(
    client,
    boss,
    fire.map((scheduled_for) => ({ cron: firing, scheduled_for, skipped_count: 0, trigger: 'backfill' as const })),
  );
  const superseded = written.length ? await runsToSupersede(client, written) : none;
  return {
    occurrences: dates.length,
    fired: written.length,
    // fireOccurrences' own guard: a row written meanwhile is as existing (none can be while the lock is held).
    skipped_existing: existing.size + (fire.length - written.length),
    skipped_overlap: fresh.length - fire.length,
    runs: written,
    superseded,
  };
}
