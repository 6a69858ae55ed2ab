/**
 * Cron schedules: validation and next-occurrence computation in a time zone, with
 * the DST rules of docs/scheduling.md, point 7. Pure functions, no I/O.
 */
export { ScheduleError } from './errors.ts';
export type { ScheduleErrorField } from './errors.ts';
export { canonicalZoneName, validateTimezone, zoneRules } from './timezone.ts';
export { splitTimezonePrefix } from './prefix.ts';
export type { PrefixedSchedule } from './prefix.ts';
export { parseSchedule } from './schedule.ts';
export type { ParseScheduleOptions, Schedule } from './schedule.ts';
