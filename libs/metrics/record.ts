import {
  fireLag,
  maintenanceDuration,
  maintenanceRuns,
  occurrencesFired,
  occurrencesSkipped,
  runDuration,
  runsFinished,
  runsStarted,
  schedulerTick,
  webhookDeliveries,
} from './registry.ts';

export type OccurrenceKind = 'cron' | 'maintenance';

/** What other modules call to count what they do: one line at the place it happens. */
export const metrics = {
  runStarted(graph: string): void {
    runsStarted.inc({ graph });
  },
  runFinished(graph: string, status: string, seconds: number): void {
    runsFinished.inc({ graph, status });
    runDuration.observe({ graph, status }, seconds);
  },
  /** Occurrences enqueued in a committed pass, each with its lag (enqueue time − scheduled_for). */
  occurrencesFired(kind: OccurrenceKind, lagSeconds: number[]): void {
    if (lagSeconds.length === 0) return;
    occurrencesFired.inc({ kind }, lagSeconds.length);
    for (const s of lagSeconds) fireLag.observe({ kind }, Math.max(0, s));
  },
  occurrencesSkipped(reasons: string[]): void {
    for (const reason of reasons) occurrencesSkipped.inc({ reason });
  },
  schedulerTick(seconds: number): void {
    schedulerTick.observe(seconds);
  },
  webhookDelivery(outcome: 'delivered' | 'retried' | 'failed' | 'refused'): void {
    webhookDeliveries.inc({ outcome });
  },
  maintenanceRun(job: string, outcome: 'success' | 'error', seconds: number): void {
    maintenanceRuns.inc({ job, outcome });
    maintenanceDuration.observe({ job }, seconds);
  },
};
