-- agentcron:no-transaction
-- The ledger partitioned by scheduled_for, online (019 says how and why). Each statement is a
-- transaction of its own under the runner's short lock_timeout, retried; each does nothing once
-- done, so a release cut short runs the file again from the top. With old processes still
-- running, the switch waits (the statement answers why) and the ledger_partitions maintenance
-- job makes it once they are gone; the CHECK prepared here keeps the old processes working.
--
-- 1. The CHECK (scheduled_for < cutover), NOT VALID: a brief ACCESS EXCLUSIVE lock.
SELECT agentcron_ledger_prepare();
-- 2. Validated apart: SHARE UPDATE EXCLUSIVE only, reads and writes go on during the scan.
SELECT agentcron_ledger_validate();
-- 3. Rename, new parent, ATTACH the old table as the partition below the cutover, DEFAULT
--    partition, daily partitions a week ahead: one short transaction, no row copied.
SELECT agentcron_ledger_partition(19, 7);
-- 4. Daily partitions a week ahead (again at every release; hourly by the ledger_partitions job).
SELECT agentcron_ledger_partitions_ahead(7);
