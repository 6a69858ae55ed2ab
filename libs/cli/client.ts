// The CLI's HTTP client: JSON requests to the public API with the key, errors as the API said them.
// On node:http(s), not fetch: fetch loads undici (and its HTTP parser's WebAssembly), a quarter of
// the CPU of a CLI command (docs/performance.md, Start). Through getBuiltinModule: an ESM import of
// node:http reads its WebSocket export, which loads undici too.
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

class Timeout extends Error {}

interface Response {
  status: number;
  statusText: string;
  text: string;
}

/** One request; the timeout covers it whole (connection, answer and body). Fails with the error's code (ECONNREFUSED ...) or Timeout. */
function send(url: string, method: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = (target.protocol === 'https:' ? https : http).request(target, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(new Timeout()), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

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
      res = await send(this.url + path, method, headers, body === undefined ? undefined : JSON.stringify(body), this.timeoutMs);
    } catch (err) {
      const why = err instanceof Timeout ? `no answer within ${this.timeoutMs / 1000} s` : ((err as { code?: string }).code ?? (err as Error).message);
      throw new ApiError(0, `cannot reach the API at ${this.url} (${why}); set AGENTCRON_URL or --url`);
    }
    const text = res.text;
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
