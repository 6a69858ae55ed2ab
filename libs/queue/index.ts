export {
  QUEUES,
  QUEUE_DEFAULTS,
  queueDefinitions,
  queueSettings,
  queueNotifyChannel,
  startQueue,
  ensureQueues,
  installQueueSchema,
  transactionDb,
  enqueueRuns,
  requeueRunJobs,
  parkRunJobs,
  queueSchemaOf,
  snoozeRunJobs,
  wakeParkedRuns,
  longestRunSeconds,
} from './queue.ts';
export type { QueueOptions, QueueSettings, RunJob } from './queue.ts';
export { oldestFirstAttemptRunJobSql, runJobStartAfterSql, runQueueHead } from './saturation.ts';
export type { RunQueueHead } from './saturation.ts';
export type { PgBoss } from 'pg-boss';
