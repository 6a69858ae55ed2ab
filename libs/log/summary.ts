import type { Logger } from './log.ts';

// One line a minute instead of one per run: at 100 runs/s a line per run is ~1.6 GB of logs a
// day. Each run's own lines are at debug (LOG_LEVEL=debug brings them back); this counts what the
// worker did and writes it at info, at warn when something failed, with a few examples.

type Outcome = 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'handed_back' | 'webhooks_delivered' | 'webhooks_failed';

const EXAMPLES = 3;

export class ActivitySummary {
  #counts = new Map<Outcome, number>();
  #examples: Record<string, string>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #since = Date.now();

  /** Counts one outcome; a failure keeps (up to a few per interval) what went wrong. */
  count(outcome: Outcome, example?: Record<string, string>): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
    if (example && this.#examples.length < EXAMPLES) this.#examples.push(example);
  }

  /** Writes the summary every intervalMs (nothing when nothing happened). */
  start(logger: Logger, intervalMs = 60_000): void {
    this.stop();
    this.#since = Date.now();
    this.#timer = setInterval(() => this.flush(logger), intervalMs);
    this.#timer.unref();
  }

  stop(logger?: Logger): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (logger) this.flush(logger);
  }

  /** Writes what was counted since the last line and starts counting afresh. */
  flush(logger: Logger): void {
    const counts = Object.fromEntries(this.#counts);
    const examples = this.#examples;
    const seconds = Math.round((Date.now() - this.#since) / 1000);
    this.#counts = new Map();
    this.#examples = [];
    this.#since = Date.now();
    if (!Object.keys(counts).length) return;
    const text = Object.entries(counts)
      .map(([k, n]) => `${n} ${k.replace('_', ' ')}`)
      .join(', ');
    const troubled = (counts.failed ?? 0) + (counts.timed_out ?? 0) + (counts.webhooks_failed ?? 0) > 0;
    if (troubled) logger.warn(`last ${seconds}s: ${text}`, { ...counts, examples });
    else logger.info(`last ${seconds}s: ${text}`, counts);
  }
}

/** The worker process's summary: runs and webhook deliveries count into it. */
export const activity = new ActivitySummary();
