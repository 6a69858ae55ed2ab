import type { Pool } from '../db/index.ts';
import { pgErrorCode, withTransaction } from '../db/index.ts';
import { FIRE_LAG_BUCKETS, RUN_DURATION_BUCKETS } from './registry.ts';

// The deployment's counters, folded from durable data (migrations/009_deployment_metrics.sql).
//
// WHAT IS COUNTED, AND FROM WHERE. Each counter counts events, each with the time it happened:
//   run started        cron run: ledger started_at        other run: runs.started_at
//   run ended          cron run: ledger ended_at, status  other run: runs.ended_at, status
//   occurrence fired   ledger enqueued_at (trigger schedule), with its lag enqueued_at - scheduled_for
//   occurrence skipped ledger created_at, reason
//   webhook delivery   when a fold first finds the delivery of a counted run settled (sent/failed),
//                      from the ledger row (cron runs) or the run: delivered, failed or refused,
//                      plus attempts - 1 retried (for a delivery lost with its workers, every
//                      recorded attempt: the lost one recorded nothing)
// A cron's run is read from its ledger row (it outlives the ephemeral thread and run); a run is
// read from `runs` when no ledger row stands for it.
//
// EXACTLY ONCE. A fold counts the events whose time is in [previous horizon, horizon). Every
// time above is now() (or clock_timestamp(), never earlier) of the transaction that wrote it, so
// an event before the horizon was written by a transaction that started before it. The horizon
// is the start of the oldest transaction still open in this database when the fold begins (read
// from pg_stat_activity before the fold's snapshot is taken): every transaction that started
// before it has committed (or rolled back) by then, so the fold's snapshot sees every event
// before the horizon, and no later fold counts one again. Which rows can hold events in the
// window: ledger rows created in it (the created_at index) or retried since the previous horizon
// (a retry reopens an old row: cron_occurrences_retried, on retried rows only), ledger rows the
// previous fold kept because they were still open (metrics_open_occurrences: a stateless cron's
// run vanishes with its thread when it ends, and the ledger has no index on ended_at), runs
// ended since the previous horizon (runs_ended) and runs pending or running (runs_active).
//
// MONOTONIC. The counters are metrics_rollup, which a fold only adds to. Deleting rows later
// (retention, a deleted cron or thread, a rollback) cannot take anything back. What is deleted
// before a fold has seen it is not counted: the ledger rows of a cron deleted between its runs'
// end and the next scrape, and the runs neither a cron nor a kept thread holds (a stateless
// run's thread and run are deleted in the transaction that ends it, leaving no row at all).
//
// ONE FOLD AT A TIME. The fold locks metrics_fold's row, in a REPEATABLE READ transaction: a
// second api instance waits, then finds the row moved (serialization failure) and reads the
// rollup the first one wrote. Every api instance answers the same numbers.

export const HISTOGRAM_BOUNDS: Record<string, readonly number[]> = {
  agentcron_run_duration_seconds: RUN_DURATION_BUCKETS,
  agentcron_fire_lag_seconds: FIRE_LAG_BUCKETS,
};

/**
 * Sessions of other roles hide their transaction start (and type) from a role without
 * pg_read_all_stats, not whether they hold a transaction id or a snapshot: while one of them is
 * busy in this database, the horizon stays this far behind now, past any transaction agentcron's
 * roles run. (Autovacuum and other background workers have no role: they are not waited for.)
 */
export const HIDDEN_SESSION_MARGIN_SECONDS = 600;

/** A fold that catches up on a long pause may take a while; it is never a scrape's to cancel. */
const FOLD_STATEMENT_TIMEOUT_MS = 300_000;

// As text, never as a JS Date: a Date keeps milliseconds and the database keeps microseconds.
const HORIZON_SQL = `
  SELECT least(now(),
               min(a.xact_start) FILTER (WHERE a.backend_type = 'client backend'),
               CASE WHEN bool_or(a.backend_type IS NULL AND a.usesysid IS NOT NULL AND (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL))
                    THEN now() - make_interval(secs => $1) END)::text AS horizon
    FROM pg_stat_activity a
   WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())`;

const LOCK_STATE = `SELECT horizon::text AS horizon, horizon >= $1::timestamptz AS current FROM metrics_fold FOR UPDATE`;

// $1 the previous horizon, $2 the new one, $3/$4 the duration and lag histogram bounds.
const FOLD_SQL = `
  WITH occ_keys AS (
    SELECT cron_id, scheduled_for FROM cron_occurrences WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
    UNION
    SELECT cron_id, scheduled_for FROM cron_occurrences WHERE retried_at >= $1::timestamptz
    UNION
    SELECT cron_id, scheduled_for FROM metrics_open_occurrences
  ), occ AS MATERIALIZED (
    SELECT o.cron_id, o.scheduled_for, o.run_id, o.trigger, o.status, o.reason, o.created_at, o.enqueued_at, o.started_at, o.ended_at,
           o.webhook_status, o.webhook_attempts, o.webhook_error, coalesce(a.graph_id, 'unknown') AS graph
      FROM occ_keys k
      JOIN cron_occurrences o ON o.cron_id = k.cron_id AND o.scheduled_for = k.scheduled_for
      LEFT JOIN crons c ON c.cron_id = o.cron_id
      LEFT JOIN assistants a ON a.assistant_id = c.assistant_id
  ), run_ids AS (
    SELECT run_id FROM runs WHERE ended_at >= $1::timestamptz
    UNION
    SELECT run_id FROM runs WHERE status IN ('pending', 'running')
  ), run_rows AS MATERIALIZED (
    SELECT r.run_id, r.status, r.started_at, r.ended_at, r.webhook_status, r.webhook_attempts, r.webhook_error,
           coalesce(a.graph_id, 'unknown') AS graph
      FROM run_ids i
      JOIN runs r ON r.run_id = i.run_id
      LEFT JOIN assistants a ON a.assistant_id = r.assistant_id
     WHERE NOT EXISTS (SELECT 1 FROM cron_occurrences o WHERE o.cron_id = r.cron_id AND o.scheduled_for = r.scheduled_for)
  ), finished AS MATERIALIZED (
    SELECT run_id, cron_id, scheduled_for, graph, status, started_at, ended_at, webhook_status, webhook_attempts, webhook_error
      FROM occ
     WHERE status IN ('success', 'error', 'timeout', 'interrupted') AND ended_at >= $1::timestamptz AND ended_at < $2::timestamptz
    UNION ALL
    SELECT run_id, NULL, NULL, graph, status, started_at, ended_at, webhook_status, webhook_attempts, webhook_error
      FROM run_rows
     WHERE status NOT IN ('pending', 'running') AND ended_at >= $1::timestamptz AND ended_at < $2::timestamptz
  ), open_hooks AS MATERIALIZED (
    SELECT w.run_id, w.cron_id, w.scheduled_for,
           coalesce(o.webhook_status, r.webhook_status) AS webhook_status,
           coalesce(o.webhook_attempts, r.webhook_attempts) AS webhook_attempts,
           coalesce(o.webhook_error, r.webhook_error) AS webhook_error
      FROM metrics_open_webhooks w
      LEFT JOIN cron_occurrences o ON o.cron_id = w.cron_id AND o.scheduled_for = w.scheduled_for AND o.run_id = w.run_id
      LEFT JOIN runs r ON r.run_id = w.run_id
  ), settled_hooks AS (
    SELECT webhook_status, webhook_attempts, webhook_error FROM finished WHERE webhook_status IN ('sent', 'failed')
    UNION ALL
    SELECT webhook_status, webhook_attempts, webhook_error FROM open_hooks WHERE webhook_status IN ('sent', 'failed')
  ), hooks AS (
    SELECT CASE WHEN webhook_status = 'sent' THEN 'delivered'
                WHEN webhook_error LIKE 'refused:%' OR webhook_error LIKE 'invalid webhook URL%' THEN 'refused'
                ELSE 'failed' END AS outcome,
           CASE WHEN webhook_status = 'failed' AND webhook_error LIKE '%the delivery was abandoned%' THEN webhook_attempts
                ELSE greatest(webhook_attempts - 1, 0) END AS retried
      FROM settled_hooks
  ), keep_occ AS (
    SELECT cron_id, scheduled_for FROM occ
     WHERE created_at < $2::timestamptz
       AND (status IN ('enqueued', 'running') OR greatest(enqueued_at, started_at, ended_at) >= $2::timestamptz)
  ), drop_occ AS (
    DELETE FROM metrics_open_occurrences m
     WHERE NOT EXISTS (SELECT 1 FROM keep_occ k WHERE k.cron_id = m.cron_id AND k.scheduled_for = m.scheduled_for)
  ), add_occ AS (
    INSERT INTO metrics_open_occurrences (cron_id, scheduled_for) SELECT cron_id, scheduled_for FROM keep_occ ON CONFLICT DO NOTHING
  ), keep_hooks AS (
    SELECT run_id, cron_id, scheduled_for FROM finished WHERE webhook_status = 'pending' AND run_id IS NOT NULL
    UNION
    SELECT run_id, cron_id, scheduled_for FROM open_hooks WHERE webhook_status = 'pending'
  ), drop_hooks AS (
    DELETE FROM metrics_open_webhooks w WHERE NOT EXISTS (SELECT 1 FROM keep_hooks k WHERE k.run_id = w.run_id)
  ), add_hooks AS (
    INSERT INTO metrics_open_webhooks (run_id, cron_id, scheduled_for)
    SELECT DISTINCT ON (run_id) run_id, cron_id, scheduled_for FROM keep_hooks ON CONFLICT DO NOTHING
  ), events (metric, labels, n, v) AS (
    SELECT 'agentcron_runs_started_total', jsonb_build_object('graph', graph), 1, NULL::float8
      FROM occ WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz
    UNION ALL
    SELECT 'agentcron_runs_started_total', jsonb_build_object('graph', graph), 1, NULL
      FROM run_rows WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz
    UNION ALL
    SELECT 'agentcron_runs_finished_total', jsonb_build_object('graph', graph, 'status', status), 1, NULL FROM finished
    UNION ALL
    SELECT 'agentcron_run_duration_seconds', jsonb_build_object('graph', graph, 'status', status), 1,
           greatest(extract(epoch FROM ended_at - started_at)::float8, 0)
      FROM finished WHERE started_at IS NOT NULL
    UNION ALL
    SELECT 'agentcron_occurrences_fired_total', jsonb_build_object('kind', 'cron'), 1, NULL
      FROM occ WHERE trigger = 'schedule' AND enqueued_at >= $1::timestamptz AND enqueued_at < $2::timestamptz
    UNION ALL
    SELECT 'agentcron_fire_lag_seconds', jsonb_build_object('kind', 'cron'), 1, greatest(extract(epoch FROM enqueued_at - scheduled_for)::float8, 0)
      FROM occ WHERE trigger = 'schedule' AND enqueued_at >= $1::timestamptz AND enqueued_at < $2::timestamptz
    UNION ALL
    SELECT 'agentcron_occurrences_skipped_total', jsonb_build_object('reason', coalesce(reason, 'unknown')), 1, NULL
      FROM occ WHERE status = 'skipped' AND created_at >= $1::timestamptz AND created_at < $2::timestamptz
    UNION ALL
    SELECT 'agentcron_webhook_deliveries_total', jsonb_build_object('outcome', outcome), 1, NULL FROM hooks
    UNION ALL
    SELECT 'agentcron_webhook_deliveries_total', jsonb_build_object('outcome', 'retried'), retried, NULL FROM hooks WHERE retried > 0
  ), bucketed AS (
    -- The bucket of a histogram's value: how many bounds are below it (a bucket's bound is le, inclusive).
    SELECT metric, labels, n, v,
           CASE metric WHEN 'agentcron_run_duration_seconds' THEN $3::float8[] WHEN 'agentcron_fire_lag_seconds' THEN $4::float8[] END AS bounds
      FROM events
  )
  SELECT metric, labels,
         CASE WHEN bounds IS NULL THEN NULL
              WHEN width_bucket(v, bounds) > 0 AND bounds[width_bucket(v, bounds)] = v THEN width_bucket(v, bounds) - 1
              ELSE width_bucket(v, bounds) END AS bucket,
         sum(n)::float8 AS n, coalesce(sum(v), 0)::float8 AS total
    FROM bucketed
   GROUP BY 1, 2, 3`;

// Adds a fold's deltas to the rollup; bucket arrays element by element.
const MERGE = `
  INSERT INTO metrics_rollup AS m (metric, labels, count, sum, buckets)
  SELECT x.metric, x.labels, x.count, x.sum, x.buckets
    FROM jsonb_to_recordset($1::jsonb) AS x(metric text, labels jsonb, count bigint, sum double precision, buckets bigint[])
  ON CONFLICT (metric, labels) DO UPDATE
     SET count = m.count + excluded.count,
         sum = m.sum + excluded.sum,
         buckets = CASE WHEN m.buckets IS NULL THEN excluded.buckets
                        WHEN excluded.buckets IS NULL THEN m.buckets
                        ELSE ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
                                     FROM unnest(m.buckets, excluded.buckets) WITH ORDINALITY AS t(a, b, i) ORDER BY i) END`;

const MOVE = `UPDATE metrics_fold SET horizon = $1::timestamptz, folded_at = now(), fold_ms = $2`;

interface DeltaRow {
  metric: string;
  labels: Record<string, string>;
  bucket: number | null;
  n: number;
  total: number;
}

interface Delta {
  metric: string;
  labels: Record<string, string>;
  count: number;
  sum: number;
  buckets: number[] | null;
}

/** The fold's rows (one per series and bucket) as one delta per series. */
function deltasOf(rows: DeltaRow[]): Delta[] {
  const out = new Map<string, Delta>();
  for (const r of rows) {
    const key = `${r.metric}\u0000${seriesKey(r.labels)}`;
    const bounds = HISTOGRAM_BOUNDS[r.metric];
    let d = out.get(key);
    if (!d) {
      d = { metric: r.metric, labels: r.labels, count: 0, sum: 0, buckets: bounds ? new Array<number>(bounds.length + 1).fill(0) : null };
      out.set(key, d);
    }
    d.count += r.n;
    d.sum += r.total;
    if (d.buckets && r.bucket !== null) d.buckets[r.bucket] += r.n;
  }
  return [...out.values()];
}

/** Labels in a stable order, as a map key. */
export const seriesKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export interface FoldOutcome {
  /** Whether this call moved the horizon (false: nothing new, or another api instance was folding). */
  folded: boolean;
  /** Series that changed. */
  series: number;
  ms: number;
}

/**
 * Folds every event before the current horizon into metrics_rollup (see above). Safe to call
 * from any number of api instances at once: one folds, the others find it done.
 */
export async function foldCounters(pool: Pool): Promise<FoldOutcome> {
  const started = performance.now();
  const { rows } = await pool.query<{ horizon: string }>(HORIZON_SQL, [HIDDEN_SESSION_MARGIN_SECONDS]);
  const horizon = rows[0].horizon;
  try {
    return await withTransaction(pool, async (client) => {
      // The snapshot is taken by the first query below: after the horizon was read.
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await client.query(`SET LOCAL statement_timeout = ${FOLD_STATEMENT_TIMEOUT_MS}`);
      const state = await client.query<{ horizon: string; current: boolean }>(LOCK_STATE, [horizon]);
      if (state.rows.length === 0) throw new Error('metrics_fold has no row: migrations/009_deployment_metrics.sql was not applied');
      if (state.rows[0].current) return { folded: false, series: 0, ms: performance.now() - started };
      const { rows: changes } = await client.query<DeltaRow>(FOLD_SQL, [state.rows[0].horizon, horizon, RUN_DURATION_BUCKETS, FIRE_LAG_BUCKETS]);
      const deltas = deltasOf(changes);
      if (deltas.length) await client.query(MERGE, [JSON.stringify(deltas)]);
      const ms = performance.now() - started;
      await client.query(MOVE, [horizon, ms]);
      return { folded: true, series: deltas.length, ms };
    });
  } catch (err) {
    // Another instance folded meanwhile (the row moved under this snapshot), or is still folding
    // past lock_timeout: its rollup is what this scrape reads.
    const code = pgErrorCode(err);
    if (code === '40001' || code === '55P03') return { folded: false, series: 0, ms: performance.now() - started };
    throw err;
  }
}

export interface RollupSeries {
  metric: string;
  labels: Record<string, string>;
  count: number;
  sum: number;
  buckets: number[] | null;
}

export interface Rollup {
  series: RollupSeries[];
  /** Every event before this is counted, none after. */
  horizon: Date;
  /** When the horizon last moved, and how long that fold took. */
  foldedAt: Date | null;
  foldMs: number | null;
  /** now() - horizon, by the database's clock. */
  lagSeconds: number;
}

const READ_ROLLUP = `
  SELECT metric, labels, count::float8 AS count, sum, buckets::float8[] AS buckets,
         NULL::timestamptz AS horizon, NULL::timestamptz AS folded_at, NULL::float8 AS fold_ms, NULL::float8 AS lag
    FROM metrics_rollup
  UNION ALL
  SELECT NULL, NULL, NULL, NULL, NULL, horizon, folded_at, fold_ms, extract(epoch FROM now() - horizon)::float8 FROM metrics_fold`;

/** The counters as the last fold committed them. */
export async function readRollup(pool: Pool): Promise<Rollup> {
  const { rows } = await pool.query<{
    metric: string | null;
    labels: Record<string, string> | null;
    count: number | null;
    sum: number | null;
    buckets: number[] | null;
    horizon: Date | null;
    folded_at: Date | null;
    fold_ms: number | null;
    lag: number | null;
  }>(READ_ROLLUP);
  const state = rows.find((r) => r.metric === null);
  return {
    series: rows
      .filter((r) => r.metric !== null)
      .map((r) => ({ metric: r.metric!, labels: r.labels!, count: r.count ?? 0, sum: r.sum ?? 0, buckets: r.buckets })),
    horizon: state?.horizon ?? new Date(0),
    foldedAt: state?.folded_at ?? null,
    foldMs: state?.fold_ms ?? null,
    lagSeconds: state?.lag ?? 0,
  };
}
