-- agentcron:no-transaction
-- Cron names (issue 19): metadata.name, unique per owner when set. The API checks it under an
-- advisory lock per (owner, name) (libs/crons/names.ts) and looks names up through this index:
-- (user_id, name) of the named crons only, so unnamed crons cost nothing here.
--
-- Not a unique index: crons written before names were a rule may already share a name, and a
-- unique index would make this migration (and every process starting with it) fail on them.
-- Old processes beside it keep working (they never read it). Both built CONCURRENTLY: crons and
-- runs are hot tables (migrations/README.md), writes go on while they build.
CREATE INDEX CONCURRENTLY IF NOT EXISTS crons_user_name ON crons (user_id, (metadata->>'name')) WHERE metadata ? 'name';

-- GET /runs (runs across threads and crons, owner-scoped, newest first): one owner's runs in the
-- listing's order, so a page reads its rows and stops instead of sorting every run of the owner.
CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_user_created ON runs (user_id, created_at DESC, run_id DESC);
