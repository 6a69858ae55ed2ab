-- Saturation (docs/flow-control.md, "Saturation is visible"): a few deployment-wide samples of
-- the backlog, so every api judges "the backlog grew for 5 minutes" from the same history. Written
-- by whichever process computes the saturation figures first in each 30 s slot (libs/metrics/
-- saturation.ts: the slot is the key, so two apis never both write one), pruned to 15 minutes
-- by the same statement: a few dozen rows at most. A new table only: safe beside old processes.
CREATE TABLE saturation_samples (
  -- floor(epoch / 30) of sampled_at: at most one sample per 30 s slot, whoever writes it.
  slot              bigint PRIMARY KEY,
  sampled_at        timestamptz NOT NULL DEFAULT now(),
  -- Pending runs due and not started: waiting for a free worker or for a limit (not for a retry's backoff).
  backlog           integer NOT NULL,
  -- created_on of the oldest run job waiting for its first attempt at sampled_at (NULL: none).
  -- Every first attempt that starts later was made after it: it bounds the ledger scan of the
  -- lag to start.
  oldest_queued_at  timestamptz
);
CREATE INDEX saturation_samples_at ON saturation_samples (sampled_at);
