import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// Threads, runs and assistants driven through both published SDKs against real api and worker
// processes on PostgreSQL (AUTH_MODE=none: one implicit user).

const ECHO = defaultAssistantId('echo');

/** Asserts an SDK call fails with this HTTP status (the SDKs throw HTTPError with .status). */
async function rejectsWith(p: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err?.status, status, String(err?.message ?? err));
    return true;
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('threads, runs and assistants through the LangGraph SDKs', () => {
  let stack: Stack;
  let client: Client;
  let client1: Client1;
  const post = (path: string, body: unknown) =>
    fetch(`${stack.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  before(async () => {
    stack = await startStack('api-threads-runs', { worker: true });
    client = new Client({ apiUrl: stack.url, apiKey: null });
    client1 = new Client1({ apiUrl: stack.url, apiKey: null });
  });
  after(() => stack?.stop());

  test('thread lifecycle: create, get, patch, search, count, state, delete', async () => {
    const tag = randomUUID();
    const t = await client.threads.create({ metadata: { tag, team: 'a' } });
    assert.equal(t.status, 'idle');
    assert.deepEqual(t.metadata, { tag, team: 'a' });
    assert.deepEqual(t.values, {});
    assert.deepEqual(await client1.threads.get(t.thread_id), t);

    const patched = await client.threads.update(t.thread_id, { metadata: { team: 'b', extra: 1 } });
    assert.deepEqual(patched.metadata, { tag, team: 'b', extra: 1 }, 'metadata is merged');

    const chosen = randomUUID();
    const t2 = await client1.threads.create({ threadId: chosen, metadata: { tag } });
    assert.equal(t2.thread_id, chosen);
    await rejectsWith(client.threads.create({ threadId: chosen }), 409);
    assert.equal((await client.threads.create({ threadId: chosen, ifExists: 'do_nothing' })).thread_id, chosen);

    const found = await client.threads.search({ metadata: { tag }, sortBy: 'created_at', sortOrder: 'asc' });
    assert.deepEqual(
      found.map((x) => x.thread_id),
      [t.thread_id, chosen],
    );
    assert.deepEqual(
      (await client1.threads.search({ metadata: { tag, team: 'b' } })).map((x) => x.thread_id),
      [t.thread_id],
    );
    assert.equal((await client.threads.search({ metadata: { tag }, limit: 1, offset: 1, sortBy: 'created_at', sortOrder: 'asc' }))[0].thread_id, chosen);
    const selected = await client.threads.search({ metadata: { tag }, select: ['thread_id', 'status'] });
    assert.deepEqual(Object.keys(selected[0]).sort(), ['status', 'thread_id']);
    assert.equal(await client.threads.count({ metadata: { tag } }), 2);
    assert.equal(await client1.threads.count({ metadata: { tag }, status: 'busy' }), 0);

    const state = await client.threads.getState(t.thread_id);
    assert.deepEqual(state.values, {});
    assert.deepEqual(state.next, []);
    assert.equal(state.checkpoint.thread_id, t.thread_id);

    assert.equal(await client.threads.delete(t.thread_id), undefined);
    await rejectsWith(client.threads.get(t.thread_id), 404);
    await rejectsWith(client.threads.delete(t.thread_id), 404);
    assert.equal(await client.threads.count({ metadata: { tag } }), 1);
  });

  test('a background run executes on the worker; get, list and join show the echo output as the thread values', async () => {
    const thread = await client.threads.create();
    let created: { run_id: string; thread_id?: string } | undefined;
    const run = await client.runs.create(thread.thread_id, 'echo', {
      input: { msg: 'hi', n: 1 },
      metadata: { why: 'test' },
      onRunCreated: (m) => (created = m),
    });
    assert.equal(run.thread_id, thread.thread_id);
    assert.equal(run.assistant_id, ECHO, 'a graph id resolves to its default assistant');
    assert.deepEqual(run.metadata, { why: 'test' });
    assert.deepEqual(created, { run_id: run.run_id, thread_id: thread.thread_id }, 'Content-Location names the run');

    assert.deepEqual(await client.runs.join(thread.thread_id, run.run_id), { msg: 'hi', n: 1 });
    const done = await client1.runs.get(thread.thread_id, run.run_id);
    assert.equal(done.status, 'success');
    assert.deepEqual((await client.threads.get(thread.thread_id)).values, { msg: 'hi', n: 1 });
    assert.deepEqual((await client1.threads.getState(thread.thread_id)).values, { msg: 'hi', n: 1 });
    assert.equal((await client.threads.get(thread.thread_id)).status, 'idle');

    // A second run with sdk1, on the default assistant's UUID; then list both, newest first.
    const second = await client1.runs.create(thread.thread_id, ECHO, { input: { msg: 'again' } });
    assert.deepEqual(await client1.runs.join(thread.thread_id, second.run_id), { msg: 'again' });
    const listed = await client.runs.list(thread.thread_id);
    assert.deepEqual(
      listed.map((r) => r.run_id),
      [second.run_id, run.run_id],
    );
    assert.deepEqual(
      (await client.runs.list(thread.thread_id, { limit: 1, offset: 1 })).map((r) => r.run_id),
      [run.run_id],
    );
    assert.equal((await client1.runs.list(thread.thread_id, { status: 'error' })).length, 0);
    // select: 2.0.0 sends one JSON text, 1.15.x repeats the parameter.
    for (const c of [client, client1]) {
      const picked = await c.runs.list(thread.thread_id, { select: ['run_id', 'status'] });
      assert.deepEqual(Object.keys(picked[0]).sort(), ['run_id', 'status']);
    }

    // runs.wait: start and wait in one call.
    assert.deepEqual(await client.runs.wait(thread.thread_id, 'echo', { input: { waited: true } }), { waited: true });
  });

  test('a failing run: join reports the error, the run and thread show it', async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, 'echo', { input: { error: 'boom' } });
    const joined: any = await client.runs.join(thread.thread_id, run.run_id);
    assert.equal(joined.__error__.message, 'boom');
    assert.equal((await client.runs.get(thread.thread_id, run.run_id)).status, 'error');
    assert.equal((await client.threads.get(thread.thread_id)).status, 'error');
    await assert.rejects(client.runs.wait(thread.thread_id, 'echo', { input: { error: 'again' } }), /again/);
  });

  test('cancel: a pending run never starts; a running one ends interrupted and its result is discarded', async () => {
    const thread = await client.threads.create();
    // Long enough to be seen running on a loaded machine (1.5 s was not, beside two busy cores):
    // the cancel below ends its sleep (echo honours cancellation), so the test does not wait it out.
    const slow = await client.runs.create(thread.thread_id, 'echo', { input: { sleep_ms: 60_000, slow: true } });
    const queued = await client.runs.create(thread.thread_id, 'echo', { input: { queued: true } });
    await until('the slow run to start', async () => (await client.runs.get(thread.thread_id, slow.run_id)).status === 'running');
    assert.equal((await client.runs.get(thread.thread_id, queued.run_id)).status, 'pending', 'runs of one thread queue behind each other');
    await rejectsWith(client.runs.create(thread.thread_id, 'echo', { input: {}, multitaskStrategy: 'reject' }), 409);

    assert.equal(await client.runs.cancel(thread.thread_id, queued.run_id), undefined, '202, no body');
    assert.equal(await client1.runs.cancel(thread.thread_id, slow.run_id, true), undefined, '204 with wait');
    await rejectsWith(client.runs.cancel(thread.thread_id, slow.run_id), 409);
    for (const id of [slow.run_id, queued.run_id]) assert.equal((await client.runs.get(thread.thread_id, id)).status, 'interrupted');

    // Let the worker finish with both: the slow agent's late end, then the queued job it fetches
    // (each acknowledged, job id = run id).
    await until('the worker to be done with both jobs', async () => {
      const { rows } = await stack.db.pool.query(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'agentcron.run' AND id = ANY($1::uuid[]) AND state = 'completed'`,
        [[slow.run_id, queued.run_id]],
      );
      return rows[0].n === 2;
    });
    const slowAfter = await client.runs.get(thread.thread_id, slow.run_id);
    const queuedAfter = await client.runs.get(thread.thread_id, queued.run_id);
    assert.equal(slowAfter.status, 'interrupted', 'the late result does not overwrite the cancellation');
    assert.equal(queuedAfter.status, 'interrupted');
    assert.equal((queuedAfter as any).run_started_at, null, 'the cancelled pending run never started');
    assert.deepEqual((await client.threads.get(thread.thread_id)).values, {}, "neither run wrote the thread's values");
    assert.equal(await client.runs.join(thread.thread_id, queued.run_id).then((v) => JSON.stringify(v)), '{}');

    // rollback deletes the run; an ended run can be deleted, an active one not.
    const third = await client.runs.create(thread.thread_id, 'echo', { input: { sleep_ms: 1000 } });
    await client.runs.cancel(thread.thread_id, third.run_id, false, 'rollback');
    await rejectsWith(client.runs.get(thread.thread_id, third.run_id), 404);
    await client.runs.delete(thread.thread_id, queued.run_id);
    await rejectsWith(client.runs.get(thread.thread_id, queued.run_id), 404);
  });

  test('multitask interrupt cancels the active run and starts the new one', async () => {
    const thread = await client.threads.create();
    const first = await client.runs.create(thread.thread_id, 'echo', { input: { sleep_ms: 1000, first: true } });
    const second = await client.runs.create(thread.thread_id, 'echo', { input: { second: true }, multitaskStrategy: 'interrupt' });
    assert.equal((await client.runs.get(thread.thread_id, first.run_id)).status, 'interrupted');
    assert.deepEqual(await client.runs.join(thread.thread_id, second.run_id), { second: true });
  });

  test('a run on a missing thread: 404, or created with if_not_exists', async () => {
    const id = randomUUID();
    await rejectsWith(client.runs.create(id, 'echo', { input: {} }), 404);
    const run = await client.runs.create(id, 'echo', { input: { made: true }, ifNotExists: 'create' });
    assert.deepEqual(await client.runs.join(id, run.run_id), { made: true });
    assert.deepEqual((await client.threads.get(id)).metadata, { graph_id: 'echo', assistant_id: ECHO });
  });

  test('assistants: CRUD, search, count, default assistants and graph-id resolution', async () => {
    const def = await client.assistants.get('echo');
    assert.equal(def.assistant_id, ECHO);
    assert.equal(def.name, 'echo');
    assert.deepEqual(def.metadata, { created_by: 'system' });
    assert.deepEqual(await client1.assistants.get(ECHO), def);
    await rejectsWith(client.assistants.update('echo', { name: 'mine' }), 403);
    await rejectsWith(client.assistants.delete(ECHO), 403);
    await rejectsWith(client.assistants.get('no-such-graph'), 404);
    await rejectsWith(client.assistants.create({ graphId: 'no-such-graph' }), 422);

    const tag = randomUUID();
    const a = await client.assistants.create({ graphId: 'echo', name: 'Greeter', metadata: { tag, v: 1 }, config: { configurable: { x: 1 } } });
    assert.equal(a.graph_id, 'echo');
    assert.equal(a.version, 1);
    assert.deepEqual(await client1.assistants.get(a.assistant_id), a);
    const b = await client1.assistants.create({ graphId: 'echo', metadata: { tag } });
    assert.equal(b.name, 'Untitled');

    const updated = await client.assistants.update(a.assistant_id, { metadata: { v: 2 }, name: 'Greeter 2' });
    assert.equal(updated.version, 2);
    assert.equal(updated.name, 'Greeter 2');
    assert.deepEqual(updated.metadata, { tag, v: 2 });
    assert.deepEqual(updated.config, { configurable: { x: 1 } }, 'fields not sent stay');

    assert.deepEqual(
      (await client.assistants.search({ metadata: { tag }, sortBy: 'created_at', sortOrder: 'asc' })).map((x) => x.assistant_id),
      [a.assistant_id, b.assistant_id],
    );
    assert.deepEqual(
      (await client1.assistants.search({ metadata: { tag }, name: 'greeter' })).map((x) => x.assistant_id),
      [a.assistant_id],
    );
    const page = await client.assistants.search({ metadata: { tag }, limit: 1, includePagination: true });
    assert.equal(page.assistants.length, 1);
    assert.equal(page.next, '1');
    assert.ok(
      (await client.assistants.search({ graphId: 'echo', limit: 100 })).some((x) => x.assistant_id === ECHO),
      'default assistants are listed',
    );
    assert.equal(await client.assistants.count({ metadata: { tag } }), 2);
    assert.equal(await client1.assistants.count({ metadata: { tag }, name: 'Greeter' }), 1);

    // A run on the new assistant's id; deleting the assistant deletes its runs (and crons).
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, a.assistant_id, { input: { via: 'assistant' } });
    assert.equal(run.assistant_id, a.assistant_id);
    await client.runs.join(thread.thread_id, run.run_id);
    await stack.db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, enabled) VALUES ($1, $2, $3, 'anonymous', '0 0 1 1 *', false)`,
      [randomUUID(), a.assistant_id, thread.thread_id],
    );
    await client.assistants.delete(a.assistant_id);
    await rejectsWith(client.assistants.get(a.assistant_id), 404);
    await rejectsWith(client.runs.get(thread.thread_id, run.run_id), 404);
    const crons = await stack.db.pool.query(`SELECT 1 FROM crons WHERE assistant_id = $1`, [a.assistant_id]);
    assert.equal(crons.rowCount, 0, "the assistant's crons went with it");
    assert.equal(await client.assistants.count({ metadata: { tag } }), 1);
  });

  test('deleting a thread deletes its runs and crons', async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, 'echo', { input: {} });
    await client.runs.join(thread.thread_id, run.run_id);
    await stack.db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule, enabled) VALUES ($1, $2, $3, 'anonymous', '0 0 1 1 *', false)`,
      [randomUUID(), ECHO, thread.thread_id],
    );
    await client.threads.delete(thread.thread_id);
    const left = await stack.db.pool.query(
      `SELECT (SELECT count(*) FROM runs WHERE thread_id = $1)::int AS runs, (SELECT count(*) FROM crons WHERE thread_id = $1)::int AS crons`,
      [thread.thread_id],
    );
    assert.deepEqual(left.rows[0], { runs: 0, crons: 0 });
    await rejectsWith(client.runs.get(thread.thread_id, run.run_id), 404);
  });

  test('bad input answers 4xx with a detail naming the field, never a 500', async () => {
    const thread = await client.threads.create();
    const t = thread.thread_id;
    const cases: [string, Promise<Response>, number, RegExp][] = [
      ['malformed JSON', post('/threads', '{"metadata": '), 422, /malformed JSON/],
      ['body not an object', post('/threads', '[1, 2]'), 422, /^body/],
      ['thread_id not a UUID', post('/threads', { thread_id: 'abc' }), 422, /^body\.thread_id/],
      ['metadata not an object', post('/threads', { metadata: 'x' }), 422, /^body\.metadata/],
      ['search limit 0', post('/threads/search', { limit: 0 }), 422, /^body\.limit/],
      ['search limit a string', post('/threads/search', { limit: 'ten' }), 422, /^body\.limit/],
      ['unknown sort_by', post('/threads/search', { sort_by: 'nope' }), 422, /^body\.sort_by/],
      ['unknown status', post('/threads/count', { status: 'sleeping' }), 422, /^body\.status/],
      ['unknown select field', post('/threads/search', { select: ['password'] }), 422, /^body\.select/],
      ['run without assistant_id', post(`/threads/${t}/runs`, { input: {} }), 422, /^body\.assistant_id/],
      ['run with a bad webhook', post(`/threads/${t}/runs`, { assistant_id: 'echo', webhook: 'ftp://x' }), 422, /^body\.webhook/],
      [
        'run with unknown multitask_strategy',
        post(`/threads/${t}/runs`, { assistant_id: 'echo', multitask_strategy: 'shrug' }),
        422,
        /^body\.multitask_strategy/,
      ],
      ['run on an unknown assistant', post(`/threads/${t}/runs`, { assistant_id: randomUUID() }), 404, /Assistant not found/],
      ['run on an unknown graph', post(`/threads/${t}/runs`, { assistant_id: 'no-such-graph' }), 404, /Assistant not found/],
      ['run list limit not a number', fetch(`${stack.url}/threads/${t}/runs?limit=abc`), 422, /^query\.limit/],
      ['run list unknown status', fetch(`${stack.url}/threads/${t}/runs?status=odd`), 422, /^query\.status/],
      ['malformed thread id in a path', fetch(`${stack.url}/threads/not-a-uuid`), 404, /Thread not found/],
      ['malformed run id in a path', fetch(`${stack.url}/threads/${t}/runs/123`), 404, /Run not found/],
      ['unknown thread', fetch(`${stack.url}/threads/${randomUUID()}/state`), 404, /Thread not found/],
      ['unknown run join', fetch(`${stack.url}/threads/${t}/runs/${randomUUID()}/join`), 404, /Run not found/],
      ['cancel with an unknown action', post(`/threads/${t}/runs/${randomUUID()}/cancel?action=explode`, {}), 422, /^query\.action/],
      ['assistant without graph_id', post('/assistants', {}), 422, /^body\.graph_id/],
      ['assistant with an unregistered graph', post('/assistants', { graph_id: 'nope' }), 422, /^body\.graph_id: unknown graph "nope"/],
      ['assistant search with a negative offset', post('/assistants/search', { offset: -1 }), 422, /^body\.offset/],
    ];
    for (const [name, response, status, detail] of cases) {
      const res = await response;
      const text = await res.text();
      assert.equal(res.status, status, `${name}: ${text}`);
      const parsed = JSON.parse(text);
      assert.match(parsed.detail, detail, name);
      assert.doesNotMatch(text, /at .*\.ts:\d+/, `${name}: no stack trace`);
    }
    // Unknown keys are ignored, nulls mean "not given".
    const ok = await post('/threads/search', { limit: 5, whatever: true, status: null, metadata: null });
    assert.equal(ok.status, 200);
  });
});
