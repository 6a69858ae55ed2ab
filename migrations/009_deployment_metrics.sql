-- Deployment-wide counters for the api's /metrics (libs/metrics/fold.ts). The runs, the ledger
-- and the webhook columns already say everything the counters count; an api scrape folds what
-- happened since the previous fold into metrics_rollup, under one lock, so every api instance
-- reads the same numbers. The counters ARE the rollup: it only ever grows, so nothing that later
-- deletes runs or ledger rows (retention, a deleted cron or thread, a rollback) takes a count
-- back. Nothing here is written by the run path: no trigger, no column on runs or
-- cron_occurrences, one partial index on retried ledger rows only (below); a fold only reads them
-- (an MVCC snapshot, no row locks).

-- One row per series: a counter's count, or a histogram's count, sum and per-bucket counts
-- (not cumulative, aligned with the bounds in libs/metrics/registry.ts; changing a histogram's
-- bounds needs a migration that deletes its rows).
CREATE TABLE metrics_rollup (
  metric   text NOT NULL,
  labels   jsonb NOT NULL,
  count    bigint NOT NULL DEFAULT 0,
  sum      double precision NOT NULL DEFAULT 0,
  buckets  bigint[],
  PRIMARY KEY (metric, labels)
);

-- Where the folds are: every event (a run started or ended, an occurrence fired or skipped)
-- whose time is before `horizon` is in metrics_rollup, and none after it. One row, locked by
-- the fold that moves it: folds take turns.
CREATE TABLE metrics_fold (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  horizon    timestamptz NOT NULL,
  folded_at  timestamptz,
  fold_ms    double precision
);

-- Ledger rows created before the horizon that may still have events to count (not settled, or
-- settled after the horizon): the next fold looks at them by key. Without them, the run of a
-- stateless cron whose thread (and run) is deleted when it ends could only be found by scanning
-- the ledger for ended_at, which has no index (and gets none: the run path would pay for it).
CREATE TABLE metrics_open_occurrences (
  cron_id        uuid NOT NULL,
  scheduled_for  timestamptz NOT NULL,
  PRIMARY KEY (cron_id, scheduled_for)
);

-- A retry (POST .../occurrences/{scheduled_for}/retry) reopens an old ledger row: the next fold
-- finds it here. Only retried rows are in this index, and no write of the run path changes
-- retried_at, so the claim's and the finish's updates of the ledger stay as they were (HOT when
-- they were).
CREATE INDEX cron_occurrences_retried ON cron_occurrences (retried_at) WHERE retried_at IS NOT NULL;

-- Webhook deliveries of counted runs still pending at the last fold: counted (delivered, failed,
-- refused, and their retried attempts) when a fold finds them settled. A cron run's delivery is
-- read from its ledger row, any other from its run.
CREATE TABLE metrics_open_webhooks (
  run_id         uuid PRIMARY KEY,
  cron_id        uuid,
  scheduled_for  timestamptz
);

-- Counting starts now: what was already settled is history, what is in flight is watched.
INSERT INTO metrics_fold (horizon) VALUES (now());
INSERT INTO metrics_open_occurrences (cron_id, scheduled_for)
  SELECT cron_id, scheduled_for FROM cron_occurrences WHERE status IN ('enqueued', 'running');
INSERT INTO metrics_open_webhooks (run_id, cron_id, scheduled_for)
  SELECT run_id, cron_id, scheduled_for FROM cron_occurrences WHERE webhook_status = 'pending' AND run_id IS NOT NULL
  UNION ALL
  SELECT r.run_id, NULL, NULL FROM runs r
   WHERE r.webhook_status = 'pending'
     AND NOT EXISTS (SELECT 1 FROM cron_occurrences o WHERE o.cron_id = r.cron_id AND o.scheduled_for = r.scheduled_for)
  ON CONFLICT (run_id) DO NOTHING;
