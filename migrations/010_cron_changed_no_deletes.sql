-- Schedulers are woken (NOTIFY agentcron_cron_changed) only by changes that can make a cron due
-- sooner: a cron created, or its schedule, timezone, enabled, next_run_date or end_time changed.
-- A deletion never can, and deletions were the common case: deleting a thread cascades a DELETE
-- onto crons (a thread-bound cron goes with its thread), and the statement-level trigger fired for
-- every such statement, bound cron or not, so each finished stateless run (its ephemeral thread
-- deleted) woke every scheduler. A scheduler asleep until a deleted cron's time wakes then, finds
-- nothing due and sleeps on.
DROP TRIGGER IF EXISTS crons_changed ON crons;
CREATE TRIGGER crons_changed
  AFTER INSERT OR UPDATE OF schedule, timezone, enabled, next_run_date, end_time ON crons
  FOR EACH STATEMENT EXECUTE FUNCTION agentcron_notify_cron_changed();
