import { Gauge } from './prom.ts';
import type { Pool } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { foldCounters, readRollup } from './fold.ts';
import type { Rollup } from './fold.ts';
import { deploymentRegistry } from './registry.ts';
import { SATURATION_DEFAULTS, saturation } from './saturation.ts';
import type { Saturation, SaturationSettings } from './saturation.ts';

// The deployment's series, read from the database when the api's /metrics is scraped: facts about
// the whole deployment (whatever process caused them), so they are right with any number of
// schedulers and workers, and the same on every api instance. Gauges here, counters and
// histograms in deployment.ts; one snapshot per scrape serves them all. Only the api registers
// the source, so each of these series has exactly one kind of exporter.

export interface DatabaseSource {
  pool: Pool;
  boss: PgBoss;
  /** agentcron's pg-boss queues, for their depth. */
  queues: string[];
  /** HEARTBEAT_INTERVAL_SECONDS: a process seen within three of them is alive. */
  heartbeatSeconds: number;
  /** Where the run queue is and how lag to start is measured (saturation.ts); absent: pgboss and the defaults. */
  saturation?: SaturationSettings;
}

let source: DatabaseSource | undefined;

/** The api process reads the deployment's series from this pool and queue. */
export function observeDatabase(s: DatabaseSource): void {
  source = s;
}

/** Whether this process reads the deployment's series (it is an api). */
export const observingDatabase = (): boolean => source !== undefined;

export interface Snapshot {
  ok: boolean;
  due: { kind: string; n: number }[];
  active: { graph_id: string; status: string; n: number }[];
  processes: { role: string; n: number }[];
  maintenance: { job_name: string; last_run_status: string | null; last_duration_ms: number | null; last_finished_at: Date | null }[];
  queues: { name: string; queued: number; ready: number; deferred: number; active: number; failed: number }[];
  /** Executions of each maintenance job and how many failed (maintenance_jobs: durable, deployment-wide). */
  maintenanceTotals: { job_name: string; runs: number; failures: number }[];
  /** The deployment's counters as the last fold committed them; null when unreadable. */
  rollup: Rollup | null;
}

const SNAPSHOT_SQL = `
  SELECT 'due' AS what, k.kind AS a, NULL::text AS b, k.n::int AS n, NULL::int AS ms, NULL::timestamptz AS at
    FROM (SELECT 'cron' AS kind, count(*) AS n FROM crons WHERE enabled AND next_run_date <= now()
          UNION ALL
          SELECT 'maintenance', count(*) FROM maintenance_jobs WHERE enabled AND next_run_date <= now()) k
  UNION ALL
  SELECT 'active', a.graph_id, r.status, count(*)::int, NULL, NULL
    FROM runs r JOIN assistants a USING (assistant_id)
   WHERE r.status IN ('pending', 'running')
   GROUP BY a.graph_id, r.status
  UNION ALL
  SELECT 'process', role, NULL, count(*)::int, NULL, NULL
    FROM agentcron_processes
   WHERE stopped_at IS NULL AND last_seen_at > now() - make_interval(secs => $1)
   GROUP BY role
  UNION ALL
  SELECT 'maintenance', job_name, last_run_status, NULL, last_duration_ms, last_finished_at
    FROM maintenance_jobs
  UNION ALL
  SELECT 'maintenance_totals', job_name, failures_total::text, runs_total::int, NULL, NULL
    FROM maintenance_jobs`;

// Every series is collected on the same scrape: one read serves them all.
let pending: { at: number; promise: Promise<Snapshot> } | undefined;

export function snapshot(): Promise<Snapshot> {
  const now = Date.now();
  if (pending && now - pending.at < 1000) return pending.promise;
  pending = { at: now, promise: read() };
  return pending.promise;
}

/** How long a scrape waits for its fold before it answers with the counters already folded. */
export const FOLD_WAIT_MS = 3000;

// One fold in flight per process: a fold that outlasts a scrape (catching up on a long pause)
// carries on, and the scrapes meanwhile read what is committed.
let folding: Promise<unknown> | undefined;

async function fold(pool: Pool): Promise<void> {
  if (!folding) {
    folding = foldCounters(pool)
      .catch(() => undefined)
      .finally(() => {
        folding = undefined;
      });
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([folding, new Promise((resolve) => (timer = setTimeout(resolve, FOLD_WAIT_MS)))]);
  clearTimeout(timer);
}

async function read(): Promise<Snapshot> {
  const empty: Snapshot = { ok: false, due: [], active: [], processes: [], maintenance: [], queues: [], maintenanceTotals: [], rollup: null };
  if (!source) return empty;
  const { pool, boss, queues, heartbeatSeconds } = source;
  try {
    await fold(pool);
    const [{ rows }, rollup] = await Promise.all([
      pool.query<{ what: string; a: string; b: string | null; n: number | null; ms: number | null; at: Date | null }>(SNAPSHOT_SQL, [heartbeatSeconds * 3]),
      readRollup(pool),
    ]);
    const qs = await boss.getQueues(queues);
    return {
      ok: true,
      due: rows.filter((r) => r.what === 'due').map((r) => ({ kind: r.a, n: r.n ?? 0 })),
      active: rows.filter((r) => r.what === 'active').map((r) => ({ graph_id: r.a, status: r.b!, n: r.n ?? 0 })),
      processes: rows.filter((r) => r.what === 'process').map((r) => ({ role: r.a, n: r.n ?? 0 })),
      maintenance: rows
        .filter((r) => r.what === 'maintenance')
        .map((r) => ({ job_name: r.a, last_run_status: r.b, last_duration_ms: r.ms, last_finished_at: r.at })),
      maintenanceTotals: rows.filter((r) => r.what === 'maintenance_totals').map((r) => ({ job_name: r.a, runs: r.n ?? 0, failures: Number(r.b ?? 0) })),
      queues: qs.map((q) => ({
        name: q.name,
        queued: q.queuedCount,
        ready: q.readyCount,
        deferred: q.deferredCount,
        active: q.activeCount,
        failed: q.failedCount,
      })),
      rollup,
    };
  } catch {
    // /metrics still answers with the process's own series; agentcron_database_up says why the rest is missing.
    return empty;
  }
}

function gauge<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: Snapshot) => void): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [deploymentRegistry],
    async collect() {
      if (!source) return;
      const s = await snapshot();
      this.reset();
      fill(this, s);
    },
  });
}

gauge('agentcron_database_up', 'Whether the last scrape could read the database (1) or not (0).', [], (g, s) => g.set(s.ok ? 1 : 0));

gauge('agentcron_due_backlog', 'Enabled crons and maintenance jobs whose next occurrence is due now and not yet fired.', ['kind'] as const, (g, s) => {
  for (const d of s.due) g.set({ kind: d.kind }, d.n);
});

gauge('agentcron_runs_in_progress', 'Runs pending or running now, by graph and status.', ['graph', 'status'] as const, (g, s) => {
  for (const a of s.active) g.set({ graph: a.graph_id, status: a.status }, a.n);
});

gauge('agentcron_processes_alive', 'agentcron processes seen within three heartbeat intervals, by role.', ['role'] as const, (g, s) => {
  if (!s.ok) return;
  for (const role of ['api', 'scheduler', 'worker']) g.set({ role }, s.processes.find((p) => p.role === role)?.n ?? 0);
});

gauge(
  'agentcron_queue_jobs',
  "Jobs in agentcron's pg-boss queues by state (queued includes deferred; ready = runnable now), as pg-boss's monitor last counted them.",
  ['queue', 'state'] as const,
  (g, s) => {
    for (const q of s.queues) {
      for (const state of ['queued', 'ready', 'deferred', 'active', 'failed'] as const) g.set({ queue: q.name, state }, q[state] ?? 0);
    }
  },
);

gauge('agentcron_maintenance_last_success', 'Whether the last execution of each maintenance job succeeded (1) or failed (0).', ['job'] as const, (g, s) => {
  for (const m of s.maintenance)
    if (m.last_run_status === 'success' || m.last_run_status === 'error') g.set({ job: m.job_name }, m.last_run_status === 'success' ? 1 : 0);
});

gauge('agentcron_maintenance_last_duration_seconds', 'Duration of the last execution of each maintenance job.', ['job'] as const, (g, s) => {
  for (const m of s.maintenance) if (m.last_duration_ms !== null) g.set({ job: m.job_name }, m.last_duration_ms / 1000);
});

gauge(
  'agentcron_metrics_horizon_lag_seconds',
  "How far behind now the deployment's counters are: every event before now minus this is counted (held back by the oldest open transaction).",
  [],
  (g, s) => {
    if (s.rollup) g.set(s.rollup.lagSeconds);
  },
);

gauge('agentcron_metrics_last_fold_duration_seconds', "How long the last fold of the deployment's counters took (any api instance).", [], (g, s) => {
  if (s.rollup?.foldMs != null) g.set(s.rollup.foldMs / 1000);
});

gauge('agentcron_maintenance_last_finished_timestamp_seconds', 'When each maintenance job last finished (Unix time).', ['job'] as const, (g, s) => {
  for (const m of s.maintenance) if (m.last_finished_at) g.set({ job: m.job_name }, m.last_finished_at.getTime() / 1000);
});

// Saturation (saturation.ts): the same figures /health judges, from the same ~2 s computation.
// A scrape that cannot read them answers no sample (agentcron_database_up says why).
function saturationGauge<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: Saturation) => void): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [deploymentRegistry],
    async collect() {
      this.reset();
      if (!source) return;
      const s = await saturation(source.pool, source.saturation ?? { pgbossSchema: 'pgboss', ...SATURATION_DEFAULTS }).catch(() => null);
      if (s) fill(this, s);
    },
  });
}

saturationGauge(
  'agentcron_queue_latency_seconds',
  'How long the run at the head of the queue has been able to start and not started (0: none waits for a worker). What a queue-latency autoscaler ' +
    'scales workers on.',
  [],
  (g, s) => g.set(s.queue_latency_seconds),
);

saturationGauge(
  'agentcron_runs_waiting',
  'Pending runs by why they wait: reason worker (due, no free worker), retry (a retry backoff), limit (a deployment-wide limit, by limit name).',
  ['reason', 'limit'] as const,
  (g, s) => {
    g.set({ reason: 'worker' }, s.waiting.worker);
    g.set({ reason: 'retry' }, s.waiting.retry);
    for (const [limit, n] of Object.entries(s.waiting.limit)) g.set({ reason: 'limit', limit }, n);
  },
);

saturationGauge(
  'agentcron_start_lag_seconds',
  'Lag to start (start minus when due) of the first attempts started within HEALTH_START_LAG_WINDOW_SECONDS, by quantile; no sample when none started.',
  ['quantile'] as const,
  (g, s) => {
    for (const [quantile, v] of [
      ['0.5', s.start_lag.p50],
      ['0.95', s.start_lag.p95],
      ['0.99', s.start_lag.p99],
    ] as const)
      if (v !== null) g.set({ quantile }, v);
  },
);

saturationGauge(
  'agentcron_start_lag_window_starts',
  'First attempts started within HEALTH_START_LAG_WINDOW_SECONDS (the runs agentcron_start_lag_seconds is of).',
  [],
  (g, s) => g.set(s.start_lag.started),
);

saturationGauge(
  'agentcron_health_degraded',
  "Whether /health's status is degraded by saturation (1) or not (0): lag to start, or a backlog that grew for 5 minutes.",
  [],
  (g, s) => g.set(s.status === 'degraded' ? 1 : 0),
);
