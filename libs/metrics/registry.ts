import { Counter, Histogram, Registry, collectDefaultMetrics } from './prom.ts';

// One registry per process. What a process does (runs it executed, occurrences it fired, passes it
// made, webhooks it sent) is counted here where it happens; a scheduler or worker process serves
// it on METRICS_PORT. The api's /metrics serves the deployment's series instead wherever the
// database has them (deployment.ts: the same names, counted from the runs, the ledger and the
// webhook columns, identical on every api instance), and this registry for the rest (scheduler
// pass durations, maintenance durations, process metrics).

export const registry = new Registry();

let collectingProcessMetrics = false;

/**
 * Process metrics (CPU, memory, event loop lag, GC): agentcron_process_*, agentcron_nodejs_*,
 * collected from when the process starts serving /metrics (its api, or METRICS_PORT). Their event
 * loop lag monitor wakes the process 100 times a second (~0.3 % of a core at rest): for nothing
 * in a scheduler or worker whose registry nobody can read.
 */
export function collectProcessMetrics(): void {
  if (collectingProcessMetrics) return;
  collectingProcessMetrics = true;
  collectDefaultMetrics({ register: registry, prefix: 'agentcron_' });
}

export const runsStarted = new Counter({
  name: 'agentcron_runs_started_total',
  help: 'Runs a worker of this process claimed and started, by graph.',
  labelNames: ['graph'] as const,
  registers: [registry],
});

export const runsFinished = new Counter({
  name: 'agentcron_runs_finished_total',
  help: 'Runs a worker of this process finished, by graph and final status (success, error, timeout, interrupted).',
  labelNames: ['graph', 'status'] as const,
  registers: [registry],
});

/** Bucket bounds of the run duration histograms (this process's and the deployment's). */
export const RUN_DURATION_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
/** Bucket bounds of the fire lag histograms (this process's and the deployment's). */
export const FIRE_LAG_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const runDuration = new Histogram({
  name: 'agentcron_run_duration_seconds',
  help: 'How long runs executed, by graph and final status.',
  labelNames: ['graph', 'status'] as const,
  buckets: [...RUN_DURATION_BUCKETS],
  registers: [registry],
});

export const fireLag = new Histogram({
  name: 'agentcron_fire_lag_seconds',
  help: 'Enqueue time minus scheduled_for of each occurrence fired by a scheduler of this process, by kind (cron or maintenance).',
  labelNames: ['kind'] as const,
  buckets: [...FIRE_LAG_BUCKETS],
  registers: [registry],
});

export const occurrencesFired = new Counter({
  name: 'agentcron_occurrences_fired_total',
  help: 'Occurrences a scheduler of this process turned into enqueued jobs, by kind (cron or maintenance).',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const occurrencesSkipped = new Counter({
  name: 'agentcron_occurrences_skipped_total',
  help: 'Cron occurrences a scheduler of this process did not fire, by reason (missed, overlap, end_time).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const schedulerTick = new Histogram({
  name: 'agentcron_scheduler_tick_duration_seconds',
  help: 'Duration of a scheduler pass over everything due (all batches), in this process.',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** Incremented by the webhook sender: outcome is delivered, retried, failed or refused. */
export const webhookDeliveries = new Counter({
  name: 'agentcron_webhook_deliveries_total',
  help: 'Webhook delivery attempts made by this process, by outcome (delivered, retried, failed, refused).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const maintenanceRuns = new Counter({
  name: 'agentcron_maintenance_runs_total',
  help: 'Maintenance job executions in this process, by job and outcome (success, error).',
  labelNames: ['job', 'outcome'] as const,
  registers: [registry],
});

export const maintenanceDuration = new Histogram({
  name: 'agentcron_maintenance_duration_seconds',
  help: 'Duration of maintenance job executions in this process, by job.',
  labelNames: ['job'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});

// Series that exist before their first event, so dashboards and alerts see zeros, not gaps.
for (const reason of ['missed', 'overlap', 'end_time']) occurrencesSkipped.inc({ reason }, 0);
for (const kind of ['cron', 'maintenance']) occurrencesFired.inc({ kind }, 0);
for (const outcome of ['delivered', 'retried', 'failed', 'refused']) webhookDeliveries.inc({ outcome }, 0);

/**
 * The deployment's series, read from the database on each scrape of the api (database.ts,
 * deployment.ts): gauges of its state and counters of what happened in it, whatever process did
 * it. The api's /metrics serves these, and this process's own series of other names (http.ts).
 */
export const deploymentRegistry = new Registry();
