import type { Pool, PoolClient } from '../db/index.ts';
import { prepared, retryConflicts, withTransaction } from '../db/index.ts';
import type { LimitSpec } from '../agents/index.ts';
import type { PgBoss } from '../queue/index.ts';
import {
  QUEUES,
  deleteWaitingRunJobs,
  parkRunJobs,
  queueSchemaOf,
  requeueRunJobs,
  runJobActiveSql,
  runJobDueSql,
  wakeThreadTurn,
  runJobActiveAtSql,
  runJobHeartbeatingSql,
  snoozeRunJobs,
  transactionDb,
  wakeParkedRuns,
} from '../queue/index.ts';
import { enqueueWebhooks } from '../webhooks/index.ts';
import { excerptOf } from './excerpt.ts';
import type { WebhookJob } from '../webhooks/index.ts';
import type { AttemptRecord } from './retry.ts';

// How a run lives and ends: claim, start, finish, cancel, hand back, the cron's outcome, the
// ephemeral thread's deletion and the webhook's enqueue. Every statement that writes runs after
// their creation is in this file; other modules call these functions and never write runs,
// their threads' status or the ledger's outcome themselves.
// The named exceptions, each with its reason: LIFECYCLE_EXEMPTIONS in ./owners.ts (checked by test/ownership.test.ts).
//
// LOCK ORDER. Every transaction that locks rows of several of these tables takes them in this
// order, and the rows of one table sorted by key (a locking SELECT ... ORDER BY key FOR UPDATE
// before a multi-row write, or one locking lookup per key in the order of an array sorted by key):
//
//   0. flow_limits       by name            (a limit's shared state: claims of its runs, a Retry-After pause)
//   1. crons             by cron_id         (the run's cron; a finish holds it FOR KEY SHARE only)
//   2. threads           by thread_id       (status, values; an ephemeral one is deleted)
//   3. runs              by run_id
//   4. cron_occurrences  by (cron_id, scheduled_for)   (the ledger row of the occurrence)
//   4b. cron_last_runs   by cron_id         (the cron's last_run_*, upserted after its ledger row)
//   5. pg-boss job rows  (inserted or completed last, through the same transaction)
//
// A finish holds its crons FOR KEY SHARE: enough that a cron is not deleted under it (its
// cron_last_runs row references it), and no conflict with a scheduler pass, which holds the crons
// it fires FOR NO KEY UPDATE. The cron's outcome (last_run_*) is written to cron_last_runs, never
// to the crons row (migrations/024): a finish never waits for a pass to commit (issue 21).
//
// The scheduler's pass (libs/crons/scheduler.ts), a backfill and the API's create and trigger hold
// their crons first and then only insert rows (fireOccurrences); a retry of an ended occurrence
// holds its cron, writes the thread, replaces the old run (clearEndedOccurrenceRun) with the new
// one, reopens the ledger row (reopenOccurrence), then inserts the job. Deleting a cron locks it
// first, then its ledger rows; deleting a thread or an assistant locks their crons first and ends
// their active runs here before the cascade (endRunsBeforeDelete). Pausing, changing or deleting
// a cron whose occurrences were fired ahead (CRON_LOOKAHEAD_MS) holds the cron, then withdraws
// them here in the same order: threads, runs (a claim that locked a run first has started it),
// ledger rows, jobs (withdrawUnstartedRuns). A pass that stops a cron on a schedule it cannot plan
// writes the cron's cron_last_runs row (4b) after its other rows.
// A claim parks a run refused for an older one of its thread (parkForTurnSql) on the rows it holds
// already (the thread, then the run), then its job; a finish wakes the thread's next run's job
// last (wakeThreadTurn), after its threads and runs.
// A claim of runs subject to limits (docs/flow-control.md) locks their flow_limits rows first, in
// name order, and only then their threads and runs; a retry whose provider sent Retry-After pauses
// its limits first too. flow_limit_slots rows are only written under their limit's row lock.
// What can still deadlock (a cascade's internal order) is retried whole by retryConflicts.
//
// RETRY. A worker's result may be a retry instead of an end (an attempt failed with a retryable
// error and its policy allows another): the run goes back to pending (waiting 'retry', not_before),
// the failed attempt is appended to attempt_log on the run and its ledger row, and its job goes
// back to the queue as a new attempt fetchable at not_before (snoozeRunJobs). Nothing else of the
// run's end happens: no outcome, no last_run_*, no webhook, no ephemeral deletion.
//
// FENCING. A claim sets runs.attempts to the pg-boss attempt that claimed it (retryCount + 1).
// A worker's result names that attempt: a worker whose claim was taken over (heartbeat expired,
// job retried elsewhere) finds attempts moved on and stores nothing. Completing the pg-boss job
// is fenced the same way (pg-boss's own attempt fence) and happens in the same transaction as
// the outcome, so a stored outcome and an acknowledged job never disagree.

export type RunStatus = 'pending' | 'running' | 'success' | 'error' | 'timeout' | 'interrupted';
export type EndStatus = Exclude<RunStatus, 'pending' | 'running'>;

export interface RunError {
  error: string;
  message: string;
}

export interface RunResult {
  run_id: string;
  status: EndStatus;
  output: unknown;
  error: RunError | null;
}

/** What a webhook reports of a run besides its result (read when the run was claimed or ended). */
export interface RunDetails {
  assistant_id: string;
  created_at: Date;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  /** The thread's values before this run ended. */
  values: unknown;
}

/** A pg-boss job as fetched: its id and the attempt it was fetched at. */
export interface JobAttempt {
  id: string;
  retryCount: number;
}

/** A result with what the claim already knew of its run, so finishing needs no extra read. */
export interface FinishedRun extends RunResult {
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  /** The claim this result belongs to (runs.attempts); null ends the run whoever holds it (cancel, dead letter, reaper). */
  attempt: number | null;
  /** The worker's job, completed in the finishing transaction. */
  job?: JobAttempt;
  /** Needed only to send the run's webhook (kwargs.webhook). */
  details?: RunDetails;
  /** Not an end: this attempt failed and the run is retried (see RETRY above). */
  retry?: RetryRequest;
  /** Limits whose concurrency slot this attempt held: ending it wakes a run parked on each. */
  limits?: string[];
}

/** A failed attempt to retry: when the next may start, and limits a provider's Retry-After pauses. */
export interface RetryRequest {
  delaySeconds: number;
  /** Limits paused until the provider's Retry-After (every run of them waits). */
  pause?: { limits: string[]; seconds: number };
}

/** A run as a claim hands it to the worker. */
export interface ClaimedRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  kwargs: { input?: unknown; config?: Record<string, unknown>; context?: Record<string, unknown>; webhook?: unknown };
  created_at: Date;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  started_at: Date;
  /** The fencing token: this claim's attempt number. */
  attempts: number;
  values: Record<string, unknown> | null;
  ephemeral: boolean;
  graph_id: string;
  assistant_config: Record<string, unknown>;
  assistant_context: Record<string, unknown>;
  /** The run's earlier attempts (null: this is its first). */
  attempt_log: AttemptRecord[] | null;
  /** The limits whose room this claim took (names; 'assistant:<id>' for config.max_concurrency). */
  limits: string[];
}

/** Told to the worker holding a run that was ended elsewhere (NOTIFY in the ending transaction). */
export const RUN_CANCEL_CHANNEL = 'agentcron_run_cancelled';
/** NOTIFY payloads are capped at 8000 bytes: 200 uuids with commas fit comfortably. */
export const CANCEL_NOTIFY_CHUNK = 200;

// ---- claim ------------------------------------------------------------------------------------

// Order 2: the kept threads of the runs about to be claimed (an ephemeral thread is not written).
const CLAIM_LOCK_THREADS = `
  SELECT t.thread_id FROM threads t
   WHERE t.thread_id IN (SELECT thread_id FROM runs WHERE run_id = ANY($1::uuid[])) AND NOT t.ephemeral
   ORDER BY t.thread_id
     FOR NO KEY UPDATE OF t`;

// A kept thread's runs start in the order they were created: a pending run is not claimed while
// an older pending run of its thread is due (its job fetchable now, or fetched and not yet
// claimed). pg-boss hands out one job of a group per fetch, but picks it by job id (= run id,
// random) among the jobs that fetch found, not by age. So a run refused for an older one is parked
// for its thread's turn (parkForTurnSql, in the claim's transaction): out of the fetches, until a
// run of its thread ends or goes back to wait for a retry (wakeThreadTurn in the finish wakes the
// oldest) or THREAD_TURN_BACKSTOP_SECONDS pass. An older run waiting for a retry's backoff, for
// room in a limit, or for a later start (after_seconds) does not hold the newer back, as before.
const olderRunDueSql = (schema: string) => `EXISTS (
             SELECT 1 FROM runs o
              WHERE o.thread_id = r.thread_id AND o.status = 'pending' AND (o.waiting IS NULL OR o.waiting = 'thread')
                AND (o.created_at, o.run_id) < (r.created_at, r.run_id)
                AND ${runJobDueSql(schema, 'o.run_id')})`;

/** A run parked for its thread's turn is fetchable again after this at the latest (if no wake came). */
const THREAD_TURN_BACKSTOP_SECONDS = 5;

// Runs of this claim's fetched jobs left pending behind an older due run of their kept thread (see
// above): parked for the thread's turn. Locked already (the claim's FOR UPDATE, in key order).
const parkForTurnSql = (schema: string) => `
  UPDATE runs r SET waiting = 'thread', updated_at = now()
   WHERE r.run_id = ANY($1::uuid[]) AND r.status = 'pending'
     AND NOT (SELECT t.ephemeral FROM threads t WHERE t.thread_id = r.thread_id)
     AND ${olderRunDueSql(schema)}
  RETURNING r.run_id`;

// Order 3 then 4. A run is claimed when pending, or when still running under an older attempt
// (its worker was lost and pg-boss retried the job); a finished, cancelled or deleted run is not.
// Runs that must not overlap (one kept thread; one buffer_one cron: the job's group) are claimed
// only while no other run of theirs is executing (running, its job held by a worker): pg-boss's
// group limit is checked on each fetch's snapshot, so two workers fetching at the same instant
// could each take one job of a group. The thread's row lock (or the cron's advisory lock) taken
// before this statement makes the second claimer wait and then see the first one's run. A run
// left running by a lost worker (its job waiting for a retry) does not hold the others back:
// pg-boss then serialises the group again, as it does for every job of it. The ledger row goes to
// running only from enqueued: a cancel that ended it first keeps its word.
// Each run is looked up and locked by its key, one index probe per fetched job (a LATERAL with
// LIMIT is always a nested loop): joined to the array, a stock planner preferred hashing whole
// tables, a full scan of runs and threads per claim that grew with them. The array is sorted by
// run_id, so the locks are taken in key order; the update then reads the locked rows by their
// ctid (a TID scan: `ctid = ANY (...)`; joining on ctid alone, the planner hashed the table).
const claimSql = (schema: string) => `
  WITH target AS (
    SELECT r.row_id, v.attempt
      FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS v(run_id, attempt, serial_cron)
     CROSS JOIN LATERAL (
       SELECT r.ctid AS row_id, r.run_id, r.thread_id, r.status, r.created_at FROM runs r
        WHERE r.run_id = v.run_id AND (r.status = 'pending' OR (r.status = 'running' AND r.attempts < v.attempt))
        LIMIT 1
          FOR UPDATE) r
     CROSS JOIN LATERAL (SELECT t.ephemeral FROM threads t WHERE t.thread_id = r.thread_id LIMIT 1) t
     WHERE (t.ephemeral OR NOT EXISTS (
             SELECT 1 FROM runs o
              WHERE o.thread_id = r.thread_id AND o.status = 'running' AND o.run_id <> r.run_id AND ${runJobActiveSql(schema, 'o.run_id')}))
       AND (t.ephemeral OR r.status <> 'pending' OR NOT ${olderRunDueSql(schema)})
       AND (v.serial_cron IS NULL OR NOT EXISTS (
             SELECT 1 FROM runs o
              WHERE o.cron_id = v.serial_cron AND o.status = 'running' AND o.run_id <> r.run_id AND ${runJobActiveSql(schema, 'o.run_id')}))
  ), claimed AS (
    UPDATE runs r
       SET status = 'running', started_at = now(), updated_at = now(), attempts = t.attempt, waiting = NULL, not_before = NULL
      FROM target t
     WHERE r.ctid = t.row_id AND r.ctid = ANY (ARRAY(SELECT row_id FROM target))
    RETURNING r.run_id, r.thread_id, r.assistant_id, r.cron_id, r.scheduled_for, r.kwargs, r.started_at,
              r.created_at, r.metadata, r.multitask_strategy, r.attempts, r.attempt_log
  ), busy AS (
    UPDATE threads t SET status = 'busy', updated_at = now()
      FROM (SELECT DISTINCT thread_id FROM claimed) c
     WHERE t.thread_id = c.thread_id AND NOT t.ephemeral
  ), ledger AS (
    SELECT o.cron_id, o.scheduled_for
      FROM cron_occurrences o JOIN claimed c ON o.cron_id = c.cron_id AND o.scheduled_for = c.scheduled_for
     WHERE o.status = 'enqueued'
     ORDER BY o.cron_id, o.scheduled_for
       FOR UPDATE OF o
  ), started AS (
    UPDATE cron_occurrences o SET status = 'running', started_at = now()
      FROM ledger l
     WHERE o.cron_id = l.cron_id AND o.scheduled_for = l.scheduled_for
  )
  SELECT c.*, t."values", t.ephemeral, a.graph_id, a.config AS assistant_config, a.context AS assistant_context
    FROM claimed c
    JOIN threads t USING (thread_id)
    JOIN assistants a USING (assistant_id)`;

// Claimers of one buffer_one cron's runs take turns (taken before any row lock; only claims take them).
const LOCK_SERIAL_CRON = `SELECT pg_advisory_xact_lock(hashtext('agentcron.serial:' || $1::text))`;

/** A fetched job to claim: its run, the attempt it was fetched at and its pg-boss group (serialize key). */
export interface ClaimRequest {
  run_id: string;
  attempt: number;
  group?: string | null;
  /** The job's retry count as fetched (its fence when parked on a limit). */
  retryCount?: number;
  /** The job's id (= run_id), when it is to be parked on a limit. */
  jobId?: string;
}

/** How claims apply deployment-wide limits: which limits a run is subject to, and when a slot lapses. */
export interface ClaimLimits {
  /** The limits of a run of this graph and assistant (its config.max_concurrency included); [] for none. */
  limitsOf(graphId: string, assistantId: string, assistantConfig: Record<string, unknown>): LimitSpec[];
  /** WORKER_HEARTBEAT_SECONDS: a slot whose run's job was not refreshed for this long no longer counts. */
  heartbeatSeconds: number;
}

/** What a claim came to: the runs claimed, and the runs parked to wait for room in a limit. */
export interface Claim {
  runs: ClaimedRun[];
  parked: Set<string>;
  /** When the parked runs' jobs are fetchable again (earliest first). */
  parkedUntil: Date[];
}

/** The group of a buffer_one cron's runs (libs/crons/fire.ts names it so): cron:<cron_id>. */
const serialCron = (group: string | null | undefined): string | null => (group?.startsWith('cron:') ? group.slice(5) : null);

/**
 * Claims the runs of fetched jobs in one transaction: each becomes running under the job's
 * attempt (retryCount + 1), its kept thread busy, its ledger row running. Runs subject to limits
 * are claimed only while every limit has room (admitLimited); the others are parked. Answers the
 * runs claimed and parked; a job whose run is in neither either has nothing to execute (its run
 * ended) or must wait for another run of its thread or cron (see `busy`).
 */
export async function claimRunsLimited(pool: Pool, queueSchema: string, jobs: ClaimRequest[], limits?: ClaimLimits): Promise<Claim> {
  if (jobs.length === 0) return { runs: [], parked: new Set(), parkedUntil: [] };
  const claim = claimSql(queueSchema);
  const crons = unique(jobs.flatMap((j) => serialCron(j.group) ?? []));
  return retryConflicts(() =>
    withTransaction(pool, async (client) => {
      for (const cron of crons) await client.query(LOCK_SERIAL_CRON, [cron]);
      const admission = limits ? await admitLimited(client, queueSchema, jobs, limits) : null;
      const admitted = admission ? jobs.filter((j) => !admission.parked.has(j.run_id)) : jobs;
      const sorted = [...admitted].sort((a, b) => cmp(a.run_id, b.run_id));
      const ids = sorted.map((j) => j.run_id);
      let runs: ClaimedRun[] = [];
      if (ids.length) {
        await client.query(prepared(client, CLAIM_LOCK_THREADS, [ids]));
        const { rows } = await client.query<Omit<ClaimedRun, 'limits'>>(
          prepared(client, claim, [ids, sorted.map((j) => j.attempt), sorted.map((j) => serialCron(j.group))]),
        );
        runs = rows.map((r) => ({ ...r, limits: admission?.limitsOf.get(r.run_id)?.map((l) => l.name) ?? [] }));
      }
      if (admission) await admission.commit(runs);
      const parked = new Set(admission?.parked.keys() ?? []);
      // Only a fetched job can be parked (the worker's claims name it; a bare claimRuns does not).
      const parkable = sorted.filter((j) => j.jobId).map((j) => j.run_id);
      if (ids.length > runs.length && parkable.length) {
        const { rows: behind } = await client.query<{ run_id: string }>(prepared(client, parkForTurnSql(queueSchema), [parkable]));
        const byRun = new Map(sorted.map((j) => [j.run_id, j]));
        const until = new Date(Date.now() + THREAD_TURN_BACKSTOP_SECONDS * 1000);
        const jobs = behind.map((r) => {
          const j = byRun.get(r.run_id)!;
          return { id: j.jobId!, retryCount: j.retryCount ?? j.attempt - 1, until };
        });
        await parkRunJobs(client, queueSchema, jobs);
        for (const r of behind) parked.add(r.run_id);
      }
      const waits = [...(admission?.parked.values() ?? [])].map((p) => p.until).sort((a, b) => a.getTime() - b.getTime());
      return { runs, parked, parkedUntil: waits.slice(0, 1) };
    }),
  );
}

/** claimRunsLimited without limits: the runs claimed. */
export async function claimRuns(pool: Pool, queueSchema: string, jobs: ClaimRequest[]): Promise<ClaimedRun[]> {
  return (await claimRunsLimited(pool, queueSchema, jobs)).runs;
}

// ---- limits (docs/flow-control.md) --------------------------------------------------------------

// What a claim needs to know of each fetched run to find its limits (no lock).
const LIMIT_SUBJECTS = `
  SELECT r.run_id, a.graph_id, r.assistant_id, a.config AS assistant_config, r.created_at, r.waiting, r.status
    FROM runs r JOIN assistants a USING (assistant_id)
   WHERE r.run_id = ANY($1::uuid[]) AND r.status IN ('pending', 'running')`;

// Order 0. Rows are made on first use; the definitions come from the configuration (per claim).
const ENSURE_LIMITS = `INSERT INTO flow_limits (name) SELECT n FROM unnest($1::text[]) AS n ORDER BY n ON CONFLICT (name) DO NOTHING`;
const LOCK_LIMITS = `
  SELECT name, paused_until, recent_starts, rate_cursor, now() AS now FROM flow_limits WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`;

// A slot counts while the attempt that took it is held by a live worker: its job active at that
// attempt, heartbeat fresh. Whatever the run's status: a cancelled or interrupted run's agent goes
// on executing until its worker aborts it (or the agent returns), and the worker's result frees the
// slot then (finishRunsIn). A lost worker's slots lapse within WORKER_HEARTBEAT_SECONDS, and at once
// when its job is fetched again as a new attempt (retry_count moved on): the new attempt's claim
// must find room like any other, never be held back by its own dead slot; a job handed back or
// snoozed is not active, so its slots lapse too (though hand back and finish free them themselves).
// Slots that lapsed are deleted here (under their limit's lock); the room the claim leaves wakes
// their waiters (admitLimited's commit).
const LAPSED_SLOTS = (schema: string) => `
  DELETE FROM flow_limit_slots s
   WHERE s.limit_name = ANY($1::text[])
     AND NOT ${runJobHeartbeatingSql(schema, 's.run_id', 's.attempt', '$2')}`;
const SLOTS_IN_USE = `SELECT limit_name, count(*)::int AS used FROM flow_limit_slots WHERE limit_name = ANY($1::text[]) GROUP BY limit_name`;

const TAKE_SLOTS = `
  INSERT INTO flow_limit_slots (limit_name, run_id, attempt)
  SELECT * FROM unnest($1::text[], $2::uuid[], $3::int[]) AS v(limit_name, run_id, attempt) ORDER BY 1, 2
  ON CONFLICT (limit_name, run_id) DO UPDATE SET attempt = EXCLUDED.attempt, acquired_at = now()`;

// Each rate-limited limit keeps its starts within its window, plus this claim's.
// Where the queue behind each rate-limited limit ends (see admitLimited).
const MOVE_CURSORS = `
  UPDATE flow_limits l SET rate_cursor = v.cursor, updated_at = now()
    FROM unnest($1::text[], $2::timestamptz[]) AS v(name, cursor)
   WHERE l.name = v.name`;

const RECORD_STARTS = `
  UPDATE flow_limits l
     SET recent_starts = coalesce((SELECT array_agg(t ORDER BY t) FROM unnest(l.recent_starts) AS t WHERE t > now() - make_interval(secs =>
       v.win_seconds)), '{}')
                         || array_fill(now(), ARRAY[v.n]),
         updated_at = now()
    FROM unnest($1::text[], $2::int[], $3::int[]) AS v(name, n, win_seconds)
   WHERE l.name = v.name`;

// Order 3, rows that are not already held by someone else (a cancel ending them, say): their
// reason is shown, the job is parked whatever (SKIP LOCKED, so parking never waits or deadlocks).
const PARK_RUNS = `
  UPDATE runs r SET waiting = v.waiting, not_before = v.until, updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(run_id, waiting, until)
   WHERE r.run_id = v.run_id
     AND r.run_id IN (SELECT run_id FROM runs WHERE run_id = ANY($1::uuid[]) AND status = 'pending' ORDER BY run_id FOR UPDATE SKIP LOCKED)`;

/**
 * A run parked on a full concurrency limit is woken when a slot is given back (a run of the limit
 * ends or goes to retry), and by a claim of the limit that leaves room (slots of lost workers it
 * found lapsed, a slot whose wake went to a run that could not start): runs whose jobs sleep are
 * woken, as many as there is room. A slot of a lost worker is given back by nobody: it lapses, and
 * the first claim of the limit after that finds it. So the oldest runs parked on a limit (as many
 * as it has slots) look again after half a heartbeat, and so do a lost worker's runs (no wake
 * reaches them), the others after a minute unless woken before: a lost slot is reused within
 * WORKER_HEARTBEAT_SECONDS, and a long queue behind a limit costs the database a few rows a
 * second, not all of it.
 */
const PARKED_LONG_MS = 60_000;

interface LimitSubject {
  run_id: string;
  graph_id: string;
  assistant_id: string;
  assistant_config: Record<string, unknown>;
  created_at: Date;
  waiting: string | null;
  /** 'running': a lost worker's run whose job came back as a new attempt. */
  status: string;
}

interface Admission {
  limitsOf: Map<string, LimitSpec[]>;
  /** Run id → why it waits ('limit:<name>') and until when. */
  parked: Map<string, { waiting: string; until: Date }>;
  /** After the claim: takes the slots and records the starts of the runs claimed, parks the others. */
  commit(claimed: ClaimedRun[]): Promise<void>;
}

/**
 * Decides, under the limits' row locks (order 0), which fetched runs may start: in the order they
 * were created (scheduled order), a run starts only while every limit it is subject to has room
 * (not paused, a concurrency slot free, a start left in its rate window); once a limit holds one
 * run back, later runs of it wait too. Null when no fetched run is subject to a limit.
 */
async function admitLimited(client: PoolClient, queueSchema: string, jobs: ClaimRequest[], limits: ClaimLimits): Promise<Admission | null> {
  const { rows: subjects } = await client.query<LimitSubject>(prepared(client, LIMIT_SUBJECTS, [jobs.map((j) => j.run_id)]));
  const limitsOf = new Map<string, LimitSpec[]>();
  for (const s of subjects) {
    const of = limits.limitsOf(s.graph_id, s.assistant_id, s.assistant_config ?? {});
    if (of.length) limitsOf.set(s.run_id, of);
  }
  if (limitsOf.size === 0) return null;
  const specs = new Map<string, LimitSpec>();
  for (const of of limitsOf.values()) for (const l of of) specs.set(l.name, l);
  const names = [...specs.keys()].sort(cmp);
  await client.query(ENSURE_LIMITS, [names]);
  const { rows: state } = await client.query<{ name: string; paused_until: Date | null; recent_starts: Date[]; rate_cursor: Date | null; now: Date }>(
    LOCK_LIMITS,
    [names],
  );
  await client.query(LAPSED_SLOTS(queueSchema), [names, limits.heartbeatSeconds]);
  const { rows: inUse } = await client.query<{ limit_name: string; used: number }>(SLOTS_IN_USE, [names]);
  const now = state[0]?.now ?? new Date();
  const used = new Map(inUse.map((r) => [r.limit_name, r.used]));
  // Slots held before this claim (the lapsed ones gone): with the slots it takes, what room it leaves.
  const held = new Map(used);
  const starts = new Map<string, number[]>();
  const paused = new Map<string, number>();
  for (const row of state) {
    const spec = specs.get(row.name)!;
    if (row.paused_until && row.paused_until.getTime() > now.getTime()) paused.set(row.name, row.paused_until.getTime());
    if (spec.rate) {
      const from = now.getTime() - spec.rate.per_seconds * 1000;
      starts.set(
        row.name,
        row.recent_starts
          .map((d) => d.getTime())
          .filter((t) => t > from)
          .sort((a, b) => a - b),
      );
    }
  }
  // A rate-limited limit's queue is a schedule (GCRA-like): its cursor is the instant the next run
  // refused by a full window may start, and each refused run takes the cursor's instant (or the
  // window's opening, when later) and moves it on by the limit's pace (per_seconds / runs). So
  // every waiting run has an instant of its own, in the order refused (scheduled order), and one
  // run comes due per step. A run refused at its own instant (woken from its park on this limit,
  // the start it replaces still a few ms in the window) goes back to the front: the opening.
  const cursors = new Map(state.flatMap((row) => (row.rate_cursor ? [[row.name, row.rate_cursor.getTime()] as const] : [])));
  const movedCursors = new Set<string>();
  // Why a limit has no room now for this run, and when it may have.
  const noRoom = (spec: LimitSpec, subject: LimitSubject): number | null => {
    const pause = paused.get(spec.name);
    if (pause !== undefined) return pause;
    if (spec.max_concurrency !== null && (used.get(spec.name) ?? 0) >= spec.max_concurrency) {
      // A lost worker's run (still running at its old attempt) is parked without runs.waiting,
      // so no slot given back wakes it: it looks again as soon as the oldest do.
      const soon = (parkedOn.get(spec.name) ?? 0) < spec.max_concurrency || subject.status === 'running';
      return now.getTime() + (soon ? (limits.heartbeatSeconds * 1000) / 2 : PARKED_LONG_MS);
    }
    if (spec.rate) {
      const s = starts.get(spec.name)!;
      if (s.length >= spec.rate.runs) {
        // Room again when the start that fills the window leaves it.
        const opening = s[s.length - spec.rate.runs] + spec.rate.per_seconds * 1000 + 1;
        if (subject.waiting === `limit:${spec.name}`) return opening;
        const at = Math.max(cursors.get(spec.name) ?? 0, opening);
        cursors.set(spec.name, at + (spec.rate.per_seconds * 1000) / spec.rate.runs);
        movedCursors.add(spec.name);
        return at;
      }
    }
    return null;
  };
  const startsBefore = new Map([...starts].map(([name, s]) => [name, s.length]));
  const parkedOn = new Map<string, number>();
  const parked = new Map<string, { waiting: string; until: Date }>();
  const byAge = subjects.filter((s) => limitsOf.has(s.run_id)).sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || cmp(a.run_id, b.run_id));
  for (const s of byAge) {
    let block: { name: string; until: number } | null = null;
    for (const spec of limitsOf.get(s.run_id)!) {
      // Once a limit held a run back, later runs of it wait too: runs start in scheduled order.
      const until = parkedOn.has(spec.name) ? (noRoom(spec, s) ?? now.getTime()) : noRoom(spec, s);
      if (until !== null) {
        block = { name: spec.name, until };
        break;
      }
    }
    if (block) {
      parkedOn.set(block.name, (parkedOn.get(block.name) ?? 0) + 1);
      parked.set(s.run_id, { waiting: `limit:${block.name}`, until: new Date(block.until) });
      continue;
    }
    for (const spec of limitsOf.get(s.run_id)!) {
      if (spec.max_concurrency !== null) used.set(spec.name, (used.get(spec.name) ?? 0) + 1);
      if (spec.rate) starts.get(spec.name)!.push(now.getTime());
    }
  }
  return {
    limitsOf,
    parked,
    async commit(claimed) {
      const slots = claimed.flatMap((r) => (limitsOf.get(r.run_id) ?? []).filter((l) => l.max_concurrency !== null).map((l) => ({ limit: l.name, run: r })));
      slots.sort((a, b) => cmp(a.limit, b.limit) || cmp(a.run.run_id, b.run.run_id));
      if (slots.length) await client.query(TAKE_SLOTS, [slots.map((x) => x.limit), slots.map((x) => x.run.run_id), slots.map((x) => x.run.attempts)]);
      const started = new Map<string, number>();
      for (const r of claimed) for (const l of limitsOf.get(r.run_id) ?? []) if (l.rate) started.set(l.name, (started.get(l.name) ?? 0) + 1);
      const rated = [...started.keys()].sort(cmp);
      if (rated.length) {
        await client.query(RECORD_STARTS, [rated, rated.map((n) => started.get(n)!), rated.map((n) => specs.get(n)!.rate!.per_seconds)]);
      }
      const moved = [...movedCursors].sort(cmp);
      if (moved.length) await client.query(MOVE_CURSORS, [moved, moved.map((n) => new Date(cursors.get(n)!))]);
      const waiting = [...parked.entries()].sort((a, b) => cmp(a[0], b[0]));
      if (waiting.length) {
        await client.query(PARK_RUNS, [waiting.map(([id]) => id), waiting.map(([, p]) => p.waiting), waiting.map(([, p]) => p.until)]);
        const fetched = new Map(jobs.map((j) => [j.run_id, j]));
        await parkRunJobs(
          client,
          queueSchema,
          waiting.map(([id, p]) => ({
            id: fetched.get(id)!.jobId ?? id,
            retryCount: fetched.get(id)!.retryCount ?? fetched.get(id)!.attempt - 1,
            until: p.until,
          })),
        );
      }
      // Room this claim leaves in a concurrency limit: slots of lost workers it found lapsed and
      // did not take, or a slot given back whose wake went to a run that cannot start (its
      // thread's or cron's turn has not come, another limit is full). As many runs sleeping parked
      // on the limit may start now (never more than its rate lets start). Only sleeping runs are
      // woken (wakeParkedRuns) and only for room that is there: a long queue behind a full limit
      // is not looked at; a run woken for the same room and not fetched yet may make one more
      // start to look, which parks again.
      const room = new Map<string, number>();
      for (const [name, spec] of specs) {
        if (spec.max_concurrency === null || paused.has(name)) continue;
        const taken = slots.filter((x) => x.limit === name).length;
        let n = spec.max_concurrency - (held.get(name) ?? 0) - taken;
        if (spec.rate) n = Math.min(n, spec.rate.runs - startsBefore.get(name)! - (started.get(name) ?? 0));
        if (n > 0) room.set(name, n);
      }
      if (room.size) await wakeParkedRuns(client, queueSchema, room);
    },
  };
}

// Of fetched runs not claimed: those still waiting to run (another run of their thread or cron is running).
const WAITING = `SELECT run_id FROM runs WHERE run_id = ANY($1::uuid[]) AND status = 'pending'`;

/** Of these runs (not claimed), the ones that are still pending: they wait for their turn, the others ended. */
export async function pendingOf(pool: Pool, runIds: string[]): Promise<Set<string>> {
  if (runIds.length === 0) return new Set();
  const { rows } = await pool.query<{ run_id: string }>(prepared(pool, WAITING, [runIds]));
  return new Set(rows.map((r) => r.run_id));
}

// ---- finish -----------------------------------------------------------------------------------

// KEY SHARE: see the LOCK ORDER above. Answers the crons still there (a deleted cron has no outcome to write).
const LOCK_CRONS = `SELECT cron_id FROM crons WHERE cron_id = ANY($1::uuid[]) ORDER BY cron_id FOR KEY SHARE`;
// FOR UPDATE, not NO KEY: an ephemeral thread is deleted in this transaction.
const LOCK_THREADS = `SELECT thread_id FROM threads WHERE thread_id = ANY($1::uuid[]) ORDER BY thread_id FOR UPDATE`;
const LOCK_RUNS = `
  SELECT run_id, status, attempts FROM runs WHERE run_id = ANY($1::uuid[]) ORDER BY run_id FOR UPDATE`;

const FINISH_RUNS = `
  UPDATE runs r
     SET status = v.status, output = v.output, error = v.error, ended_at = now(), updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[]) AS v(run_id, status, output, error)
   WHERE r.run_id = v.run_id`;

// The thread takes the run's output as its values; it is busy while another run of it is still going.
const SETTLE_THREADS = `
  UPDATE threads t
     SET "values" = CASE WHEN v.status = 'success' THEN v.output ELSE t."values" END,
         status = CASE
           WHEN EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = t.thread_id AND o.status = 'running') THEN 'busy'
           WHEN v.status = 'success' THEN 'idle'
           WHEN v.status = 'interrupted' THEN 'interrupted'
           ELSE 'error' END,
         updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS v(thread_id, status, output)
   WHERE t.thread_id = v.thread_id`;

// Only an occurrence still open is settled; a late result after a cancel changes nothing. The row
// keeps excerpts of the run's final values and error (excerpt.ts), which outlive its thread. Each
// row is found by its key (LATERAL ... LIMIT: an index probe, never a scan of the ledger) and
// locked there, in the order of the arrays, which the caller sorts by (cron_id, scheduled_for).
// The ledger is partitioned by scheduled_for (migrations 019-020): a ctid is unique only within a
// partition, so a row is updated by (tableoid, ctid), never by ctid alone (which would also
// update the rows at the same ctid of every other partition).
const SETTLE_LEDGER = `
  WITH target AS (
    SELECT o.part, o.row_id, v.*
      FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::timestamptz[],
                  $6::text[], $7::boolean[], $8::text[], $9::boolean[])
           AS v(cron_id, scheduled_for, status, error, started_at, output_excerpt, output_truncated, error_excerpt, error_truncated)
     CROSS JOIN LATERAL (
       SELECT o.tableoid AS part, o.ctid AS row_id FROM cron_occurrences o
        WHERE o.cron_id = v.cron_id AND o.scheduled_for = v.scheduled_for AND o.status IN ('enqueued', 'running')
        LIMIT 1
          FOR UPDATE) o
  )
  UPDATE cron_occurrences o
     SET status = t.status, error = t.error, started_at = coalesce(t.started_at, o.started_at), ended_at = now(),
         output_excerpt = t.output_excerpt, output_truncated = t.output_truncated,
         error_excerpt = t.error_excerpt, error_truncated = t.error_truncated
    FROM target t
   WHERE o.tableoid = t.part AND o.ctid = t.row_id AND o.ctid = ANY (ARRAY(SELECT row_id FROM target))
     AND o.scheduled_for = ANY (ARRAY(SELECT scheduled_for FROM target))
  RETURNING o.cron_id, o.scheduled_for`;

// Order 4b: a newer occurrence's outcome is never overwritten by an older one's. One row per
// cron, in cron_id order (the arrays' order); their crons are held FOR KEY SHARE (LOCK_CRONS).
const SETTLE_LAST_RUNS = `
  INSERT INTO cron_last_runs AS l (cron_id, last_run_at, last_run_status, last_run_error, last_run_id, last_run_scheduled_for)
  SELECT v.cron_id, coalesce(v.started_at, now()), v.status, v.error, v.run_id, v.scheduled_for
    FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::timestamptz[])
         AS v(cron_id, run_id, scheduled_for, status, error, started_at)
  ON CONFLICT (cron_id) DO UPDATE
     SET last_run_at = EXCLUDED.last_run_at, last_run_status = EXCLUDED.last_run_status, last_run_error = EXCLUDED.last_run_error,
         last_run_id = EXCLUDED.last_run_id, last_run_scheduled_for = EXCLUDED.last_run_scheduled_for
   WHERE l.last_run_scheduled_for IS NULL OR l.last_run_scheduled_for <= EXCLUDED.last_run_scheduled_for`;

// Sorted and locked (LOCK_THREADS) already; the cascade removes their runs and checkpoints.
const DELETE_EPHEMERAL = `DELETE FROM threads WHERE thread_id = ANY($1::uuid[]) AND ephemeral`;

/**
 * Ends runs in the caller's transaction and answers those it ended. A result is stored only if
 * its run is still pending or running and, for a worker's result, still held by the attempt that
 * produced it; anything else (a late result after a cancel, an attempt superseded by a retry)
 * changes nothing and sends nothing. A run on a kept thread is updated and its thread takes the
 * output as values; a run on an ephemeral thread is not written: the thread is deleted with it.
 * Cron runs settle their ledger row and the cron's last_run_* (cron_last_runs). Runs with a
 * webhook get its delivery enqueued. Worker jobs are completed (fenced to their attempt) in the same transaction.
 */
export async function finishRunsIn(client: PoolClient, boss: PgBoss, results: FinishedRun[]): Promise<FinishedRun[]> {
  if (results.length === 0) return [];
  const sorted = [...results].sort((a, b) => cmp(a.run_id, b.run_id));
  const retries = sorted.filter((r) => r.retry);
  const ends = sorted.filter((r) => !r.retry);
  // 0: limits a provider's Retry-After pauses.
  await pauseLimits(client, retries);
  // 1-3: crons, threads, runs, each sorted. A retry writes neither its cron's outcome nor its thread.
  const cronIds = unique(ends.flatMap((r) => (r.cron_id ? [r.cron_id] : [])));
  const crons = cronIds.length
    ? new Set((await client.query<{ cron_id: string }>(prepared(client, LOCK_CRONS, [cronIds]))).rows.map((r) => r.cron_id))
    : new Set<string>();
  if (ends.length) await client.query(prepared(client, LOCK_THREADS, [unique(ends.map((r) => r.thread_id))]));
  const { rows: held } = await client.query<{ run_id: string; status: string; attempts: number }>(prepared(client, LOCK_RUNS, [sorted.map((r) => r.run_id)]));
  const live = new Map(held.map((r) => [r.run_id, r]));
  const holds = (r: FinishedRun): boolean => {
    const row = live.get(r.run_id);
    if (!row) return false;
    // A worker's result: only while its own claim holds the run.
    if (r.attempt !== null) return row.status === 'running' && row.attempts === r.attempt;
    return row.status === 'pending' || row.status === 'running';
  };
  const ended = ends.filter(holds);
  const retried = retries.filter(holds);

  const kept = ended.filter((r) => !r.ephemeral);
  if (kept.length) {
    await client.query(
      prepared(client, FINISH_RUNS, [
        kept.map((r) => r.run_id),
        kept.map((r) => r.status),
        kept.map((r) => jsonOrNull(r.output)),
        kept.map((r) => (r.error ? JSON.stringify(r.error) : null)),
      ]),
    );
    // One row per thread: the last result wins (runs on one thread are serialised anyway).
    const threads = new Map(kept.map((r) => [r.thread_id, r]));
    await client.query(
      prepared(client, SETTLE_THREADS, [
        [...threads.keys()],
        [...threads.values()].map((r) => r.status),
        [...threads.values()].map((r) => (r.status === 'success' ? JSON.stringify(r.output ?? null) : null)),
      ]),
    );
  }
  await retryRunsIn(client, retried);
  await settleOutcomes(client, ended, crons);
  await enqueueWebhooks(client, boss, await webhookJobs(client, ended));
  const ephemeral = unique(ended.filter((r) => r.ephemeral).map((r) => r.thread_id));
  if (ephemeral.length) await client.query(prepared(client, DELETE_EPHEMERAL, [ephemeral]));
  // 5: the jobs of the worker's results, whether stored or found already ended: either way this
  // attempt has nothing left to do. So too a retry whose run was ended meanwhile (a cancel, an
  // interrupt): left active, its job would hold the run's thread or cron until its heartbeat
  // lapsed, then come back as a lost worker's. A job whose attempt moved on is not touched
  // (pg-boss's fence). A retried run's job goes back to the queue instead, fetchable after its backoff.
  const jobs = sorted.filter((r) => !r.retry || !holds(r)).flatMap((r) => (r.job ? [r.job] : []));
  if (jobs.length) await boss.complete(QUEUES.run, jobs, null, { db: transactionDb(client) });
  const schema = queueSchemaOf(boss);
  const snoozed = retried.flatMap((r) => (r.job ? [{ id: r.job.id, retryCount: r.job.retryCount, delaySeconds: r.retry!.delaySeconds }] : []));
  await snoozeRunJobs(client, schema, snoozed);
  // Limits whose slots these runs held: the slots are given back and as many runs parked on them
  // may start now. A worker's result frees its attempt's slots whether or not the run was still
  // its own (a cancel ended it meanwhile, its agent executed until now). An end without one (a
  // cancel, a reaper) may have held any, but leaves those of an attempt still executing: its
  // worker's result frees them when the agent stops (or they lapse with the worker's heartbeat).
  const freeing = [...sorted.filter((r) => r.attempt !== null && r.limits?.length), ...ended.filter((r) => r.attempt === null)];
  await freeSlots(client, schema, freeing);
  // The turn of each kept thread passes on: its oldest run parked for it may be fetched now.
  await wakeThreadTurn(client, schema, unique([...ended, ...retried].filter((r) => !r.ephemeral).map((r) => r.thread_id)));
  return ended;
}

// A run's slots end with its attempt (a lost worker's lapse at the next claim of their limit instead).
// attempt NULL: any attempt's, except one whose job is still active at it (its agent executing).
const FREE_SLOTS = (schema: string) => `
  DELETE FROM flow_limit_slots s
   USING unnest($1::uuid[], $2::int[]) AS v(run_id, attempt)
   WHERE s.run_id = v.run_id
     AND (s.attempt = v.attempt OR (v.attempt IS NULL AND NOT ${runJobActiveAtSql(schema, 's.run_id', 's.attempt')}))
  RETURNING s.limit_name`;

/** Frees the slots of these runs' attempts (FREE_SLOTS) and wakes as many runs parked on their limits. */
async function freeSlots(client: PoolClient, schema: string, runs: { run_id: string; attempt: number | null }[]): Promise<void> {
  if (runs.length === 0) return;
  const sorted = [...runs].sort((a, b) => cmp(a.run_id, b.run_id));
  const { rows } = await client.query<{ limit_name: string }>(
    prepared(client, FREE_SLOTS(schema), [sorted.map((r) => r.run_id), sorted.map((r) => r.attempt)]),
  );
  const freed = new Map<string, number>();
  for (const r of rows) freed.set(r.limit_name, (freed.get(r.limit_name) ?? 0) + 1);
  await wakeParkedRuns(client, schema, freed);
}

// ---- retry (see RETRY above) --------------------------------------------------------------------

const PAUSE_LIMITS = `
  UPDATE flow_limits SET paused_until = greatest(coalesce(paused_until, now()), now() + make_interval(secs => v.seconds)), updated_at = now()
    FROM unnest($1::text[], $2::float8[]) AS v(name, seconds)
   WHERE flow_limits.name = v.name`;

/** Order 0: a provider asked for a pause (Retry-After): every run of the attempt's limits waits until then. */
async function pauseLimits(client: PoolClient, retries: FinishedRun[]): Promise<void> {
  const pause = new Map<string, number>();
  for (const r of retries) for (const l of r.retry?.pause?.limits ?? []) pause.set(l, Math.max(pause.get(l) ?? 0, r.retry!.pause!.seconds));
  const names = [...pause.keys()].sort(cmp);
  if (names.length) await client.query(PAUSE_LIMITS, [names, names.map((n) => pause.get(n)!)]);
}

// Order 3 (locked by LOCK_RUNS): back to pending, the failed attempt appended to attempt_log.
const RETRY_RUNS = `
  UPDATE runs r
     SET status = 'pending', started_at = NULL, updated_at = now(), waiting = 'retry',
         not_before = now() + make_interval(secs => v.delay),
         attempt_log = coalesce(r.attempt_log, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
           'attempt', coalesce(jsonb_array_length(r.attempt_log), 0) + 1,
           'started_at', r.started_at, 'ended_at', now(), 'status', v.status, 'error', v.error,
           'retry_at', now() + make_interval(secs => v.delay)))
    FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::jsonb[]) AS v(run_id, delay, status, error)
   WHERE r.run_id = v.run_id
  RETURNING r.run_id, r.cron_id, r.scheduled_for, r.attempt_log -> -1 AS entry`;

// Order 4: the occurrence is enqueued again; its ledger row keeps the attempt. Rows found by key
// in the order of the arrays (sorted by (cron_id, scheduled_for)).
const RETRY_LEDGER = `
  WITH target AS (
    SELECT o.part, o.row_id, v.entry, v.scheduled_for
      FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) AS v(cron_id, scheduled_for, entry)
     CROSS JOIN LATERAL (
       SELECT o.tableoid AS part, o.ctid AS row_id FROM cron_occurrences o
        WHERE o.cron_id = v.cron_id AND o.scheduled_for = v.scheduled_for AND o.status = 'running'
        LIMIT 1
          FOR UPDATE) o
  )
  UPDATE cron_occurrences o
     SET status = 'enqueued', started_at = NULL, attempt_log = coalesce(o.attempt_log, '[]'::jsonb) || jsonb_build_array(t.entry)
    FROM target t
   WHERE o.tableoid = t.part AND o.ctid = t.row_id AND o.ctid = ANY (ARRAY(SELECT row_id FROM target))
     AND o.scheduled_for = ANY (ARRAY(SELECT scheduled_for FROM target))`;

/** Writes the retries of runs this transaction holds (sorted): runs, then their ledger rows. */
async function retryRunsIn(client: PoolClient, retried: FinishedRun[]): Promise<void> {
  if (retried.length === 0) return;
  const { rows } = await client.query<{ run_id: string; cron_id: string | null; scheduled_for: Date | null; entry: unknown }>(RETRY_RUNS, [
    retried.map((r) => r.run_id),
    retried.map((r) => r.retry!.delaySeconds),
    retried.map((r) => r.status),
    retried.map((r) => (r.error ? JSON.stringify(r.error) : null)),
  ]);
  const ledger = rows
    .filter((r) => r.cron_id && r.scheduled_for)
    .sort((a, b) => cmp(a.cron_id!, b.cron_id!) || a.scheduled_for!.getTime() - b.scheduled_for!.getTime());
  if (ledger.length) {
    await client.query(RETRY_LEDGER, [ledger.map((r) => r.cron_id), ledger.map((r) => r.scheduled_for), ledger.map((r) => JSON.stringify(r.entry))]);
  }
}

/** The ledger rows and crons of cron runs that just ended. */
async function settleOutcomes(client: PoolClient, ended: FinishedRun[], crons: Set<string>): Promise<void> {
  const outcomes = ended
    .filter((r) => r.cron_id && r.scheduled_for)
    .sort((a, b) => cmp(a.cron_id!, b.cron_id!) || a.scheduled_for!.getTime() - b.scheduled_for!.getTime());
  if (outcomes.length === 0) return;
  // Excerpts in JS, never failing (excerpt.ts): text within LEDGER_OUTPUT_EXCERPT_BYTES, no NUL, no lone surrogate.
  const outputs = outcomes.map((o) => excerptOf(o.output));
  const errors = outcomes.map((o) => excerptOf(o.error));
  const { rows: settled } = await client.query<{ cron_id: string; scheduled_for: Date }>(
    prepared(client, SETTLE_LEDGER, [
      outcomes.map((o) => o.cron_id),
      outcomes.map((o) => o.scheduled_for),
      outcomes.map((o) => o.status),
      outcomes.map((o) => (o.error ? o.error.message : null)),
      outcomes.map((o) => o.started_at),
      outputs.map((e) => e?.text ?? null),
      outputs.map((e) => e?.truncated ?? false),
      errors.map((e) => e?.text ?? null),
      errors.map((e) => e?.truncated ?? false),
    ]),
  );
  // One row per cron (its newest occurrence): an INSERT ... ON CONFLICT may not touch a row twice.
  // Only crons still there (held by LOCK_CRONS): a deleted one's row would break its foreign key.
  const open = new Set(settled.map((r) => `${r.cron_id}@${r.scheduled_for.getTime()}`));
  const newest = new Map<string, FinishedRun>();
  for (const o of outcomes) {
    if (!open.has(`${o.cron_id}@${o.scheduled_for!.getTime()}`) || !crons.has(o.cron_id!)) continue;
    const seen = newest.get(o.cron_id!);
    if (!seen || seen.scheduled_for!.getTime() <= o.scheduled_for!.getTime()) newest.set(o.cron_id!, o);
  }
  const latest = [...newest.values()];
  if (latest.length === 0) return;
  await client.query(
    prepared(client, SETTLE_LAST_RUNS, [
      latest.map((o) => o.cron_id),
      latest.map((o) => o.run_id),
      latest.map((o) => o.scheduled_for),
      latest.map((o) => o.status),
      latest.map((o) => (o.error ? o.error.message : null)),
      latest.map((o) => o.started_at),
    ]),
  );
}

const hasWebhook = (r: FinishedRun): boolean => typeof r.details?.kwargs.webhook === 'string';

/** The webhook deliveries of runs that just ended: the whole Run, since its thread may be gone when it is sent. */
async function webhookJobs(client: PoolClient, ended: FinishedRun[]): Promise<WebhookJob[]> {
  const withHook = ended.filter(hasWebhook);
  if (withHook.length === 0) return [];
  // The time the runs were ended at: FINISH_RUNS wrote now() too, the transaction's start.
  const { rows } = await client.query<{ now: Date }>(`SELECT now() AS now`);
  const endedAt = rows[0].now.toISOString();
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return withHook.map((r) => {
    const d = r.details!;
    return {
      url: d.kwargs.webhook as string,
      run: {
        run_id: r.run_id,
        thread_id: r.thread_id,
        assistant_id: d.assistant_id,
        created_at: d.created_at.toISOString(),
        updated_at: endedAt,
        status: r.status,
        metadata: d.metadata,
        multitask_strategy: d.multitask_strategy,
        kwargs: d.kwargs,
        cron_id: r.cron_id,
        scheduled_for: iso(r.scheduled_for),
        run_started_at: iso(r.started_at),
        run_ended_at: endedAt,
        values: r.status === 'success' ? (r.output ?? null) : (d.values ?? null),
        error: r.error,
      },
    };
  });
}

/** finishRunsIn in a transaction of its own, retried whole on a deadlock or serialization failure. */
export function finishRuns(pool: Pool, boss: PgBoss, results: FinishedRun[]): Promise<FinishedRun[]> {
  if (results.length === 0) return Promise.resolve([]);
  return retryConflicts(() => withTransaction(pool, (client) => finishRunsIn(client, boss, results)));
}

// ---- end without a worker's result: cancel, dead letter, reaper, deletion ----------------------

/** How runs end without a worker's result: a status and error, and an output only when one was kept (a result held on its job). */
export type EndOutcome = Pick<RunResult, 'status' | 'error'> & { output?: unknown };

// What ending a run without its worker's result needs to know of it, webhook details included.
const ENDABLE_RUNS = `
  SELECT r.run_id, r.thread_id, t.ephemeral, r.cron_id, r.scheduled_for, r.started_at,
         r.assistant_id, r.created_at, r.metadata, r.multitask_strategy, r.kwargs, t."values"
    FROM runs r JOIN threads t USING (thread_id)
   WHERE r.run_id = ANY($1::uuid[]) AND r.status IN ('pending', 'running')`;

interface EndableRow extends RunDetails {
  run_id: string;
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
}

/**
 * Ends runs that no worker result is at hand for, with the same outcome each, in the caller's
 * transaction; runs already ended are left alone. The worker holding any of them is told on
 * commit (NOTIFY) and aborts its agent. Answers the runs ended.
 */
export async function endRunsIn(client: PoolClient, boss: PgBoss, runIds: string[], outcome: EndOutcome): Promise<string[]> {
  if (runIds.length === 0) return [];
  const { rows } = await client.query<EndableRow>(ENDABLE_RUNS, [runIds]);
  const ended = await finishRunsIn(
    client,
    boss,
    rows.map((r) => ({
      run_id: r.run_id,
      thread_id: r.thread_id,
      ephemeral: r.ephemeral,
      cron_id: r.cron_id,
      scheduled_for: r.scheduled_for,
      started_at: r.started_at,
      attempt: null,
      status: outcome.status,
      error: outcome.error,
      output: outcome.output ?? null,
      details: {
        assistant_id: r.assistant_id,
        created_at: r.created_at,
        metadata: r.metadata,
        multitask_strategy: r.multitask_strategy,
        kwargs: r.kwargs,
        values: r.values,
      },
    })),
  );
  const ids = ended.map((r) => r.run_id);
  for (let i = 0; i < ids.length; i += CANCEL_NOTIFY_CHUNK) {
    await client.query(`SELECT pg_notify($1, $2)`, [RUN_CANCEL_CHANNEL, ids.slice(i, i + CANCEL_NOTIFY_CHUNK).join(',')]);
  }
  return ids;
}

/** endRunsIn in a transaction of its own (dead-lettered jobs, the stale run reaper). */
export function endRuns(pool: Pool, boss: PgBoss, runIds: string[], outcome: EndOutcome): Promise<string[]> {
  if (runIds.length === 0) return Promise.resolve([]);
  return retryConflicts(() => withTransaction(pool, (client) => endRunsIn(client, boss, runIds, outcome)));
}

export type CancelAction = 'interrupt' | 'rollback';

/**
 * Ends runs as interrupted (the API's cancel, multitask interrupt/rollback). A pending run is then
 * skipped by the worker that fetches its job; a running run's worker is told on commit and aborts
 * its agent, and its late result is discarded. `rollback` also deletes the runs. `by` says who
 * cancelled, for the run's error message. Answers the runs ended.
 */
export function cancelRuns(pool: Pool, boss: PgBoss, runIds: string[], action: CancelAction, by = 'through the API'): Promise<string[]> {
  if (runIds.length === 0) return Promise.resolve([]);
  return retryConflicts(() =>
    withTransaction(pool, async (client) => {
      const ended = await endRunsIn(client, boss, runIds, { status: 'interrupted', error: { error: 'Cancelled', message: `cancelled (${action}) ${by}` } });
      if (action === 'rollback') {
        // Locked in order by endRunsIn already (runs after their crons and threads).
        await client.query(`DELETE FROM runs WHERE run_id = ANY($1::uuid[])`, [[...runIds].sort(cmp)]);
      }
      return ended;
    }),
  );
}

// Crons a deletion cascades to or whose runs it ends: locked first (order 1), before the thread
// or assistant row the caller deletes next, so the cascade never waits on a cron while holding
// what a scheduler pass or a finishing worker needs.
const DELETE_SCOPE_CRONS = `
  SELECT cron_id FROM crons
   WHERE ($1::uuid IS NOT NULL AND thread_id = $1) OR ($2::uuid IS NOT NULL AND assistant_id = $2)
      OR cron_id IN (SELECT cron_id FROM runs
                      WHERE status IN ('pending', 'running') AND cron_id IS NOT NULL
                        AND (($1::uuid IS NOT NULL AND thread_id = $1) OR ($2::uuid IS NOT NULL AND assistant_id = $2)))
   ORDER BY cron_id
     FOR UPDATE`;
const DELETE_SCOPE_ACTIVE_RUNS = `
  SELECT run_id FROM runs
   WHERE status IN ('pending', 'running')
     AND (($1::uuid IS NOT NULL AND thread_id = $1) OR ($2::uuid IS NOT NULL AND assistant_id = $2))`;

/**
 * Before the caller deletes a thread or an assistant in this transaction: locks the crons the
 * deletion reaches (in lock order) and ends the runs still going there as interrupted, with a
 * reason, so their ledger rows and crons say what became of them and their workers stop.
 */
export async function endRunsBeforeDelete(
  client: PoolClient,
  boss: PgBoss,
  scope: { thread_id?: string; assistant_id?: string },
  why: string,
): Promise<string[]> {
  const params = [scope.thread_id ?? null, scope.assistant_id ?? null];
  await client.query(DELETE_SCOPE_CRONS, params);
  const { rows } = await client.query<{ run_id: string }>(DELETE_SCOPE_ACTIVE_RUNS, params);
  return endRunsIn(
    client,
    boss,
    rows.map((r) => r.run_id),
    { status: 'interrupted', error: { error: 'Cancelled', message: why } },
  );
}

// ---- an occurrence fired ahead, withdrawn before its instant (libs/crons/ahead.ts) -----------

// A run of these crons not yet at its instant: only an occurrence fired ahead has one (a trigger,
// a create or a backfill fires at or before now). clock_timestamp(): re-read when a row lock was
// waited for, so a run claimed meanwhile (running) or whose instant came is not taken.
const UNSTARTED = `r.cron_id = ANY($1::uuid[]) AND r.status = 'pending' AND r.scheduled_for > clock_timestamp()`;
// Order 2: their threads (each the occurrence's own fresh thread).
const LOCK_UNSTARTED_THREADS = `
  SELECT t.thread_id FROM threads t
   WHERE t.thread_id IN (SELECT r.thread_id FROM runs r WHERE ${UNSTARTED})
   ORDER BY t.thread_id
     FOR UPDATE OF t`;
// Order 3: the runs, checked again under their lock (a claim that locked one first has started it).
const LOCK_UNSTARTED_RUNS = `
  SELECT r.run_id, r.thread_id, r.cron_id, r.scheduled_for FROM runs r
   WHERE ${UNSTARTED}
   ORDER BY r.run_id
     FOR UPDATE OF r`;
// Order 4: their ledger rows (enqueued, never started), locked by key before the delete.
const DELETE_WITHDRAWN_LEDGER = `
  DELETE FROM cron_occurrences o
   WHERE (o.cron_id, o.scheduled_for) IN (
           SELECT x.cron_id, x.scheduled_for FROM cron_occurrences x
             JOIN unnest($1::uuid[], $2::timestamptz[]) AS v(cron_id, scheduled_for)
               ON x.cron_id = v.cron_id AND x.scheduled_for = v.scheduled_for
            WHERE x.status = 'enqueued'
            ORDER BY x.cron_id, x.scheduled_for
              FOR UPDATE OF x)
     AND o.status = 'enqueued'`;
// The threads go with their runs (the foreign key's cascade, rows already locked).
const DELETE_WITHDRAWN_THREADS = `DELETE FROM threads WHERE thread_id = ANY($1::uuid[])`;

/** An occurrence withdrawn: its cron and instant. */
export interface WithdrawnOccurrence {
  cron_id: string;
  scheduled_for: Date;
}

/**
 * Withdraws the occurrences of these crons that were fired ahead of their instant and have not
 * reached it (CRON_LOOKAHEAD_MS): each one's run (pending), its fresh thread, its ledger row and
 * its pg-boss job are deleted, as if never fired. The caller's transaction holds the crons' row
 * locks (order 1) and moves their next_run_date back (libs/crons/ahead.ts). A run a worker
 * claimed first (it locked the run first, at its instant) has started and stays. Answers the
 * occurrences withdrawn.
 */
export async function withdrawUnstartedRuns(client: PoolClient, boss: PgBoss, cronIds: string[]): Promise<WithdrawnOccurrence[]> {
  if (cronIds.length === 0) return [];
  await client.query(LOCK_UNSTARTED_THREADS, [cronIds]);
  const { rows } = await client.query<{ run_id: string; thread_id: string; cron_id: string; scheduled_for: Date }>(LOCK_UNSTARTED_RUNS, [cronIds]);
  if (rows.length === 0) return [];
  await client.query(DELETE_WITHDRAWN_LEDGER, [rows.map((r) => r.cron_id), rows.map((r) => r.scheduled_for)]);
  await deleteWaitingRunJobs(
    client,
    queueSchemaOf(boss),
    rows.map((r) => r.run_id),
  );
  await client.query(DELETE_WITHDRAWN_THREADS, [rows.map((r) => r.thread_id)]);
  return rows.map((r) => ({ cron_id: r.cron_id, scheduled_for: r.scheduled_for }));
}

// ---- a retried occurrence (libs/crons/retry.ts) ---------------------------------------------

// The ended run of an occurrence's attempt before, if a kept thread still holds it (order 3).
const LOCK_OCCURRENCE_RUNS = `SELECT run_id, status FROM runs WHERE cron_id = $1 AND scheduled_for = $2 ORDER BY run_id FOR UPDATE`;

/**
 * Before a retry inserts the occurrence's new run (same cron_id and scheduled_for: runs stay one
 * per occurrence), in the caller's transaction, which holds the cron's row lock: locks the run of
 * the attempt before, if it still exists, and deletes it. Answers the status of a run that has
 * not ended instead (nothing is deleted then), else null.
 */
export async function clearEndedOccurrenceRun(client: PoolClient, cronId: string, scheduledFor: Date): Promise<RunStatus | null> {
  const { rows } = await client.query<{ run_id: string; status: RunStatus }>(LOCK_OCCURRENCE_RUNS, [cronId, scheduledFor]);
  const going = rows.find((r) => r.status === 'pending' || r.status === 'running');
  if (going) return going.status;
  if (rows.length) await client.query(`DELETE FROM runs WHERE run_id = ANY($1::uuid[])`, [rows.map((r) => r.run_id)]);
  return null;
}

// Order 4: the ledger row, from an ended outcome back to enqueued for the new attempt. trigger and
// enqueued_at (the first enqueue: fire lag) stay; the outcome, excerpts and webhook are cleared.
const REOPEN_OCCURRENCE = `
  WITH target AS (
    SELECT cron_id, scheduled_for FROM cron_occurrences
     WHERE cron_id = $1 AND scheduled_for = $2 AND status = ANY($5::text[])
       FOR UPDATE
  )
  UPDATE cron_occurrences o
     SET status = 'enqueued', run_id = $3, thread_id = $4, retries = o.retries + 1, retried_at = clock_timestamp(),
         error = NULL, started_at = NULL, ended_at = NULL,
         output_excerpt = NULL, output_truncated = false, error_excerpt = NULL, error_truncated = false,
         webhook_status = NULL, webhook_attempts = 0, webhook_error = NULL, webhook_sent_at = NULL
    FROM target t
   WHERE o.cron_id = t.cron_id AND o.scheduled_for = t.scheduled_for
  RETURNING o.retries`;

/**
 * A retry's ledger write, after its new run is inserted and before its job: the occurrence, if it
 * ended with one of `from`, is enqueued again for `runId` on `threadId`, one retry more. Answers
 * the new retry count, or null when the row is not (or no longer) in one of those states.
 */
export async function reopenOccurrence(
  client: PoolClient,
  o: { cron_id: string; scheduled_for: Date; run_id: string; thread_id: string },
  from: readonly EndStatus[],
): Promise<number | null> {
  const { rows } = await client.query<{ retries: number }>(REOPEN_OCCURRENCE, [o.cron_id, o.scheduled_for, o.run_id, o.thread_id, [...from]]);
  return rows[0]?.retries ?? null;
}

// ---- hand back at shutdown --------------------------------------------------------------------

const HAND_BACK = `
  WITH target AS (
    SELECT r.run_id FROM runs r JOIN unnest($1::uuid[], $2::int[]) AS v(run_id, attempt) ON r.run_id = v.run_id
     WHERE r.status = 'running' AND r.attempts = v.attempt
     ORDER BY r.run_id
       FOR UPDATE OF r
  ), back AS (
    UPDATE runs r SET status = 'pending', started_at = NULL, updated_at = now()
      FROM target t WHERE r.run_id = t.run_id
    RETURNING r.run_id, r.cron_id, r.scheduled_for
  ), ledger AS (
    SELECT o.cron_id, o.scheduled_for FROM cron_occurrences o JOIN back b USING (cron_id, scheduled_for)
     WHERE o.status = 'running'
     ORDER BY o.cron_id, o.scheduled_for
       FOR UPDATE OF o
  ), reopened AS (
    UPDATE cron_occurrences o SET status = 'enqueued', started_at = NULL
      FROM ledger l WHERE o.cron_id = l.cron_id AND o.scheduled_for = l.scheduled_for
  )
  SELECT run_id FROM back`;

/**
 * A stopping worker's runs that did not end in its grace period, their agents aborted: each goes
 * back to pending (if this attempt still holds it) and its job back to the queue at the same
 * attempt, so another worker takes it at once rather than after the heartbeat expires.
 */
export async function handBackRuns(pool: Pool, queueSchema: string, runs: { run_id: string; attempt: number; job: JobAttempt }[]): Promise<string[]> {
  if (runs.length === 0) return [];
  const sorted = [...runs].sort((a, b) => cmp(a.run_id, b.run_id));
  return retryConflicts(() =>
    withTransaction(pool, async (client) => {
      const { rows } = await client.query<{ run_id: string }>(HAND_BACK, [sorted.map((r) => r.run_id), sorted.map((r) => r.attempt)]);
      const back = new Set(rows.map((r) => r.run_id));
      await requeueRunJobs(
        client,
        queueSchema,
        sorted.filter((r) => back.has(r.run_id)).map((r) => r.job),
      );
      // The agents stopped: their slots are free (at the same attempt the job comes back as, they
      // would otherwise count against its next claim until that claim parked it).
      await freeSlots(client, queueSchema, sorted);
      return [...back];
    }),
  );
}

// ---- helpers ----------------------------------------------------------------------------------

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const unique = (xs: string[]): string[] => [...new Set(xs)].sort(cmp);
const jsonOrNull = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
