export { FiringLoop, firePasses, msUntilDue, planDue } from './engine.ts';
export type { DuePlan, DueSchedule, FiringLoopOptions, PassResult, ScheduleSource } from './engine.ts';
export { planOccurrences } from './plan.ts';
export type { MissedPolicy, OccurrencePlan, PlanInput, PlanLimits, SkipReason } from './plan.ts';
export { jitterOffsetMs, plannedStart, MAX_JITTER_SECONDS } from './jitter.ts';
