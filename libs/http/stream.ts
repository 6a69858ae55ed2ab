import type { Response } from 'express';
import type { AgentRegistry, GraphThreadState } from '../agents/index.ts';
import type { Pool } from '../db/index.ts';
import { runEnded, threadValues } from '../runs/index.ts';
import type { RunResponse } from '../runs/index.ts';
import { runStreamPosition } from '../runs/index.ts';
import type { RunStreamPosition } from '../runs/index.ts';

// Server-sent events of a run, as the LangGraph API streams them (`runs.stream`, `runs.joinStream`).
// The worker executes runs in another process and publishes nothing while a run goes, so the
// stream is read from the database: the run's status, and for a LangGraph graph the checkpoints
// it writes after each superstep (each one gives a `values` event, and the tasks that ran from it
// an `updates` event), polled with a growing interval (50 ms up to 250 ms). Other agents give
// their final values once the run has ended. Every stream starts with `metadata` and ends with
// `end` (after `error` when the run failed). Token-by-token modes (`messages`, `events`, `custom`,
// `debug`) need the worker to publish as the agent goes; they are accepted and send nothing.

export const STREAM_MODES = ['values', 'updates', 'messages', 'messages-tuple', 'events', 'debug', 'custom', 'tasks', 'checkpoints'] as const;
export type StreamMode = (typeof STREAM_MODES)[number];

/** SSE comment lines keep proxies and the 1.x SDK's idle watchdog content while a run is quiet. */
const HEARTBEAT_MS = 10_000;
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 250;
/** Checkpoints read per page, newest first, until the last one already streamed. */
const PAGE = 20;
const MAX_PAGES = 50;
/**
 * A thread's first run has no earlier run to bound its checkpoints from below: those written
 * this long before it started are not its own (runs deleted through the API leave their
 * checkpoints behind).
 */
const FIRST_RUN_SLACK_MS = 5_000;

/** One open event stream. Event ids count from 1, so a client reconnecting with Last-Event-ID skips what it has. */
export class EventStream {
  #res: Response;
  #seq = 0;
  #skipThrough: number;
  #heartbeat: NodeJS.Timeout;
  readonly signal: AbortSignal;

  constructor(res: Response, opts: { headers?: Record<string, string>; lastEventId?: string | undefined } = {}) {
    this.#res = res;
    const n = Number(opts.lastEventId);
    this.#skipThrough = Number.isInteger(n) && n > 0 ? n : 0;
    const gone = new AbortController();
    this.signal = gone.signal;
    res.on('close', () => gone.abort());
    res.status(200);
    for (const [k, v] of Object.entries(opts.headers ?? {})) res.setHeader(k, v);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    // A comment line alone (no blank line after it), so no SSE parser dispatches an empty event.
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n'), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get open(): boolean {
    return !this.signal.aborted && !this.#res.writableEnded;
  }

  send(event: string, data: unknown): void {
    this.#seq += 1;
    if (this.#seq <= this.#skipThrough) return;
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data ?? null)}\nid: ${this.#seq}\n\n`);
  }

  end(): void {
    clearInterval(this.#heartbeat);
    if (!this.#res.writableEnded) this.#res.end();
  }

  #write(text: string): void {
    if (this.open) this.#res.write(text);
  }
}

/** `stream_mode` as sent (a mode, a list, or nothing) → the set of modes; values when none. */
export function streamModes(raw: unknown, fallback: readonly string[] = ['values']): Set<string> {
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return new Set(list.length ? list.map(String) : fallback);
}

export interface RunStreamOptions {
  pool: Pool;
  agents: AgentRegistry;
  threadId: string;
  runId: string;
  userId: string;
  modes: Set<string>;
  /** Once the run has ended and its last events are sent, before `end` (a stateless run's thread goes then). */
  beforeEnd?: (run: RunResponse) => Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Streams a run's events until it ends (or the client goes, or the run is deleted), then `end`.
 * Answers the run as it ended, or null when the stream stopped before that.
 */
export async function streamRun(stream: EventStream, o: RunStreamOptions): Promise<RunResponse | null> {
  const checkpoints = new CheckpointCursor(o);
  let delay = POLL_MIN_MS;
  let started = false;
  try {
    for (;;) {
      if (!stream.open) return null;
      const pos = await runStreamPosition(o.pool, o.threadId, o.runId, o.userId);
      if (!pos) {
        // Deleted (a rollback, its thread deleted): nothing more will come.
        if (!started) stream.send('metadata', { run_id: o.runId });
        stream.send('end', null);
        return null;
      }
      if (!started) {
        stream.send('metadata', { run_id: o.runId, attempt: Math.max(1, pos.attempts) });
        started = true;
      }
      const ended = runEnded(pos.run.status);
      if (pos.run.status !== 'pending' && o.agents.keepsCheckpointsOf(pos.graph_id)) {
        // Read after the status: once ended, every checkpoint and write of the run is saved.
        await checkpoints.emitNew(stream, pos, ended);
      }
      if (ended) {
        await finish(stream, o, pos, checkpoints.valuesSent);
        return pos.run;
      }
      await sleep(delay, stream.signal);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  } catch (err) {
    // Headers are gone: the failure is told in the stream, never as a status.
    if (stream.open) {
      stream.send('error', { error: 'StreamError', message: err instanceof Error ? err.message : String(err) });
      stream.send('end', null);
    }
    return null;
  }
}

/** The run's last events: its final values (agents without checkpoints), or its error. */
async function finish(stream: EventStream, o: RunStreamOptions, pos: RunStreamPosition, valuesSent: boolean): Promise<void> {
  const { run } = pos;
  if (run.status === 'success') {
    const values = await threadValues(o.pool, o.threadId);
    // An agent without checkpoints is one node: its output is its update.
    if (o.modes.has('updates') && !o.agents.keepsCheckpointsOf(pos.graph_id)) stream.send('updates', { [pos.graph_id]: values });
    if (o.modes.has('values') && !valuesSent) stream.send('values', values);
  } else if (run.status === 'error' || run.status === 'timeout') {
    stream.send('error', run.error ?? { error: run.status === 'timeout' ? 'TimeoutError' : 'Error', message: `run ${run.status}` });
  }
  await o.beforeEnd?.(run);
  stream.send('end', null);
}

/**
 * Walks a LangGraph thread's checkpoints that belong to one run, oldest first, across polls:
 * each new checkpoint gives the `updates` of the tasks that ran from the one before it and its
 * `values` (an input checkpoint has none: LangGraph streams the state once the input is applied).
 * LangGraph saves a task's writes and the next checkpoint concurrently, on separate connections,
 * so the next checkpoint can be visible before the writes that make the previous one's updates:
 * the cursor moves past a checkpoint only once its tasks' writes are read (or the run has ended,
 * when all are saved).
 */
class CheckpointCursor {
  #o: RunStreamOptions;
  #last: string | null = null;
  /** Tasks whose writes were saved at an earlier poll, so every later history read has them. */
  #written = new Set<string>();
  valuesSent = false;

  constructor(o: RunStreamOptions) {
    this.#o = o;
  }

  /** `ended`: the run had ended when its status was read, before the checkpoints are. */
  async emitNew(stream: EventStream, pos: RunStreamPosition, ended: boolean): Promise<void> {
    let prev: GraphThreadState | null = null;
    for (const s of await this.#read(pos)) {
      if (s.checkpoint_id === this.#last) {
        prev = s;
        continue;
      }
      // Not yet: the next poll reads the checkpoints again from the last one streamed.
      if (prev && !ended && !(await this.#settled(pos, prev))) return;
      if (prev && this.#o.modes.has('updates')) {
        for (const t of prev.tasks) if (t.result !== undefined && !t.name.startsWith('__')) stream.send('updates', { [t.name]: t.result });
      }
      if (this.#o.modes.has('values') && s.metadata?.source !== 'input') {
        stream.send('values', s.values);
        this.valuesSent = true;
      }
      prev = s;
      this.#last = s.checkpoint_id;
    }
  }

  /**
   * Whether the history just read has the writes of every task of a checkpoint that has a
   * successor. A task shows a result (or an error, or interrupts) once they are read, except one
   * that wrote nothing to the state (LangGraph saves a marker for it): the checkpointer's writes
   * tell those, and what they tell holds from the next poll on, whose history read comes after.
   */
  async #settled(pos: RunStreamPosition, s: GraphThreadState): Promise<boolean> {
    const unseen = s.tasks.filter(
      (t) => !t.name.startsWith('__') && t.result === undefined && t.error === null && t.interrupts.length === 0 && !this.#written.has(t.id),
    );
    if (unseen.length === 0) return true;
    const written = await this.#o.agents.writtenTasks(pos.graph_id, this.#o.threadId, s.checkpoint_id);
    // A graph whose checkpointer cannot tell: its updates as the history shows them.
    if (written === null) return true;
    for (const id of written) this.#written.add(id);
    return false;
  }

  /** The run's checkpoints not streamed yet, oldest first, with the last one streamed (re-read: its tasks' results). */
  async #read(pos: RunStreamPosition): Promise<GraphThreadState[]> {
    const { run } = pos;
    const startedAt = run.run_started_at ? Date.parse(run.run_started_at) : Date.now();
    const lower = pos.previous_ended_at ? pos.previous_ended_at.getTime() : startedAt - FIRST_RUN_SLACK_MS;
    const upper = pos.later_started && run.run_ended_at ? Date.parse(run.run_ended_at) : null;
    const found: GraphThreadState[] = [];
    let before: string | undefined;
    outer: for (let page = 0; page < MAX_PAGES; page++) {
      const states = (await this.#o.agents.threadHistory(pos.graph_id, this.#o.threadId, { limit: PAGE, before })) ?? [];
      for (const s of states) {
        if (s.checkpoint_id === this.#last) {
          found.push(s);
          break outer;
        }
        const ts = Date.parse(s.created_at);
        if (ts <= lower) break outer;
        if (upper !== null && ts > upper) continue;
        found.push(s);
      }
      if (states.length < PAGE) break;
      before = states[states.length - 1].checkpoint_id;
    }
    return found.reverse();
  }
}
