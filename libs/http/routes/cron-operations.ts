import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import {
  activeRuns,
  backfillOccurrences,
  BACKFILL_COUNT_LIMIT,
  cancelSuperseded,
  countOccurrences,
  fireOccurrences,
  firingCron,
  overlapAllowance,
  RETRYABLE_STATUSES,
  retryOccurrence,
  runsToSupersede,
} from '../../crons/index.ts';
import type { CronResponse, CronRow, OccurrenceTrigger, Superseded } from '../../crons/index.ts';
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
} from '../../crons/index.ts';
import { retryConflicts, withTransaction } from '../../db/index.ts';
import type { PoolClient } from '../../db/index.ts';
import { occurrenceRunId } from '../../ids/index.ts';
import { getRun } from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { deleteLockedCrons, lockScopedCrons, setCronStates } from '../../crons/tenancy.ts';
import type { CronScope } from '../../crons/tenancy.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { ASSISTANT_NOT_FOUND, CRON_NOT_FOUND, HttpError, notFound, THREAD_NOT_FOUND } from '../errors.ts';
import { BackfillBody, BULK_FILTERS, CronBulkBody, CronCreateBody, CronUpdateBody } from '../schemas/crons.ts';
import { checkFlowConfig } from '../schemas/common.ts';
import type { CronBulkAction } from '../schemas/crons.ts';
import { parse } from '../validate.ts';
import {
  assistantKey,
  canonicalTimezone,
  checkBodySize,
  claimName,
  nameOf,
  pauseNote,
  payloadOf,
  scheduleOf,
  unprocessable,
  zonedSchedule,
} from './cron-input.ts';
import { planUpdate } from './cron-update.ts';
import { answerClock, cronAnswer, sendRun } from './cron-answers.ts';

// The crons routes' work on the domain: create, get, update, delete, trigger, backfill, retry and
// bulk, for a given owner (the routes pass the caller, the admin routes the cron's owner).

/** What startOccurrenceRun did: the occurrence's run and the runs it supersedes, or why the overlap rule held it back. */
type Started = { run: RunResponse; superseded: Superseded } | { run: null; overlap: string };

/** Why overlapAllowance held a run of this cron back, for a 409's detail. */
function overlapDetail(cron: CronRow): string {
  if (cron.thread_id !== null) return `the cron's thread ${cron.thread_id} has a run that has not ended (multitask_strategy reject)`;
  if (cron.overlap_policy === 'buffer_one') return 'the cron already has a run going and one waiting (overlap_policy buffer_one)';
  return "the cron's previous run has not ended (overlap_policy skip)";
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
async function startOccurrenceRun(
  client: PoolClient,
  boss: ApiDeps['boss'],
  cron: CronRow,
  graphId: string,
  at: Date,
  trigger: OccurrenceTrigger,
): Promise<Started> {
  const firing = firingCron(cron, graphId);
  if (overlapAllowance(firing, await activeRuns(client, [firing])) < 1) return { run: null, overlap: overlapDetail(cron) };
  const written = await fireOccurrences(client, boss, [{ cron: firing, scheduled_for: at, skipped_count: 0, trigger }]);
  const superseded = await runsToSupersede(client, written);
  const run = await getRun(client, occurrenceRunId(cron.cron_id, at), cron.user_id);
  if (!run) throw new HttpError(409, 'this cron already had an occurrence at this instant; retry');
  return { run, superseded };
}

export async function createCron(deps: ApiDeps, req: Request, res: Response, threadId: string | null): Promise<void> {
  const { pool, boss, config, logger } = deps;
  const userId = userOf(res);
  checkBodySize(req, config);
  const body = { ...parse(CronCreateBody, req.body) };
  checkFlowConfig(body.config);
  ({ schedule: body.schedule, timezone: body.timezone } = zonedSchedule(body.schedule, body.timezone));
  if (threadId !== null && body.overlap_policy && body.overlap_policy !== 'allow') {
    throw unprocessable('overlap_policy', 'applies to stateless crons only; a thread cron follows multitask_strategy');
  }
  const schedule = scheduleOf(body.schedule, body.timezone ?? null, config.CRON_ALLOW_SECONDS_SCHEDULE);
  const timezone = canonicalTimezone(body.timezone ?? null);
  const enabled = body.enabled ?? true;
  const pausedReason = pauseNote(body.paused_reason, enabled);
  const name = nameOf(body.metadata);

  const created = await withTransaction(pool, async (client) => {
    const now = await transactionNow(client);
    if (body.end_time && body.end_time.getTime() <= now.getTime())
      throw unprocessable('end_time', `must be in the future (got ${body.end_time.toISOString()})`);
    const assistant = await findAssistant(client, assistantKey(body.assistant_id), userId);
    if (!assistant) throw notFound(ASSISTANT_NOT_FOUND);
    if (threadId !== null) {
      if (body.if_not_exists === 'create') await createThreadIfMissing(client, threadId, userId);
      if (!(await ownsThread(client, threadId, userId))) throw notFound(THREAD_NOT_FOUND);
    }
    const cap = config.CRON_MAX_PER_USER;
    if (cap > 0) {
      const owned = await lockAndCountUserCrons(client, userId);
      if (owned >= cap) throw new HttpError(429, `cron limit reached: you own ${owned} crons and CRON_MAX_PER_USER is ${cap}`);
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
  if (created.run) sendRun(res, created.run, created.cron.cron_id);
  else res.json(cronAnswer(created.cron, await answerClock(pool, created.cron)));
}

/** What a backfill did (BackfillSchema). */
export interface BackfillAnswer {
  cron_id: string;
  from: string;
  to: string;
  occurrences: number;
  fired: number;
  skipped_existing: number;
  skipped_overlap: number;
}

/** What a bulk operation did: the crons that matched, each now disabled, enabled or deleted. */
export interface BulkAnswer {
  action: CronBulkAction;
  count: number;
}

/**
 * The crons routes' work, for a given owner: the routes pass the caller, the admin routes the
 * cron's owner (so an admin's change follows exactly the owner's rules).
 */
export function cronOperations(deps: ApiDeps) {
  const { pool, boss, config, logger } = deps;
  return {
    async get(cronId: string, userId: string): Promise<CronResponse> {
      const cron = await getCron(pool, cronId, userId);
      if (!cron) throw notFound(CRON_NOT_FOUND);
      return cronAnswer(cron, await answerClock(pool, cron));
    },

    async update(req: Request, cronId: string, userId: string): Promise<CronResponse> {
      checkBodySize(req, config);
      const body = parse(CronUpdateBody, req.body);
      const name = nameOf(body.metadata);
      checkFlowConfig(body.config);
      return retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const row = await getCron(client, cronId, userId, { lock: true });
          if (!row) throw notFound(CRON_NOT_FOUND);
          if (name !== undefined && name !== row.metadata.name) await claimName(client, userId, name, cronId);
          // Decided on the clock after the lock: a pass that held the cron may have fired meanwhile.
          const now = await statementNow(client);
          const changes = planUpdate(row, body, now, config.CRON_ALLOW_SECONDS_SCHEDULE);
          return cronAnswer(await updateCron(client, cronId, userId, changes), now);
        }),
      );
    },

    async remove(cronId: string, userId: string): Promise<void> {
      if (!(await retryConflicts(() => deleteCron(pool, cronId, userId)))) throw notFound(CRON_NOT_FOUND);
    },

    async trigger(res: Response, cronId: string, userId: string): Promise<void> {
      const started = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          // Locked like a scheduler pass locks the crons it fires: concurrent triggers and passes of
          // this cron take turns, so the overlap rule sees the runs the others started.
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw notFound(CRON_NOT_FOUND);
          return startOccurrenceRun(client, boss, cron, cron.graph_id, await statementNow(client), 'manual');
        }),
      );
      // A manual run the overlap rule holds back is refused, not recorded: the caller is told why.
      if (started.run === null) throw new HttpError(409, started.overlap);
      await cancelSuperseded(pool, boss, started.superseded, logger);
      sendRun(res, started.run, cronId);
    },

    /**
     * Fires every occurrence of the cron's schedule in a past range, each once (libs/crons/backfill.ts),
     * under the cron's row lock like a trigger, on the clock read after taking it.
     */
    async backfill(req: Request, cronId: string, userId: string): Promise<BackfillAnswer> {
      const body = parse(BackfillBody, req.body);
      if (body.to.getTime() < body.from.getTime())
        throw unprocessable('to', `must not be before from (got from ${body.from.toISOString()}, to ${body.to.toISOString()})`);
      const cap = config.CRON_BACKFILL_MAX;
      const done = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw notFound(CRON_NOT_FOUND);
          const now = await statementNow(client);
          if (body.to.getTime() > now.getTime()) {
            throw unprocessable(
              'to',
              `must not be in the future (got ${body.to.toISOString()}, now ${now.toISOString()}): a backfill fires past occurrences; the scheduler fires the rest`,
            );
          }
          if (body.overlap === 'allow' && cron.thread_id !== null) {
            throw unprocessable('overlap', '"allow" applies to stateless crons; a thread cron\'s runs follow its multitask_strategy');
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
        throw new HttpError(422, `body: the range holds ${n} occurrences of the cron's schedule, over CRON_BACKFILL_MAX (${cap}); backfill a shorter range`);
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
     * Runs an occurrence that ended error, timeout or interrupted again (libs/crons/retry.ts),
     * under the cron's row lock; anything refused writes nothing (the transaction rolls back).
     */
    async retry(res: Response, cronId: string, userId: string, scheduledFor: Date): Promise<void> {
      const done = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const cron = await getCron(client, cronId, userId, { lock: true });
          if (!cron) throw notFound(CRON_NOT_FOUND);
          const outcome = await retryOccurrence(client, boss, cron, scheduledFor);
          const at = scheduledFor.toISOString();
          switch (outcome.kind) {
            case 'not_found':
              throw notFound(`Occurrence not found: the cron has no occurrence scheduled for ${at} in its ledger`);
            case 'not_retryable':
              throw new HttpError(
                409,
                `the occurrence scheduled for ${at} is ${outcome.status}; only one that ended ${RETRYABLE_STATUSES.join(', ')} can be retried`,
              );
            case 'overlap':
              throw new HttpError(409, overlapDetail(cron));
          }
          const run = await getRun(client, outcome.run.run_id, cron.user_id);
          if (!run) throw new Error(`the retried run ${outcome.run.run_id} was not found in its own transaction`);
          return { run, retries: outcome.retries, superseded: outcome.superseded };
        }),
      );
      await cancelSuperseded(pool, boss, done.superseded, logger);
      res.setHeader('Content-Location', `/threads/${done.run.thread_id}/runs/${done.run.run_id}`);
      res.json({ ...done.run, cron_id: cronId, retries: done.retries });
    },

    /**
     * Disables, enables or deletes every cron in the scope, in one transaction retried on a
     * deadlock or serialization failure: the crons are locked by cron_id first (the lock order of
     * libs/runs/lifecycle.ts); enabling follows PATCH's rules (a passed next_run_date restarts
     * from now, a finished cron comes back); deleting takes their ledger rows as DELETE does.
     */
    async bulk(scope: CronScope, action: CronBulkAction, pausedReason: string | null = null): Promise<BulkAnswer> {
      if (pausedReason !== null && action !== 'disable') throw unprocessable('paused_reason', 'goes with action "disable" only (enabling clears the notes)');
      const count = await retryConflicts(() =>
        withTransaction(pool, async (client) => {
          const rows = await lockScopedCrons(client, scope);
          if (action === 'delete')
            return deleteLockedCrons(
              client,
              rows.map((r) => r.cron_id),
            );
          const now = await statementNow(client);
          const change = {
            enabled: action === 'enable',
            ...(action === 'disable' && pausedReason !== null ? { paused_reason: pausedReason } : {}),
          } as CronUpdateBody;
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
  };
}

/**
 * A bulk body's scope: the owner (the caller; for an admin, the user_id filter or every owner)
 * and the filters. No filter at all (an owner's own id is none) needs `"all": true`.
 */
export function bulkScope(body: CronBulkBody, userId: string | null, userIsFilter = false): CronScope {
  const filtered = BULK_FILTERS.some((k) => body[k] != null) || (userIsFilter && userId !== null);
  if (!filtered && body.all !== true) {
    throw new HttpError(422, `body: name the crons with a filter (${BULK_FILTERS.join(', ')}) or send "all": true`);
  }
  return {
    user_id: userId,
    assistant_id: body.assistant_id != null ? assistantKey(body.assistant_id) : null,
    thread_id: body.thread_id,
    enabled: body.enabled,
    metadata: body.metadata,
  };
}
