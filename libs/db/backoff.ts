import { describeDatabaseError, isDatabaseUnavailable } from './unavailable.ts';

export interface Backoff {
  /** First delay (ms). */
  initialMs: number;
  /** Longest delay (ms). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 5_000 };

/**
 * Delay before retry number `attempt` (0-based): initialMs doubling up to maxMs, with jitter
 * (a random 50 %–100 % of it), so processes that lost the database together do not all come
 * back in the same millisecond.
 */
export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Resolves after ms, or rejects with signal.reason as soon as signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface WaitOptions {
  /** Told of each failed attempt: one line per attempt. */
  logger: { warn(message: string, meta?: Record<string, unknown>): unknown };
  /** Aborting stops the wait at once: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  backoff?: Backoff;
}

/**
 * Runs fn until it succeeds, for as long as it fails because the database is unreachable
 * (refused, starting up, out of connections ...), waiting with capped exponential backoff and
 * logging `database unreachable (<why>); retrying in Ns` before each retry. Any other error is
 * thrown at once. There is no limit: a platform restarts processes anyway, and one that waits
 * comes up by itself when the database does. `what` names the step in the log line.
 */
export async function retryWhileUnavailable<T>(what: string, fn: () => Promise<T>, opts: WaitOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      // An attempt in flight (a connection to a host that does not answer takes the whole connect
      // timeout) is abandoned as soon as the signal aborts.
      return await (opts.signal ? untilAborted(fn(), opts.signal) : fn());
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (!isDatabaseUnavailable(err)) throw err;
      const ms = backoffDelay(attempt, opts.backoff);
      opts.logger.warn(`database unreachable (${describeDatabaseError(err)}); retrying in ${(ms / 1000).toFixed(1)}s`, { step: what, attempt: attempt + 1 });
      await sleep(ms, opts.signal);
    }
  }
}

/** p, or a rejection with signal.reason as soon as signal aborts, whichever comes first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      p.catch(() => {});
      return reject(signal.reason);
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
