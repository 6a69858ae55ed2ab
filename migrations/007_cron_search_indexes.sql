-- The crons API at scale (issue 11): with 100,000 crons per owner, search sorted every one of
-- them (no index matched its ORDER BY), and count and the per-user cap counted every one.
--
-- 1. Search indexes, one per sort the API serves from an index, each (user_id, <key>, cron_id):
--    the owner's rows in the search's order, cron_id breaking ties as the search does. Scanned
--    forward for ascending, backward for descending. created_at is the API's default sort
--    (created_at desc) and replaces crons_user (user_id, created_at DESC), which no query's
--    ORDER BY matched. next_run_date is nullable (finished crons): ascending, NULLS LAST is the
--    index's own order; descending with nulls last, the search reads the non-null rows and the
--    null rows as two ranges of this index (libs/crons/repository.ts, searchCrons). cron_id is
--    served by the primary key. Sorting by assistant_id, thread_id or end_time still sorts the
--    owner's rows: every index here is written on every scheduler pass (advancing next_run_date
--    is never a HOT update), so only the common sorts get one. crons_assistant (the foreign
--    key's index) gains user_id, so counting an owner's crons of one assistant reads only those
--    index entries, at no extra write.
--
-- 2. cron_user_counts: how many crons each user owns, kept by triggers on every insert, delete
--    and change of owner (API, SQL, cascades from threads and assistants, admin transfers). The
--    count endpoint without filters reads it, and so does the CRON_MAX_PER_USER check, under
--    the per-user advisory lock creates already take (libs/crons/repository.ts,
--    lockAndCountUserCrons): one row instead of a count(*) of the user's crons. The triggers are
--    statement-level with transition tables, one counter write per user per statement, in
--    user_id order; a counter row is locked after the crons rows its statement wrote (lock order:
--    crons, then cron_user_counts by user_id), and a create holds its user's advisory lock
--    before either.
--
-- Safe when two processes migrate at once (libs/db/migrate.ts serialises them; this runs in one
-- transaction). The table is locked for the whole migration, so no write slips between the
-- backfill and the triggers; taking the strongest lock first means no lock upgrade midway. On a
-- large table that must stay writable, build the indexes with CREATE INDEX CONCURRENTLY outside a
-- transaction first (this migration then only swaps names and adds the counters).

LOCK TABLE crons IN ACCESS EXCLUSIVE MODE;

CREATE INDEX crons_user_created ON crons (user_id, created_at, cron_id);
CREATE INDEX crons_user_updated ON crons (user_id, updated_at, cron_id);
CREATE INDEX crons_user_next_run ON crons (user_id, next_run_date, cron_id);
DROP INDEX crons_user;
DROP INDEX crons_assistant;
CREATE INDEX crons_assistant ON crons (assistant_id, user_id);

CREATE TABLE cron_user_counts (
  user_id  text PRIMARY KEY,
  n        integer NOT NULL
);
INSERT INTO cron_user_counts (user_id, n) SELECT user_id, count(*) FROM crons GROUP BY user_id;

CREATE FUNCTION agentcron_count_crons_inserted() RETURNS trigger AS $$
BEGIN
  INSERT INTO cron_user_counts AS k (user_id, n)
  SELECT user_id, count(*) FROM inserted_crons GROUP BY user_id ORDER BY user_id
  ON CONFLICT (user_id) DO UPDATE SET n = k.n + excluded.n;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION agentcron_count_crons_deleted() RETURNS trigger AS $$
BEGIN
  INSERT INTO cron_user_counts AS k (user_id, n)
  SELECT user_id, -count(*) FROM deleted_crons GROUP BY user_id ORDER BY user_id
  ON CONFLICT (user_id) DO UPDATE SET n = k.n + excluded.n;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A change of owner (an admin transfer): row-level, fired only by an UPDATE that sets user_id,
-- so the scheduler's and the workers' updates never reach it.
CREATE FUNCTION agentcron_count_crons_moved() RETURNS trigger AS $$
BEGIN
  INSERT INTO cron_user_counts AS k (user_id, n)
  SELECT u, d FROM (VALUES (OLD.user_id, -1), (NEW.user_id, 1)) AS v(u, d) ORDER BY u
  ON CONFLICT (user_id) DO UPDATE SET n = k.n + excluded.n;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION agentcron_count_crons_truncated() RETURNS trigger AS $$
BEGIN
  DELETE FROM cron_user_counts;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER crons_count_inserted AFTER INSERT ON crons
  REFERENCING NEW TABLE AS inserted_crons FOR EACH STATEMENT EXECUTE FUNCTION agentcron_count_crons_inserted();
CREATE TRIGGER crons_count_deleted AFTER DELETE ON crons
  REFERENCING OLD TABLE AS deleted_crons FOR EACH STATEMENT EXECUTE FUNCTION agentcron_count_crons_deleted();
CREATE TRIGGER crons_count_moved AFTER UPDATE OF user_id ON crons
  FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION agentcron_count_crons_moved();
CREATE TRIGGER crons_count_truncated AFTER TRUNCATE ON crons
  FOR EACH STATEMENT EXECUTE FUNCTION agentcron_count_crons_truncated();
