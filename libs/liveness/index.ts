export { Heartbeat, liveProcesses, schedulerTicks, schedulersRunningSince } from './heartbeat.ts';
export type { ProcessRole, ProcessCounts } from './heartbeat.ts';
