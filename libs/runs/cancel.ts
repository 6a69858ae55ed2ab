import type { Pool } from '../db/index.ts';
import { describeDatabaseError } from '../db/index.ts';
import type { Logger } from '../log/index.ts';

// How a worker learns that a run it is executing was ended on another process (an API cancel,
// multitask interrupt/rollback, a deleted thread) or taken over by a newer attempt. Whoever ends
// a run without its worker NOTIFYs the run ids on RUN_CANCEL_CHANNEL in the same transaction
// (lifecycle.endRunsIn), so the notification arrives only if the cancel committed; the worker's
// listener hands them here. Notifications are lost while a listener reconnects, and a takeover
// sends none, so every second the worker also asks the database which of its runs are no longer
// running under its own attempt: a cancel reaches the agent within about a second either way.

// A held run no longer `running` under this worker's attempt: ended elsewhere, deleted with its
// thread, or claimed again by a newer attempt after this worker's claim expired.
const NOT_MINE = `
  SELECT v.run_id, r.status, r.attempts
    FROM unnest($1::uuid[], $2::int[]) AS v(run_id, attempt)
    LEFT JOIN runs r ON r.run_id = v.run_id
   WHERE r.run_id IS NULL OR r.status <> 'running' OR r.attempts <> v.attempt`;

export interface CancelWatcherOptions {
  pool: Pool;
  logger: Logger;
  /** How often the held runs are checked against the database. */
  intervalMs: number;
  /** The runs this worker is executing now, with the attempt it claimed each at. */
  held(): { run_id: string; attempt: number }[];
  /** Abort these runs' agents. */
  cancel(runIds: string[], why: string): void;
}

export class CancelWatcher {
  #o: CancelWatcherOptions;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: CancelWatcherOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A NOTIFY on RUN_CANCEL_CHANNEL: comma-separated run ids (an empty payload: look at all). */
  notified(payload: string | undefined): void {
    if (!payload) return this.check();
    const held = new Set(this.#o.held().map((h) => h.run_id));
    const mine = payload.split(',').filter((id) => held.has(id));
    if (mine.length) this.#o.cancel(mine, 'the run was cancelled');
  }

  /** The backstop: held runs the database no longer shows running under this worker's attempt. */
  check(): void {
    const held = this.#o.held();
    if (this.#checking || held.length === 0) return;
    this.#checking = true;
    this.#o.pool
      .query<{ run_id: string; status: string | null; attempts: number | null }>(NOT_MINE, [held.map((h) => h.run_id), held.map((h) => h.attempt)])
      .then(({ rows }) => {
        const ended = rows.filter((r) => r.status !== 'running').map((r) => r.run_id);
        const taken = rows.filter((r) => r.status === 'running').map((r) => r.run_id);
        if (ended.length) this.#o.cancel(ended, 'the run was cancelled');
        if (taken.length) this.#o.cancel(taken, 'a newer attempt of this run took over');
      })
      .catch((err) => this.#o.logger.warn('could not check for cancelled runs', { err: describeDatabaseError(err) }))
      .finally(() => {
        this.#checking = false;
      });
  }
}
