import { QUEUES } from './queue.ts';

// agentcron's SQL on pg-boss's tables (its schema: PGBOSS_SCHEMA), each statement or fragment
// built here, named for what it does, as pg-boss keeps its own in plans.ts. pg-boss's tables are
// not a public API: a pg-boss upgrade that changes them is checked against this file alone (queue.ts
// and saturation.ts run these statements, they write none). The schema
// is always quoted here; a run's job has the run's id (job id = run id) in QUEUES.run, inlined as
// a literal (a constant, never input).
//
// Fragments take the SQL expressions to compare with (a column such as `r.run_id`, a parameter
// such as `$3`): the caller owns its parameter numbering.

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

// Read when a statement is built, not when this module loads: queue.ts imports this module and
// this one its QUEUES (an import cycle inside the folder; QUEUES is not yet set while it forms).
const runQueue = (): string => `'${QUEUES.run}'`;

/** EXISTS: the run's job is held by a worker now (active): the run is executing somewhere. */
export function runJobActiveSql(schema: string, runId: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j WHERE j.name = ${runQueue()} AND j.id = ${runId} AND j.state = 'active')`;
}

/**
 * EXISTS: the run's job is due: fetchable now (created or retry, its start_after passed), or
 * fetched by a worker that has not claimed its run yet (active).
 */
export function runJobDueSql(schema: string, runId: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${runQueue()} AND j.id = ${runId}
                     AND (j.state = 'active' OR (j.state IN ('created', 'retry') AND j.start_after <= now())))`;
}

/** EXISTS: the run's job is active at `attempt` (retry_count + 1), whether its worker lives or not. */
export function runJobActiveAtSql(schema: string, runId: string, attempt: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${runQueue()} AND j.id = ${runId} AND j.state = 'active' AND j.retry_count + 1 = ${attempt})`;
}

/**
 * EXISTS: the run's job is active at `attempt` (retry_count + 1) and its worker's heartbeat is
 * younger than `seconds`: a lost worker's job stops counting within that time, and at once when
 * the job is fetched again as a new attempt.
 */
export function runJobHeartbeatingSql(schema: string, runId: string, attempt: string, seconds: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${runQueue()} AND j.id = ${runId} AND j.state = 'active'
                     AND j.retry_count + 1 = ${attempt} AND j.heartbeat_on > now() - make_interval(secs => ${seconds}))`;
}

/**
 * EXISTS: the run's job may still run it: waiting in the queue (created, or retry after a lost
 * attempt), or active, refreshed within `heartbeatSeconds` (heartbeat, else its start) and
 * `workerAlive` (an SQL condition: some worker process is alive).
 */
export function runJobMayStillRunSql(schema: string, runId: string, heartbeatSeconds: string, workerAlive: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${runQueue()} AND j.id = ${runId}
                     AND (j.state IN ('created', 'retry')
                          OR (j.state = 'active'
                              AND coalesce(j.heartbeat_on, j.started_on) > now() - make_interval(secs => ${heartbeatSeconds})
                              AND ${workerAlive})))`;
}

/**
 * DELETE of at most $3 finished jobs (completed, failed, cancelled) of the queues $1 (text[])
 * completed more than $2 days ago; waiting and running jobs, and other applications' queues in
 * the same schema, are never touched.
 */
export function purgeFinishedJobsSql(schema: string): string {
  const s = quoteIdent(schema);
  return `
  DELETE FROM ${s}.job WHERE (name, id) IN (
    SELECT name, id FROM ${s}.job
     WHERE name = ANY($1::text[])
       AND state IN ('completed', 'failed', 'cancelled')
       AND completed_on < now() - make_interval(days => $2)
     LIMIT $3)`;
}

/** The jobs of the queues $1 (text[]) counted by queue and state: (name, state, jobs). */
export function jobCountsSql(schema: string): string {
  return `
  SELECT name, state::text AS state, count(*)::int AS jobs FROM ${quoteIdent(schema)}.job
   WHERE name = ANY($1::text[]) GROUP BY name, state ORDER BY name, state`;
}

/**
 * Per dead letter queue $1 (text[]): jobs that reached it within `window` (an interval literal
 * such as '1 hour') and jobs of it still waiting: (queue, last_hour, waiting).
 */
export function deadLetterCountsSql(schema: string, window: string): string {
  const s = quoteIdent(schema);
  return `
  SELECT q.name AS queue,
         (SELECT count(*) FROM ${s}.job j WHERE j.name = q.name AND j.created_on > now() - interval '${window}')::int AS last_hour,
         (SELECT count(*) FROM ${s}.job j WHERE j.name = q.name AND j.state IN ('created', 'retry'))::int AS waiting
    FROM unnest($1::text[]) AS q(name)`;
}

/** The table (pg-boss partitions jobs by queue) that holds the run queue's jobs: (table_name). */
export function runQueueTableSql(schema: string): string {
  return `SELECT table_name FROM ${quoteIdent(schema)}.queue WHERE name = ${runQueue()}`;
}

/** ANALYZE of one of pg-boss's tables (a name runQueueTableSql answered). */
export function analyzeQueueTableSql(schema: string, table: string): string {
  return `ANALYZE ${quoteIdent(schema)}.${quoteIdent(table)}`;
}

// ---- the run worker's statements on its fetched jobs (queue.ts runs them) ----------------------

/**
 * Fetched run jobs back to the queue as if never fetched (pg-boss's restore()): $1 the run
 * queue, $2 job ids (uuid[]), $3 fences (text[] of `id:retry_count`), $4 the NOTIFY channel the
 * workers listen on (woken when any went back).
 */
export function requeueRunJobsSql(schema: string): string {
  return `WITH back AS (
       UPDATE ${quoteIdent(schema)}.job SET state = 'created', started_on = NULL, heartbeat_on = NULL
        WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'active'
          AND (id::text || ':' || retry_count::text) = ANY($3::text[])
       RETURNING 1
     )
     SELECT pg_notify($4, $1) FROM back LIMIT 1`;
}

/**
 * Fetched run jobs back to the queue as their next attempt, fetchable after a delay: $1 the run
 * queue, $2 job ids (uuid[]), $3 their retry counts as fetched (int[], the fence), $4 delays in
 * seconds (float8[]), $5 the NOTIFY channel: workers are told a job was deferred
 * (deferredPayloadSql), so a sleeping one looks when it falls due. A result kept on the job
 * (holdRunJobResultSql) is dropped: this is that result's retry being stored, and the next attempt
 * runs the agent. The expiry goes back to the queue's (a held result may have lengthened it).
 */
export function snoozeRunJobsSql(schema: string): string {
  const s = quoteIdent(schema);
  return `WITH snoozed AS (
       UPDATE ${s}.job j
          SET state = 'created', started_on = NULL, heartbeat_on = NULL,
              retry_count = j.retry_count + 1, retry_limit = j.retry_limit + 1,
              start_after = now() + make_interval(secs => v.delay),
              data = j.data - 'held',
              expire_seconds = coalesce((SELECT q.expire_seconds FROM ${s}.queue q WHERE q.name = $1), j.expire_seconds)
         FROM unnest($2::uuid[], $3::int[], $4::float8[]) AS v(id, retry_count, delay)
        WHERE j.name = $1 AND j.id = v.id AND j.state = 'active' AND j.retry_count = v.retry_count
       RETURNING 1
     )
     SELECT pg_notify($5, ${deferredPayloadSql('$1')}) FROM snoozed LIMIT 1`;
}

/**
 * A run's result that the schema refused, kept on its job while this attempt holds it (the run
 * worker's recorder): $1 the run queue, $2 the job id, $3 its retry count as fetched (the fence),
 * $4 the result (jsonb; NULL: already kept, only the expiry is pushed on), $5 seconds the job may
 * still live from now before pg-boss expires it. The result lives in the job's `data` under
 * `held`, which pg-boss carries over when it retries the job (expiry, a lost heartbeat) and the
 * worker's requeues keep: whichever worker claims the job next stores it instead of running the
 * agent. pg-boss's `output` column would not do: its retries overwrite it.
 */
export function holdRunJobResultSql(schema: string): string {
  return `UPDATE ${quoteIdent(schema)}.job
        SET data = CASE WHEN $4::jsonb IS NULL THEN data ELSE data || jsonb_build_object('held', $4::jsonb) END,
            expire_seconds = greatest(expire_seconds, ceil(extract(epoch FROM now() - started_on))::int + $5::int)
      WHERE name = $1 AND id = $2::uuid AND state = 'active' AND retry_count = $3`;
}

/**
 * Fetched run jobs whose results are kept on them (holdRunJobResultSql) handed to the next
 * worker by a stopping one: each goes back to the queue as its next attempt (the next claim's
 * fencing token is new), fetchable at once, its kept result and its retry budget unchanged, its
 * expiry the queue's again: $1 the run queue, $2 job ids (uuid[]), $3 fences (text[] of
 * `id:retry_count`), $4 the NOTIFY channel the workers listen on.
 */
export function handOnHeldRunJobsSql(schema: string): string {
  const s = quoteIdent(schema);
  return `WITH back AS (
       UPDATE ${s}.job j
          SET state = 'created', started_on = NULL, heartbeat_on = NULL, start_after = now(),
              retry_count = j.retry_count + 1, retry_limit = j.retry_limit + 1,
              expire_seconds = coalesce((SELECT q.expire_seconds FROM ${s}.queue q WHERE q.name = $1), j.expire_seconds)
        WHERE j.name = $1 AND j.id = ANY($2::uuid[]) AND j.state = 'active' AND j.data ? 'held'
          AND (j.id::text || ':' || j.retry_count::text) = ANY($3::text[])
       RETURNING 1
     )
     SELECT pg_notify($4, $1) FROM back LIMIT 1`;
}

/**
 * Fetched run jobs back to the queue at the same attempt, not fetchable before an instant: $1
 * the run queue, $2 job ids (uuid[]), $3 their retry counts as fetched (int[], the fence), $4
 * the instants (timestamptz[]), $5 the NOTIFY channel (workers are told, as for a snooze).
 */
export function parkRunJobsSql(schema: string): string {
  return `WITH parked AS (
       UPDATE ${quoteIdent(schema)}.job j
          SET state = 'created', started_on = NULL, heartbeat_on = NULL, start_after = v.until
         FROM unnest($2::uuid[], $3::int[], $4::timestamptz[]) AS v(id, retry_count, until)
        WHERE j.name = $1 AND j.id = v.id AND j.state = 'active' AND j.retry_count = v.retry_count
       RETURNING 1
     )
     SELECT pg_notify($5, ${deferredPayloadSql('$1')}) FROM parked LIMIT 1`;
}

/**
 * The end of both wake statements: the jobs of the runs in the CTE `woken (run_id)` that still
 * sleep (created, start_after ahead) locked in id order, made fetchable now, and the workers told
 * on `channel` (pg-boss's payload: the bare queue name, $1) when any was.
 */
function wakeTail(s: string, channel: string): string {
  return `, locked AS (
       SELECT j.id FROM ${s}.job j JOIN woken w ON j.id = w.run_id
        WHERE j.name = $1 AND j.state = 'created' AND j.start_after > now()
        ORDER BY j.id
          FOR UPDATE OF j
     ), up AS (
       UPDATE ${s}.job j SET start_after = now()
         FROM locked l
        WHERE j.name = $1 AND j.id = l.id AND j.state = 'created' AND j.start_after > now()
       RETURNING 1
     )
     SELECT pg_notify(${channel}, $1) FROM up LIMIT 1`;
}

/**
 * The oldest pending runs waiting for each reason (runs.waiting) whose jobs sleep in the queue
 * (created, start_after still ahead), as many as each one's count, made fetchable now, and the
 * workers woken: $1 the run queue, $2 reasons (text[]), $3 counts (int[]), $4 the NOTIFY channel.
 * A run whose job is fetchable already (woken a moment ago and not fetched yet, or waiting for
 * its thread's turn) or held by a worker is passed over: waking it again would wake no one. The
 * walk follows the runs_waiting index (waiting, created_at), one job lookup per run passed.
 */
export function wakeParkedRunsSql(schema: string): string {
  const s = quoteIdent(schema);
  return `WITH woken AS (
       SELECT w.run_id FROM unnest($2::text[], $3::int[]) AS v(waiting, n)
        CROSS JOIN LATERAL (
          SELECT r.run_id FROM runs r
           WHERE r.status = 'pending' AND r.waiting = v.waiting
             AND EXISTS (SELECT 1 FROM ${s}.job j WHERE j.name = $1 AND j.id = r.run_id AND j.state = 'created' AND j.start_after > now())
           ORDER BY r.created_at LIMIT v.n) w
     )${wakeTail(s, '$4')}`;
}

/**
 * The oldest run of each thread $2 (uuid[]) parked for its thread's turn (runs.waiting 'thread':
 * an older run of the thread was due when it was fetched) made fetchable now, and the workers
 * woken: $1 the run queue, $3 the NOTIFY channel. Run when a run of the thread ends or goes back
 * to wait for a retry; the walk follows runs_thread (thread_id, created_at).
 */
export function wakeThreadTurnSql(schema: string): string {
  const s = quoteIdent(schema);
  return `WITH woken AS (
       SELECT w.run_id FROM unnest($2::uuid[]) AS v(thread_id)
        CROSS JOIN LATERAL (
          SELECT r.run_id FROM runs r
           WHERE r.thread_id = v.thread_id AND r.status = 'pending' AND r.waiting = 'thread'
           ORDER BY r.created_at, r.run_id LIMIT 1) w
     )${wakeTail(s, '$3')}`;
}

// ---- waking sleeping workers (queue.ts, supervisor.ts) -----------------------------------------

/**
 * The NOTIFY payload saying jobs of the queue `queueExpr` (an SQL text expression) were deferred
 * (a retry's backoff, a park, a start_after in the future): `<queue>@deferred`. pg-boss's own
 * payload on the same channel is the bare queue name (jobs runnable now).
 */
export function deferredPayloadSql(queueExpr: string): string {
  return `${queueExpr} || '@deferred'`;
}

/** NOTIFY on channel $1 that jobs of each queue $2 (text[]) were deferred (deferredPayloadSql). */
export function announceDeferredSql(): string {
  return `SELECT pg_notify($1, ${deferredPayloadSql('q.name')}) FROM unnest($2::text[]) AS q(name)`;
}

/**
 * Milliseconds until the earliest job of queue $1 waiting for a start_after still in the future
 * (database clock), NULL when none: how long a worker with nothing to fetch may sleep. Reads the
 * fetch index's entries of the queue's waiting jobs (start_after is one of its key columns).
 */
export function msUntilDeferredSql(schema: string): string {
  return `SELECT (extract(epoch FROM (min(j.start_after) - now())) * 1000)::float8 AS wait_ms
            FROM ${quoteIdent(schema)}.job j
           WHERE j.name = $1 AND j.state < 'active' AND NOT j.blocked AND j.start_after > now()`;
}

/**
 * Jobs of queue $1 that a worker failed (a handler's 'failed' result), as fetched: $2 ids
 * (uuid[]), $3 their retry counts (int[]). For each one found: `written` false while pg-boss has
 * not yet written the failure (the job is still active at that attempt), and once it has, `wait_ms`
 * until its retry is fetchable (0: now; database clock), NULL when it is not waiting for a fetch
 * (failed for good, or already fetched again).
 */
export function failedJobsRetrySql(schema: string): string {
  return `SELECT j.id::text AS id, NOT (j.state = 'active' AND j.retry_count = v.retry_count) AS written,
                 CASE WHEN j.state < 'active' THEN greatest(0, extract(epoch FROM (j.start_after - now())) * 1000)::float8 END AS wait_ms
            FROM unnest($2::uuid[], $3::int[]) AS v(id, retry_count)
            JOIN ${quoteIdent(schema)}.job j ON j.name = $1 AND j.id = v.id`;
}

/**
 * Whether a supervise pass may have work (queue.ts QueueSupervisor): a job of the queues $1
 * (text[]) waiting (the fetch index), or a run held by a worker, which may have died: (waiting,
 * active, pending). `active`: a run job active in a group (pg-boss's index of active grouped
 * jobs), or a run running (runs_active). The second is what finds a run of a stateless cron whose
 * thread is deleted afterwards: its job has no group, so the first never sees it, and a dead
 * worker's job of it waited for the five-minute pass once nothing else was queued (issue 22).
 * `pending`: a run not started, whose job may have been fetched by a worker that died before its
 * claim (a waiting job says so already otherwise). Only run jobs have heartbeats to lose. A few
 * index entries, never the queues' finished jobs nor ended runs.
 */
export function queuesBusySql(schema: string): string {
  const s = quoteIdent(schema);
  return `SELECT EXISTS (SELECT 1 FROM ${s}.job j WHERE j.name = ANY($1::text[]) AND j.state < 'active' AND NOT j.blocked) AS waiting,
                 EXISTS (SELECT 1 FROM ${s}.job j WHERE j.name = ${runQueue()} AND j.state = 'active' AND j.group_id IS NOT NULL)
                   OR EXISTS (SELECT 1 FROM runs r WHERE r.status = 'running') AS active,
                 EXISTS (SELECT 1 FROM runs r WHERE r.status = 'pending') AS pending`;
}

// ---- saturation's reads (libs/metrics/saturation.ts) ------------------------------------------

/** How many jobs at the head of the queue are looked at (a few hundred index entries at most). */
const HEAD = 200;

// The read walks pg-boss's fetch index (job_i11: (name, priority DESC, created_on, start_after)
// WHERE state < 'active' AND NOT blocked), in the order workers fetch, and stops early: the head
// is read, never the whole backlog. start_after is a key column of that index, so jobs parked
// for later (a retry's backoff, a run waiting for a limit, after_seconds) are passed over inside
// the index. A job whose group (thread) has a job active cannot start now either (the run worker
// starts one job per group at a time): job_i7 (name, group_id) WHERE state = 'active' answers.
/** The run queue's latency at its head (runQueueHead): $1 the run queue; (latency) in seconds. */
export function runQueueHeadSql(schema: string): string {
  const s = quoteIdent(schema);
  return `
  WITH head AS (
    SELECT j.created_on, j.start_after, j.group_id
      FROM ${s}.job j
     WHERE j.name = $1 AND j.state < 'active' AND NOT j.blocked AND j.start_after <= now()
     ORDER BY j.priority DESC, j.created_on
     LIMIT ${HEAD}
  )
  SELECT coalesce((SELECT extract(epoch FROM now() - min(greatest(h.start_after, h.created_on)))::float8
                     FROM head h
                    WHERE h.group_id IS NULL
                       OR NOT EXISTS (SELECT 1 FROM ${s}.job a WHERE a.name = $1 AND a.state = 'active' AND a.group_id = h.group_id)),
                  0) AS latency`;
}

/**
 * SQL for the created_on of the oldest run job not started yet on its first attempt (due now or
 * parked: a limit, after_seconds, jitter), NULL when none. A job sent back for a retry has its
 * retry_count moved on (snoozeRunJobs, and pg-boss's own retries) and is passed over. Walks the
 * fetch index from its oldest entry (agentcron never sets a priority, so that is the oldest job)
 * to the first such job.
 */
export function oldestFirstAttemptRunJobSql(schema: string): string {
  const s = quoteIdent(schema);
  return `(SELECT j.created_on FROM ${s}.job j
            WHERE j.name = ${runQueue()} AND j.state < 'active' AND NOT j.blocked AND j.retry_count = 0
            ORDER BY j.priority DESC, j.created_on
            LIMIT 1)`;
}

/**
 * SQL for the start_after of a run's job (job id = run id), for a query on agentcron's own tables
 * that needs when a run became due (a background run's after_seconds lives only there). A lookup
 * by pg-boss's primary key (name, id); NULL when the job is gone.
 */
export function runJobStartAfterSql(schema: string, runIdExpr: string): string {
  return `(SELECT j.start_after FROM ${quoteIdent(schema)}.job j WHERE j.name = ${runQueue()} AND j.id = ${runIdExpr})`;
}

/**
 * DELETE of run jobs still waiting for their start ($1 job ids, uuid[]): the jobs of occurrences
 * fired ahead and withdrawn before their instant (libs/runs/lifecycle.ts withdrawUnstartedRuns).
 * A job a worker holds (active) is left to it: its claim finds no run and drops it.
 */
export function deleteWaitingRunJobsSql(schema: string): string {
  return `DELETE FROM ${quoteIdent(schema)}.job WHERE name = ${runQueue()} AND id = ANY($1::uuid[]) AND state IN ('created', 'retry')`;
}
