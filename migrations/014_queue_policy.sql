-- The version of agentcron's queue policy each pg-boss queue was last written with (libs/queue
-- policy.ts): a process writes a queue's policy only when its own policy version is not older, so
-- an old process restarted after a release never undoes the new policy. A new table: nothing
-- running reads it, nothing is locked but its own catalog entry.
CREATE TABLE IF NOT EXISTS agentcron_queue_policy (
  queue       text PRIMARY KEY,
  version     integer NOT NULL,
  written_at  timestamptz NOT NULL DEFAULT now()
);
