import type { PgBoss } from 'pg-boss';
import type { Logger } from '../log/index.ts';
import { announceDeferredSql, queuesBusySql } from './sql.ts';

// pg-boss's supervision (lost heartbeats, expired jobs, retention, queue statistics, index
// checks) is a pass of nine statements or so. pg-boss runs it every superviseIntervalSeconds
// whatever there is to do: an idle deployment's biggest source of queries. agentcron runs the same
// pass (boss.supervise(), pg-boss's own code) on its own timer, at the same interval, when one
// cheap read says it may have work: a job waiting in one of the queues, or a run held by a worker
// (which may have died; its job, in a group or not, is failed once its heartbeat lapses).
// Otherwise at most every FULL_PASS_EVERY_MS (a webhook or maintenance job
// of a dead worker expires within that; retention and statistics are kept), and once more after
// the queues go quiet (the statistics then say so). After a pass with run jobs active, the workers
// are told that jobs may have been deferred (a lost worker's run retried after its backoff, a job
// moved to a dead letter queue): a worker sleeping until its next job looks again
// (libs/runs/worker.ts).

/** A pass at least this often, busy or not. */
export const FULL_PASS_EVERY_MS = 5 * 60_000;

export interface SupervisorOptions {
  boss: PgBoss;
  schema: string;
  intervalSeconds: number;
  /** The queues whose jobs make a pass worth running. */
  queues: string[];
  /** The queues whose workers are told after a busy pass (deferredPayloadSql). */
  announce: string[];
  /** pg-boss's NOTIFY channel. */
  channel: string;
  logger: Logger;
}

export class QueueSupervisor {
  #o: SupervisorOptions;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #stopped = false;
  #wasBusy = true;
  #lastPass = 0;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  /** The first pass at once (jobs of workers lost while no process supervised), then every interval. */
  start(): void {
    this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#tick;
  }

  /** One look (and pass if due); the next an interval after it ends (pg-boss's claims are an interval apart). */
  #run(): void {
    this.#tick = this.#once()
      .catch((err: unknown) => {
        this.#o.logger.warn('queue supervision failed; trying again at its next interval', { err: (err as Error).message });
      })
      .finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(() => this.#run(), this.#o.intervalSeconds * 1000);
        this.#timer.unref();
      });
  }

  async #once(): Promise<void> {
    const { boss, schema, queues } = this.#o;
    const db = boss.getDb();
    const { rows } = await db.executeSql(queuesBusySql(schema), [queues]);
    const row = rows[0] as { waiting: boolean; active: boolean; pending: boolean } | undefined;
    const active = row?.active ?? true;
    const busy = active || (row?.waiting ?? true) || (row?.pending ?? true);
    const due = busy || this.#wasBusy || Date.now() - this.#lastPass >= FULL_PASS_EVERY_MS;
    this.#wasBusy = busy;
    if (!due || this.#stopped) return;
    await boss.supervise();
    this.#lastPass = Date.now();
    if (active && !this.#stopped) await db.executeSql(announceDeferredSql(), [this.#o.channel, this.#o.announce]);
  }
}
