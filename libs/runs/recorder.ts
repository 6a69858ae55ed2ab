import type { Pool } from '../db/index.ts';
import { backoffDelay, describeDatabaseError, pgErrorCode, sleep } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { handOnHeldRunJobs, holdRunJobResult, queueSchemaOf } from '../queue/index.ts';
import { finishRuns } from './lifecycle.ts';
import type { FinishedRun, RetryRequest, RunResult } from './lifecycle.ts';

// Stores the results of a worker's runs. Results that arrive in the same tick share one finishing
// transaction (cheap under load); if that transaction fails, each result is stored on its own, so
// one bad result never fails, delays or re-runs another. A result PostgreSQL refuses as data (an
// output with \u0000, a value too large) ends its run as `error` saying why. A result that could
// not be stored because the database is away is retried with backoff until it is stored (for
// RESULT_RETRY_MS): it is never a reason to execute the agent again. A result refused because of
// the schema (SQLSTATE class 42 or 0A: this code expects a column or table the database does not
// have, e.g. new code before its release) is named as such, kept and retried until the schema
// arrives, with no deadline; meanwhile `schemaBlocked` is true and the worker claims no new run.
// Such a result is also kept on its pg-boss job (RunJob.held, in pg-boss's schema, which our
// migrations never change), so it outlives this process: whichever worker claims the job next
// (pg-boss retried it after a crash or a lost heartbeat, or a stopping worker handed it on) stores
// it instead of running the agent again (RunWorker). While held, the job's expiry is pushed on, so
// pg-boss does not retry a run that is only waiting for its schema. A worker that stops while
// holding one hands its job on at once (a new attempt, fetchable now) rather than waiting for it.
// The next worker may be on the same schema (it stores nothing either, keeps holding the result
// and stops claiming) or on the released one (it stores it). A worker from before RunJob.held
// existed does not know it and would run the agent again.

/** How long a finished agent's result is retried while the database is unreachable. */
const RESULT_RETRY_MS = 10 * 60_000;
/** Longest wait between attempts to store a result the schema refused. */
const SCHEMA_RETRY_MAX_MS = 5_000;
/** A held result's job may live this long past the last push before pg-boss expires it ... */
const HOLD_LIVE_SECONDS = 600;
/** ... pushed on this often while the result is held. */
const HOLD_EXTEND_MS = 60_000;

/** A result kept on its job for the next attempt to store (RunJob.held): JSON. */
export interface HeldResult {
  status: RunResult['status'];
  output: unknown;
  error: RunResult['error'];
  retry?: RetryRequest;
  started_at: string | null;
}

/** A job's kept result, if it has a well-formed one. */
export function heldResultOf(value: unknown): HeldResult | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const h = value as Partial<HeldResult>;
  if (!['success', 'error', 'timeout', 'interrupted'].includes(String(h.status))) return undefined;
  return { status: h.status!, output: h.output ?? null, error: h.error ?? null, retry: h.retry, started_at: h.started_at ?? null };
}

const heldOf = (r: FinishedRun): HeldResult => ({
  status: r.status,
  output: r.output ?? null,
  error: r.error,
  ...(r.retry ? { retry: r.retry } : {}),
  started_at: r.started_at ? r.started_at.toISOString() : null,
});

interface Pending {
  result: FinishedRun;
  done: () => void;
}

export class ResultRecorder {
  #pool: Pool;
  #boss: PgBoss;
  #logger: Logger;
  #queue: Pending[] = [];
  #scheduled = false;
  #inProgress = new Set<Promise<void>>();
  /** Results held back by a schema error, by run. */
  #schemaHeld = new Set<string>();
  #retryBackoff: { initialMs: number; maxMs: number } | undefined;
  /** Aborted when the worker stops: held results are handed on to the next worker. */
  #stop = new AbortController();

  constructor(o: { pool: Pool; boss: PgBoss; logger: Logger; retryBackoff?: { initialMs: number; maxMs: number } }) {
    this.#pool = o.pool;
    this.#boss = o.boss;
    this.#logger = o.logger;
    this.#retryBackoff = o.retryBackoff;
  }

  /**
   * Some result cannot be stored because the database's schema does not match this code: the
   * worker must claim no new run until it is stored (its agent would run for a result that could
   * not be kept either).
   */
  get schemaBlocked(): boolean {
    return this.#schemaHeld.size > 0;
  }

  /** Resolves once the result is stored (or, the database away past RESULT_RETRY_MS, given up and logged). Never rejects. */
  record(result: FinishedRun): Promise<void> {
    return new Promise((resolve) => {
      this.#queue.push({ result, done: resolve });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#track(this.#flush()));
      }
    });
  }

  /**
   * The worker is stopping: a result held back by a schema error (now or from here on) is left on
   * its job for the next worker and handed on, instead of being waited for.
   */
  stopping(): void {
    this.#stop.abort();
  }

  /** Waits for every result handed in so far. */
  async drain(): Promise<void> {
    while (this.#scheduled || this.#inProgress.size) {
      await Promise.all([...this.#inProgress]);
      if (this.#scheduled) await new Promise((r) => setImmediate(r));
    }
  }

  #track(p: Promise<void>): void {
    this.#inProgress.add(p);
    void p.finally(() => this.#inProgress.delete(p));
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const items = this.#queue.splice(0);
    if (items.length === 0) return;
    if (items.length > 1) {
      try {
        await finishRuns(
          this.#pool,
          this.#boss,
          items.map((i) => i.result),
        );
        for (const i of items) i.done();
        return;
      } catch (err) {
        this.#logger.warn('storing a batch of run results failed; storing each on its own', { runs: items.length, err: describeDatabaseError(err) });
      }
    }
    await Promise.all(items.map((i) => this.#storeAlone(i)));
  }

  async #storeAlone({ result, done }: Pending): Promise<void> {
    let deadline = Date.now() + RESULT_RETRY_MS;
    let current = result;
    let replaced = false;
    /** The result is kept on its job (durable); when that was last pushed on. */
    let kept = false;
    let keptAt = 0;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await finishRuns(this.#pool, this.#boss, [current]);
          if (this.#schemaHeld.delete(current.run_id)) {
            this.#logger.info(`a run's result held back by a schema error is stored${this.schemaBlocked ? '' : '; claiming runs again'}`, {
              run_id: current.run_id,
            });
          }
          return done();
        } catch (err) {
          if (isSchemaError(err)) {
            // Not the result's fault nor the moment's: the schema is not what this code expects.
            // Kept, retried until the schema arrives (no deadline), never a reason to run the agent again.
            if (!this.#schemaHeld.has(current.run_id)) {
              this.#schemaHeld.add(current.run_id);
              this.#logger.error(
                `schema error storing a run's result (${describeDatabaseError(err)}): the database schema does not match this worker's code ` +
                  `(has the release run?); the result is kept and retried until the schema arrives, and this worker claims no new run meanwhile`,
                { run_id: current.run_id, sqlstate: pgErrorCode(err) },
              );
            }
            if (!kept || Date.now() - keptAt >= HOLD_EXTEND_MS) {
              const wasKept: boolean = kept;
              kept = (await this.#keep(current, !kept)) || wasKept;
              keptAt = Date.now();
            }
            if (this.#stop.signal.aborted && kept) {
              await this.#handOn(current);
              return done();
            }
            attempt = Math.min(attempt, 10);
            await sleep(Math.min(backoffDelay(attempt, this.#retryBackoff), SCHEMA_RETRY_MAX_MS), this.#stop.signal).catch(() => {});
            deadline = Date.now() + RESULT_RETRY_MS;
            continue;
          }
          if (isDataError(err) && !replaced) {
            // The result itself cannot be stored (its output, or an error message the agent wrote):
            // the run ends as error saying why, in words PostgreSQL's own message gives.
            this.#logger.warn("a run's result could not be stored; the run ends as error", { run_id: current.run_id, err: describeDatabaseError(err) });
            replaced = true;
            current = {
              ...current,
              status: 'error',
              output: null,
              error: { error: 'ResultNotStored', message: `the agent's ${current.status} result could not be stored: ${(err as Error).message}` },
            };
            continue;
          }
          if (Date.now() >= deadline) {
            this.#logger.error("gave up storing a run's result; its job will be retried once its heartbeat expires", {
              run_id: current.run_id,
              err: describeDatabaseError(err),
            });
            return done();
          }
          const wait = Math.min(backoffDelay(attempt, this.#retryBackoff), 2000);
          this.#logger.warn(`could not store a run's result (${describeDatabaseError(err)}); retrying in ${(wait / 1000).toFixed(1)}s`, {
            run_id: current.run_id,
          });
          await sleep(wait);
        }
      }
    } finally {
      this.#schemaHeld.delete(current.run_id);
    }
  }

  /**
   * Keeps a held result on its job (`write`), or only pushes the job's expiry on. False when the
   * job is no longer this attempt's or the statement failed (tried again at the next retry).
   */
  async #keep(result: FinishedRun, write: boolean): Promise<boolean> {
    if (!result.job) return false;
    try {
      const ok = await holdRunJobResult(this.#pool, queueSchemaOf(this.#boss), result.job, write ? heldOf(result) : null, HOLD_LIVE_SECONDS);
      if (!ok) this.#logger.warn("a held result's job is no longer this worker's attempt: the result stays in memory only", { run_id: result.run_id });
      else if (write)
        this.#logger.info('the held result is kept on its job: any worker that takes the job next stores it without running the agent again', {
          run_id: result.run_id,
        });
      return ok;
    } catch (err) {
      this.#logger.warn(`could not keep a held result on its job (${describeDatabaseError(err)}); trying again`, { run_id: result.run_id });
      return false;
    }
  }

  /** A stopping worker's held result: its job goes back to the queue for the next worker to store it. */
  async #handOn(result: FinishedRun): Promise<void> {
    try {
      await handOnHeldRunJobs(this.#pool, queueSchemaOf(this.#boss), [result.job!]);
      this.#logger.warn(
        "worker stopping: a run's result held back by a schema error is handed on, kept on its job; the next worker stores it without running the agent again",
        {
          run_id: result.run_id,
        },
      );
    } catch (err) {
      this.#logger.warn(
        `worker stopping: could not hand on a held result's job (${describeDatabaseError(err)}); ` +
          `it is retried once its heartbeat expires, its result kept on it`,
        {
          run_id: result.run_id,
        },
      );
    }
  }
}

/**
 * The schema is not what this code expects: syntax error or access rule violation (class 42:
 * undefined column 42703, undefined table 42P01, undefined function 42883 ...) or a feature not
 * supported (class 0A).
 */
export function isSchemaError(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code !== undefined && (code.startsWith('42') || code.startsWith('0A'));
}

/**
 * PostgreSQL refused the values, not the moment: data exceptions (class 22, e.g. 22P05 "unsupported
 * Unicode escape sequence" for \u0000 in jsonb) and program limits (class 54, a value too large).
 */
function isDataError(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code !== undefined && (code.startsWith('22') || code.startsWith('54'));
}
