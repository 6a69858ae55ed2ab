import type pg from 'pg';

// What the torture checker reads besides agentcron's own tables, created in the database under
// test before any process starts:
// - torture_executions: one row per agent execution, written by the fixture agent
//   (test/fixtures/agents/torture.ts) through its own connection;
// - torture_run_log: one row per run ever inserted (and when it was deleted, in what status),
//   written by a trigger on runs. Ephemeral runs are deleted as soon as they end, so only this
//   log shows every run that existed, for "at most one run per occurrence, ever";
// - torture_ledger_log: every change of a ledger row's status (and its attempt_log's length then),
//   for "an occurrence's outcome is recorded once" (a retry goes running → enqueued, never through
//   an ended status);
// - torture_last_run_log: every change of a cron's last_run_*, for "last_run_* says the final
//   outcome only" (never an attempt that was retried);
// - torture_waits: every time a run was made to wait (retry, limit:<name>), to show the limits bit.
// The trigger only adds an insert or update of a log row to the transaction that inserted or
// deleted the run; it takes no lock another transaction could want first.

export const RECORDING_SQL = `
CREATE TABLE IF NOT EXISTS torture_executions (
  id              bigserial PRIMARY KEY,
  -- chosen by the agent, so a write it retries after a lost answer adds no second row
  execution_id    uuid NOT NULL UNIQUE,
  idempotency_key text NOT NULL,
  run_id          uuid NOT NULL,
  cron_id         uuid,
  scheduled_for   timestamptz,
  thread_id       uuid,
  pid             integer NOT NULL,
  started_at      timestamptz NOT NULL,
  ended_at        timestamptz,
  outcome         text,
  graph_id        text,
  assistant_id    text,
  -- the retry policy's attempt (attempt_log length + 1 when it started); null: the run was gone
  attempt         integer,
  recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS torture_executions_key ON torture_executions (idempotency_key);

CREATE TABLE IF NOT EXISTS torture_run_log (
  seq             bigserial PRIMARY KEY,
  run_id          uuid NOT NULL,
  cron_id         uuid,
  scheduled_for   timestamptz,
  thread_id       uuid,
  inserted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at      timestamptz,
  -- when the deleting transaction began (a withdrawal decides before the instant: checker.ts)
  deleted_xact_at timestamptz,
  deleted_status  text
);
CREATE INDEX IF NOT EXISTS torture_run_log_run ON torture_run_log (run_id);

CREATE OR REPLACE FUNCTION torture_log_run() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO torture_run_log (run_id, cron_id, scheduled_for, thread_id)
    VALUES (NEW.run_id, NEW.cron_id, NEW.scheduled_for, NEW.thread_id);
  ELSE
    UPDATE torture_run_log SET deleted_at = clock_timestamp(), deleted_xact_at = now(), deleted_status = OLD.status
     WHERE run_id = OLD.run_id AND deleted_at IS NULL;
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS torture_log_run ON runs;
CREATE TRIGGER torture_log_run AFTER INSERT OR DELETE ON runs FOR EACH ROW EXECUTE FUNCTION torture_log_run();

CREATE TABLE IF NOT EXISTS torture_ledger_log (
  seq             bigserial PRIMARY KEY,
  cron_id         uuid NOT NULL,
  scheduled_for   timestamptz NOT NULL,
  old_status      text,
  new_status      text NOT NULL,
  attempts_logged integer NOT NULL,
  at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION torture_log_ledger() RETURNS trigger AS $$
BEGIN
  INSERT INTO torture_ledger_log (cron_id, scheduled_for, old_status, new_status, attempts_logged)
  VALUES (NEW.cron_id, NEW.scheduled_for, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
          coalesce(jsonb_array_length(NEW.attempt_log), 0));
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS torture_log_ledger_insert ON cron_occurrences;
CREATE TRIGGER torture_log_ledger_insert AFTER INSERT ON cron_occurrences FOR EACH ROW EXECUTE FUNCTION torture_log_ledger();
DROP TRIGGER IF EXISTS torture_log_ledger_update ON cron_occurrences;
CREATE TRIGGER torture_log_ledger_update AFTER UPDATE OF status ON cron_occurrences FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION torture_log_ledger();

-- Every time a run is made to wait (retry backoff, a limit), for the summary: the limits bit.
CREATE TABLE IF NOT EXISTS torture_waits (
  seq             bigserial PRIMARY KEY,
  run_id          uuid NOT NULL,
  waiting         text NOT NULL,
  at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION torture_log_wait() RETURNS trigger AS $$
BEGIN
  INSERT INTO torture_waits (run_id, waiting) VALUES (NEW.run_id, NEW.waiting);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS torture_log_wait ON runs;
CREATE TRIGGER torture_log_wait AFTER UPDATE OF waiting ON runs FOR EACH ROW
  WHEN (NEW.waiting IS NOT NULL AND (OLD.waiting IS DISTINCT FROM NEW.waiting OR OLD.not_before IS DISTINCT FROM NEW.not_before))
  EXECUTE FUNCTION torture_log_wait();

CREATE TABLE IF NOT EXISTS torture_last_run_log (
  seq             bigserial PRIMARY KEY,
  cron_id         uuid NOT NULL,
  run_id          uuid,
  scheduled_for   timestamptz,
  status          text,
  at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION torture_log_last_run() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' OR OLD.last_run_id IS DISTINCT FROM NEW.last_run_id OR OLD.last_run_status IS DISTINCT FROM NEW.last_run_status
     OR OLD.last_run_scheduled_for IS DISTINCT FROM NEW.last_run_scheduled_for THEN
    INSERT INTO torture_last_run_log (cron_id, run_id, scheduled_for, status)
    VALUES (NEW.cron_id, NEW.last_run_id, NEW.last_run_scheduled_for, NEW.last_run_status);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A cron's last_run_* live in cron_last_runs (migrations/024).
DROP TRIGGER IF EXISTS torture_log_last_run ON cron_last_runs;
CREATE TRIGGER torture_log_last_run AFTER INSERT OR UPDATE ON cron_last_runs FOR EACH ROW
  EXECUTE FUNCTION torture_log_last_run();
`;

// Every run job pg-boss failed while a worker held it (its heartbeat lapsed, or it expired):
// pg-boss deletes the job and inserts it again, to retry or failed, with why in its output. A
// worker that stalls past WORKER_HEARTBEAT_SECONDS is lost by the system's own rule (test/stalls.test.ts),
// so the checker counts a re-execution after such a failure apart, and fails one nothing explains.
export const JOB_RECORDING_SQL = (schema: string) => `
CREATE TABLE IF NOT EXISTS torture_job_failures (
  seq             bigserial PRIMARY KEY,
  run_id          uuid NOT NULL,
  retry_count     integer NOT NULL,
  started_on      timestamptz,
  state           text NOT NULL,
  output          jsonb,
  at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION torture_log_job_failure() RETURNS trigger AS $$
BEGIN
  INSERT INTO torture_job_failures (run_id, retry_count, started_on, state, output)
  VALUES (NEW.id, NEW.retry_count, NEW.started_on, NEW.state::text, NEW.output);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS torture_log_job_failure ON "${schema}".job;
CREATE TRIGGER torture_log_job_failure AFTER INSERT ON "${schema}".job FOR EACH ROW
  WHEN (NEW.name = 'agentcron.run' AND NEW.state IN ('retry', 'failed') AND NEW.started_on IS NOT NULL)
  EXECUTE FUNCTION torture_log_job_failure();
`;

/** The run jobs' failures by pg-boss (pg-boss's schema must exist: once a process has started). */
export async function setupJobRecording(db: Pick<pg.Pool, 'query'>, schema = 'pgboss'): Promise<void> {
  await db.query(JOB_RECORDING_SQL(schema));
}

/** Creates the recording tables and the run log trigger (the runs table must exist: migrate first). */
export async function setupRecording(db: Pick<pg.Pool, 'query'>): Promise<void> {
  await db.query(RECORDING_SQL);
}
