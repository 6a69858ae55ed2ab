export { Heartbeat, liveProcesses, schedulersRunningSince } from './heartbeat.ts';
export type { ProcessRole, ProcessCounts } from './heartbeat.ts';
