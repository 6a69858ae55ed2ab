-- Room on each page of crons for the row's next version, so the finish's write of last_run_* is a
-- HOT update (no index entries) instead of writing an entry in each of the table's indexes.
-- Every occurrence updates its cron twice: the scheduler's pass moves next_run_date (indexed:
-- never HOT) and the finish writes last_run_*, indexed by nothing, but HOT only when the new
-- version fits on the row's page; packed full by inserts, it almost never did (6 % in a herd of
-- 10,000). Only a storage parameter: SHARE UPDATE EXCLUSIVE (reads and writes go on), no
-- rewrite; pages written from now on keep the room, existing ones as their rows move.
ALTER TABLE crons SET (fillfactor = 70);
