export { Heartbeat, liveProcesses } from './heartbeat.ts';
export type { ProcessRole, ProcessCounts } from './heartbeat.ts';
