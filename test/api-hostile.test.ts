import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AgentRegistry, echo } from '../libs/agents/index.ts';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { loadConfig } from '../libs/config/index.ts';
import { apiRoutes, authMiddleware, createApp, finishApp } from '../libs/http/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { quietLogger, startTestQueue } from './support/engine.ts';
import { teardown } from './support/inprocess.ts';

// Hostile request bodies and query strings: NUL characters, unpaired surrogates and JSON nested
// thousands deep answer 422 naming the field on every route that takes input, and store nothing.
// Another user's thread id cannot be claimed, and the refusal says no more than a taken id must.
// The API runs in this process with AUTH_MODE=api_key (users alice and bob, one admin key) on a
// database of its own; no worker, so runs stay pending.

const KEYS = { alice: 'alice-key', bob: 'bob-key', admin: 'admin-key' } as const;
type Caller = keyof typeof KEYS;

interface Answer {
  status: number;
  body: any;
}

/** The tables a refused request must leave exactly as they were. */
const STORED_TABLES = ['threads', 'runs', 'crons', 'cron_occurrences', 'assistants'];

/** Placeholders replaced in the JSON text, for values JSON.stringify cannot write (too deep). */
const DEEP = '"__deep__"';

/** `levels` objects nested as {"a": {"a": ... 1}}, as JSON text. */
const nestedObjects = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

type Poison = 'nul' | 'nul-key' | 'lone-surrogate' | 'lone-surrogate-key' | 'deep';

/**
 * The value a poison puts at a field, and the start of the detail that must name it. A JSON
 * field gets an object (what its schema accepts) with the bad text one level down; a text
 * field gets the bad text itself.
 */
function poisoned(kind: Poison, field: string, text: boolean): { value: unknown; names: string; rule: RegExp } {
  switch (kind) {
    case 'nul':
      return text ? { value: 'a\u0000b', names: `body.${field}: `, rule: /NUL/ } : { value: { x: 'a\u0000b' }, names: `body.${field}.x: `, rule: /NUL/ };
    case 'lone-surrogate':
      return text
        ? { value: 'a\ud800b', names: `body.${field}: `, rule: /surrogate/ }
        : { value: { x: 'a\ud800b' }, names: `body.${field}.x: `, rule: /surrogate/ };
    case 'nul-key':
      return { value: { 'k\u0000': 1 }, names: `body.${field}: `, rule: /NUL/ };
    case 'lone-surrogate-key':
      return { value: { '\udc00k': 1 }, names: `body.${field}: `, rule: /surrogate/ };
    case 'deep':
      return { value: '__deep__', names: `body.${field}.a.a.a.`, rule: /deeper than 64/ };
  }
}

/** A request body with `value` at the dotted `field` (arrays where a segment is a number). */
function withField(base: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const body = structuredClone(base);
  const keys = field.split('.');
  let at: any = body;
  for (const [i, key] of keys.slice(0, -1).entries()) {
    at[key] ??= /^\d+$/.test(keys[i + 1]) ? [] : {};
    at = at[key];
  }
  at[keys.at(-1)!] = value;
  return body;
}

interface RouteCase {
  method: 'POST' | 'PATCH';
  name: string;
  /** Resolved once the fixtures exist. */
  path: () => string;
  base: Record<string, unknown>;
  /** Fields holding arbitrary JSON (every poison), and fields holding text (NUL and surrogates only). */
  json: string[];
  text?: string[];
}

describe('hostile input and thread id claims (AUTH_MODE=api_key, in-process api)', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let server: Server;
  let url: string;
  const fx = { aliceThread: '', aliceCron: '', aliceAssistant: '', bobThread: '' };

  async function call(as: Caller, method: string, path: string, body?: unknown, raw?: string): Promise<Answer> {
    const res = await fetch(url + path, {
      method,
      headers: { 'x-api-key': KEYS[as], ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** One digest of every stored row: equal before and after means nothing was written or lost. */
  async function fingerprint(): Promise<string> {
    const parts: string[] = [];
    for (const table of STORED_TABLES) {
      const { rows } = await db.pool.query(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h, count(*)::int AS n FROM ${table} t`);
      parts.push(`${table}:${rows[0].n}:${rows[0].h}`);
    }
    return parts.join(' ');
  }

  before(async () => {
    db = await createTestDatabase('api_hostile');
    boss = await startTestQueue(db.url);
    const logger = quietLogger();
    const agents = new AgentRegistry().register('echo', echo);
    await ensureDefaultAssistants(db.pool, agents.graphIds());
    const config = loadConfig({
      DATABASE_URL: db.url,
      AUTH_MODE: 'api_key',
      AUTH_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`,
      ADMIN_API_KEYS: KEYS.admin,
    });
    const deps = { pool: db.pool, boss, config, logger, agents };
    const app = createApp({ ...deps, heartbeatSeconds: 10, bodyLimitBytes: 1024 * 1024, auth: authMiddleware(deps), routes: apiRoutes(deps) });
    finishApp(app, logger);
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    fx.aliceThread = (await call('alice', 'POST', '/threads', { metadata: { owner: 'alice' } })).body.thread_id;
    const cron = await call('alice', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false });
    assert.equal(cron.status, 200, JSON.stringify(cron.body));
    fx.aliceCron = cron.body.cron_id;
    fx.aliceAssistant = (await call('alice', 'POST', '/assistants', { graph_id: 'echo', name: 'mine' })).body.assistant_id;
    fx.bobThread = (await call('bob', 'POST', '/threads', { metadata: { owner: 'bob' } })).body.thread_id;
  });
  after(() =>
    teardown(
      () => server?.closeAllConnections(),
      () => server && new Promise<void>((resolve) => server.close(() => resolve())),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const cronBody = { assistant_id: 'echo', schedule: '@daily', input: {}, enabled: false };
  const ROUTES: RouteCase[] = [
    {
      method: 'POST',
      name: '/runs/crons',
      path: () => '/runs/crons',
      base: cronBody,
      json: ['input.text', 'metadata', 'config.configurable'],
      text: ['timezone'],
    },
    { method: 'POST', name: '/threads/{id}/runs/crons', path: () => `/threads/${fx.aliceThread}/runs/crons`, base: cronBody, json: ['metadata', 'input.text'] },
    { method: 'PATCH', name: '/runs/crons/{id}', path: () => `/runs/crons/${fx.aliceCron}`, base: {}, json: ['metadata', 'input.text'], text: ['schedule'] },
    { method: 'POST', name: '/runs/crons/search', path: () => '/runs/crons/search', base: {}, json: ['metadata'] },
    { method: 'POST', name: '/runs/crons/count', path: () => '/runs/crons/count', base: {}, json: ['metadata'] },
    { method: 'POST', name: '/threads', path: () => '/threads', base: {}, json: ['metadata', 'supersteps.0.updates.0.values'] },
    { method: 'PATCH', name: '/threads/{id}', path: () => `/threads/${fx.aliceThread}`, base: {}, json: ['metadata'] },
    { method: 'POST', name: '/threads/search', path: () => '/threads/search', base: {}, json: ['metadata', 'values'] },
    { method: 'POST', name: '/threads/count', path: () => '/threads/count', base: {}, json: ['metadata', 'values'] },
    {
      method: 'POST',
      name: '/threads/{id}/runs',
      path: () => `/threads/${fx.aliceThread}/runs`,
      base: { assistant_id: 'echo' },
      json: ['input', 'metadata', 'config'],
      text: ['assistant_id'],
    },
    { method: 'POST', name: '/threads/{id}/runs/wait', path: () => `/threads/${fx.aliceThread}/runs/wait`, base: { assistant_id: 'echo' }, json: ['input'] },
    {
      method: 'POST',
      name: '/threads/{new id}/runs (if_not_exists create)',
      path: () => `/threads/${randomUUID()}/runs`,
      base: { assistant_id: 'echo', if_not_exists: 'create' },
      json: ['input'],
    },
    {
      method: 'POST',
      name: '/assistants',
      path: () => '/assistants',
      base: { graph_id: 'echo' },
      json: ['metadata', 'config', 'context'],
      text: ['name', 'description'],
    },
    { method: 'PATCH', name: '/assistants/{id}', path: () => `/assistants/${fx.aliceAssistant}`, base: {}, json: ['metadata', 'context'], text: ['name'] },
    { method: 'POST', name: '/assistants/search', path: () => '/assistants/search', base: {}, json: ['metadata'], text: ['name', 'graph_id'] },
    { method: 'POST', name: '/assistants/count', path: () => '/assistants/count', base: {}, json: ['metadata'], text: ['name'] },
  ];

  for (const route of ROUTES) {
    const label = `${route.method} ${route.name}`;
    const cases: [string, Poison, boolean][] = [
      ...route.json.flatMap((f) =>
        (['nul', 'nul-key', 'lone-surrogate', 'lone-surrogate-key', 'deep'] as const).map((p): [string, Poison, boolean] => [f, p, false]),
      ),
      ...(route.text ?? []).flatMap((f) => (['nul', 'lone-surrogate'] as const).map((p): [string, Poison, boolean] => [f, p, true])),
    ];
    test(`${label}: NUL, unpaired surrogates and deep nesting answer 422 naming the field, and store nothing`, async () => {
      for (const [field, kind, text] of cases) {
        const { value, names, rule } = poisoned(kind, field, text);
        const body = withField(route.base, field, value);
        const raw = kind === 'deep' ? JSON.stringify(body).replace(DEEP, nestedObjects(5000)) : undefined;
        const before = await fingerprint();
        const res = await call('alice', route.method, route.path(), body, raw);
        const what = `${label} ${field} ${kind}: ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`;
        assert.equal(res.status, 422, what);
        assert.ok(typeof res.body?.detail === 'string' && res.body.detail.startsWith(names), what);
        assert.match(res.body.detail, rule, what);
        assert.equal(await fingerprint(), before, `${what}: nothing stored or lost`);
      }
    });
  }

  test('query strings and path segments: a NUL answers 422 naming where, never 500', async () => {
    const cases: [Caller, string, string, string][] = [
      ['alice', 'GET', `/threads/${fx.aliceThread}/runs?status=%00`, 'query.status: '],
      ['alice', 'GET', `/threads/${fx.aliceThread}/runs?select=run_id&select=a%00`, 'query.select.1: '],
      ['alice', 'DELETE', `/assistants/${fx.aliceAssistant}?delete_threads=1%00`, 'query.delete_threads: '],
      ['admin', 'POST', '/admin/maintenance/daily_stats/trigger?wait_seconds=%00', 'query.wait_seconds: '],
      ['admin', 'POST', '/admin/maintenance/%00/trigger', 'path: '],
      ['alice', 'GET', '/assistants/echo%00', 'path: '],
    ];
    for (const [as, method, path, names] of cases) {
      const before = await fingerprint();
      const res = await call(as, method, path);
      const what = `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`;
      assert.equal(res.status, 422, what);
      assert.ok(res.body.detail.startsWith(names), what);
      assert.match(res.body.detail, /NUL characters \(\\u0000\)/, what);
      assert.equal(await fingerprint(), before, what);
    }
  });

  test('the detail of a NUL or a surrogate names the key path, escaped, and never echoes the raw character', async () => {
    const value = await call('alice', 'POST', '/threads', { metadata: { foo: 'x\u0000' } });
    assert.deepEqual(value.body, { detail: 'body.metadata.foo: must not contain NUL characters (\\u0000)' });
    const key = await call('alice', 'POST', '/threads/search', { metadata: { ok: { 'bad\u0000key': 1 } } });
    assert.equal(key.status, 422);
    assert.equal(key.body.detail, 'body.metadata.ok: key "bad\\u0000key" must not contain NUL characters (\\u0000)');
    const surrogate = await call('alice', 'POST', '/runs/crons/search', { metadata: { list: ['ok', '\ud800'] } });
    assert.equal(surrogate.status, 422);
    assert.match(surrogate.body.detail, /^body\.metadata\.list\.1: must not contain unpaired UTF-16 surrogates/);
    // A well-formed pair (an emoji) is ordinary text and is stored as sent.
    const emoji = await call('alice', 'POST', '/threads', { metadata: { mood: '\ud83d\ude00' } });
    assert.equal(emoji.status, 200, JSON.stringify(emoji.body));
    assert.deepEqual(emoji.body.metadata, { mood: '😀' });
  });

  test(
    'nesting: 64 levels counting the body are accepted, 65 answer 422 naming the path; a 1 MB-deep body is refused without ' + 'overflowing the stack',
    async () => {
      // The body is level 1, so metadata holding 63 nested objects (itself the first) makes 64.
      const ok = await call('alice', 'POST', '/threads', undefined, `{"metadata":${nestedObjects(63)}}`);
      assert.equal(ok.status, 200, JSON.stringify(ok.body)?.slice(0, 300));
      const stored = await call('alice', 'GET', `/threads/${ok.body.thread_id}`);
      assert.equal(stored.status, 200);

      const over = await call('alice', 'POST', '/threads', undefined, `{"metadata":${nestedObjects(64)}}`);
      assert.equal(over.status, 422);
      assert.equal(over.body.detail, `body.metadata${'.a'.repeat(63)}: nested deeper than 64 levels of objects and arrays`);

      const before = await fingerprint();
      const arrays = 450_000;
      const huge = await call(
        'alice',
        'POST',
        `/threads/${fx.aliceThread}/runs`,
        undefined,
        `{"assistant_id":"echo","input":${'['.repeat(arrays)}${']'.repeat(arrays)}}`,
      );
      assert.equal(huge.status, 422, JSON.stringify(huge.body)?.slice(0, 300));
      assert.match(huge.body.detail, /^body\.input\.0\.0\.0\..*: nested deeper than 64 levels/);
      assert.equal(await fingerprint(), before);
    },
  );

  test("another user's thread id: claiming it is refused like a taken id, and nothing else tells it from a free one", async () => {
    const bobs = fx.bobThread;
    const free = randomUUID();
    const before = await fingerprint();

    // POST /threads: bob's id answers alice exactly what re-creating her own thread answers.
    const own = await call('alice', 'POST', '/threads', { thread_id: fx.aliceThread });
    assert.equal(own.status, 409);
    for (const if_exists of ['raise', 'do_nothing', undefined]) {
      const res = await call('alice', 'POST', '/threads', { thread_id: bobs, if_exists, metadata: { stolen: true } });
      assert.equal(res.status, 409, `if_exists ${if_exists}`);
      assert.deepEqual(res.body, { detail: own.body.detail.replace(fx.aliceThread, bobs) });
    }

    // Starting a run or a cron on bob's thread with if_not_exists "create" cannot take it over:
    // the thread is not found, word for word as when if_not_exists is left out (or the id is free).
    const missingRun = await call('alice', 'POST', `/threads/${free}/runs`, { assistant_id: 'echo' });
    assert.equal(missingRun.status, 404);
    for (const path of [`/threads/${bobs}/runs`, `/threads/${bobs}/runs/wait`]) {
      const res = await call('alice', 'POST', path, { assistant_id: 'echo', input: {}, if_not_exists: 'create' });
      assert.equal(res.status, 404, `${path}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body, missingRun.body, path);
    }
    const missingCron = await call('alice', 'POST', `/threads/${free}/runs/crons`, cronBody);
    assert.equal(missingCron.status, 404);
    const cron = await call('alice', 'POST', `/threads/${bobs}/runs/crons`, { ...cronBody, enabled: true, if_not_exists: 'create' });
    assert.equal(cron.status, 404);
    assert.deepEqual(cron.body, missingCron.body);

    // Every other route answers bob's id and a free id identically.
    for (const [method, sub, body] of [
      ['GET', '', undefined],
      ['PATCH', '', { metadata: { x: 1 } }],
      ['DELETE', '', undefined],
      ['GET', '/state', undefined],
      ['GET', '/runs', undefined],
      ['POST', '/runs', { assistant_id: 'echo', input: {} }],
      ['POST', '/runs/crons', cronBody],
    ] as const) {
      const taken = await call('alice', method, `/threads/${bobs}${sub}`, body);
      const nothing = await call('alice', method, `/threads/${free}${sub}`, body);
      assert.deepEqual(taken, nothing, `${method} /threads/{id}${sub}`);
    }
    const searched = await call('alice', 'POST', '/threads/search', { ids: [bobs], metadata: { owner: 'bob' } });
    assert.deepEqual(searched.body, []);
    assert.equal((await call('alice', 'POST', '/threads/count', { metadata: { owner: 'bob' } })).body, 0);

    // Nothing was written; bob's thread is his, unchanged and still usable by him.
    assert.equal(await fingerprint(), before);
    const his = await call('bob', 'GET', `/threads/${bobs}`);
    assert.deepEqual(his.body.metadata, { owner: 'bob' });
    const run = await call('bob', 'POST', `/threads/${bobs}/runs`, { assistant_id: 'echo', input: {}, if_not_exists: 'create' });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.thread_id, bobs);
  });
});
