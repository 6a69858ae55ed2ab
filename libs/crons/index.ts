export { CronScheduler, CRON_CHANGED_CHANNEL } from './scheduler.ts';
export type { SchedulerOptions, PassResult } from './scheduler.ts';
export { planOccurrences } from './plan.ts';
export type { MissedPolicy, SkipReason, PlanLimits, OccurrencePlan } from './plan.ts';
export { fireOccurrences } from './fire.ts';
export type { Firing, FiringCron, Skip } from './fire.ts';
export { recordOutcomes, recordStarted } from './outcomes.ts';
export type { RunOutcome } from './outcomes.ts';
export type { CronRow, CronPayload, OverlapPolicy, OnRunCompleted, OccurrenceTrigger } from './types.ts';
