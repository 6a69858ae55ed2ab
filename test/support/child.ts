import type { ChildProcess } from 'node:child_process';

// A spawned process as tests (and the standalone torture run) watch it: its output lines, a wait
// for a line, its exit. No node:test hooks here, so plain scripts may import it.

export interface SpawnedApp {
  child: ChildProcess;
  /** Every line written so far, stdout and stderr. */
  output: string[];
  /** Resolves with the first line (past or future) matching re; rejects after timeoutMs or on exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Resolves with the exit code (or the signal name) once the process has ended and its stdout
   * and stderr are closed, so `output` then holds every line it wrote.
   */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Collects a child's output and answers waits for its lines and its exit. */
export function watchChild(child: ChildProcess): SpawnedApp {
  const output: string[] = [];
  const waiters = new Set<() => void>();
  // A chunk may end inside a line (a pipe hands over at most 64 KiB at a time): each stream keeps
  // its unfinished line until the rest arrives, or until it closes.
  const lines = () => {
    let partial = '';
    return {
      data: (buf: Buffer) => {
        const parts = (partial + buf.toString('utf8')).split('\n');
        partial = parts.pop()!;
        for (const line of parts) if (line.trim()) output.push(line);
        for (const w of waiters) w();
      },
      end: () => {
        if (partial.trim()) output.push(partial);
        partial = '';
        for (const w of waiters) w();
      },
    };
  };
  for (const stream of [child.stdout, child.stderr]) {
    const reader = lines();
    stream?.on('data', reader.data);
    stream?.on('end', reader.end);
  }
  // 'close', not 'exit': 'exit' may come before the last of stdout/stderr has been read, and a
  // test that checks the output once the process has exited would then see it cut short.
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output,
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = output.find((l) => re.test(l));
          if (hit) {
            cleanup();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} in:\n${output.slice(-30).join('\n')}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void exited.then((code) => {
          if (waiters.has(check)) {
            cleanup();
            reject(new Error(`process exited (${code}) before ${re}:\n${output.slice(-30).join('\n')}`));
          }
        });
        check();
      });
    },
  };
}

/**
 * What a spawned process inherits from the test's environment: PATH, HOME and V8's compile cache
 * (set by test/support/global-setup.ts), and nothing else, so a test states every setting it uses.
 */
export function inheritedEnv(): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE };
}
