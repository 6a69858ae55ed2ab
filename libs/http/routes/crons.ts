import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Request, Response } from 'express';
import { defaultAssistantId } from '../../assistants/index.ts';
import type { Config } from '../../config/index.ts';
import {
  activeRuns,
  backfillOccurrences,
  BACKFILL_COUNT_LIMIT,
  cancelSuperseded,
  countOccurrences,
  cronNameOf,
  describeSchedule,
  fireOccurrences,
  fireTimes,
  firingCron,
  overlapAllowance,
  RETRYABLE_STATUSES,
  retryOccurrence,
  runsToSupersede,
  upcomingTimes,
} from '../../crons/index.ts';
import type { CronPayload, CronResponse, CronRow, CronWithGraph, CronChanges, OccurrenceTrigger, Superseded } from '../../crons/index.ts';
import {
  countCrons,
  createThreadIfMissing,
  deleteCron,
  findAssistant,
  getCron,
  insertCron,
  listOccurrences,
  lockAndCountUserCrons,
  lockCronName,
  ownsThread,
  searchCrons,
  toCronResponse,
  toOccurrenceResponse,
  statementNow,
  transactionNow,
  updateCron,
} from '../../crons/index.ts';
import { retryConflicts, withTransaction } from '../../db/index.ts';
import type { PoolClient } from '../../db/index.ts';
import { isUuid, occurrenceRunId } from '../../ids/index.ts';
import { getRun } from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { canonicalZoneName, parseSchedule, ScheduleError, splitTimezonePrefix } from '../../schedule/index.ts';
import { deleteLockedCrons, lockScopedCrons, setCronStates } from '../../crons/tenancy.ts';
import type { CronScope } from '../../crons/tenancy.ts';
import { withoutCredentials } from '../../webhooks/address.ts';
import type { Schedule } from '../../schedule/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError, methodNotAllowed, notFound } from '../errors.ts';
import {
  BackfillBody,
  BULK_FILTERS,
  CronBulkBody,
  CronCountBody,
  CronCreateBody,
  CronSearchBody,
  CronUpdateBody,
  NextQuery,
  OccurrencePath,
  OccurrencesQuery,
  PAYLOAD_KEYS,
  PreviewBody,
} from '../schemas/crons.ts';
import { checkFlowConfig } from '../schemas/common.ts';
import type { CronBulkAction, CronField } from '../schemas/crons.ts';
import { parse } from '../validate.ts';

// The crons API: the LangGraph SDK's create/createForThread/search/count/update/delete, plus get,
// trigger (run now), the occurrence ledger and the next fire times. Every cron is read and written
// as its owner's; someone else's cron is "not found", exactly like a missing one.

const CRON_NOT_FOUND = 'Cron not found';
const THREAD_NOT_FOUND = 'Thread not found';
const ASSISTANT_NOT_FOUND = 'Assistant not found';

const unprocessable = (field: string, reason: string) => new HttpError(422, `body.${field}: ${reason}`);

/**
 * The cap on a cron body (CRON_MAX_PAYLOAD_BYTES), on the raw JSON as sent (Content-Length), or
 * re-serialized when the length is not declared. Bodies past the server's hard limit never get
 * here: the JSON parser answers 413.
 */
function checkBodySize(req: Request, config: Config): void {
  const declared = Number(req.get('content-length'));
  const bytes = Number.isFinite(declared) && declared > 0 ? declared : Buffer.byteLength(JSON.stringify(req.body ?? {}));
  if (bytes > config.CRON_MAX_PAYLOAD_BYTES) {
    throw new HttpError(422, `body: the cron body is ${bytes} bytes, over the limit of ${config.CRON_MAX_PAYLOAD_BYTES} (CRON_MAX_PAYLOAD_BYTES)`);
  }
}

/** A validated schedule, or a 422 naming the field (schedule or timezone) with the parser's reason. */
function scheduleOf(expression: string, timezone: string | null, allowSeconds: boolean): Schedule {
  try {
    return parseSchedule(expression, { timezone, allowSeconds });
  } catch (err) {
    if (err instanceof ScheduleError) throw unprocessable(err.field, err.message);
    throw err;
  }
}

/**
 * A timezone as stored: the canonical IANA name of what was typed (`utc` -> `UTC`,
 * `europe/paris` -> `Europe/Paris`, `US/Eastern` -> `America/New_York`), so a cron shows, filters
 * and compares by one spelling. An unknown name is answered as typed (validation names it).
 */
export function canonicalTimezone(tz: string | null): string | null {
  return tz === null ? null : canonicalZoneName(tz);
}

/**
 * A request's schedule and timezone, with a `CRON_TZ=<zone> ` or `TZ=<zone> ` prefix on the
 * schedule read as its timezone (the way SDK 2.x, which sends no `timezone`, can name one): the
 * bare expression is stored with the zone. A prefix and a different timezone field are a 422.
 * A timezone left out (undefined) or null stays so when there is no prefix.
 */
export function zonedSchedule<T extends string | null | undefined>(schedule: string, timezone: T): { schedule: string; timezone: T | string } {
  let split;
  try {
    split = splitTimezonePrefix(schedule);
  } catch (err) {
    if (err instanceof ScheduleError) throw unprocessable(err.field, err.message);
    throw err;
  }
  if (split.timezone === null) return { schedule, timezone };
  if (timezone != null && canonicalTimezone(timezone) !== canonicalTimezone(split.timezone)) {
    throw unprocessable(
      'schedule',
      `its prefix names the time zone ${split.timezone} but timezone is ${JSON.stringify(timezone)}: give the zone once (the prefix, or the timezone field)`,
    );
  }
  return { schedule: split.expression, timezone: split.timezone };
}

/** The cron name in a body's metadata (metadata.name), validated; null for none, undefined when metadata is not sent. */
function nameOf(metadata: Record<string, unknown> | null | undefined): string | null | undefined {
  if (metadata == null) return metadata === null ? null : undefined;
  const named = cronNameOf(metadata);
  if ('invalid' in named) throw unprocessable('metadata.name', named.invalid);
  return named.name;
}

/** A 409 unless no other cron of the owner bears this name (takes the name's lock: see libs/crons/names.ts). */
async function claimName(client: PoolClient, userId: string, name: string | null | undefined, cronId: string | null): Promise<void> {
  if (name == null) return;
  const other = await lockCronName(client, userId, name, cronId);
  if (other !== null)
    throw new HttpError(409, `body.metadata.name: you already have a cron named ${JSON.stringify(name)} (${other}); names are unique per owner`);
}

/**
 * The next_run_date a Cron answer shows. An enabled cron: the stored one (the occurrence the
 * scheduler fires next; null once finished). A disabled cron fires nothing, so it shows when it
 * would fire if enabled now: the stored date while it is still ahead, else the schedule's next
 * occurrence after now (exactly what enabling computes); null when finished or past end_time.
 */
export function shownNextRunDate(row: CronRow, now: Date): Date | null {
  if (row.enabled || row.finished_at !== null || row.next_run_date === null) return row.next_run_date;
  if (row.next_run_date.getTime() > now.getTime()) return row.next_run_date;
  let next: Date;
  try {
    const from = row.fired_through && row.fired_through.getTime() > now.getTime() ? row.fired_through : now;
    next = parseSchedule(row.schedule, { timezone: row.timezone, allowSeconds: true }).nextAfter(from);
  } catch {
    return row.next_run_date;
  }
  return row.end_time && next.getTime() > row.end_time.getTime() ? null : next;
}

/** A stored cron as the API answers it: next_run_date as above, a webhook without its credentials. */
export function cronAnswer(row: CronRow, now: Date): CronResponse {
  const answer = toCronResponse(row);
  const shown = shownNextRunDate(row, now);
  answer.next_run_date = shown ? shown.toISOString() : null;
  if (typeof answer.payload.webhook === 'string') answer.payload = { ...answer.payload, webhook: withoutCredentials(answer.payload.webhook) };
  return answer;
}

/** The clock a single Cron answer needs (only a disabled cron's next_run_date reads it). */
const answerClock = async (db: ApiDeps['pool'] | PoolClient, row: CronRow): Promise<Date> => (row.enabled ? new Date() : statementNow(db));

/** A path's UUID; anything else names no cron or thread, so it is a 404 (never a database error). */
function pathId(req: Request, name: 'cron_id' | 'thread_id', missing: string): string {
  const id = req.params[name];
  if (typeof id !== 'string' || !isUuid(id)) throw notFound(missing);
  return id;
}

/** An assistant id as given, or a graph id standing for that graph's default assistant. */
const assistantKey = (idOrGraph: string): string => (isUuid(idOrGraph) ? idOrGraph : defaultAssistantId(idOrGraph));

/** The run-body fields of a request, without the ones left out (undefined) or sent as null. */
function payloadOf(body: Record<string, unknown>): CronPayload {
  const payload: CronPayload = {};
  for (const key of PAYLOAD_KEYS) if (body[key] !== undefined && body[key] !== null) payload[key] = body[key];
  return payload;
}

/** What startRun did: the occurrence's run and the runs it supersedes, or why the overlap rule held it back. */
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
async function startRun(client: PoolClient, boss: ApiDeps['boss'], cron: CronRow, graphId: string, at: Date, trigger: OccurrenceTrigger): Promise<Started> {
  const firing = firingCron(cron, graphId);
  if (overlapAllowance(firing, await activeRuns(client, [firing])) < 1) return { run: null, overlap: overlapDetail(cron) };
  const written = await fireOccurrences(client, boss, [{ cron: firing, scheduled_for: at, skipped_count: 0, trigger }]);
  const superseded = await runsToSupersede(client, written);
  const run = await getRun(client, occurrenceRunId(cron.cron_id, at), cron.user_id);
  if (!run) throw new HttpError(409, 'this cron already had an occurrence at this instant; retry');
  return { run, superseded };
}

/** A run-creating answer: the Run plus cron_id, and where the run lives. */
function sendRun(res: Response, run: RunResponse, cronId: string): void {
  res.setHeader('Content-Location', `/threads/${run.thread_id}/runs/${run.run_id}`);
  res.json({ ...run, cron_id: cronId });
}

/**
 * The pause note a cron keeps: the one given (an empty one is none), for a disabled cron only. A
 * cron that is (or becomes) enabled has none: enabling clears it, and giving one with it is a 422.
 */
function pauseNote(given: string | null | undefined, enabled: boolean, stored: string | null = null): string | null {
  const note = given === undefined ? stored : given === null || given.trim() === '' ? null : given;
  if (!enabled) return note;
  if (given != null && given.trim() !== '') {
    throw unprocessable('paused_reason', 'only a disabled cron has a pause note: send it with "enabled": false (enabling clears it)');
  }
  return null;
}

async function createCron(deps: ApiDeps, req: Request, res: Response, threadId: string | null): Promise<void> {
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
    const started = await startRun(client, boss, cron, assistant.graph_id, now, 'create');
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

/**
 * The cron after an update (pure; the caller holds the row lock and read `now` after taking it).
 * Fields not sent stay; a new schedule or timezone recomputes next_run_date from now; a cron
 * enabled again whose next date passed (or that had finished) restarts from now instead of firing
 * the stale occurrence. A recomputed next_run_date is never at or before fired_through: an
 * occurrence already fired is never due again.
 */
function planUpdate(row: CronWithGraph, sent: CronUpdateBody, now: Date, allowSeconds: boolean): CronChanges {
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
    if (body.end_time.getTime() <= now.getTime()) throw unprocessable('end_time', `must be in the future (got ${body.end_time.toISOString()})`);
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
    throw unprocessable('overlap_policy', 'applies to stateless crons only; a thread cron follows multitask_strategy');
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

/** A Cron reduced to the selected fields ("now" is the database's time of the search). */
export function selectFields(row: CronRow, select: CronField[] | null, now: Date): Record<string, unknown> {
  const full: Record<string, unknown> = { ...cronAnswer(row, now) };
  if (select === null) return full;
  const out: Record<string, unknown> = {};
  for (const field of select) out[field] = field === 'now' ? now.toISOString() : full[field];
  return out;
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
          return startRun(client, boss, cron, cron.graph_id, await statementNow(client), 'manual');
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

/** POST-only routes answer other methods 405 with Allow (not "Cron not found" from GET /runs/crons/{cron_id}). */
const postOnly: (req: Request, res: Response) => never = (req, res) => {
  throw methodNotAllowed(res, req.method, req.path, ['POST']);
};

export function cronsRoutes(deps: ApiDeps): Router {
  const { pool, config } = deps;
  const ops = cronOperations(deps);
  const router = Router();

  router.post('/runs/crons', (req, res) => createCron(deps, req, res, null));

  router.post('/threads/:thread_id/runs/crons', (req, res) => createCron(deps, req, res, pathId(req, 'thread_id', THREAD_NOT_FOUND)));

  router.post('/runs/crons/search', async (req, res) => {
    const q = parse(CronSearchBody, req.body);
    const { crons, now } = await searchCrons(pool, userOf(res), {
      assistant_id: q.assistant_id != null ? assistantKey(q.assistant_id) : null,
      thread_id: q.thread_id,
      enabled: q.enabled,
      metadata: q.metadata,
      cron_id_prefix: q.cron_id_prefix,
      sort_by: q.sort_by,
      sort_order: q.sort_order,
      limit: q.limit,
      offset: q.offset,
    });
    res.json(crons.map((c) => selectFields(c, q.select, now)));
  });

  router.post('/runs/crons/count', async (req, res) => {
    const q = parse(CronCountBody, req.body);
    const n = await countCrons(pool, userOf(res), {
      assistant_id: q.assistant_id != null ? assistantKey(q.assistant_id) : null,
      thread_id: q.thread_id,
      enabled: q.enabled,
      metadata: q.metadata,
    });
    res.json(n);
  });

  router.post('/runs/crons/bulk', async (req, res) => {
    const body = parse(CronBulkBody, req.body);
    res.json(await ops.bulk(bulkScope(body, userOf(res)), body.action, body.paused_reason ?? null));
  });

  router.post('/runs/crons/preview', async (req, res) => {
    const body = { ...parse(PreviewBody, req.body) };
    ({ schedule: body.schedule, timezone: body.timezone } = zonedSchedule(body.schedule, body.timezone));
    const schedule = scheduleOf(body.schedule, canonicalTimezone(body.timezone ?? null), config.CRON_ALLOW_SECONDS_SCHEDULE);
    const from = body.from ?? (await statementNow(pool));
    const times = upcomingTimes(schedule, { after: from, count: body.count });
    const jitter = body.jitter_seconds ?? 0;
    res.json({
      schedule: schedule.expression,
      timezone: schedule.timezone,
      description: describeSchedule(schedule.expression),
      from: from.toISOString(),
      jitter_seconds: jitter,
      next: fireTimes(schedule, times, { cron_id: null, jitter_seconds: jitter }),
    });
  });

  router.all(['/runs/crons/search', '/runs/crons/count', '/runs/crons/bulk', '/runs/crons/preview'], postOnly);

  router.get('/runs/crons/:cron_id', async (req, res) => {
    res.json(await ops.get(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.patch('/runs/crons/:cron_id', async (req, res) => {
    res.json(await ops.update(req, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.delete('/runs/crons/:cron_id', async (req, res) => {
    await ops.remove(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res));
    res.status(204).end();
  });

  router.post('/runs/crons/:cron_id/trigger', async (req, res) => {
    await ops.trigger(res, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res));
  });

  router.get('/runs/crons/:cron_id/occurrences', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { limit, offset } = parse(OccurrencesQuery, req.query, 'query');
    if (!(await getCron(pool, cronId, userOf(res)))) throw notFound(CRON_NOT_FOUND);
    const rows = await listOccurrences(pool, cronId, limit, offset);
    res.json(rows.map(toOccurrenceResponse));
  });

  router.get('/runs/crons/:cron_id/next', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { count, from } = parse(NextQuery, req.query, 'query');
    const cron = await getCron(pool, cronId, userOf(res));
    if (!cron) throw notFound(CRON_NOT_FOUND);
    const schedule = scheduleOf(cron.schedule, cron.timezone, true);
    // From the next fire: the stored next_run_date, or for a disabled cron what enabling it now
    // would set (null once finished: it fires nothing more).
    const first = shownNextRunDate(cron, await answerClock(pool, cron));
    const times = first === null ? [] : upcomingTimes(schedule, { first, after: from ?? null, count, endTime: cron.end_time });
    res.json({
      cron_id: cron.cron_id,
      schedule: cron.schedule,
      timezone: schedule.timezone,
      description: describeSchedule(cron.schedule),
      enabled: cron.enabled,
      jitter_seconds: cron.jitter_seconds,
      next: fireTimes(schedule, times, { cron_id: cron.cron_id, jitter_seconds: cron.jitter_seconds }),
    });
  });

  router.post('/runs/crons/:cron_id/backfill', async (req, res) => {
    res.json(await ops.backfill(req, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.post('/runs/crons/:cron_id/occurrences/:scheduled_for/retry', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { scheduled_for } = parse(OccurrencePath, { scheduled_for: req.params.scheduled_for }, 'path');
    await ops.retry(res, cronId, userOf(res), scheduled_for);
  });

  return router;
}
