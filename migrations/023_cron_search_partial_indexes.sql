-- agentcron:no-transaction
-- Search sorted by end_time or thread_id (issue 21: API p99 < 100 ms at 100,000 crons per owner)
-- without a cost on the firing path. migrations/007_cron_search_indexes.sql gave those sorts no
-- index because the scheduler's update of next_run_date is never HOT: every index of crons gets a
-- new entry on every firing. These two are PARTIAL: a non-HOT update inserts into a partial index
-- only when the row's new version satisfies its predicate, and most crons have no end_time and
-- no thread (stateless crons), so a herd of such crons writes nothing here (a cron with an
-- end_time, or bound to a thread, takes one entry in that key's index per firing). The search reads the
-- non-null rows from these indexes in (key, cron_id) order, forward or backward, and the null rows
-- (nulls last either way) as a second range in cron_id order, from the primary key filtered by
-- owner (libs/crons/search.ts). A (user_id, cron_id) index would serve that range for any owner
-- but take an entry on every firing: not built.
--
-- Built CONCURRENTLY: crons is a hot table (migrations/README.md), writes go on while they build.
-- Two processes migrating at once: libs/db/migrate.ts serialises them, and IF NOT EXISTS makes a
-- run cut short (or an index left invalid, which the migrator drops first) safe to run again. Old
-- processes beside it keep working (they never read these).
CREATE INDEX CONCURRENTLY IF NOT EXISTS crons_user_end_time ON crons (user_id, end_time, cron_id) WHERE end_time IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS crons_user_thread ON crons (user_id, thread_id, cron_id) WHERE thread_id IS NOT NULL;
