import type { Proc, Role, Spawner } from './spawn.ts';

// The processes under test: one api, N schedulers, M workers, each in a slot. A process killed on
// purpose (SIGKILL) is replaced at once; one that exits on its own is a crash: recorded with its
// last lines and replaced after a moment, so a run goes on and counts every crash.

const READY: Record<Role, RegExp> = {
  api: /api listening on/,
  scheduler: /scheduler started/,
  worker: /worker started/,
};

/** A process that ended while the cluster ran: killed by the driver, or not (a crash). */
export interface Death {
  role: Role;
  pid: number;
  /** When its end was observed: it ran nothing after this instant. */
  at: Date;
  /** killed: SIGKILL by the driver; crashed: exited on its own after it was ready; failed_start: exited before it was ready. */
  cause: 'killed' | 'crashed' | 'failed_start';
  code: number | string | null;
  /** Its last lines (crashes only). */
  tail: string[];
}

interface Member {
  role: Role;
  index: number;
  proc: Proc;
  pid: number;
  ready: boolean;
  readyPromise: Promise<void>;
  expectedExit: boolean;
}

export interface ClusterOptions {
  spawn: Spawner;
  /** Environment of every process (DATABASE_URL, PORT ...). */
  env: Record<string, string>;
  schedulers: number;
  workers: number;
  /** Pause before a crashed process is replaced. */
  restartDelayMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Cluster {
  readonly deaths: Death[] = [];
  /** Exit codes of the final SIGTERM, by role and pid (non-zero: the drain failed). */
  readonly shutdown: { role: Role; pid: number; code: number | string }[] = [];
  /** Lines of any process that mention an error (the first 200), prefixed with role and pid: to diagnose a failure. */
  readonly errorLines: string[] = [];
  /** Every pid that ever ran, by role. */
  readonly pids: { role: Role; pid: number }[] = [];
  #o: ClusterOptions;
  #slots = new Map<string, Member>();
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: ClusterOptions) {
    this.#o = options;
  }

  /** Starts the api first (it migrates and installs the queue), then the schedulers and workers, and waits until all are ready. */
  async start(timeoutMs = 60_000): Promise<void> {
    await this.#launch('api', 0, timeoutMs).readyPromise;
    const rest: Member[] = [];
    for (let i = 0; i < this.#o.schedulers; i++) rest.push(this.#launch('scheduler', i, timeoutMs));
    for (let i = 0; i < this.#o.workers; i++) rest.push(this.#launch('worker', i, timeoutMs));
    await Promise.all(rest.map((m) => m.readyPromise));
  }

  members(role?: Role): { role: Role; pid: number; ready: boolean; output: string[] }[] {
    return [...this.#slots.values()].filter((m) => !role || m.role === role).map((m) => ({ role: m.role, pid: m.pid, ready: m.ready, output: m.proc.output }));
  }

  /** Resolves once every slot's current process is ready (a crashed one's replacement included), or rejects after timeoutMs. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ([...this.#slots.values()].every((m) => m.ready)) return;
      await sleep(100);
    }
    const waiting = [...this.#slots.values()].filter((m) => !m.ready).map((m) => `${m.role}#${m.index} (pid ${m.pid})`);
    throw new Error(`processes not ready after ${timeoutMs} ms: ${waiting.join(', ')}`);
  }

  /** SIGKILLs a random process of this role, records its death once it is gone and starts its replacement at once. */
  async kill(role: Role): Promise<Death | null> {
    const candidates = [...this.#slots.values()].filter((m) => m.role === role && !m.expectedExit);
    if (candidates.length === 0 || this.#stopping) return null;
    const m = candidates[Math.floor(Math.random() * candidates.length)];
    m.expectedExit = true;
    m.proc.kill('SIGKILL');
    await m.proc.exited;
    const death: Death = { role, pid: m.pid, at: new Date(), cause: 'killed', code: 'SIGKILL', tail: [] };
    this.deaths.push(death);
    this.#o.log?.(`killed ${role} pid ${m.pid} (SIGKILL) at ${death.at.toISOString()}`);
    if (!this.#stopping) this.#launch(role, m.index);
    return death;
  }

  /** SIGTERM to every process (they drain), SIGKILL after graceMs; records their exit codes. */
  stop(graceMs = 30_000): Promise<void> {
    this.#stopped ??= this.#stop(graceMs);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const members = [...this.#slots.values()];
    for (const m of members) {
      m.expectedExit = true;
      m.proc.kill('SIGTERM');
    }
    await Promise.all(
      members.map(async (m) => {
        const timer = setTimeout(() => m.proc.kill('SIGKILL'), graceMs);
        const code = await m.proc.exited;
        clearTimeout(timer);
        this.shutdown.push({ role: m.role, pid: m.pid, code });
      }),
    );
  }

  #launch(role: Role, index: number, readyTimeoutMs = 120_000): Member {
    const proc = this.#o.spawn(role, this.#o.env);
    const pid = proc.child.pid ?? -1;
    const member: Member = { role, index, proc, pid, ready: false, expectedExit: false, readyPromise: Promise.resolve() };
    member.readyPromise = proc.waitFor(READY[role], readyTimeoutMs).then(() => {
      member.ready = true;
    });
    // A replacement that never gets ready shows up as a death (or in ready()); nobody awaits this one.
    member.readyPromise.catch(() => {});
    const onData = (buf: Buffer) => {
      for (const line of buf.toString('utf8').split('\n')) {
        if (this.errorLines.length < 200 && /error|uncaught|unhandled|fatal/i.test(line)) this.errorLines.push(`${role}[${pid}] ${line.trim()}`);
      }
    };
    proc.child.stdout?.on('data', onData);
    proc.child.stderr?.on('data', onData);
    this.#slots.set(`${role}#${index}`, member);
    this.pids.push({ role, pid });
    void proc.exited.then((code) => this.#onExit(member, code));
    return member;
  }

  async #onExit(m: Member, code: number | string): Promise<void> {
    if (m.expectedExit) return;
    const death: Death = { role: m.role, pid: m.pid, at: new Date(), cause: m.ready ? 'crashed' : 'failed_start', code, tail: m.proc.output.slice(-15) };
    this.deaths.push(death);
    this.#o.log?.(
      `${m.role} pid ${m.pid} exited unexpectedly (${code}) ${m.ready ? 'while running' : 'before it was ready'}: ${m.proc.output.slice(-3).join(' | ')}`,
    );
    await sleep(this.#o.restartDelayMs ?? 1000);
    if (!this.#stopping && this.#slots.get(`${m.role}#${m.index}`) === m) this.#launch(m.role, m.index);
  }
}
