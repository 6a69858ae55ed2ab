-- agentcron:no-transaction
-- A cron's last_run_* move out of its crons row into a narrow table of their own (issue 21,
-- "sustained 2,000 every-second crons"). A run's finish wrote them on the crons row, so it locked
-- that row (FOR NO KEY UPDATE) and waited for any scheduler pass holding the cron to fire it; once a
-- worker fell behind, its finishes met every pass and it stayed behind. Now a finish only holds its
-- crons FOR KEY SHARE (so they are not deleted under it), which a pass's FOR NO KEY UPDATE does not
-- conflict with, and upserts cron_last_runs.
--
-- Expand now, contract a release later (migrations/README.md). During the rolling release the old
-- processes still write crons.last_run_* (an old worker's finish; an old scheduler's
-- last_run_error when it stops a cron on a schedule it cannot plan): a trigger copies each such
-- write here, so cron_last_runs is complete from the moment this file is recorded and new code
-- reads only it. New code never writes crons.last_run_*, so the trigger is inert once the old
-- processes are gone. The contract release drops the trigger, its function and the five columns.
-- Each statement runs in a transaction of its own and may run again (a release cut short).

CREATE TABLE IF NOT EXISTS cron_last_runs (
  cron_id                uuid PRIMARY KEY REFERENCES crons ON DELETE CASCADE,
  -- when the last ended run started (its end time if it never started)
  last_run_at            timestamptz,
  last_run_status        text,
  -- its error; or why the scheduler stopped the cron (a schedule it cannot plan)
  last_run_error         text,
  last_run_id            uuid,
  -- the occurrence whose outcome this is: an older one never overwrites a newer one's
  last_run_scheduled_for timestamptz
);

-- An old process's write of crons.last_run_*, copied. A finish (run, status, time or occurrence
-- changed) is copied whole unless cron_last_runs holds a newer occurrence; the old scheduler's
-- last_run_error alone changes only that column.
CREATE OR REPLACE FUNCTION agentcron_copy_last_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (OLD.last_run_at, OLD.last_run_status, OLD.last_run_id, OLD.last_run_scheduled_for)
       IS DISTINCT FROM (NEW.last_run_at, NEW.last_run_status, NEW.last_run_id, NEW.last_run_scheduled_for) THEN
    INSERT INTO cron_last_runs AS l (cron_id, last_run_at, last_run_status, last_run_error, last_run_id, last_run_scheduled_for)
    VALUES (NEW.cron_id, NEW.last_run_at, NEW.last_run_status, NEW.last_run_error, NEW.last_run_id, NEW.last_run_scheduled_for)
    ON CONFLICT (cron_id) DO UPDATE
       SET last_run_at = EXCLUDED.last_run_at, last_run_status = EXCLUDED.last_run_status, last_run_error = EXCLUDED.last_run_error,
           last_run_id = EXCLUDED.last_run_id, last_run_scheduled_for = EXCLUDED.last_run_scheduled_for
     WHERE l.last_run_scheduled_for IS NULL OR l.last_run_scheduled_for <= EXCLUDED.last_run_scheduled_for;
  ELSE
    INSERT INTO cron_last_runs AS l (cron_id, last_run_error) VALUES (NEW.cron_id, NEW.last_run_error)
    ON CONFLICT (cron_id) DO UPDATE SET last_run_error = EXCLUDED.last_run_error;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER crons_copy_last_run
  AFTER UPDATE OF last_run_at, last_run_status, last_run_error, last_run_id, last_run_scheduled_for ON crons
  FOR EACH ROW
  WHEN ((OLD.last_run_at, OLD.last_run_status, OLD.last_run_error, OLD.last_run_id, OLD.last_run_scheduled_for)
          IS DISTINCT FROM (NEW.last_run_at, NEW.last_run_status, NEW.last_run_error, NEW.last_run_id, NEW.last_run_scheduled_for))
  EXECUTE FUNCTION agentcron_copy_last_run();

-- What the crons rows held before the trigger existed. Only old code runs until this file is
-- recorded (new code waits for its schema), and the trigger keeps every row it wrote since
-- current: a cron with a row here needs nothing. Reads crons without locking a row; holds only
-- the new rows, for one short batch.
-- agentcron:batch
INSERT INTO cron_last_runs (cron_id, last_run_at, last_run_status, last_run_error, last_run_id, last_run_scheduled_for)
SELECT c.cron_id, c.last_run_at, c.last_run_status, c.last_run_error, c.last_run_id, c.last_run_scheduled_for
  FROM crons c
 WHERE (c.last_run_at IS NOT NULL OR c.last_run_status IS NOT NULL OR c.last_run_error IS NOT NULL OR c.last_run_id IS NOT NULL
        OR c.last_run_scheduled_for IS NOT NULL)
   AND NOT EXISTS (SELECT 1 FROM cron_last_runs l WHERE l.cron_id = c.cron_id)
 ORDER BY c.cron_id
 LIMIT 1000
ON CONFLICT (cron_id) DO NOTHING;
