-- Built-in maintenance jobs (libs/maintenance). One row per job, written by every process at
-- startup (INSERT ... ON CONFLICT, so any number of processes register each job once), fired by
-- the scheduler exactly like a cron (claimed FOR UPDATE SKIP LOCKED when next_run_date is due;
-- one pg-boss job per occurrence, its id derived from job + occurrence, enqueued in the
-- transaction that advances next_run_date) and executed by workers on agentcron.maintenance.
CREATE TABLE maintenance_jobs (
  job_name            text PRIMARY KEY,
  schedule            text NOT NULL,
  timezone            text NOT NULL DEFAULT 'UTC',
  enabled             boolean NOT NULL DEFAULT true,
  -- the next occurrence to fire; NULL when the stored schedule could not be planned
  next_run_date       timestamptz,
  -- the occurrence last enqueued by the scheduler (a manual trigger does not move it)
  last_scheduled_for  timestamptz,
  -- occurrences skipped because the scheduler was down (missed policy 'latest': only the most recent fires)
  missed_total        bigint NOT NULL DEFAULT 0,
  -- the last execution: when it started, when it ended, how, and what it did
  last_run_at         timestamptz,
  last_finished_at    timestamptz,
  last_run_status     text CHECK (last_run_status IN ('running', 'success', 'error')),
  last_run_error      text,
  last_duration_ms    integer,
  last_result         jsonb,
  runs_total          bigint NOT NULL DEFAULT 0,
  failures_total      bigint NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maintenance_jobs_due ON maintenance_jobs (next_run_date) WHERE enabled AND next_run_date IS NOT NULL;

-- The daily statistics snapshot: one row per day (in MAINTENANCE_TIMEZONE) and cron or
-- assistant. Cron figures come from the occurrence ledger (it outlives ephemeral threads and
-- their runs); an assistant's add its runs that no cron started.
CREATE TABLE run_daily_stats (
  day              date NOT NULL,
  scope            text NOT NULL CHECK (scope IN ('cron', 'assistant')),
  scope_id         uuid NOT NULL,
  timezone         text NOT NULL,
  runs             integer NOT NULL,
  successes        integer NOT NULL,
  failures         integer NOT NULL,
  timeouts         integer NOT NULL,
  interrupted      integer NOT NULL,
  -- occurrences that did not run (missed, overlap, end_time); crons only
  skipped          integer NOT NULL,
  p50_duration_ms  double precision,
  p95_duration_ms  double precision,
  -- enqueue time minus scheduled_for, scheduled occurrences only
  p95_fire_lag_ms  double precision,
  computed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (day, scope, scope_id)
);

-- The retention purge walks ended runs by age; without this it would scan the table per batch.
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
