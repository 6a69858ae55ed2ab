import type pg from 'pg';
import type { Api, ApiAnswer } from './api.ts';
import type { Cluster } from './cluster.ts';

// The torture driver: creates crons of every kind through the API, then issues random API calls
// (PATCH schedule / timezone / enabled / end_time, DELETE cron or thread and a replacement,
// trigger, cancel) from a few concurrent lanes while SIGKILLing a worker and a scheduler every
// 10-15 s. Every answer is judged at once: a non-2xx status is "explained" only by a race the
// driver itself caused (a 404 for a cron it was deleting, a 409 from an overlap rule ...).
//
// It also records, per cron, the spans in which nothing but the scheduler moved it (enabled,
// every second, no end_time, no API write in flight): inside such a span every second between
// the first and the last ledger row must have its row. Writes that move a cron (PATCH, DELETE)
// take its slot's lock, so a cron's state after each write is the write's own answer; triggers
// and cancels race freely with everything.
//
// Flow control, by slot: every 5th cron (slot % 5 = 1) runs the graph torture_limited (limit
// torture_pool: 5 at once, 40 starts per 2 s; its graph retry policy allows 2 attempts), every
// 10th (slot % 10 = 4) an assistant with config.max_concurrency 4; even slots fail some attempts
// retryably (input fail_plan: test/support/torture/plan.ts); every third carries its own
// retry_policy (3 attempts, 0.2-1 s backoff); the others get their graph's or the default.

export const EVERY_SECOND = '* * * * * *';
export const EVERY_TWO_SECONDS = '*/2 * * * * *';
export const GRAPH_ID = 'torture';
/** The same agent under the limit torture_pool, with a graph retry policy (test/fixtures/torture.json). */
export const LIMITED_GRAPH_ID = 'torture_limited';
/** torture_pool in test/fixtures/torture.json: what the checker holds the limited graph's runs to. */
export const GRAPH_LIMIT = { name: 'torture_pool', max_concurrency: 5, rate: { runs: 40, per_seconds: 2 } };
/** The graph's retry_policy there. */
export const LIMITED_GRAPH_MAX_ATTEMPTS = 2;
/** config.max_concurrency of the assistant the driver makes for some crons. */
export const ASSISTANT_MAX_CONCURRENCY = 4;
/** The retry_policy some crons carry themselves (it wins over the graph's and the default). */
export const CRON_RETRY_POLICY = { max_attempts: 3, initial_interval_seconds: 0.2, backoff_coefficient: 2, maximum_interval_seconds: 1 };
/** The default policy's max_attempts (docs/flow-control.md). */
const DEFAULT_MAX_ATTEMPTS = 3;

export const KINDS = [
  'stateless_delete',
  'stateless_keep',
  'thread_enqueue',
  'thread_reject',
  'thread_interrupt',
  'overlap_skip',
  'overlap_buffer_one',
] as const;
export type Kind = (typeof KINDS)[number];

const THREAD_KINDS: Kind[] = ['thread_enqueue', 'thread_reject', 'thread_interrupt'];
/** Kinds whose trigger the overlap rule may refuse (409). */
const OVERLAP_RULED: Kind[] = ['thread_reject', 'overlap_skip', 'overlap_buffer_one'];
const TIMEZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];

export const isThreadKind = (k: Kind): boolean => THREAD_KINDS.includes(k);

export interface Span {
  from: number;
  to: number;
}

export interface TortureCron {
  cron_id: string;
  kind: Kind;
  slot: number;
  thread_id: string | null;
  createdAt: number;
  /** When the driver sent the DELETE of the cron (or of its thread); null while it lives. */
  deleteSentAt: number | null;
  /** What deleted it: DELETE of the cron (which deletes its ledger too) or of its thread (the cron goes by cascade). */
  deletedBy: 'cron' | 'thread' | null;
  /** Spans (ms) in which only the scheduler moved the cron (see above). */
  windows: Span[];
  cleanSince: number | null;
  known: { schedule: string; enabled: boolean; end_time: string | null };
  /** The assistant its runs run under (the graph's own id, or the limited assistant's uuid). */
  assistant_id: string;
  /** Its runs fail the attempts their key's plan says (plan.ts). */
  failPlan: boolean;
  /** max_attempts of the retry policy its runs resolve to. */
  maxAttempts: number;
  /** The limits its runs are subject to (names as flow_limits has them). */
  limits: string[];
}

interface Slot {
  index: number;
  kind: Kind;
  cron: TortureCron | null;
  busy: boolean;
  /** Steady slots get triggers and cancels only, never a PATCH or DELETE: long spans for the gap check. */
  steady: boolean;
}

export interface KillPlan {
  /** Pause between kill rounds, drawn in this range (ms). */
  everyMs: [number, number];
  /** No kill this close to the end of the drive, so retries after the last one fit in the settle time. */
  quietTailMs: number;
}

export interface DriveOptions {
  seconds: number;
  lanes?: number;
  /** Pause between one lane's calls, drawn in this range (ms). */
  pauseMs?: [number, number];
  kills?: KillPlan | null;
}

export interface DriverOptions {
  api: Api;
  /** Read-only use: picks running runs to cancel. */
  pool: pg.Pool;
  cluster?: Cluster;
  log?: (line: string) => void;
  /** Every n-th slot is steady (0: none). */
  steadyEvery?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

type Op = 'patch_schedule' | 'patch_timezone' | 'patch_enabled' | 'patch_end_time' | 'delete_cron' | 'delete_thread' | 'trigger' | 'cancel';
const WEIGHTS: [Op, number][] = [
  ['patch_schedule', 3],
  ['patch_timezone', 2],
  ['patch_enabled', 3],
  ['patch_end_time', 1],
  ['delete_cron', 1],
  ['delete_thread', 1],
  ['trigger', 4],
  ['cancel', 3],
];

function pickOp(): Op {
  const total = WEIGHTS.reduce((n, [, w]) => n + w, 0);
  let r = Math.random() * total;
  for (const [op, w] of WEIGHTS) if ((r -= w) < 0) return op;
  return 'trigger';
}

export class Driver {
  /** Every cron the driver ever created. */
  readonly crons: TortureCron[] = [];
  readonly ops: Record<string, number> = {};
  /** The assistant with config.max_concurrency (made by createCrons). */
  limitedAssistantId: string | null = null;
  #o: DriverOptions;
  #slots: Slot[] = [];

  constructor(options: DriverOptions) {
    this.#o = options;
  }

  get api(): Api {
    return this.#o.api;
  }

  /** Creates n crons, the kinds in turn, a few at a time. */
  async createCrons(n: number, concurrency = 5): Promise<void> {
    const a = await this.#o.api.call('create_assistant', 'POST', '/assistants', {
      graph_id: GRAPH_ID,
      name: 'torture limited',
      config: { max_concurrency: ASSISTANT_MAX_CONCURRENCY },
    });
    if (a.status !== 200) {
      this.#o.api.judge(a.call, false, 'creating the limited assistant');
      throw new Error(`could not create the limited assistant: ${a.status} ${JSON.stringify(a.body)}`);
    }
    this.limitedAssistantId = String(a.body.assistant_id);
    const steadyEvery = this.#o.steadyEvery ?? 4;
    for (let i = 0; i < n; i++) {
      this.#slots.push({ index: i, kind: KINDS[i % KINDS.length], cron: null, busy: false, steady: steadyEvery > 0 && i % steadyEvery === 0 });
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < this.#slots.length) {
          const slot = this.#slots[next++];
          slot.cron = await this.#create(slot, null);
        }
      }),
    );
  }

  /** The crons not deleted. */
  liveCrons(): TortureCron[] {
    return this.crons.filter((c) => c.deleteSentAt === null);
  }

  /** Random API calls from `lanes` lanes for `seconds`, and kill rounds when a plan is given. */
  async drive(o: DriveOptions): Promise<void> {
    const deadline = Date.now() + o.seconds * 1000;
    const lanes = Array.from({ length: o.lanes ?? 3 }, () => this.#lane(deadline, o.pauseMs ?? [100, 400]));
    const killer = o.kills && this.#o.cluster ? this.#killer(deadline, o.kills, this.#o.cluster) : Promise.resolve();
    await Promise.all([...lanes, killer]);
  }

  /**
   * PATCH enabled=false on every live cron (closing their spans), a few at a time; then on any
   * cron still enabled in the database that the driver does not count as live (a DELETE answered
   * 5xx and rolled back, a create answered 5xx after it committed), so nothing fires any more.
   */
  async disableAll(concurrency = 5): Promise<void> {
    await this.#disable(this.liveCrons(), 'disable', concurrency);
    const { rows } = await this.#o.pool.query<{ cron_id: string }>(`SELECT cron_id FROM crons WHERE enabled ORDER BY cron_id`);
    const known = new Map(this.crons.map((c) => [c.cron_id, c]));
    const leftovers = rows.map((r) => known.get(r.cron_id)).filter((c): c is TortureCron => c !== undefined);
    for (const r of rows) if (!known.has(r.cron_id)) await this.#o.api.call('disable_unknown', 'PATCH', `/runs/crons/${r.cron_id}`, { enabled: false });
    await this.#disable(leftovers, 'disable_leftover', concurrency);
  }

  async #disable(crons: TortureCron[], op: string, concurrency: number): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < crons.length) {
          const cron = crons[next++];
          const slot = this.#slots[cron.slot];
          while (slot.busy) await sleep(20);
          slot.busy = true;
          try {
            await this.#patch(cron, op, { enabled: false });
          } finally {
            slot.busy = false;
          }
        }
      }),
    );
  }

  async #lane(deadline: number, pauseMs: [number, number]): Promise<void> {
    while (Date.now() < deadline) {
      const op = pickOp();
      this.ops[op] = (this.ops[op] ?? 0) + 1;
      try {
        await this.#do(op);
      } catch (err) {
        this.#o.log?.(`driver op ${op} failed: ${(err as Error).message}`);
      }
      await sleep(between(pauseMs[0], pauseMs[1]));
    }
  }

  async #killer(deadline: number, plan: KillPlan, cluster: Cluster): Promise<void> {
    for (;;) {
      const wait = between(plan.everyMs[0], plan.everyMs[1]);
      if (Date.now() + wait > deadline - plan.quietTailMs) return;
      await sleep(wait);
      // The cluster records each death (pid, time) for the checker.
      await cluster.kill('worker');
      await sleep(between(0, 2000));
      await cluster.kill('scheduler');
    }
  }

  async #do(op: Op): Promise<void> {
    if (op === 'cancel') return this.#cancel();
    if (op === 'trigger') {
      const slot = pick(this.#slots);
      if (slot.cron) await this.#trigger(slot.cron);
      return;
    }
    // Writes that move a cron: a slot that is not steady and not busy, locked meanwhile.
    let slot: Slot | undefined;
    for (let i = 0; i < 10 && !slot; i++) {
      const s = pick(this.#slots);
      if (!s.steady && !s.busy) slot = s;
    }
    if (!slot) return;
    slot.busy = true;
    try {
      if (!slot.cron) {
        // Its creation failed earlier: try again.
        slot.cron = await this.#create(slot, null);
        return;
      }
      const cron = slot.cron;
      switch (op) {
        case 'patch_schedule':
          await this.#patch(cron, op, { schedule: cron.known.schedule === EVERY_SECOND ? EVERY_TWO_SECONDS : EVERY_SECOND });
          break;
        case 'patch_timezone':
          await this.#patch(cron, op, { timezone: pick(TIMEZONES) });
          break;
        case 'patch_enabled': {
          const enable = Math.random() < 0.8 ? !cron.known.enabled : cron.known.enabled;
          // Enabling sometimes clears end_time too, which revives a cron its end_time finished.
          await this.#patch(cron, op, enable && Math.random() < 0.5 ? { enabled: true, end_time: null } : { enabled: enable });
          break;
        }
        case 'patch_end_time':
          await this.#patch(cron, op, { end_time: new Date(Date.now() + between(3000, 8000)).toISOString() });
          break;
        case 'delete_cron':
          await this.#deleteCron(slot, cron);
          break;
        case 'delete_thread':
          if (cron.thread_id && isThreadKind(slot.kind)) await this.#deleteThread(slot, cron);
          else await this.#deleteCron(slot, cron);
          break;
      }
    } finally {
      slot.busy = false;
    }
  }

  #closeWindow(cron: TortureCron, at: number): void {
    if (cron.cleanSince !== null && at > cron.cleanSince) cron.windows.push({ from: cron.cleanSince, to: at });
    cron.cleanSince = null;
  }

  /** Closes every open span at `at` (the end of the drive). */
  closeWindows(at: number): void {
    for (const c of this.crons) this.#closeWindow(c, at);
  }

  async #create(slot: Slot, threadId: string | null): Promise<TortureCron | null> {
    const { api } = this.#o;
    const kind = slot.kind;
    const flow = this.#flowOf(slot.index);
    const body: Record<string, unknown> = {
      assistant_id: flow.assistant_id,
      schedule: EVERY_SECOND,
      input: { slot: slot.index, kind, fail_plan: flow.failPlan },
    };
    if (flow.cronPolicy) body.retry_policy = CRON_RETRY_POLICY;
    let answer: ApiAnswer<Record<string, unknown>>;
    if (isThreadKind(kind)) {
      if (!threadId) {
        const t = await api.call('create_thread', 'POST', '/threads', { metadata: { torture_slot: slot.index } });
        if (t.status !== 200) {
          api.judge(t.call, false, 'creating a thread');
          return null;
        }
        threadId = String(t.body.thread_id);
      }
      body.multitask_strategy = kind.slice('thread_'.length);
      answer = await api.call('create_cron', 'POST', `/threads/${threadId}/runs/crons`, body);
    } else {
      if (kind === 'stateless_keep') body.on_run_completed = 'keep';
      else body.on_run_completed = 'delete';
      if (kind === 'overlap_skip') body.overlap_policy = 'skip';
      if (kind === 'overlap_buffer_one') body.overlap_policy = 'buffer_one';
      answer = await api.call('create_cron', 'POST', '/runs/crons', body);
    }
    if (answer.status !== 200) {
      api.judge(answer.call, false, 'creating a cron');
      return null;
    }
    const cron: TortureCron = {
      cron_id: String(answer.body.cron_id),
      kind,
      slot: slot.index,
      thread_id: threadId,
      createdAt: answer.call.at,
      deleteSentAt: null,
      deletedBy: null,
      windows: [],
      cleanSince: answer.call.at,
      known: { schedule: EVERY_SECOND, enabled: true, end_time: null },
      assistant_id: flow.assistant_id,
      failPlan: flow.failPlan,
      maxAttempts: flow.maxAttempts,
      limits: flow.limits,
    };
    this.crons.push(cron);
    return cron;
  }

  /** A slot's assistant, limits and retry policy (see the header). */
  #flowOf(slot: number): { assistant_id: string; limits: string[]; failPlan: boolean; cronPolicy: boolean; maxAttempts: number } {
    const cronPolicy = slot % 3 === 0;
    const failPlan = slot % 2 === 0;
    if (slot % 5 === 1) {
      return {
        assistant_id: LIMITED_GRAPH_ID,
        limits: [GRAPH_LIMIT.name],
        failPlan,
        cronPolicy,
        maxAttempts: cronPolicy ? CRON_RETRY_POLICY.max_attempts : LIMITED_GRAPH_MAX_ATTEMPTS,
      };
    }
    const maxAttempts = cronPolicy ? CRON_RETRY_POLICY.max_attempts : DEFAULT_MAX_ATTEMPTS;
    if (slot % 10 === 4 && this.limitedAssistantId) {
      return { assistant_id: this.limitedAssistantId, limits: [`assistant:${this.limitedAssistantId}`], failPlan, cronPolicy, maxAttempts };
    }
    return { assistant_id: GRAPH_ID, limits: [], failPlan, cronPolicy, maxAttempts };
  }

  async #patch(cron: TortureCron, op: string, body: Record<string, unknown>): Promise<void> {
    const { api } = this.#o;
    this.#closeWindow(cron, Date.now());
    const answer = await api.call(op, 'PATCH', `/runs/crons/${cron.cron_id}`, body);
    if (answer.status === 200) {
      const b = answer.body;
      cron.known = { schedule: String(b.schedule), enabled: b.enabled === true, end_time: (b.end_time as string | null) ?? null };
      if (cron.known.enabled && cron.known.schedule === EVERY_SECOND && cron.known.end_time === null) cron.cleanSince = answer.call.at;
      return;
    }
    // The end_time sent was 3-8 s ahead; only an answer that came later than that is explained.
    const late = typeof body.end_time === 'string' && answer.status === 422 && answer.call.at >= Date.parse(body.end_time);
    api.judge(answer.call, late, late ? 'end_time passed before the request was handled' : 'nothing deletes this cron meanwhile');
  }

  async #deleteCron(slot: Slot, cron: TortureCron): Promise<void> {
    const { api } = this.#o;
    const sentAt = Date.now();
    cron.deleteSentAt = sentAt;
    cron.deletedBy = 'cron';
    this.#closeWindow(cron, sentAt);
    const answer = await api.call('delete_cron', 'DELETE', `/runs/crons/${cron.cron_id}`);
    if (answer.status !== 204) api.judge(answer.call, false, 'nothing else deletes this cron');
    // A replacement of the same kind (on the same thread for a thread cron).
    slot.cron = await this.#create(slot, cron.thread_id);
  }

  async #deleteThread(slot: Slot, cron: TortureCron): Promise<void> {
    const { api } = this.#o;
    const sentAt = Date.now();
    cron.deleteSentAt = sentAt;
    cron.deletedBy = 'thread';
    this.#closeWindow(cron, sentAt);
    const answer = await api.call('delete_thread', 'DELETE', `/threads/${cron.thread_id}`);
    if (answer.status !== 204) api.judge(answer.call, false, 'nothing else deletes this thread');
    slot.cron = await this.#create(slot, null);
  }

  async #trigger(cron: TortureCron): Promise<void> {
    const { api } = this.#o;
    const answer = await api.call('trigger', 'POST', `/runs/crons/${cron.cron_id}/trigger`, {});
    if (answer.status === 200) return;
    if (answer.status === 404) {
      const deleting = cron.deleteSentAt !== null && cron.deleteSentAt <= answer.call.at;
      api.judge(answer.call, deleting, deleting ? 'the cron (or its thread) was being deleted' : 'the cron was not being deleted');
    } else if (answer.status === 409) {
      const ruled = OVERLAP_RULED.includes(cron.kind);
      api.judge(answer.call, ruled, ruled ? `overlap rule of ${cron.kind}` : `${cron.kind} has no overlap rule that refuses a trigger`);
    } else api.judge(answer.call, false, 'trigger');
  }

  async #cancel(): Promise<void> {
    const { api, pool } = this.#o;
    // Runs that started within the last second: a killed worker's runs stay `running` until their
    // retry, and cancelling those would leave no retry to check.
    const { rows } = await pool.query<{ run_id: string; thread_id: string }>(
      `SELECT run_id, thread_id FROM runs
        WHERE status = 'running' AND cron_id IS NOT NULL AND started_at > now() - interval '1 second'
        ORDER BY random() LIMIT 1`,
    );
    if (!rows[0]) return;
    const answer = await api.call('cancel', 'POST', `/threads/${rows[0].thread_id}/runs/${rows[0].run_id}/cancel`);
    if (answer.status === 202 || answer.status === 204) return;
    // The run may have ended (409) or been deleted with its ephemeral thread (404) since it was read.
    api.judge(answer.call, answer.status === 404 || answer.status === 409, 'the run ended or was deleted after it was picked');
  }
}
