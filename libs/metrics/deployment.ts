import type { Metric, MetricValue, MetricValueWithName } from 'prom-client';
import { observingDatabase, snapshot } from './database.ts';
import type { Snapshot } from './database.ts';
import { HISTOGRAM_BOUNDS, seriesKey } from './fold.ts';
import { deploymentRegistry } from './registry.ts';

// The deployment's counters and histograms on the api's /metrics: the same names as a scheduler's
// or worker's own series (registry.ts), counting what the whole deployment did, read from
// metrics_rollup (fold.ts) on each scrape. Every api instance answers the same values. When the
// database cannot be read, a counter answers no sample at all (never a zero, which would read as
// a counter reset).

type Values = (MetricValue<string> | MetricValueWithName<string>)[];

/**
 * A series prom-client's registry serves (what a registry reads of a metric: name, help, type and
 * get() with the values of this scrape; its typings name the type as an enum, the code a string).
 */
class DeploymentMetric {
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly #values: (s: Snapshot) => Values;

  constructor(name: string, help: string, type: 'counter' | 'histogram', values: (s: Snapshot) => Values) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#values = values;
    deploymentRegistry.registerMetric(this as unknown as Metric);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Values }> {
    const values = observingDatabase() ? this.#values(await snapshot()) : [];
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

/** Every series of a metric in the rollup, plus zeros for the label sets that always exist. */
function seriesOf(s: Snapshot, metric: string, always: Record<string, string>[] = []) {
  if (!s.rollup) return [];
  const found = s.rollup.series.filter((r) => r.metric === metric);
  const seen = new Set(found.map((r) => seriesKey(r.labels)));
  for (const labels of always) if (!seen.has(seriesKey(labels))) found.push({ metric, labels, count: 0, sum: 0, buckets: null });
  return found;
}

function counter(name: string, help: string, always: Record<string, string>[] = []): void {
  new DeploymentMetric(name, help, 'counter', (s) => seriesOf(s, name, always).map((r) => ({ labels: r.labels, value: r.count })));
}

function histogram(name: string, help: string, always: Record<string, string>[] = []): void {
  const bounds = HISTOGRAM_BOUNDS[name];
  new DeploymentMetric(name, help, 'histogram', (s) =>
    seriesOf(s, name, always).flatMap((r) => {
      const values: MetricValueWithName<string>[] = [];
      let cumulative = 0;
      bounds.forEach((le, i) => {
        cumulative += r.buckets?.[i] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { ...r.labels, le }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { ...r.labels, le: '+Inf' }, value: r.count });
      values.push({ metricName: `${name}_sum`, labels: r.labels, value: r.sum });
      values.push({ metricName: `${name}_count`, labels: r.labels, value: r.count });
      return values;
    }),
  );
}

counter('agentcron_runs_started_total', 'Runs started (claimed by a worker), by graph: the whole deployment, from the ledger and the runs.');

counter(
  'agentcron_runs_finished_total',
  'Runs ended, by graph and final status (success, error, timeout, interrupted): the whole deployment, whoever ended them (worker, cancel, reaper).',
);

histogram('agentcron_run_duration_seconds', 'How long runs executed (ended minus started), by graph and final status: the whole deployment.');

histogram('agentcron_fire_lag_seconds', 'Enqueue time minus scheduled_for of each scheduled cron occurrence fired: the whole deployment.', [{ kind: 'cron' }]);

counter('agentcron_occurrences_fired_total', 'Scheduled cron occurrences fired (enqueued): the whole deployment.', [{ kind: 'cron' }]);

counter(
  'agentcron_occurrences_skipped_total',
  'Cron occurrences not fired, by reason (missed, overlap, end_time): the whole deployment.',
  ['missed', 'overlap', 'end_time'].map((reason) => ({ reason })),
);

counter(
  'agentcron_webhook_deliveries_total',
  'Webhook delivery attempts by outcome: delivered, failed (for good), refused (the destination), retried (an attempt that failed and was ' +
    'retried); counted when the delivery settles. The whole deployment.',
  ['delivered', 'retried', 'failed', 'refused'].map((outcome) => ({ outcome })),
);

new DeploymentMetric(
  'agentcron_maintenance_runs_total',
  'Maintenance job executions, by job and outcome (success, error): the whole deployment.',
  'counter',
  (s) =>
    s.ok
      ? s.maintenanceTotals.flatMap((m) => [
          { labels: { job: m.job_name, outcome: 'success' }, value: m.runs - m.failures },
          { labels: { job: m.job_name, outcome: 'error' }, value: m.failures },
        ])
      : [],
);
