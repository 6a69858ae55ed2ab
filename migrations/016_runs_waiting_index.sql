-- agentcron:no-transaction
-- Runs parked on a limit, oldest first: a freed slot wakes the oldest (libs/queue wakeParkedRuns),
-- and a rate limit counts the runs parked ahead (libs/runs/lifecycle.ts). Only parked runs are in
-- it. Built CONCURRENTLY: runs is a hot table (migrations/README.md).
CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_waiting ON runs (waiting, created_at) WHERE status = 'pending' AND waiting IS NOT NULL;
