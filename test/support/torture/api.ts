// The driver's HTTP client: every call is recorded with its status and a verdict, so the
// checker can count 5xx answers and statuses no race explains.

export type Verdict = 'ok' | 'explained' | 'unexpected';

export interface ApiCall {
  op: string;
  method: string;
  path: string;
  /** HTTP status, or 0 when no answer came (connection refused, timeout). */
  status: number;
  sentAt: number;
  at: number;
  verdict: Verdict;
  /** Why a non-2xx answer is explained, or what was wrong. */
  why?: string;
  /** A short excerpt of a non-2xx answer's body, or the network error. */
  detail?: string;
}

export interface ApiAnswer<T = unknown> {
  call: ApiCall;
  status: number;
  body: T;
}

export class Api {
  readonly calls: ApiCall[] = [];
  readonly base: string;
  #timeoutMs: number;

  constructor(base: string, timeoutMs = 15_000) {
    this.base = base;
    this.#timeoutMs = timeoutMs;
  }

  async call<T = Record<string, unknown>>(op: string, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const sentAt = Date.now();
    const call: ApiCall = { op, method, path, status: 0, sentAt, at: sentAt, verdict: 'unexpected' };
    this.calls.push(call);
    try {
      const res = await fetch(this.base + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const text = await res.text();
      call.at = Date.now();
      call.status = res.status;
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: keep the text
      }
      if (res.status < 300) call.verdict = 'ok';
      else call.detail = text.slice(0, 300);
      return { call, status: res.status, body: parsed as T };
    } catch (err) {
      call.at = Date.now();
      call.detail = `no answer: ${(err as Error).message}`;
      return { call, status: 0, body: null as T };
    }
  }

  /** Marks a non-2xx answer as explained by a race (why says which) or as unexpected. */
  judge(call: ApiCall, explained: boolean, why: string): void {
    if (call.verdict === 'ok') return;
    // No race explains a server error or no answer at all.
    call.verdict = explained && call.status >= 400 && call.status < 500 ? 'explained' : 'unexpected';
    call.why = why;
  }
}
