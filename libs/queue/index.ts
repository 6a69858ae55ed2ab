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
  longestRunSeconds,
} from './queue.ts';
export { QUEUE_POLICY_VERSION, guardPolicyWrite, storedPolicyDifferences, neededQueueSchemaVersion, foundQueueSchemaVersion } from './policy.ts';
export type { PolicyGuard } from './policy.ts';
export type { QueueOptions, QueueSettings, RunJob } from './queue.ts';
export type { PgBoss } from 'pg-boss';
