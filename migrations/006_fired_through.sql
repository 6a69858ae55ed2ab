-- The monotonic position of a cron's schedule (as graphile-worker keeps last_execution): every
-- scheduled occurrence at or before fired_through has been handled (fired or skipped, with its
-- ledger row). next_run_date may never go back to or before it, whoever writes it (a scheduler
-- pass, a PATCH, an enable): the CHECK turns a writer that tried into an error instead of a
-- second run of an occurrence that already fired.
ALTER TABLE crons ADD COLUMN fired_through timestamptz;
-- From the ledger; capped below a stored next_run_date so existing rows satisfy the CHECK.
UPDATE crons c
   SET fired_through = least(o.last, c.next_run_date - interval '1 microsecond')
  FROM (SELECT cron_id, max(scheduled_for) AS last FROM cron_occurrences WHERE trigger = 'schedule' GROUP BY cron_id) o
 WHERE o.cron_id = c.cron_id;
ALTER TABLE crons ADD CONSTRAINT crons_next_after_fired
  CHECK (next_run_date IS NULL OR fired_through IS NULL OR next_run_date > fired_through);
