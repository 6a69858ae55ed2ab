export { Heartbeat, liveProcesses, schedulerTicks } from './heartbeat.ts';
export type { ProcessRole, ProcessCounts } from './heartbeat.ts';
