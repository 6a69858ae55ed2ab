import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { retryConflicts, withTransaction } from '../db/index.ts';
import type { Pool, PoolClient } from '../db/index.ts';
import { occurrenceRunId } from '../ids/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { flowConfigProblem, getRun } from '../runs/index.ts';
import type { RunResponse } from '../runs/index.ts';
import { applyMovedBack, withdrawAhead } from './ahead.ts';
import { answerClock, cronAnswer } from './answers.ts';
import { backfillOccurrences, BACKFILL_COUNT_LIMIT, countOccurrences } from './backfill.ts';
import { activeRuns, cancelSuperseded, fireOccurrences, firingCron, overlapAllowance, runsToSupersede } from './fire.ts';
import type { Superseded } from './fire.ts';
import { assistantKey, canonicalTimezone, claimName, nameOf, pauseNote, payloadOf, scheduleOf, zonedSchedule } from './input.ts';
import { conflict, Refusal, invalid, missing, overLimit } from '../refusal/index.ts';
import {
  createThreadIfMissing,
  deleteCron,
  findAssistant,
  getCron,
  insertCron,
  lockAndCountUserCrons,
  ownsThread,
  statementNow,
  transactionNow,
  updateCron,
} from './repository.ts';
import type { CronResponse } from './repository.ts';
import { retryOccurrence, RETRYABLE_STATUSES } from './retry.ts';
import { deleteLockedCrons, lockScopedCrons, setCronStates, transferCrons } from './tenancy.ts';
import type { CronScope } from './tenancy.ts';
import type { CronRow, OccurrenceTrigger } from './types.ts';
import { planUpdate } from './update.ts';
import type { CronUpdate } from './update.ts';

// The crons' operations for a given owner: create, get, update, delete, trigger, backfill, retry
// and bulk, each in its transaction (retried on a deadlock or serialization failure where it
// locks), refusing (refusal.ts) what the rules do not allow. The API's routes pass the caller;
// the admin routes the cron's owner (so an admin's change follows exactly the owner's rules).

/** A create as given (the API's CronCreate, validated). */
export interface CronCreate extends CronUpdate {
  assistant_id: string;
  schedule: string;
  if_not_exists?: 'create' | 'reject' | null;
}

/** What a create answers: the cron's first run, or the Cron itself (created disabled, or its first occurrence skipped). */
export type Created = { run: RunResponse; cron_id: string } | { run: null; cron: CronResponse };

/** What a backfill did (the API's CronBackfillResult). */
export interface BackfillAnswer {
  cron_id: string;
  from: string;
  to: string;
  occurrences: number;
  fired: number;
  skipped_existing: number;
  skipped_overlap: number;
}

export type BulkAction = 'disable' | 'enable' | 'delete';

/** What a bulk operation did: the crons that matched, each now disabled, enabled or deleted. */
export interface BulkAnswer {
  action: BulkAction;
  count: number;
}

/** The filters a bulk operation names its crons by (one at least, or "all": true). */
export const BULK_FILTERS = ['assistant_id', 'thread_id', 'enabled', 'metadata'] as const;

/** A bulk request's filters as given (the API's CronBulk). */
export interface BulkFilters {
  assistant_id?: string | null;
  thread_id?: string | null;
  enabled?: boolean | null;
  metadata?: Record<string, unknown> | null;
  all?: boolean | null;
}

export interface CronOperationsDeps {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  config: Pick<Config, 'CRON_ALLOW_SECONDS_SCHEDULE' | 'CRON_MAX_PER_USER' | 'CRON_BACKFILL_MAX'>;
}

/** What startOccurrenceRun did: the occurrence's run and the runs it supersedes, or why the overlap rule held it back. */
type Started = { run: RunResponse; superseded: Superseded } | { run: null; overlap: string };

/** Why overlapAllowance held a run of this cron back, for a conflict's detail. */
function overlapDetail(cron: CronRow): string {
  if (cron.thread_id !== null) return `the cron's thread ${cron.thread_id} has a run that has not ended (multitask_strategy reject)`;
  if (cron.overlap_policy === 'buffer_one') return 'the cron already has a run going and one waiting (overlap_policy buffer_one)';
  return "the cron's previous run has not ended (overlap_policy skip)";
}

/** A flow-control problem in a body's config (config.retry_policy, config.max_concurrency), refused naming the field. */
function checkFlowConfig(config: unknown): void {
  const problem = flowConfigProblem(config as Record<string, unknown> | null | undefined);
  if (problem) throw new Refusal('invalid', `body.${problem}`);
}

/**
 * Starts a run of the cron for the occurrence at `at` (the transaction's now), by the scheduler's
 * own rules and functions: overlapAllowance decides whether it may start (a thread cron's
 * multitask_strategy reject on a busy thread, a stateless cron's overlap_policy skip/buffer_one
 * with runs going), fireOccurrences writes the run, thread, pg-boss job and ledger row together,
 * and runsToSupersede names the runs that interrupt/rollback stop, which the caller must cancel
 * with cancelSuperseded once the transaction has committed (never under it). Answers the
 * occurrence's run (an existing one if that instant already had its run), or run null with why
 * it was held back (nothing written).
 */
async function startOccurrenceRun(client: PoolClient, boss: PgBoss, cron: CronRow, graphId: string, at: Date, trigger: OccurrenceTrigger): Promise<Started> {
  const firing = firingCron(cron, graphId);
  if (overlapAllowance(firing, await activeRuns(client, [firing])) < 1) return { run: null, overlap: overlapDetail(cron) };
  const written = await fireOccurrences(client, boss, [{ cron: firing, scheduled_for: at, skipped_count: 0, trigger }]);
  const superseded = await runsToSupersede(client, written);
  const run = await getRun(client, occurrenceRunId(cron.cron_id, at), cron.user_id);
  if (!run) throw conflict('this cron already had an occurrence at this instant; retry');
  return { run, superseded };
}

/**
 * A bulk request's scope: the owner (the caller; for an admin, the user_id filter or every owner)
 * and the filters. No filter at all (an owner's own id is none) needs `"all": true`.
 */
export function bulkScope(body: BulkFilters, userId: string | null, userIsFilter = false): CronScope {
  const filtered = BULK_FILTERS.some((k) => body[k] != null) || (userIsFilter && userId !== null);
  if (!filtered && body.all !== true) {
    throw new Refusal('invalid', `body: name the crons with a filter (${BULK_FILTERS.join(', ')}) or send "all": true`);
  }
  return {
    user_id: userId,
    assistant_id: body.assistant_id != null ? assistantKey(body.assistant_id) : null,
    thread_id: body.thread_id,
    enabled: body.enabled,
    metadata: body.metadata,
  };
}

export function cronOperations({ pool, boss, config, logger }: CronOperationsDeps) {
  return {
    /**
     * Creates a cron (a thread cron when threadId is given) and starts its first run now, in the
     * same transaction: the cron exists if and only if its first run does (or its skip is recorded).
     */
    async create(userId: string, threadId: string | null, given: CronCreate): Promise<Created> {
      const body = { ...given };
      checkFlowConfig(body.config);
      ({ schedule: body.schedule, timezone: body.timezone } = zonedSchedule(body.schedule, body.timezone));
      if (threadId !== null && body.overlap_policy && body.overlap_policy !== 'allow') {
        throw invalid('overlap_policy', 'applies to stateless crons only; a thread cron follows multitask_strategy');
      }
      const schedule = scheduleOf(body.schedule, body.timezone ?? null, config.CRON_ALLOW_SECONDS_SCHEDULE);
      const timezone = canonicalTimezone(body.timezone ?? null);
      const enabled = body.enabled ?? true;
      const pausedReason = pauseNote(body.paused_reason, enabled);
      const name = nameOf(body.metadata);

      const created = await withTransaction(pool, async (client) => {
        const now = await transactionNow(client);
        if (body.end_time && body.end_time.getTime() <= now.getTime()) throw invalid('end_time', `must be in the future (got ${body.end_time.toISOString()})`);
        const assistant = await findAssistant(client, assistantKey(body.assistant_id), userId);
        if (!assistant) throw missing('assistant');
        if (threadId !== null) {
          if (body.if_not_exists === 'create') await createThreadIfMissing(client, threadId, userId);
          if (!(await ownsThread(client, threadId, userId))) throw missing('thread');
        }
        const cap = config.CRON_MAX_PER_USER;
        if (cap > 0) {
          const owned = await lockAndCountUserCrons(client, userId);
          if (owned >= cap) throw overLimit(`cron limit reached: you own ${owned} crons and CRON_MAX_PER_USER is ${cap}`);
        }
        await claimName(client, userId, name, null);
        const cron = await insertCron(client, {
          cron_id: randomUUID(),
          assistant_id: assistant.assistant_id,
          thread_id: threadId,
          user_id: userId,
          schedule: schedule.expression,
          timezone,
          end_time: body.end_time ?? null,
          enabled,
          // Only a stateless cron's fresh threads have something to keep or delete.
          on_run_completed: threadId === null ? (body.on_run_completed ?? 'delete') : null,
          payload: payloadOf(body),
          metadata: body.metadata ?? {},
          next_run_date: schedule.nextAfter(now),
          missed_policy: body.missed_policy ?? 'latest',
          overlap_policy: body.overlap_policy ?? 'allow',
          paused_reason: pausedReason,
          jitter_seconds: body.jitter_seconds ?? 0,
        });
        // The first run starts now, in this transaction: the cron exists if and only if it does
        // (or its skip is recorded, below).
        if (!enabled) return { cron, run: null, superseded: null };
        const started = await startOccurrenceRun(client, boss, cron, assistant.graph_id, now, 'create');
        if (started.run === null) {
          // Only a thread cron with multitask_strategy reject on a thread whose run has not ended gets
          // here (a new stateless cron has no runs yet). Refusing the create (409) would make the
          // cron's existence depend on a run that happens to be going now, while the scheduler would
          // simply skip that occurrence and fire the next one: so the cron is stored, its first
          // occurrence is skipped exactly as the scheduler skips one (a ledger row: trigger create,
          // status skipped, reason overlap), and the answer is the Cron, as for enabled: false.
          await fireOccurrences(client, boss, [], [{ cron_id: cron.cron_id, scheduled_for: now, reason: 'overlap', trigger: 'create' }]);
          return { cron, run: null, superseded: null };
        }
        return { cron, run: started.run, superseded: started.superseded };
      });
      // interrupt/rollback: stop the thread's runs the first run supersedes, now that it is committed.
      if (created.superseded) await cancelSuperseded(pool, boss, created.superseded, logger);
      if (created.run) return { run: created.run, cron_id: created.cron.cron_id };
      return { run: null, cron: cronAnswer(created.cron, await answerClock(pool, created.cron)) };
    },

    async get(cronId: string, userId: string): Promise<CronResponse> {
      const cron = await getCron(pool, cronId, userId);
      if (!cron) throw missing('cron');
      return cronAnswer(cron, await answerClock(pool, cron));
    },

    async update(cronId: string, userId: string, body: CronUpdate): Promise<CronResponse> {
      const name = nameOf(body.metadata);
      checkFlowConfig(body.config);
      return retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const locked = await getCron(client, cronId, userId, { lock: true });
          if (!locked) throw missing('cron');
          // Occurrences fired ahead under the definition before this change are withdrawn
          // (ahead.ts); next_run_date moves back so they fire under the new one if still due.
          const row = applyMovedBack(locked, await withdrawAhead(client, boss, [cronId]));
          if (name !== undefined && name !== row.metadata.name) await claimName(client, userId, name, cronId);
          // Decided on the clock after the lock: a pass that held the cron may have fired meanwhile.
          const now = await statementNow(client);
          const changes = planUpdate(row, body, now, config.CRON_ALLOW_SECONDS_SCHEDULE);
          return cronAnswer(await updateCron(client, cronId, userId, changes), now);
        }),
      );
    },

    async remove(cronId: string, userId: string): Promise<void> {
      const gone = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          if (!(await getCron(client, cronId, userId, { lock: true }))) return false;
          // Occurrences fired ahead that have not reached their instant go with the cron (ahead.ts).
          await withdrawAhead(client, boss, [cronId]);
          return deleteCron(client, cronId, userId);
        }),
      );
      if (!gone) throw missing('cron');
    },

    /** Runs the cron now (trigger manual), by its overlap rule: a run the rule holds back is refused, not recorded. */
    async trigger(cronId: string, userId: string): Promise<RunResponse> {
      const started = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          // Locked like a scheduler pass locks the crons it fires: concurrent triggers and passes of
          // this cron take turns, so the overlap rule sees the runs the others started.
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw missing('cron');
          return startOccurrenceRun(client, boss, cron, cron.graph_id, await statementNow(client), 'manual');
        }),
      );
      if (started.run === null) throw conflict(started.overlap);
      await cancelSuperseded(pool, boss, started.superseded, logger);
      return started.run;
    },

    /**
     * Fires every occurrence of the cron's schedule in a past range, each once (backfill.ts),
     * under the cron's row lock like a trigger, on the clock read after taking it.
     */
    async backfill(cronId: string, userId: string, body: { from: Date; to: Date; overlap?: 'cron' | 'allow' | null }): Promise<BackfillAnswer> {
      if (body.to.getTime() < body.from.getTime())
        throw invalid('to', `must not be before from (got from ${body.from.toISOString()}, to ${body.to.toISOString()})`);
      const cap = config.CRON_BACKFILL_MAX;
      const done = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw missing('cron');
          const now = await statementNow(client);
          if (body.to.getTime() > now.getTime()) {
            throw invalid(
              'to',
              `must not be in the future (got ${body.to.toISOString()}, now ${now.toISOString()}): a backfill fires past occurrences; the ` +
                `scheduler fires the rest`,
            );
          }
          if (body.overlap === 'allow' && cron.thread_id !== null) {
            throw invalid('overlap', '"allow" applies to stateless crons; a thread cron\'s runs follow its multitask_strategy');
          }
          const schedule = scheduleOf(cron.schedule, cron.timezone, true);
          const outcome = await backfillOccurrences(client, boss, cron, schedule, body, cap, body.overlap ?? 'cron');
          return { cron, schedule, outcome };
        }),
      );
      const { cron, schedule, outcome } = done;
      if ('tooMany' in outcome) {
        // Counted after the transaction (nothing was written), so the lock is never held for it.
        const { count, more } = countOccurrences(schedule, body.from, body.to, cron.end_time);
        const n = more ? `more than ${BACKFILL_COUNT_LIMIT}` : String(count);
        throw new Refusal(
          'invalid',
          `body: the range holds ${n} occurrences of the cron's schedule, over CRON_BACKFILL_MAX (${cap}); backfill a shorter range`,
        );
      }
      await cancelSuperseded(pool, boss, outcome.superseded, logger);
      return {
        cron_id: cron.cron_id,
        from: body.from.toISOString(),
        to: body.to.toISOString(),
        occurrences: outcome.occurrences,
        fired: outcome.fired,
        skipped_existing: outcome.skipped_existing,
        skipped_overlap: outcome.skipped_overlap,
      };
    },

    /**
     * Runs an occurrence that ended error, timeout or interrupted again (retry.ts), under the
     * cron's row lock; anything refused writes nothing (the transaction rolls back).
     */
    async retry(cronId: string, userId: string, scheduledFor: Date): Promise<{ run: RunResponse; retries: number }> {
      const done = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw missing('cron');
          const outcome = await retryOccurrence(client, boss, cron, scheduledFor);
          const at = scheduledFor.toISOString();
          switch (outcome.kind) {
            case 'not_found':
              throw missing('occurrence', `Occurrence not found: the cron has no occurrence scheduled for ${at} in its ledger`);
            case 'not_retryable':
              throw conflict(`the occurrence scheduled for ${at} is ${outcome.status}; only one that ended ${RETRYABLE_STATUSES.join(', ')} can be retried`);
            case 'overlap':
              throw conflict(overlapDetail(cron));
          }
          const run = await getRun(client, outcome.run.run_id, cron.user_id);
          if (!run) throw new Error(`the retried run ${outcome.run.run_id} was not found in its own transaction`);
          return { run, retries: outcome.retries, superseded: outcome.superseded };
        }),
      );
      await cancelSuperseded(pool, boss, done.superseded, logger);
      return { run: done.run, retries: done.retries };
    },

    /**
     * Disables, enables or deletes every cron in the scope, in one transaction retried on a
     * deadlock or serialization failure: the crons are locked by cron_id first (the lock order of
     * libs/runs/lifecycle.ts); enabling follows PATCH's rules (a passed next_run_date restarts
     * from now, a finished cron comes back); deleting takes their ledger rows as DELETE does.
     */
    async bulk(scope: CronScope, action: BulkAction, pausedReason: string | null = null): Promise<BulkAnswer> {
      if (pausedReason !== null && action !== 'disable') throw invalid('paused_reason', 'goes with action "disable" only (enabling clears the notes)');
      const count = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const locked = await lockScopedCrons(client, scope);
          // Disabling or deleting withdraws the occurrences fired ahead that have not reached their
          // instant (ahead.ts); enabling changes nothing of an enabled cron's.
          const ids = action === 'enable' ? [] : locked.map((r) => r.cron_id);
          const moved = await withdrawAhead(client, boss, ids);
          const rows = locked.map((r) => applyMovedBack(r, moved));
          if (action === 'delete')
            return deleteLockedCrons(
              client,
              rows.map((r) => r.cron_id),
            );
          const now = await statementNow(client);
          const change: CronUpdate = {
            enabled: action === 'enable',
            ...(action === 'disable' && pausedReason !== null ? { paused_reason: pausedReason } : {}),
          };
          const states = rows.map((row) => {
            const planned = planUpdate(row, change, now, true);
            return {
              cron_id: row.cron_id,
              enabled: planned.enabled,
              next_run_date: planned.next_run_date,
              finished_at: planned.finished_at,
              paused_reason: planned.paused_reason,
            };
          });
          await setCronStates(client, states);
          return rows.length;
        }),
      );
      return { action, count };
    },

    /** Moves crons (every one of from_user_id's, or the ones named) to another owner, with their assistants when asked. */
    async transfer(body: { from_user_id: string; to_user_id: string; cron_ids?: string[] | null; assistants?: boolean | null }) {
      if (body.from_user_id === body.to_user_id) throw invalid('to_user_id', 'must differ from from_user_id');
      const moved = await retryConflicts(() =>
        withTransaction(pool, (client) =>
          transferCrons(client, {
            from_user_id: body.from_user_id,
            to_user_id: body.to_user_id,
            cron_ids: body.cron_ids?.map((id) => id.toLowerCase()) ?? null,
            assistants: body.assistants ?? false,
          }),
        ),
      );
      return { from_user_id: body.from_user_id, to_user_id: body.to_user_id, count: moved.cron_ids.length, ...moved };
    },
  };
}

export type CronOperations = ReturnType<typeof cronOperations>;
