-- The end of the queue behind a rate-limited limit (libs/runs/lifecycle.ts admitLimited): the
-- instant the next run refused by its full window may start. A new nullable column on a small
-- table of agentcron's own: old processes never read it.
ALTER TABLE flow_limits ADD COLUMN IF NOT EXISTS rate_cursor timestamptz;
