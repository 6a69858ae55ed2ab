export { metrics } from './record.ts';
export type { OccurrenceKind } from './record.ts';
export { registry, webhookDeliveries } from './registry.ts';
export { observeDatabase } from './database.ts';
export type { DatabaseSource } from './database.ts';
export { apiRegistry, metricsHandler, metricsServed, serveMetrics } from './http.ts';
export { foldCounters, readRollup } from './fold.ts';
export type { FoldOutcome, Rollup } from './fold.ts';
export type { MetricsServer } from './http.ts';
