import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { bareHost, forbiddenAddress, scrubCredentials } from './address.ts';

// node:http through getBuiltinModule, not an ESM import: the import's namespace reads each of the
// module's exports, WebSocket included, which loads undici (~50 ms of CPU at every start; docs/performance.md, Start).
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

// One webhook POST. The destination's host is resolved first and every address it resolves to is
// checked (unless private destinations are allowed); the connection then goes to the address that
// was checked, never to a second resolution, so a DNS answer that changes between the check and
// the connect (DNS rebinding) cannot redirect it. TLS still verifies the certificate against the
// URL's hostname. Redirects are not followed (a 3xx is a failure): a redirect could point anywhere.

/** Most characters of a response body kept (in an error); the rest is never read into memory. */
export const EXCERPT_CHARS = 512;
const EXCERPT_READ_BYTES = 4 * EXCERPT_CHARS;

export interface DeliveryOptions {
  connectTimeoutMs: number;
  /** From the connection until the response has been read. */
  responseTimeoutMs: number;
  allowPrivate: boolean;
  /** Aborts the attempt (shutdown). */
  signal?: AbortSignal;
}

export type DeliveryResult =
  | { ok: true; status: number }
  /** retry: false when trying again cannot help (the destination is refused). */
  | { ok: false; retry: boolean; error: string; status?: number };

/** A destination the SSRF guard refuses. */
export class WebhookRefused extends Error {
  override name = 'WebhookRefused';
}

class DeliveryTimeout extends Error {
  override name = 'DeliveryTimeout';
}

interface Target {
  address: string;
  family: number;
}

/** Resolves the host and checks every address it has; answers the one to connect to. */
export async function resolveTarget(hostname: string, allowPrivate: boolean): Promise<Target> {
  const host = bareHost(hostname);
  const family = net.isIP(host);
  const addresses = family ? [{ address: host, family }] : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0) throw new Error(`${host} has no address`);
  if (!allowPrivate) {
    for (const a of addresses) {
      const why = forbiddenAddress(a.address);
      if (why) throw new WebhookRefused(`refused: ${host} resolves to ${a.address}, ${why} (WEBHOOK_ALLOW_PRIVATE=true allows it)`);
    }
  }
  return addresses[0];
}

/**
 * POSTs body to url; never throws. Credentials in the URL are sent as Basic authorization (as
 * Node's http does for a URL's userinfo) and scrubbed from the error it answers, which is stored
 * on the run and its ledger row and logged.
 */
export async function deliver(url: string, body: string, headers: Record<string, string>, o: DeliveryOptions): Promise<DeliveryResult> {
  const result = await attempt(url, body, headers, o);
  return result.ok ? result : { ...result, error: scrubCredentials(result.error, url) };
}

async function attempt(url: string, body: string, headers: Record<string, string>, o: DeliveryOptions): Promise<DeliveryResult> {
  let u: URL;
  try {
    u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported protocol ${u.protocol}`);
  } catch (err) {
    return { ok: false, retry: false, error: `invalid webhook URL: ${(err as Error).message}` };
  }
  try {
    const target = await withTimeout(
      resolveTarget(u.hostname, o.allowPrivate),
      o.connectTimeoutMs,
      `${u.hostname} did not resolve within ${o.connectTimeoutMs} ms`,
    );
    const { status, excerpt } = await post(u, target, body, headers, o);
    if (status >= 200 && status < 300) return { ok: true, status };
    const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
    return { ok: false, retry: true, status, error: `HTTP ${status}${redirect}${excerpt ? `: ${excerpt}` : ''}` };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, retry: !(err instanceof WebhookRefused), error: clip(e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message) };
  }
}

function post(u: URL, target: Target, body: string, headers: Record<string, string>, o: DeliveryOptions): Promise<{ status: number; excerpt: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let responseTimer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, value?: { status: number; excerpt: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      o.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const onAbort = () => finish(new Error('delivery aborted (shutdown)'));
    const request = u.protocol === 'https:' ? https.request : http.request;
    const req = request(u, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      // A fresh connection per delivery: nothing pooled outlives the address check.
      agent: false,
      lookup: pinnedLookup(target) as never,
    });
    const connectTimer = setTimeout(() => finish(new DeliveryTimeout(`no connection to ${u.host} within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
    const connected = () => {
      if (responseTimer || settled) return;
      clearTimeout(connectTimer);
      responseTimer = setTimeout(
        () => finish(new DeliveryTimeout(`no complete response from ${u.host} within ${o.responseTimeoutMs} ms`)),
        o.responseTimeoutMs,
      );
    };
    req.on('socket', (socket) => {
      socket.once('connect', connected);
      socket.once('secureConnect', connected);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => finish(null, { status: res.statusCode ?? 0, excerpt: excerptOf(Buffer.concat(chunks)) });
      res.on('data', (chunk: Buffer) => {
        if (size < EXCERPT_READ_BYTES) chunks.push(chunk);
        size += chunk.length;
        // Enough for the excerpt: stop reading a large body.
        if (size >= EXCERPT_READ_BYTES) {
          done();
          res.destroy();
        }
      });
      res.on('end', done);
      res.on('error', (err) => finish(err));
    });
    req.on('error', (err) => finish(err));
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    req.end(body);
  });
}

/** A lookup that answers the checked address, in either callback form net.connect asks for. */
function pinnedLookup(t: Target) {
  return (_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: t.address, family: t.family }]);
    else callback(null, t.address, t.family);
  };
}

/** The start of a response body as one line of text, at most EXCERPT_CHARS characters. */
function excerptOf(buf: Buffer): string {
  return buf.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, EXCERPT_CHARS);
}

const clip = (s: string): string => (s.length > EXCERPT_CHARS + 64 ? `${s.slice(0, EXCERPT_CHARS + 64)}...` : s);

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeliveryTimeout(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
