// The CLI's HTTP client: JSON requests to the public API with the key, errors as the API said them.

/** The API answered an error (status >= 400), or could not be reached (status 0). */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
  }
}

export interface Answer<T = any> {
  status: number;
  body: T;
}

export class ApiClient {
  readonly url: string;
  readonly key: string | null;
  readonly timeoutMs: number;

  constructor(url: string, key: string | null, timeoutMs = 30_000) {
    this.url = url.replace(/\/+$/, '');
    this.key = key;
    this.timeoutMs = timeoutMs;
  }

  /** A JSON request; answers the parsed body, or throws ApiError with the API's `detail`. */
  async request<T = any>(method: string, path: string, body?: unknown, opts: { allowStatus?: number[] } = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.key) headers['x-api-key'] = this.key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (err as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new ApiError(0, `cannot reach the API at ${this.url} (${why}); set AGENTCRON_URL or --url`);
    }
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (res.status >= 400 && !opts.allowStatus?.includes(res.status)) {
      const detail =
        parsed && typeof parsed === 'object' && typeof (parsed as { detail?: unknown }).detail === 'string'
          ? (parsed as { detail: string }).detail
          : typeof parsed === 'string' && parsed
            ? parsed.slice(0, 500)
            : res.statusText;
      throw new ApiError(res.status, detail);
    }
    return { status: res.status, body: parsed as T };
  }
}
