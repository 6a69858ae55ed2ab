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
  queueSchemaOf,
  longestRunSeconds,
} from './queue.ts';
export {
  enqueueRuns,
  requeueRunJobs,
  holdRunJobResult,
  handOnHeldRunJobs,
  parkRunJobs,
  snoozeRunJobs,
  wakeParkedRuns,
  wakeThreadTurn,
  announceDeferred,
  msUntilDeferred,
  failedJobsRetry,
  deleteWaitingRunJobs,
} from './run-jobs.ts';
export { FULL_PASS_EVERY_MS } from './supervisor.ts';
export { QUEUE_POLICY_VERSION, guardPolicyWrite, storedPolicyDifferences, neededQueueSchemaVersion, foundQueueSchemaVersion } from './policy.ts';
export type { PolicyGuard } from './policy.ts';
export type { QueueOptions, QueueSettings } from './queue.ts';
export type { RunJob } from './run-jobs.ts';
export { runQueueHead } from './saturation.ts';
export {
  analyzeQueueTableSql,
  deadLetterCountsSql,
  jobCountsSql,
  oldestFirstAttemptRunJobSql,
  purgeFinishedJobsSql,
  runJobActiveSql,
  runJobDueSql,
  runJobActiveAtSql,
  runJobHeartbeatingSql,
  runJobMayStillRunSql,
  runJobStartAfterSql,
  runQueueTableSql,
} from './sql.ts';
export type { RunQueueHead } from './saturation.ts';
export type { PgBoss } from 'pg-boss';
