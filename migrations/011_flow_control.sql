-- Flow control (docs/flow-control.md): retry policies, deployment-wide limits, jitter, and why a
-- run waits. Every change is a new nullable column or one with a constant default (no table
-- rewrite, a catalog change only) and two new tables: safe beside running old processes, which
-- never read these columns.

-- Hot tables in the lock order (crons, threads, runs, cron_occurrences: libs/runs/lifecycle.ts):
-- each ALTER holds its table's exclusive lock until COMMIT, and a finishing run holds crons and
-- then waits for runs; taking crons last could deadlock with it (migrations/README.md).

-- Per cron: each occurrence starts at scheduled_for plus a deterministic offset in [0, jitter_seconds)
-- (0-3600, validated by the API).
ALTER TABLE crons ADD COLUMN jitter_seconds integer NOT NULL DEFAULT 0;

-- A run that failed with a retryable error goes back to pending (its pg-boss job snoozed to
-- not_before) instead of ending. attempt_log keeps each earlier attempt of the run:
-- [{"attempt": n, "started_at": iso, "ended_at": iso, "status": "error"|"timeout", "error": {...},
--   "retry_at": iso}], oldest first. The attempt executing now (or the final one) is the run's own
-- status, started_at, ended_at and error.
ALTER TABLE runs ADD COLUMN attempt_log jsonb;
-- Why a pending run is not executing: 'retry' (backoff until not_before), 'limit:<name>' (a
-- concurrency or rate limit it is subject to has no room), NULL (due, waiting for a free worker,
-- or not yet due: a start_after). Written only when a run is sent back to wait, cleared by its claim.
ALTER TABLE runs ADD COLUMN waiting text;
ALTER TABLE runs ADD COLUMN not_before timestamptz;

-- The ledger's copy of a run's earlier attempts (the run and its ephemeral thread are deleted when
-- it ends; the ledger row outlives them). NULL when the occurrence ran once.
ALTER TABLE cron_occurrences ADD COLUMN attempt_log jsonb;
-- With jitter: when the occurrence was planned to start (scheduled_for + its deterministic
-- offset). NULL: at scheduled_for.
ALTER TABLE cron_occurrences ADD COLUMN planned_for timestamptz;

-- One row per deployment-wide limit (named in agentcron.json, or 'assistant:<id>' for an
-- assistant's config.max_concurrency). Its definition lives in the configuration, handed to each
-- claim; the row holds the limit's shared state and is the lock every claim of a limited run takes
-- (LOCK ORDER 0, before crons: see libs/runs/lifecycle.ts).
CREATE TABLE flow_limits (
  name           text PRIMARY KEY,
  -- A provider's Retry-After on a run of this limit: no run of it starts before then.
  paused_until   timestamptz,
  -- Start times within the longest rate window (trimmed by each claim): rate limits count these.
  recent_starts  timestamptz[] NOT NULL DEFAULT '{}',
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The runs holding a concurrency slot of a limit, under the claim (attempt) that took it. A slot
-- counts while its run is running under that attempt and its pg-boss job's heartbeat is fresh: a
-- lost worker's slots come back once its heartbeat expires. Claims delete slots that no longer count.
CREATE TABLE flow_limit_slots (
  limit_name   text NOT NULL,
  run_id       uuid NOT NULL,
  attempt      integer NOT NULL,
  acquired_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (limit_name, run_id)
);
