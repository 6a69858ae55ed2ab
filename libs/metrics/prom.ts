import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

// prom-client's classes, loaded file by file instead of through its index: the index also loads
// its Pushgateway (http, https, url), its cluster aggregator (cluster) and, through the process
// CPU metric, @opentelemetry/api (for exemplars, which agentcron does not use). Together they were
// about a third of the CPU every process spent loading its modules at start (docs/performance.md,
// Start). The default metrics are prom-client's own, registered in prom-client's order; only the
// process CPU counters are counted here, the same way (prom-client 15's processCpuTotal without
// exemplars). test/metrics.test.ts pins the names a /metrics serves.

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

type DefaultMetric = (register: PromClient.Registry, config: { prefix: string; eventLoopMonitoringPrecision: number }) => void;

/** prom-client's collectDefaultMetrics({ register, prefix }), without @opentelemetry/api. */
export function collectDefaultMetrics({ register, prefix }: { register: PromClient.Registry; prefix: string }): void {
  const config = { prefix, eventLoopMonitoringPrecision: 10 };
  processCpuTotal(register, prefix);
  const files = [
    'processStartTime',
    'osMemoryHeap',
    'processOpenFileDescriptors',
    'processMaxFileDescriptors',
    'eventLoopLag',
    ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
    'processHandles',
    'processRequests',
    'heapSizeAndUsed',
    'heapSpacesSizeAndUsed',
    'version',
    'gc',
  ];
  for (const file of files) (require(`prom-client/lib/metrics/${file}`) as DefaultMetric)(register, config);
}

/** process_cpu_user_seconds_total, process_cpu_system_seconds_total, process_cpu_seconds_total: CPU since registered, read at each scrape. */
function processCpuTotal(register: PromClient.Registry, prefix: string): void {
  let last = process.cpuUsage();
  const user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers: [register],
    // This one metric's collect sets all three.
    collect() {
      const now = process.cpuUsage();
      const userMicros = now.user - last.user;
      const systemMicros = now.system - last.system;
      last = now;
      user.inc(userMicros / 1e6);
      system.inc(systemMicros / 1e6);
      total.inc((userMicros + systemMicros) / 1e6);
    },
  });
  const system = new Counter({ name: `${prefix}process_cpu_system_seconds_total`, help: 'Total system CPU time spent in seconds.', registers: [register] });
  const total = new Counter({ name: `${prefix}process_cpu_seconds_total`, help: 'Total user and system CPU time spent in seconds.', registers: [register] });
}
