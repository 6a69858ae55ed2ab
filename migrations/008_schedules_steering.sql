-- Seeing and steering schedules (issue 14): backfill, kept outputs, retries of a failed
-- occurrence, and a note on a paused cron.
--
-- 1. Backfill: an occurrence fired by POST /runs/crons/{id}/backfill is recorded with trigger
--    'backfill' (the ledger row still guards it: (cron_id, scheduled_for) fires once whoever
--    fires it). The new CHECK is looser than the old one, so every stored row passes it.
ALTER TABLE cron_occurrences DROP CONSTRAINT cron_occurrences_trigger_check;
ALTER TABLE cron_occurrences ADD CONSTRAINT cron_occurrences_trigger_check
  CHECK (trigger IN ('schedule', 'create', 'manual', 'backfill'));

-- 2. Kept outputs: a bounded excerpt (LEDGER_OUTPUT_EXCERPT_BYTES, computed by the finishing
--    transaction in libs/runs/lifecycle.ts) of the run's final values and of its error, as JSON
--    text cut to the byte budget (so it may not parse when *_truncated is true). It lives on the
--    ledger row, which outlives the ephemeral thread and its run, and goes with it (retention).
ALTER TABLE cron_occurrences
  ADD COLUMN output_excerpt   text,
  ADD COLUMN output_truncated boolean NOT NULL DEFAULT false,
  ADD COLUMN error_excerpt    text,
  ADD COLUMN error_truncated  boolean NOT NULL DEFAULT false;

-- 3. Retries of an occurrence that ended error, timeout or interrupted
--    (POST /runs/crons/{id}/occurrences/{scheduled_for}/retry): the same occurrence runs again
--    with the same cron_id and scheduled_for (so the same idempotency key); the run of the
--    attempt before it is deleted (runs stay one per occurrence: runs_one_per_occurrence) and
--    the new run's id is derived from (cron_id, scheduled_for, retries).
ALTER TABLE cron_occurrences
  ADD COLUMN retries     integer NOT NULL DEFAULT 0,
  ADD COLUMN retried_at  timestamptz;

-- 4. A note on a paused cron, shown wherever the cron is; cleared when it is enabled again.
ALTER TABLE crons ADD COLUMN paused_reason text CONSTRAINT crons_paused_reason_length CHECK (char_length(paused_reason) <= 280);
