import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

export type Logger = winston.Logger;
export type LogContext = Record<string, string | number | null | undefined>;

// Fields bound to the current async flow (a request id, a run's run_id and cron_id) are added to
// every line written inside it, including lines from code that was handed a plain logger.
const context = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, fn);
}

const addContext = winston.format((info) => {
  const store = context.getStore();
  if (store) {
    for (const [k, v] of Object.entries(store)) if (info[k] === undefined && v !== undefined) info[k] = v;
  }
  return info;
});

export interface LoggerOptions {
  level: string;
  json: boolean;
  /** Process role, written on every line (api, scheduler, worker ...). */
  service: string;
}

export function createLogger({ level, json, service }: LoggerOptions): Logger {
  const { combine, timestamp, errors, printf, colorize } = winston.format;
  const readable = printf((info) => {
    const { level: lvl, message, timestamp: ts, service: svc, stack, ...rest } = info;
    const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
    return `${String(ts)} ${lvl} [${String(svc)}] ${String(message)}${extra}${typeof stack === 'string' ? `\n${stack}` : ''}`;
  });
  // winston formats every line before its transports look at the level: a debug line at
  // LOG_LEVEL=info cost its timestamp, context and JSON all the same (a few per run in a worker,
  // ~7 µs of CPU per run in a herd). Lines no transport writes are dropped first.
  const made: { logger?: winston.Logger } = {};
  const enabled = winston.format((info) => (made.logger && !made.logger.isLevelEnabled(info.level) ? false : info));
  const logger = winston.createLogger({
    level,
    defaultMeta: { service },
    format: json
      ? combine(enabled(), errors({ stack: true }), addContext(), timestamp(), winston.format.json())
      : combine(enabled(), errors({ stack: true }), addContext(), timestamp(), ...(process.stdout.isTTY ? [colorize({ level: true })] : []), readable),
    transports: [new winston.transports.Console()],
  });
  made.logger = logger;
  return logger;
}

/** Normalise an unknown throw into an Error, keeping the original as `cause`. */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : JSON.stringify(err), { cause: err });
}
