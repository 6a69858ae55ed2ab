export { QUEUES, queueDefinitions, startQueue, ensureQueues, installQueueSchema, transactionDb, enqueueRuns } from './queue.ts';
export type { QueueOptions, QueueSettings, RunJob } from './queue.ts';
export type { PgBoss } from 'pg-boss';
