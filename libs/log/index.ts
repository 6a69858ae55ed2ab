export { createLogger, withLogContext, toError } from './log.ts';
export type { Logger, LogContext, LoggerOptions } from './log.ts';
export { ActivitySummary, activity } from './summary.ts';
