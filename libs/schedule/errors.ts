/** Which input a {@link ScheduleError} is about. */
export type ScheduleErrorField = 'schedule' | 'timezone';

/**
 * A cron expression or a time zone that cannot be used. `message` is meant for
 * the API caller as is (e.g. a 422 body); `field` names the offending input and
 * `value` repeats it.
 */
export class ScheduleError extends Error {
  readonly field: ScheduleErrorField;
  readonly value: string;

  constructor(field: ScheduleErrorField, value: string, message: string) {
    super(message);
    this.name = 'ScheduleError';
    this.field = field;
    this.value = value;
  }
}
