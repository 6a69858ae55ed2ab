import { QUEUES } from './queue.ts';

// agentcron's SQL on pg-boss's tables (its schema: PGBOSS_SCHEMA), each statement or fragment
// built here, named for what it does, as pg-boss keeps its own in plans.ts. pg-boss's tables are
// not a public API: a pg-boss upgrade that changes them is checked against this file (and
// queue.ts's statements, saturation.ts's reads, still beside their callers in libs/queue/). The schema
// is always quoted here; a run's job has the run's id (job id = run id) in QUEUES.run, inlined as
// a literal (a constant, never input).
//
// Fragments take the SQL expressions to compare with (a column such as `r.run_id`, a parameter
// such as `$3`): the caller owns its parameter numbering.

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

const RUN_QUEUE = `'${QUEUES.run}'`;

/** EXISTS: the run's job is held by a worker now (active): the run is executing somewhere. */
export function runJobActiveSql(schema: string, runId: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j WHERE j.name = ${RUN_QUEUE} AND j.id = ${runId} AND j.state = 'active')`;
}

/**
 * EXISTS: the run's job is active at `attempt` (retry_count + 1) and its worker's heartbeat is
 * younger than `seconds`: a lost worker's job stops counting within that time, and at once when
 * the job is fetched again as a new attempt.
 */
export function runJobHeartbeatingSql(schema: string, runId: string, attempt: string, seconds: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${RUN_QUEUE} AND j.id = ${runId} AND j.state = 'active'
                     AND j.retry_count + 1 = ${attempt} AND j.heartbeat_on > now() - make_interval(secs => ${seconds}))`;
}

/**
 * EXISTS: the run's job may still run it: waiting in the queue (created, or retry after a lost
 * attempt), or active, refreshed within `heartbeatSeconds` (heartbeat, else its start) and
 * `workerAlive` (an SQL condition: some worker process is alive).
 */
export function runJobMayStillRunSql(schema: string, runId: string, heartbeatSeconds: string, workerAlive: string): string {
  return `EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.job j
                   WHERE j.name = ${RUN_QUEUE} AND j.id = ${runId}
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
  return `SELECT table_name FROM ${quoteIdent(schema)}.queue WHERE name = ${RUN_QUEUE}`;
}

/** ANALYZE of one of pg-boss's tables (a name runQueueTableSql answered). */
export function analyzeQueueTableSql(schema: string, table: string): string {
  return `ANALYZE ${quoteIdent(schema)}.${quoteIdent(table)}`;
}
