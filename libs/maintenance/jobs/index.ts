import type { MaintenanceJob } from '../types.ts';
import { heartbeatMonitor } from './monitor.ts';
import { ledgerPartitionsJob } from './partitions.ts';
import { queueHygiene } from './queues.ts';
import { staleRunReaper } from './reaper.ts';
import { retentionPurge } from './retention.ts';
import { dailyStats } from './stats.ts';
import { ephemeralThreadSweep, threadTtl } from './threads.ts';

export { checkHeartbeats } from './monitor.ts';
export { ledgerPartitions, maintainLedgerPartitions, PARTITION_DAYS_AHEAD } from './partitions.ts';
export type { LedgerPartition } from './partitions.ts';
export type { MonitorFindings } from './monitor.ts';

/** The work of each job of the catalog. */
export function builtinJobs(): MaintenanceJob[] {
  return [retentionPurge, ephemeralThreadSweep, staleRunReaper, dailyStats, heartbeatMonitor, threadTtl, queueHygiene, ledgerPartitionsJob];
}
