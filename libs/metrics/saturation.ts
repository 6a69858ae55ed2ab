import type { Pool } from '../db/index.ts';
import { oldestFirstAttemptRunJobSql, runJobStartAfterSql, runQueueHead } from '../queue/index.ts';

// Saturation: is the deployment keeping up? Figures of the whole deployment, read from the
// database (the same on every api, whichever process asks), for /health, /metrics and the
// heartbeat monitor:
//   queue latency   how long the run at the head of the queue has been able to start and not
//                   started (the number queue-latency autoscalers scale workers on);
//   waiting         pending runs by why they wait: a free worker, a limit, a retry's backoff;
//   lag to start    p50/p95/p99 of start minus when due, of the runs that started in the window
//                   (HEALTH_START_LAG_WINDOW_SECONDS, a minute by default), first attempts only;
//   backlog growth  whether the backlog (runs due and waiting for a worker or a limit) grew over
//                   each of the last 5 minutes, from samples every api and worker shares
//                   (saturation_samples, migrations/012).
// Degraded when lag to start p95 exceeds HEALTH_MAX_START_LAG_SECONDS, when the run at the head
// of the queue has already waited longer than that, or when the backlog grew for 5 minutes.
// Every read is indexed and bounded; one computation per process serves every caller for ~2 s.

export interface SaturationSettings {
  pgbossSchema: string;
  /** HEALTH_MAX_START_LAG_SECONDS. */
  maxStartLagSeconds: number;
  /** HEALTH_START_LAG_WINDOW_SECONDS: lag to start is measured over the runs started this long ago at most. */
  windowSeconds: number;
}

export const SATURATION_DEFAULTS = { maxStartLagSeconds: 30, windowSeconds: 60 } as const;

export interface Saturation {
  /** The database's clock when the figures were read. */
  computed_at: string;
  status: 'ok' | 'degraded';
  /** Why degraded, one sentence each; empty when ok. */
  reasons: string[];
  queue_latency_seconds: number;
  /** Pending runs by why they wait: worker (due, waiting for a free worker), retry (a retry's backoff), limit (by limit name). */
  waiting: { worker: number; retry: number; limit: Record<string, number> };
  start_lag: {
    window_seconds: number;
    /** First attempts started in the window (the percentiles are of these; null when none). */
    started: number;
    p50: number | null;
    p95: number | null;
    p99: number | null;
    max_seconds: number;
  };
  backlog: {
    /** Runs due and waiting for a worker or a limit, now. */
    now: number;
    /** The backlog 5 minutes ago (the sample nearest before), null when no sample is that old. */
    five_minutes_ago: number | null;
    grew_for_5_minutes: boolean;
  };
}

/** How long the backlog must have grown for /health to say so. */
export const BACKLOG_GROWTH_SECONDS = 300;
/** Samples further apart than this leave the growth unjudged (nobody computed the figures in between). */
const MAX_SAMPLE_GAP_SECONDS = 90;
/** One sample per slot of this many seconds, kept this long. */
const SAMPLE_SLOT_SECONDS = 30;
const SAMPLE_KEEP = '15 minutes';
/** How long a computation serves every caller in this process. */
export const SATURATION_CACHE_MS = 2000;

const WAITING_SQL = `
  SELECT coalesce(waiting, 'worker') AS reason, count(*)::int AS n
    FROM runs
   WHERE status = 'pending' AND (waiting IS NOT NULL OR not_before IS NULL OR not_before <= now())
   GROUP BY 1`;

// Writes this moment's sample when its 30 s slot has none (the slot is the key: two processes at
// once write one row; the oldest waiting job is read only then), prunes old ones on the same
// write, and reads the last 15 minutes.
const SAMPLES_SQL = (schema: string) => `
  WITH ins AS (
    INSERT INTO saturation_samples (slot, backlog, oldest_queued_at)
    SELECT floor(extract(epoch FROM now()) / ${SAMPLE_SLOT_SECONDS})::bigint, $1, ${oldestFirstAttemptRunJobSql(schema)}
     WHERE NOT EXISTS (SELECT 1 FROM saturation_samples WHERE sampled_at > now() - interval '${SAMPLE_SLOT_SECONDS - 5} seconds')
    ON CONFLICT (slot) DO NOTHING
    RETURNING 1
  ), prune AS (
    DELETE FROM saturation_samples WHERE sampled_at < now() - interval '${SAMPLE_KEEP}' AND EXISTS (SELECT 1 FROM ins)
  )
  SELECT sampled_at, backlog, now() AS now FROM saturation_samples WHERE sampled_at >= now() - interval '${SAMPLE_KEEP}' ORDER BY sampled_at`;

/**
 * Lag to start of the first attempts started in the last $1 seconds.
 * A cron's occurrence, from its ledger row: due at planned_for (jitter) or scheduled_for; one
 * fired by a trigger, a backfill or a create at the row's creation, a retried one at retried_at.
 * Any other run (runs.cron_id NULL), from the run while it runs or once it ended on a kept
 * thread (a stateless run is deleted when it ends: it counts while it runs): due when its job
 * last became runnable, greatest(created_at, not_before, its job's start_after): after_seconds,
 * or the wake from a limit (a claim clears not_before; the job keeps start_after).
 * The ledger is large: the scan is bounded by created_at (its index). A row that started in the
 * window was, at any earlier moment, either waiting or not yet made; so the newest sample taken
 * before the window began bounds it: nothing that starts now was made before that sample's
 * oldest queued run. Without such a sample (none in the 5 minutes before the window), the last
 * 10 minutes; never more than 30.
 */
export const LAG_SQL = (schema: string) => `
  WITH since AS (
    SELECT greatest(now() - interval '30 minutes',
                    coalesce((SELECT least(s.sampled_at, coalesce(s.oldest_queued_at, s.sampled_at))
                                FROM saturation_samples s
                               WHERE s.sampled_at <= now() - make_interval(secs => $1)
                                 AND s.sampled_at > now() - make_interval(secs => $1) - interval '5 minutes'
                               ORDER BY s.sampled_at DESC
                               LIMIT 1),
                             now() - make_interval(secs => $1) - interval '10 minutes')) AS at
  ), retried AS MATERIALIZED (
    -- Older rows a retry reopened: read by the retried_at index (on retried rows only) alone.
    SELECT o.started_at, o.trigger, o.planned_for, o.scheduled_for, o.created_at, o.retried_at, o.attempt_log
      FROM cron_occurrences o
     WHERE o.retried_at >= (SELECT at FROM since)
  ), ledger AS (
    SELECT o.started_at, o.trigger, o.planned_for, o.scheduled_for, o.created_at, o.retried_at
      FROM cron_occurrences o
     WHERE o.created_at >= (SELECT at FROM since)
       AND o.started_at >= now() - make_interval(secs => $1) AND o.attempt_log IS NULL
    UNION ALL
    SELECT o.started_at, o.trigger, o.planned_for, o.scheduled_for, o.created_at, o.retried_at
      FROM retried o
     WHERE o.created_at < (SELECT at FROM since) AND o.started_at >= now() - make_interval(secs => $1) AND o.attempt_log IS NULL
  ), other AS (
    SELECT r.run_id, r.started_at, r.created_at, r.not_before
      FROM runs r
     WHERE r.status = 'running' AND r.cron_id IS NULL AND r.attempt_log IS NULL AND r.started_at >= now() - make_interval(secs => $1)
    UNION ALL
    SELECT r.run_id, r.started_at, r.created_at, r.not_before
      FROM runs r
     WHERE r.ended_at >= now() - make_interval(secs => $1) AND r.cron_id IS NULL AND r.attempt_log IS NULL
       AND r.started_at >= now() - make_interval(secs => $1)
  ), lags AS (
    SELECT o.started_at - coalesce(o.retried_at, CASE WHEN o.trigger = 'schedule' THEN coalesce(o.planned_for, o.scheduled_for) ELSE o.created_at END) AS lag
      FROM ledger o
    UNION ALL
    SELECT r.started_at - greatest(r.created_at, r.not_before, ${runJobStartAfterSql(schema, 'r.run_id')})
      FROM other r
  )
  SELECT count(*)::int AS started,
         percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM lag)::float8, 0)) AS q
    FROM lags`;

export interface BacklogPoint {
  at: number;
  backlog: number;
}

/**
 * Whether the backlog grew for 5 minutes: from the newest sample taken at least 5 minutes ago to
 * now, it never went down and ended higher, sampled at least every 90 s (a gap leaves it unjudged).
 */
export function backlogGrowth(samples: BacklogPoint[], now: BacklogPoint): { grew: boolean; from: number | null } {
  let start = -1;
  for (let i = 0; i < samples.length; i++) if (samples[i].at <= now.at - BACKLOG_GROWTH_SECONDS * 1000) start = i;
  if (start < 0) return { grew: false, from: null };
  const points = [...samples.slice(start), now];
  const from = points[0].backlog;
  for (let i = 1; i < points.length; i++) {
    if (points[i].at - points[i - 1].at > MAX_SAMPLE_GAP_SECONDS * 1000) return { grew: false, from };
    if (points[i].backlog < points[i - 1].backlog) return { grew: false, from };
  }
  return { grew: now.backlog > from, from };
}

const fmt = (seconds: number): string => seconds.toFixed(1);
const windowText = (seconds: number): string => (seconds === 60 ? 'the last minute' : `the last ${seconds} s`);

async function compute(pool: Pool, s: SaturationSettings): Promise<Saturation> {
  const [waitingRows, head] = await Promise.all([pool.query<{ reason: string; n: number }>(WAITING_SQL), runQueueHead(pool, s.pgbossSchema)]);
  const waiting: Saturation['waiting'] = { worker: 0, retry: 0, limit: {} };
  for (const r of waitingRows.rows) {
    if (r.reason === 'worker') waiting.worker += r.n;
    else if (r.reason === 'retry') waiting.retry += r.n;
    else if (r.reason.startsWith('limit:')) waiting.limit[r.reason.slice('limit:'.length)] = (waiting.limit[r.reason.slice('limit:'.length)] ?? 0) + r.n;
    // Any other reason a later version writes is waiting for something too: counted as a limit of that name.
    else waiting.limit[r.reason] = (waiting.limit[r.reason] ?? 0) + r.n;
  }
  const backlog = waiting.worker + Object.values(waiting.limit).reduce((a, n) => a + n, 0);
  // The sample first: the lag's bound reads the samples.
  const samples = await pool.query<{ sampled_at: Date; backlog: number; now: Date }>(SAMPLES_SQL(s.pgbossSchema), [backlog]);
  const lag = await pool.query<{ started: number; q: number[] | null }>(LAG_SQL(s.pgbossSchema), [s.windowSeconds]);
  const now = samples.rows[0]?.now ?? (await pool.query<{ now: Date }>('SELECT now()')).rows[0].now;
  const growth = backlogGrowth(
    samples.rows.map((r) => ({ at: r.sampled_at.getTime(), backlog: r.backlog })),
    { at: now.getTime(), backlog },
  );
  const started = lag.rows[0].started;
  const q = started > 0 ? lag.rows[0].q : null;
  const startLag: Saturation['start_lag'] = {
    window_seconds: s.windowSeconds,
    started,
    p50: q ? q[0] : null,
    p95: q ? q[1] : null,
    p99: q ? q[2] : null,
    max_seconds: s.maxStartLagSeconds,
  };
  const reasons: string[] = [];
  const forLimits = Object.values(waiting.limit).reduce((a, n) => a + n, 0);
  if (startLag.p95 !== null && startLag.p95 > s.maxStartLagSeconds) {
    // A run held by a limit starts late by design: say so, more workers would not start it sooner.
    const note = forLimits > 0 ? ` (${forLimits} run(s) wait for a limit now)` : '';
    reasons.push(
      `lag to start p95 ${fmt(startLag.p95)} s over ${windowText(s.windowSeconds)} exceeds HEALTH_MAX_START_LAG_SECONDS (${s.maxStartLagSeconds})${note}`,
    );
  }
  // Runs that have not started yet say it sooner than the ones that did (and when nothing starts at all).
  if (head.latencySeconds > s.maxStartLagSeconds) {
    reasons.push(
      `lag to start: the run at the head of the queue has waited ${fmt(head.latencySeconds)} s, more than HEALTH_MAX_START_LAG_SECONDS ` +
        `(${s.maxStartLagSeconds})`,
    );
  }
  if (growth.grew) reasons.push(`backlog grew for 5 minutes (${growth.from} -> ${backlog})`);
  return {
    computed_at: now.toISOString(),
    status: reasons.length ? 'degraded' : 'ok',
    reasons,
    queue_latency_seconds: head.latencySeconds,
    waiting,
    start_lag: startLag,
    backlog: { now: backlog, five_minutes_ago: growth.from, grew_for_5_minutes: growth.grew },
  };
}

interface CacheEntry {
  promise: Promise<Saturation>;
  /** When the computation settled (undefined while it runs). */
  settledAt?: number;
}

const cache = new WeakMap<Pool, Map<string, CacheEntry>>();

/**
 * The deployment's saturation figures and their judgement. One computation serves every caller
 * in this process: while it runs, and for SATURATION_CACHE_MS after it settled (a burst of
 * /health calls and a scrape cost one; a slow database never gets a second one piled on).
 */
export function saturation(pool: Pool, s: SaturationSettings): Promise<Saturation> {
  let byPool = cache.get(pool);
  if (!byPool) cache.set(pool, (byPool = new Map<string, CacheEntry>()));
  const key = `${s.pgbossSchema}|${s.maxStartLagSeconds}|${s.windowSeconds}`;
  const hit = byPool.get(key);
  if (hit && (hit.settledAt === undefined || Date.now() - hit.settledAt < SATURATION_CACHE_MS)) return hit.promise;
  const entry: CacheEntry = { promise: compute(pool, s) };
  byPool.set(key, entry);
  entry.promise.then(
    () => {
      entry.settledAt = Date.now();
    },
    // A failure is not kept: the next caller tries again.
    () => {
      if (byPool.get(key) === entry) byPool.delete(key);
    },
  );
  return entry.promise;
}
