import type pg from 'pg';

// What the torture checker reads besides agentcron's own tables, created in the database under
// test before any process starts:
// - torture_executions: one row per agent execution, written by the fixture agent
//   (test/fixtures/agents/torture.ts) through its own connection;
// - torture_run_log: one row per run ever inserted (and when it was deleted, in what status),
//   written by a trigger on runs. Ephemeral runs are deleted as soon as they end, so only this
//   log shows every run that existed, for "at most one run per occurrence, ever".
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
  deleted_status  text
);
CREATE INDEX IF NOT EXISTS torture_run_log_run ON torture_run_log (run_id);

CREATE OR REPLACE FUNCTION torture_log_run() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO torture_run_log (run_id, cron_id, scheduled_for, thread_id)
    VALUES (NEW.run_id, NEW.cron_id, NEW.scheduled_for, NEW.thread_id);
  ELSE
    UPDATE torture_run_log SET deleted_at = clock_timestamp(), deleted_status = OLD.status
     WHERE run_id = OLD.run_id AND deleted_at IS NULL;
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS torture_log_run ON runs;
CREATE TRIGGER torture_log_run AFTER INSERT OR DELETE ON runs FOR EACH ROW EXECUTE FUNCTION torture_log_run();
`;

/** Creates the recording tables and the run log trigger (the runs table must exist: migrate first). */
export async function setupRecording(db: Pick<pg.Pool, 'query'>): Promise<void> {
  await db.query(RECORDING_SQL);
}
