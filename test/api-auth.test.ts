import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import { ConfigError, loadConfig } from '../libs/config/index.ts';
import { ROOT, inheritedEnv, track } from './support/processes.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// AUTH_MODE=api_key: keys from AUTH_API_KEYS and from `npm run keys`, and isolation between users:
// another user's thread, run or assistant answers 404 exactly as a missing one, everywhere.

const ECHO = defaultAssistantId('echo');

async function rejectsWith(p: Promise<unknown>, status: number, what = ''): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err?.status, status, `${what} ${String(err?.message ?? err)}`);
    return true;
  });
}

/** Runs the keys command as an operator would; answers its exit code and output. */
async function keysCommand(databaseUrl: string, ...args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/keys/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...inheritedEnv(), DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await track(child).exited;
  return { code, stdout, stderr };
}

describe('auth settings', () => {
  test('AUTH_MODE defaults to none; AUTH_API_KEYS parses key:user pairs', () => {
    assert.equal(loadConfig({}).AUTH_MODE, 'none');
    assert.deepEqual(loadConfig({}).AUTH_API_KEYS, []);
    const c = loadConfig({ AUTH_MODE: 'api_key', AUTH_API_KEYS: 'k1:alice, k2:bob' });
    assert.deepEqual(c.AUTH_API_KEYS, [
      { key: 'k1', user: 'alice' },
      { key: 'k2', user: 'bob' },
    ]);
  });

  for (const [variable, value, rule] of [
    ['AUTH_MODE', 'oauth', /AUTH_MODE must be none or api_key/],
    ['AUTH_API_KEYS', 'secret-without-user', /AUTH_API_KEYS must be a comma-separated list of key:user_id pairs$/],
    ['AUTH_API_KEYS', 'k1:alice,k1:bob', /AUTH_API_KEYS lists the same key twice$/],
  ] as const) {
    test(`${variable}=${value} is rejected naming the rule${variable === 'AUTH_API_KEYS' ? ', without echoing the keys' : ''}`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && rule.test(err.message) && !(variable === 'AUTH_API_KEYS' && err.message.includes(value)),
      );
    });
  }
});

describe('API keys and tenant isolation', () => {
  let stack: Stack;
  let alice: Client;
  let bob: Client1;

  before(async () => {
    stack = await startStack('api-auth', { env: { AUTH_MODE: 'api_key', AUTH_API_KEYS: 'alice-key:alice, bob-key:bob' } });
    alice = new Client({ apiUrl: stack.url, apiKey: 'alice-key' });
    bob = new Client1({ apiUrl: stack.url, apiKey: 'bob-key' });
  });
  after(() => stack?.stop());

  test('no key or a wrong key answers 401 with a detail; liveness, health and docs stay public', async () => {
    await rejectsWith(new Client({ apiUrl: stack.url, apiKey: null }).threads.search(), 401);
    await rejectsWith(new Client({ apiUrl: stack.url, apiKey: 'wrong' }).threads.search(), 401);
    await rejectsWith(new Client1({ apiUrl: stack.url, apiKey: 'wrong' }).assistants.get('echo'), 401);
    for (const headers of [{}, { 'x-api-key': 'nope' }, { authorization: 'Bearer nope' }, { authorization: 'Basic YWxpY2Uta2V5' }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(`${stack.url}/threads/search`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.match(((await res.json()) as { detail: string }).detail, /API key/);
    }
    // Authorization: Bearer works as well as x-api-key.
    const bearer = await fetch(`${stack.url}/threads/count`, {
      method: 'POST',
      headers: { authorization: 'Bearer alice-key', 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(bearer.status, 200);
    for (const p of ['/ok', '/health', '/openapi.json', '/docs']) assert.equal((await fetch(`${stack.url}${p}`)).status, 200, p);
  });

  test("alice cannot see or touch bob's thread, run or assistant: 404 everywhere, excluded from search and count", async () => {
    const tag = randomUUID();
    const bobThread = await bob.threads.create({ metadata: { tag } });
    const bobRun = await bob.runs.create(bobThread.thread_id, 'echo', { input: { secret: true } });
    const bobAssistant = await bob.assistants.create({ graphId: 'echo', metadata: { tag } });
    const aliceThread = await alice.threads.create({ metadata: { tag } });
    const aliceAssistant = await alice.assistants.create({ graphId: 'echo', metadata: { tag } });
    const t = bobThread.thread_id;
    const r = bobRun.run_id;

    // Called one at a time: the cancel or delete must not race the reads.
    const denied: [string, () => Promise<unknown>][] = [
      ['threads.get', () => alice.threads.get(t)],
      ['threads.update', () => alice.threads.update(t, { metadata: { x: 1 } })],
      ['threads.getState', () => alice.threads.getState(t)],
      ['threads.delete', () => alice.threads.delete(t)],
      ['runs.list', () => alice.runs.list(t)],
      ['runs.get', () => alice.runs.get(t, r)],
      ['runs.join', () => alice.runs.join(t, r)],
      ['runs.cancel', () => alice.runs.cancel(t, r)],
      ['runs.delete', () => alice.runs.delete(t, r)],
      ['runs.create on his thread', () => alice.runs.create(t, 'echo', { input: {} })],
      ['runs.create with his assistant', () => alice.runs.create(aliceThread.thread_id, bobAssistant.assistant_id, { input: {} })],
      ['runs.get of his run under her own thread', () => alice.runs.get(aliceThread.thread_id, r)],
      ['assistants.get', () => alice.assistants.get(bobAssistant.assistant_id)],
      ['assistants.update', () => alice.assistants.update(bobAssistant.assistant_id, { name: 'x' })],
      ['assistants.delete', () => alice.assistants.delete(bobAssistant.assistant_id)],
    ];
    for (const [what, call] of denied) await rejectsWith(call(), 404, what);

    // The 404 is word for word that of a missing resource.
    const missing = await fetch(`${stack.url}/threads/${randomUUID()}`, { headers: { 'x-api-key': 'alice-key' } });
    const other = await fetch(`${stack.url}/threads/${t}`, { headers: { 'x-api-key': 'alice-key' } });
    assert.equal(other.status, missing.status);
    assert.deepEqual(await other.json(), await missing.json());

    assert.deepEqual(
      (await alice.threads.search({ metadata: { tag } })).map((x) => x.thread_id),
      [aliceThread.thread_id],
    );
    assert.equal(await alice.threads.count({ metadata: { tag } }), 1);
    assert.deepEqual(
      (await alice.assistants.search({ metadata: { tag } })).map((x) => x.assistant_id),
      [aliceAssistant.assistant_id],
    );
    assert.equal(await alice.assistants.count({ metadata: { tag } }), 1);
    assert.equal(await bob.threads.count({ metadata: { tag } }), 1);

    // Both see the default assistants; ids stay global, so reusing bob's thread id is a conflict, not a takeover.
    assert.equal((await alice.assistants.get('echo')).assistant_id, ECHO);
    assert.equal((await bob.assistants.get(ECHO)).assistant_id, ECHO);
    await rejectsWith(alice.threads.create({ threadId: t, ifExists: 'do_nothing' }), 409);

    // Bob's things are untouched and his run ran as bob.
    assert.equal((await bob.runs.get(t, r)).status, 'pending', 'no worker in this stack: still pending, and not cancelled by alice');
    assert.deepEqual((await bob.threads.get(t)).metadata, { tag });
    assert.equal((await bob.assistants.get(bobAssistant.assistant_id)).name, 'Untitled');
    const owner = await stack.db.pool.query(`SELECT user_id FROM runs WHERE run_id = $1`, [r]);
    assert.equal(owner.rows[0].user_id, 'bob');
  });

  test('`npm run keys -- create` makes a key that works once, stored only as a hash; revoke ends it', async () => {
    const made = await keysCommand(stack.db.url, 'create', '--user', 'carol', '--name', 'ci');
    assert.equal(made.code, 0, made.stderr);
    const key = made.stdout.trim();
    assert.match(key, /^ac_[\w-]{40,}$/);
    assert.match(made.stderr, /for user "carol"/);

    const carol = new Client({ apiUrl: stack.url, apiKey: key });
    const thread = await carol.threads.create({ metadata: { who: 'carol' } });
    assert.equal((await carol.threads.get(thread.thread_id)).thread_id, thread.thread_id);
    await rejectsWith(alice.threads.get(thread.thread_id), 404);

    const stored = await stack.db.pool.query(`SELECT key_id, key_hash, user_id FROM api_keys`);
    assert.equal(stored.rowCount, 1);
    assert.equal(stored.rows[0].user_id, 'carol');
    assert.notEqual(stored.rows[0].key_hash, key);
    assert.ok(!JSON.stringify(stored.rows).includes(key.slice(12)), 'the key itself is not stored');

    const listed = await keysCommand(stack.db.url, 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /user=carol/);
    assert.ok(!listed.stdout.includes(key), 'list never shows the key');

    const revoked = await keysCommand(stack.db.url, 'revoke', stored.rows[0].key_id);
    assert.equal(revoked.code, 0, revoked.stderr);
    await rejectsWith(carol.threads.get(thread.thread_id), 401);

    const bad = await keysCommand(stack.db.url, 'create');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--user/);
  });
});
