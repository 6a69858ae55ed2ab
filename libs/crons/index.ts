export { CronScheduler, CRON_CHANGED_CHANNEL } from './scheduler.ts';
export type { SchedulerOptions } from './scheduler.ts';
export { planOccurrences } from '../firing/index.ts';
export type { MissedPolicy, OccurrencePlan, PassResult, PlanLimits, ScheduleSource, SkipReason } from '../firing/index.ts';
export { activeRuns, cancelSuperseded, fireOccurrences, firingCron, overlapAllowance, runsToSupersede } from './fire.ts';
export type { ActiveRuns, Firing, FiringCron, OverlapCron, Skip, Superseded } from './fire.ts';
export type { CronRow, CronPayload, OverlapPolicy, OnRunCompleted, OccurrenceTrigger } from './types.ts';
export {
  toCronResponse,
  transactionNow,
  statementNow,
  findAssistant,
  ownsThread,
  createThreadIfMissing,
  lockAndCountUserCrons,
  insertCron,
  getCron,
  searchCrons,
  countCrons,
  updateCron,
  deleteCron,
  listOccurrences,
  toOccurrenceResponse,
  nextFireTimes,
  localIso,
} from './repository.ts';
export type { CronResponse, CronWithGraph, NewCron, CronFilters, CronSearch, CronSortKey, CronChanges, OccurrenceRow } from './repository.ts';
