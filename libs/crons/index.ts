export { CronScheduler, CRON_CHANGED_CHANNEL } from './scheduler.ts';
export type { SchedulerOptions } from './scheduler.ts';
export { planOccurrences } from '../firing/index.ts';
export type { MissedPolicy, OccurrencePlan, PassResult, PlanLimits, ScheduleSource, SkipReason } from '../firing/index.ts';
export { activeRuns, cancelSuperseded, fireOccurrences, firingCron, overlapAllowance, runOf, runsToSupersede } from './fire.ts';
export { backfillOccurrences, countOccurrences, BACKFILL_COUNT_LIMIT } from './backfill.ts';
export type { BackfillOutcome, BackfillTooMany } from './backfill.ts';
export { retryOccurrence, retryRunId, RETRYABLE_STATUSES } from './retry.ts';
export type { RetryOutcome } from './retry.ts';
export { describeSchedule, fireTimes, upcomingTimes } from './preview.ts';
export type { DstCase, FireJitter, FireTime } from './preview.ts';
export type { ActiveRuns, Firing, FiringCron, OverlapCron, Skip, Superseded } from './fire.ts';
export { PAYLOAD_KEYS } from './types.ts';
export type { CronRow, CronPayload, OverlapPolicy, OnRunCompleted, OccurrenceTrigger } from './types.ts';
export { BULK_FILTERS, bulkScope, cronOperations } from './operations.ts';
export type { BackfillAnswer, BulkAction, BulkAnswer, BulkFilters, Created, CronCreate, CronOperations, CronOperationsDeps } from './operations.ts';
export { assistantKey, canonicalTimezone, scheduleOf, zonedSchedule } from './input.ts';
export { planUpdate } from './update.ts';
export type { CronUpdate } from './update.ts';
export { answerClock, cronAnswer, selectedCronFields, shownNextRunDate } from './answers.ts';
export { cronOccurrences, nextFireTimes, previewSchedule, recentOccurrences } from './reading.ts';
export { cronOwner, countScopedCrons, searchScopedCrons } from './tenancy.ts';
export type { CronScope } from './tenancy.ts';
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
  updateCron,
  deleteCron,
} from './repository.ts';
export type { CronResponse, CronWithGraph, NewCron, CronChanges } from './repository.ts';
export { searchCrons, countCrons } from './search.ts';
export type { CronFilters, CronSearch, CronSortKey } from './search.ts';
export { listOccurrences, toOccurrenceResponse, localIso } from './occurrences.ts';
export type { OccurrenceRow } from './occurrences.ts';
export { CRON_NAME_MAX, cronNameOf, lockCronName } from './names.ts';
