// @ts-check
// The dashboard's only way to the data: the public HTTP API, with the key the person typed
// (AUTH_MODE=api_key), kept for the browser session in sessionStorage. What the key may not
// see, the API does not answer, so the page cannot show it.

/** @typedef {import('../types.ts').Cron} Cron */
/** @typedef {import('../types.ts').CronUpdate} CronUpdate */
/** @typedef {import('../types.ts').Occurrence} Occurrence */
/** @typedef {ReturnType<typeof readFeatures>} Features */
/**
 * An OpenAPI document, as far as the dashboard reads it.
 * @typedef {{
 *   paths?: Record<string, Record<string, { parameters?: { name: string }[] }>>,
 *   components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> },
 * }} OpenApiDoc
 */

const KEY_STORAGE = 'agentcron.apiKey';

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status (0: the API could not be reached)
   * @param {string} detail the API's `detail`
   */
  constructor(status, detail) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * Who is looking, and what the server offers (filled in by `start`).
 * @type {{ key: string | null, needsKey: boolean, admin: boolean, everyUser: boolean, me: string | null, features: Features }}
 */
export const session = {
  key: sessionStorage.getItem(KEY_STORAGE),
  /** AUTH_MODE=api_key: requests need a key. */
  needsKey: false,
  /** Admin key, or AUTH_MODE=none: /admin/* answers (maintenance jobs, /health's details). */
  admin: false,
  /** An admin key under AUTH_MODE=api_key: the crons pages show every user's crons (/admin/crons). */
  everyUser: false,
  /** The user the regular API acts as, when known ("anonymous" without auth, "admin" for admin keys). */
  me: null,
  /** Endpoints and fields present in this server's OpenAPI document. */
  features: {
    bulk: false,
    preview: false,
    backfill: false,
    retry: false,
    pauseNote: null,
    nextFrom: false,
    maintenance: false,
    output: null,
    runGet: false,
  },
};

/** @param {string | null} key */
export function rememberKey(key) {
  session.key = key;
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/**
 * A JSON request to the API. Answers the parsed body (null for an empty one); any status of
 * 400 or more throws an ApiError carrying the API's `detail`. The answer is the caller's to type
 * (`@type` with the answer's typedef from ../types.ts).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {{ auth?: boolean, text?: boolean }} [options]
 * @returns {Promise<any>}
 */
export async function api(method, path, body, { auth = true, text = false } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (auth && session.key) headers['x-api-key'] = session.key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, `the API cannot be reached (${err instanceof Error ? err.message : String(err)})`);
  }
  const raw = await res.text();
  if (text && res.ok) return raw;
  /** @type {any} */
  let parsed = null;
  if (raw) {
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = raw;
    }
  }
  if (!res.ok) {
    const detail = parsed && typeof parsed === 'object' && typeof parsed.detail === 'string' ? parsed.detail : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, detail);
  }
  return parsed;
}

/**
 * The pause note's field: the server's one name, set through CronUpdate and read on a Cron. Typed
 * from its schemas: renamed there, this type is `never` and the typecheck fails here.
 * @typedef {'paused_reason' & keyof CronUpdate & keyof Cron} NoteField
 */
/** @type {readonly NoteField[]} */
const NOTE_FIELDS = ['paused_reason'];
/**
 * Where an occurrence carries its kept output (LEDGER_OUTPUT_EXCERPT_BYTES), typed the same way.
 * @typedef {'output_excerpt' & keyof Occurrence} OutputField
 */
/** @type {readonly OutputField[]} */
const OUTPUT_FIELDS = ['output_excerpt'];

/**
 * What this server offers, from its OpenAPI document (public, one GET): endpoints added after
 * this page was written show their controls; missing ones are hidden instead of failing.
 * @param {OpenApiDoc | null} doc
 */
export function readFeatures(doc) {
  const paths = doc?.paths ?? {};
  /** @type {(path: string, method: string) => boolean} */
  const has = (path, method) => Boolean(paths[path]?.[method]);
  const schemas = doc?.components?.schemas ?? {};
  /** @type {(name: string) => string[]} */
  const props = (name) => Object.keys(schemas[name]?.properties ?? {});
  const update = props('CronUpdate');
  const occurrence = props('CronOccurrence');
  const nextParams = paths['/runs/crons/{cron_id}/next']?.get?.parameters ?? [];
  return {
    bulk: has('/runs/crons/bulk', 'post'),
    preview: has('/runs/crons/preview', 'post'),
    backfill: has('/runs/crons/{cron_id}/backfill', 'post'),
    retry: has('/runs/crons/{cron_id}/occurrences/{scheduled_for}/retry', 'post'),
    pauseNote: NOTE_FIELDS.find((f) => update.includes(f)) ?? null,
    nextFrom: nextParams.some((p) => p.name === 'from'),
    maintenance: has('/admin/maintenance', 'get'),
    output: OUTPUT_FIELDS.find((f) => occurrence.includes(f)) ?? null,
    runGet: has('/runs/{run_id}', 'get'),
  };
}

/**
 * Whether this server wants a key, and whether the current one is an admin's, without a single
 * refused request: /health is public and shows its details only to admins, and under
 * AUTH_MODE=none everyone is one.
 */
export async function probe() {
  const anonymous = await healthAs(null);
  session.needsKey = !anonymous || typeof anonymous.details === 'string';
  if (!session.needsKey) {
    // One implicit user owns everything made without auth: its own routes are the view.
    session.admin = true;
    session.everyUser = false;
    session.me = 'anonymous';
    return;
  }
  session.admin = false;
  session.everyUser = false;
  session.me = null;
  if (!session.key) return;
  const health = await healthAs(session.key);
  session.admin = Boolean(health && typeof health.details !== 'string');
  session.everyUser = session.admin;
  session.me = session.admin ? 'admin' : null;
}

/**
 * /health's body as a caller with this key (or none) sees it, whatever its status (503 has one too).
 * @param {string | null} key
 * @returns {Promise<{ details?: unknown } | null>}
 */
async function healthAs(key) {
  try {
    const res = await fetch('/health', { headers: key ? { 'x-api-key': key } : {}, cache: 'no-store' });
    return /** @type {{ details?: unknown }} */ (await res.json());
  } catch {
    return null;
  }
}

/**
 * Checks a typed key: any key the API refuses throws (401), a good one is kept.
 * @param {string} key
 */
export async function signIn(key) {
  const previous = session.key;
  session.key = key;
  try {
    await api('POST', '/runs/crons/count', {});
  } catch (err) {
    session.key = previous;
    throw err;
  }
  rememberKey(key);
  await probe();
}

export async function loadFeatures() {
  /** @type {OpenApiDoc | null} */
  const doc = await api('GET', '/openapi.json', undefined, { auth: false }).catch(() => null);
  session.features = readFeatures(doc);
}

/**
 * Paths of a cron's operations: an admin reaches every user's crons through /admin/crons.
 * @param {string} cronId
 */
export function cronPath(cronId, suffix = '') {
  return `${session.everyUser ? '/admin/crons' : '/runs/crons'}/${encodeURIComponent(cronId)}${suffix}`;
}

/**
 * Whether the caller's own routes (ledger, next fire times) answer for this cron.
 * @param {Pick<Cron, 'user_id'>} cron
 */
export function ownsCron(cron) {
  return !session.everyUser || cron.user_id === session.me;
}

/**
 * Runs `fn` over `items`, `limit` at a time; answers the results in order (errors as { error }).
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T, index: number) => Promise<R>} fn
 * @returns {Promise<(R | { error: unknown })[]>}
 */
export async function mapLimit(items, limit, fn) {
  /** @type {(R | { error: unknown })[]} */
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (error) {
        out[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
