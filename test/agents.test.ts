import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@langchain/langgraph-sdk';
import type { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import {
  AgentConfigError,
  RemoteAgentError,
  findConfigFile,
  invokeConfig,
  loadAgents,
  moduleSpec,
  openCheckpointer,
  parseConfigFile,
  remoteAgent,
} from '../libs/agents/index.ts';
import type { AgentContext, LoadedAgents } from '../libs/agents/index.ts';
import { defaultAssistantId } from '../libs/assistants/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, quietLogger } from './support/engine.ts';
import { ROOT, spawnApp } from './support/processes.ts';
import { startRemoteAgent } from './support/remote-agent.ts';
import type { RemoteAgentServer } from './support/remote-agent.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// The graph registry (config file → agents of three kinds), the LangGraph checkpointer, and each
// kind running end to end through real api, scheduler and worker processes.

const FIXTURES = path.join(ROOT, 'test/fixtures/agents');
const COUNTER = `${path.join(ROOT, 'agents/counter.ts')}:graph`;

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-agents-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Writes a config file into a fresh directory and answers its path. */
function writeConfig(graphs: Record<string, unknown>, name = 'agentcron.json', dir = tempDir()): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify({ graphs }));
  return file;
}

function ctxFor(over: Partial<AgentContext> = {}): AgentContext {
  return {
    run_id: randomUUID(),
    thread_id: randomUUID(),
    assistant_id: randomUUID(),
    graph_id: 'g',
    cron_id: null,
    scheduled_for: null,
    values: null,
    config: {},
    context: {},
    signal: new AbortController().signal,
    logger: quietLogger(),
    idempotency_key: randomUUID(),
    ...over,
  };
}

/** Asserts the promise rejects with an AgentConfigError naming graphId whose one-line message matches re. */
async function rejectsNaming(p: Promise<unknown>, graphId: string | null, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AgentConfigError, String(err));
    assert.equal(err.graphId, graphId);
    assert.match(err.message, re);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

describe('graph config file', () => {
  test('"path:export" specs resolve relative to the config file; no export means default', () => {
    assert.deepEqual(moduleSpec('./agents/digest.ts:graph', '/srv/app'), {
      kind: 'module',
      file: '/srv/app/agents/digest.ts',
      exportName: 'graph',
      pathWritten: './agents/digest.ts',
    });
    assert.equal(moduleSpec('../x.ts', '/srv/app').exportName, 'default');
    assert.equal(moduleSpec('/abs/x.ts:run', '/srv/app').file, '/abs/x.ts');
  });

  test('which file: AGENTCRON_CONFIG (must exist), else agentcron.json, else langgraph.json, else none', () => {
    const dir = tempDir();
    assert.equal(findConfigFile(undefined, dir), null);
    writeConfig({}, 'langgraph.json', dir);
    assert.equal(findConfigFile(undefined, dir), path.join(dir, 'langgraph.json'));
    writeConfig({}, 'agentcron.json', dir);
    assert.equal(findConfigFile(undefined, dir), path.join(dir, 'agentcron.json'));
    assert.equal(findConfigFile('langgraph.json', dir), path.join(dir, 'langgraph.json'));
    assert.throws(() => findConfigFile('nope.json', dir), /AGENTCRON_CONFIG names nope\.json, which does not exist/);
  });

  test('malformed files and entries are refused in one line naming the graph', () => {
    const parse =
      (text: string, env: NodeJS.ProcessEnv = {}) =>
      () =>
        parseConfigFile('/srv/agentcron.json', text, env);
    const naming = (graphId: string | null, re: RegExp) => (err: unknown) =>
      err instanceof AgentConfigError && err.graphId === graphId && re.test(err.message) && !err.message.includes('\n');
    assert.throws(parse('{"graphs": '), naming(null, /^agentcron\.json is not valid JSON: /));
    assert.throws(parse('{"graph": {}}'), naming(null, /"graphs" must be an object/));
    assert.throws(parse('{"graphs": {"x": 42}}'), naming('x', /^graph "x": must be "path\/to\/file\.ts:export" or \{"url": \.\.\.\} \(got 42\)/));
    assert.throws(parse('{"graphs": {"r": {"url": "ftp://h/x"}}}'), naming('r', /^graph "r": url must be an http\(s\) URL/));
    assert.throws(parse('{"graphs": {"r": {"url": "http://h/x", "timeout_s": 0}}}'), naming('r', /timeout_s must be a number of seconds/));
    assert.throws(parse('{"graphs": {"r": {"url": "http://h/x", "headers": {"n": 1}}}}'), naming('r', /header "n" must be a string/));
    assert.throws(
      parse('{"graphs": {"r": {"url": "http://h/x", "headers": {"authorization": "Bearer ${R_TOKEN}"}}}}'),
      naming('r', /^graph "r": header "authorization" uses \$\{R_TOKEN\}, which is not set$/),
    );
  });

  test('remote entries: timeout in ms, ${VAR} in header values from the environment; langgraph.json {"path"} entries', () => {
    const specs = parseConfigFile(
      '/srv/langgraph.json',
      JSON.stringify({
        graphs: {
          r: { url: 'https://agents.example/run', timeout_s: 2.5, headers: { authorization: 'Bearer ${R_TOKEN}', 'x-team': 'a' } },
          p: { path: './src/agent.ts:graph', description: 'ignored' },
        },
        node_version: '24',
      }),
      { R_TOKEN: 's3cret' },
    );
    assert.deepEqual(specs.get('r'), {
      kind: 'remote',
      url: 'https://agents.example/run',
      timeoutMs: 2500,
      headers: { authorization: 'Bearer s3cret', 'x-team': 'a' },
    });
    assert.deepEqual(specs.get('p'), { kind: 'module', file: '/srv/src/agent.ts', exportName: 'graph', pathWritten: './src/agent.ts' });
  });

  test('loads each kind: built-in echo, functions (async, sync, default export), LangGraph graphs (compiled or not), remote', async () => {
    const dir = tempDir();
    const plain = path.relative(dir, path.join(FIXTURES, 'plain.ts'));
    const file = writeConfig(
      {
        notebook: `${plain}:notebook`,
        shout: `${plain}:shout`,
        fallback: plain,
        counter: COUNTER,
        visits: `${path.join(FIXTURES, 'builder.ts')}:builder`,
        forgetful: `${path.join(FIXTURES, 'builder.ts')}:stateless`,
        far: { url: 'http://127.0.0.1:9/run' },
      },
      'agentcron.json',
      dir,
    );
    const loaded = await loadAgents({ configPath: file, env: {} });
    assert.equal(loaded.configFile, file);
    assert.deepEqual(loaded.kinds, {
      echo: 'builtin',
      notebook: 'function',
      shout: 'function',
      fallback: 'function',
      counter: 'langgraph',
      visits: 'langgraph',
      forgetful: 'langgraph',
      far: 'remote',
    });
    assert.deepEqual(loaded.registry.graphIds(), ['counter', 'echo', 'fallback', 'far', 'forgetful', 'notebook', 'shout', 'visits']);
    assert.ok(loaded.registry.keepsCheckpoints());
    assert.deepEqual(await loaded.registry.get('shout')!({ text: 'hi' }, ctxFor()), { shouted: 'HI' });
    assert.deepEqual(await loaded.registry.get('fallback')!({ a: 1 }, ctxFor()), { default_export: { a: 1 } });
    // Without a checkpointer a graph still runs, it just remembers nothing.
    assert.deepEqual(await loaded.registry.get('forgetful')!({}, ctxFor()), { visits: 1 });
    assert.equal(await loaded.registry.threadState('forgetful', randomUUID()), null, 'checkpointer: false keeps no state');
  });

  test('without a config file only the built-in graphs exist', async () => {
    const loaded = await loadAgents({ cwd: tempDir() });
    assert.equal(loaded.configFile, null);
    assert.deepEqual(loaded.registry.graphIds(), ['echo']);
    assert.equal(loaded.registry.keepsCheckpoints(), false);
  });

  test('a missing file, a missing export, an export that is no agent, a module that throws: one line naming the graph', async () => {
    const plain = path.join(FIXTURES, 'plain.ts');
    const load = (graphs: Record<string, unknown>) => loadAgents({ configPath: writeConfig(graphs) });
    await rejectsNaming(load({ ok: `${plain}:notebook`, lost: './agents/nowhere.ts:graph' }), 'lost', /^graph "lost": \.\/agents\/nowhere\.ts not found \(/);
    await rejectsNaming(
      load({ typo: `${plain}:notbook` }),
      'typo',
      /^graph "typo": .*plain\.ts has no export "notbook" \(it exports default, notAnAgent, notebook, shout\)$/,
    );
    await rejectsNaming(
      load({ num: `${plain}:notAnAgent` }),
      'num',
      /^graph "num": export "notAnAgent" of .*plain\.ts is neither a function \(input, ctx\) nor a LangGraph graph$/,
    );
    await rejectsNaming(
      load({ boom: `${path.join(FIXTURES, 'broken.ts')}:graph` }),
      'boom',
      /^graph "boom": .*broken\.ts failed to load: agent module exploded$/,
    );
  });
});

describe('remote HTTP agents', () => {
  let server: RemoteAgentServer;
  let reply: (body: any) => { status?: number; body?: string; delayMs?: number };
  before(async () => {
    server = await startRemoteAgent((req) => reply(req.body));
  });
  after(() => server?.close());

  test('POSTs the run with the configured headers and an Idempotency-Key; the JSON answer is the new values', async () => {
    reply = (body) => ({ body: JSON.stringify({ echoed: body.input, before: body.values }) });
    const agent = remoteAgent({ url: `${server.url}/agents/x`, timeoutMs: 5000, headers: { authorization: 'Bearer t0k' } });
    const ctx = ctxFor({
      cron_id: randomUUID(),
      scheduled_for: new Date('2030-01-01T09:00:00Z'),
      values: { n: 1 },
      config: { configurable: { tone: 'dry' } },
      context: { user: 'u1' },
      idempotency_key: 'cron-x:2030-01-01T09:00:00.000Z',
    });
    assert.deepEqual(await agent({ q: 'hello' }, ctx), { echoed: { q: 'hello' }, before: { n: 1 } });
    const got = server.received.at(-1)!;
    assert.equal(got.method, 'POST');
    assert.equal(got.path, '/agents/x');
    assert.equal(got.headers.authorization, 'Bearer t0k');
    assert.equal(got.headers['idempotency-key'], 'cron-x:2030-01-01T09:00:00.000Z');
    assert.match(String(got.headers['content-type']), /^application\/json/);
    assert.deepEqual(got.body, {
      input: { q: 'hello' },
      values: { n: 1 },
      config: { configurable: { tone: 'dry' } },
      context: { user: 'u1' },
      run_id: ctx.run_id,
      thread_id: ctx.thread_id,
      assistant_id: ctx.assistant_id,
      graph_id: 'g',
      cron_id: ctx.cron_id,
      scheduled_for: '2030-01-01T09:00:00.000Z',
      idempotency_key: 'cron-x:2030-01-01T09:00:00.000Z',
    });
  });

  test('a non-2xx answer fails the run with the status and a short excerpt; a non-JSON answer too; an empty one keeps the values', async () => {
    const agent = remoteAgent({ url: server.url, timeoutMs: 5000, headers: {} });
    reply = () => ({ status: 503, body: `{"error": "overloaded",\n "detail": "${'x'.repeat(1000)}"}` });
    await assert.rejects(agent({}, ctxFor()), (err: any) => {
      assert.ok(err instanceof RemoteAgentError);
      assert.equal(err.status, 503);
      assert.match(err.message, /^remote agent answered 503: \{"error": "overloaded", "detail": "x+…$/);
      assert.ok(err.message.length < 260, 'an excerpt, not the body');
      return true;
    });
    reply = () => ({ status: 200, body: '<html>proxy login</html>' });
    await assert.rejects(agent({}, ctxFor()), /answered 200 with a body that is not JSON: <html>proxy login<\/html>/);
    reply = () => ({ status: 204 });
    assert.deepEqual(await agent({}, ctxFor({ values: { kept: true } })), { kept: true });
  });

  test('timeout_s gives up on a slow agent; the run signal aborts the request with its own reason', async () => {
    reply = () => ({ body: '{}', delayMs: 20_000 });
    const slow = remoteAgent({ url: server.url, timeoutMs: 200, headers: {} });
    const started = Date.now();
    await assert.rejects(slow({}, ctxFor()), /^RemoteAgentError: remote agent did not answer within 0.2s$/);
    assert.ok(Date.now() - started < 10_000, 'given up on long before the answer came');

    const patient = remoteAgent({ url: server.url, timeoutMs: null, headers: {} });
    const controller = new AbortController();
    const reason = new Error('run cancelled');
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(patient({}, ctxFor({ signal: controller.signal })), (err) => err === reason);
  });
});

describe('LangGraph graphs on the PostgreSQL checkpointer', () => {
  let db: TestDatabase;
  let loaded: LoadedAgents;
  let saver: PostgresSaver;
  const open = () => openCheckpointer({ pool: db.pool, schema: 'langgraph' });
  const checkpointRows = async (threadIds: string[]) =>
    (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM langgraph.checkpoints WHERE thread_id = ANY($1::text[])`, [threadIds])).rows[0].n;
  const newThread = async () => {
    const id = randomUUID();
    await db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, 'anonymous')`, [id]);
    return id;
  };

  before(async () => {
    db = await createTestDatabase('agents-checkpoints');
    // api and worker start together: setup is serialised, not raced.
    const [a, b] = await Promise.all([open(), open()]);
    await b.end();
    saver = a;
    loaded = await loadAgents({ configPath: writeConfig({ counter: COUNTER }) });
    loaded.useCheckpointer(saver);
  });
  after(async () => {
    await saver?.end();
    await db?.drop();
  });

  test('counter continues the same thread across runs; another thread starts from zero', async () => {
    const counter = loaded.registry.get('counter')!;
    const thread = randomUUID();
    assert.deepEqual(await counter({ message: 'a' }, ctxFor({ thread_id: thread })), { count: 1, log: ['a'] });
    assert.deepEqual(await counter({ message: 'b' }, ctxFor({ thread_id: thread })), { count: 2, log: ['a', 'b'] });
    assert.deepEqual(await counter({}, ctxFor({ thread_id: thread })), { count: 3, log: ['a', 'b', null] }, 'the message is not carried over');
    assert.deepEqual(await counter({ message: 'z' }, ctxFor()), { count: 1, log: ['z'] });

    const state = await loaded.registry.threadState('counter', thread);
    assert.ok(state);
    assert.deepEqual(state.values, { count: 3, log: ['a', 'b', null] });
    assert.deepEqual(state.next, []);
    assert.match(state.checkpoint_id, /^[0-9a-f-]{36}$/);
    assert.equal(state.metadata.source, 'loop');
    assert.equal(await loaded.registry.threadState('counter', randomUUID()), null, 'no checkpoint, no state');
    assert.equal(await loaded.registry.threadState('echo', thread), null, 'echo keeps no checkpoints');
  });

  test('the run config reaches the graph: configurable (thread_id cannot be overridden), recursion_limit, tags, context, signal', () => {
    const signal = new AbortController().signal;
    const ctx = ctxFor({ config: { configurable: { tone: 'dry', thread_id: 'hijack' }, recursion_limit: 7, tags: ['t'] }, context: { user: 'u' }, signal });
    const config = invokeConfig(ctx);
    assert.deepEqual(config.configurable, {
      tone: 'dry',
      run_id: ctx.run_id,
      assistant_id: ctx.assistant_id,
      graph_id: 'g',
      cron_id: null,
      idempotency_key: ctx.idempotency_key,
      thread_id: ctx.thread_id,
    });
    assert.equal(config.recursionLimit, 7);
    assert.deepEqual(config.tags, ['t']);
    assert.deepEqual(config.context, { user: 'u' });
    assert.equal(config.signal, signal);
  });

  test('deleting threads deletes their checkpoints, in one statement for many (as the worker deletes ephemeral threads)', async () => {
    const counter = loaded.registry.get('counter')!;
    const [kept, gone1, gone2] = [await newThread(), await newThread(), await newThread()];
    for (const t of [kept, gone1, gone2]) await counter({ message: t }, ctxFor({ thread_id: t }));
    assert.ok((await checkpointRows([gone1, gone2])) > 0);
    await db.pool.query(`DELETE FROM threads WHERE thread_id = ANY($1::uuid[])`, [[gone1, gone2]]);
    assert.equal(await checkpointRows([gone1, gone2]), 0);
    const blobs = await db.pool.query(`SELECT 1 FROM langgraph.checkpoint_blobs WHERE thread_id = ANY($1::text[])`, [[gone1, gone2]]);
    assert.equal(blobs.rowCount, 0);
    assert.ok((await checkpointRows([kept])) > 0, 'other threads keep theirs');
    assert.deepEqual((await loaded.registry.threadState('counter', kept))?.values, { count: 1, log: [kept] });
  });
});

describe('each agent kind end to end through api, scheduler and worker', () => {
  let stack: Stack;
  let client: Client;
  let remote: RemoteAgentServer;
  const pool = () => stack.db.pool;

  before(async () => {
    // The remote agent counts its calls in the thread's values, so a second run proves it got the first one's answer.
    remote = await startRemoteAgent((req) => ({ body: JSON.stringify({ answered: req.body.input, calls: (req.body.values?.calls ?? 0) + 1 }) }));
    const config = writeConfig({
      counter: COUNTER,
      notebook: `${path.join(FIXTURES, 'plain.ts')}:notebook`,
      far: { url: `${remote.url}/run`, timeout_s: 10, headers: { 'x-api-key': '${REMOTE_AGENT_KEY}' } },
    });
    stack = await startStack('agents', {
      scheduler: true,
      worker: true,
      env: { CRON_ALLOW_SECONDS_SCHEDULE: 'true', AGENTCRON_CONFIG: config, REMOTE_AGENT_KEY: 'sesame' },
    });
    client = new Client({ apiUrl: stack.url, apiKey: null });
  });
  after(async () => {
    await stack?.stop();
    await remote?.close();
  });

  test('every graph of the config file has its default assistant', async () => {
    for (const graphId of ['counter', 'notebook', 'far', 'echo']) {
      const a = await client.assistants.get(graphId);
      assert.equal(a.assistant_id, defaultAssistantId(graphId));
      assert.equal(a.graph_id, graphId);
    }
  });

  test(
    'counter on an every-second thread cron: GET /threads/{id}/state shows the graph state, count 3 after three runs; delete drops the ' + 'checkpoints',
    async () => {
      const thread = await client.threads.create();
      const cron: any = await client.crons.createForThread(thread.thread_id, 'counter', { schedule: '*/1 * * * * *', input: { message: 'tick' } });
      const succeeded = async () =>
        (await pool().query<{ n: number }>(`SELECT count(*)::int AS n FROM runs WHERE thread_id = $1 AND status = 'success'`, [thread.thread_id])).rows[0].n;
      await eventually(async () => (await succeeded()) >= 3, 'three counter runs', 60_000);
      await client.crons.delete(cron.cron_id);
      // Runs already started finish; then the state holds exactly one increment per run.
      await eventually(
        async () => (await pool().query(`SELECT 1 FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running')`, [thread.thread_id])).rowCount === 0,
        'the last counter run to end',
      );
      const runs = await succeeded();
      const state = await client.threads.getState<{ count: number; log: string[] }>(thread.thread_id);
      assert.equal(state.values.count, runs);
      assert.ok(state.values.count >= 3);
      assert.deepEqual(state.values.log, Array(runs).fill('tick'));
      assert.equal(state.checkpoint.thread_id, thread.thread_id);
      assert.match(String(state.checkpoint.checkpoint_id), /^[0-9a-f-]{36}$/, 'the checkpoint it was read from');
      assert.deepEqual(state.next, []);
      // The state returned by the last run is also the thread's values.
      assert.deepEqual((await client.threads.get(thread.thread_id)).values, state.values);

      const rows = async () => (await pool().query(`SELECT 1 FROM langgraph.checkpoints WHERE thread_id = $1`, [thread.thread_id])).rowCount;
      assert.ok(await rows());
      await client.threads.delete(thread.thread_id);
      assert.equal(await rows(), 0, 'the thread took its checkpoints with it');
    },
  );

  test('a stateless counter cron: its ephemeral thread goes after the run, and its checkpoints with it', async () => {
    const cron: any = await client.crons.create('counter', { schedule: '0 0 1 1 *', input: { message: 'once' } });
    const done = await eventually(async () => {
      const { rows } = await pool().query(
        `SELECT status, thread_id FROM cron_occurrences WHERE cron_id = $1 AND status <> 'enqueued' AND status <> 'running'`,
        [cron.cron_id],
      );
      return rows[0];
    }, 'the stateless run');
    assert.equal(done.status, 'success');
    assert.equal((await pool().query(`SELECT 1 FROM threads WHERE thread_id = $1`, [done.thread_id])).rowCount, 0);
    assert.equal((await pool().query(`SELECT 1 FROM langgraph.checkpoints WHERE thread_id = $1`, [done.thread_id])).rowCount, 0);
    assert.equal((await pool().query(`SELECT 1 FROM langgraph.checkpoint_blobs WHERE thread_id = $1`, [done.thread_id])).rowCount, 0);
    await client.crons.delete(cron.cron_id);
  });

  test('a remote agent receives the run, its idempotency key and the thread values; its answers become the values', async () => {
    const thread = await client.threads.create();
    const before = remote.received.length;
    const cron: any = await client.crons.createForThread(thread.thread_id, 'far', {
      schedule: '0 0 1 1 *',
      input: { topic: 'weather' },
      config: { configurable: { unit: 'C' } },
    });
    const ended = (runId: string) =>
      eventually(async () => {
        const { rows } = await pool().query(
          `SELECT status, output, scheduled_for, cron_id FROM runs WHERE run_id = $1 AND status NOT IN ('pending', 'running')`,
          [runId],
        );
        return rows[0];
      }, `run ${runId}`);
    const first = await ended(cron.run_id);
    assert.equal(first.status, 'success');
    assert.deepEqual(first.output, { answered: { topic: 'weather' }, calls: 1 });
    const trigger = await fetch(`${stack.url}/runs/crons/${cron.cron_id}/trigger`, { method: 'POST' });
    assert.equal(trigger.status, 200);
    const second = await ended(((await trigger.json()) as any).run_id);
    assert.equal(second.status, 'success');

    const [a, b] = remote.received.slice(before);
    assert.equal(remote.received.length, before + 2);
    const key = `${cron.cron_id}:${first.scheduled_for.toISOString()}`;
    assert.equal(a.headers['idempotency-key'], key);
    assert.equal(a.headers['x-api-key'], 'sesame', '${REMOTE_AGENT_KEY} expanded from the environment');
    assert.equal(a.path, '/run');
    assert.deepEqual(a.body, {
      input: { topic: 'weather' },
      values: null,
      config: { configurable: { unit: 'C' } },
      context: {},
      run_id: cron.run_id,
      thread_id: thread.thread_id,
      assistant_id: defaultAssistantId('far'),
      graph_id: 'far',
      cron_id: cron.cron_id,
      scheduled_for: first.scheduled_for.toISOString(),
      idempotency_key: key,
    });
    assert.notEqual(b.headers['idempotency-key'], key, 'another occurrence, another key');
    assert.equal(b.body.idempotency_key, `${cron.cron_id}:${second.scheduled_for.toISOString()}`);
    assert.deepEqual(b.body.values, { answered: { topic: 'weather' }, calls: 1 }, 'the thread values the first answer stored');
    assert.deepEqual((await client.threads.get(thread.thread_id)).values, { answered: { topic: 'weather' }, calls: 2 });
    assert.deepEqual(
      (await client.threads.getState(thread.thread_id)).values,
      { answered: { topic: 'weather' }, calls: 2 },
      'no checkpoints: the stored values',
    );
    await client.crons.delete(cron.cron_id);
  });

  test('a plain function agent from a file: gets the run context, returns the new values', async () => {
    const thread = await client.threads.create();
    const assistant = defaultAssistantId('notebook');
    const first: any = await client.runs.wait(thread.thread_id, 'notebook', {
      input: { note: 1 },
      config: { configurable: { k: 'v' } },
      context: { who: 'me' },
    });
    assert.deepEqual(first.seen, [{ note: 1 }]);
    assert.equal(first.last.thread_id, thread.thread_id);
    assert.equal(first.last.assistant_id, assistant);
    assert.equal(first.last.graph_id, 'notebook');
    assert.equal(first.last.cron_id, null);
    assert.equal(first.last.idempotency_key, first.last.run_id, 'outside a cron the key is the run id');
    assert.deepEqual(first.last.config, { configurable: { k: 'v' } });
    assert.deepEqual(first.last.context, { who: 'me' });
    const second: any = await client.runs.wait(thread.thread_id, 'notebook', { input: { note: 2 } });
    assert.deepEqual(second.seen, [{ note: 1 }, { note: 2 }], 'it saw the values the first run stored');
  });
});

describe('a bad graph stops the process at startup', () => {
  test('worker: a missing export exits 1 with one line naming the graph; api: a missing file likewise', async () => {
    const config = writeConfig({ counter: COUNTER, broken: `${path.join(ROOT, 'agents/counter.ts')}:nope` });
    const missing = writeConfig({ ghost: './agents/ghost.ts:graph' });
    // No database is reached: the graphs are checked first.
    const env = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };
    const worker = spawnApp('worker', { ...env, AGENTCRON_CONFIG: config });
    const api = spawnApp('api', { ...env, AGENTCRON_CONFIG: missing });
    assert.equal(await worker.exited, 1);
    assert.deepEqual(worker.output, [`agentcron: graph "broken": ${path.join(ROOT, 'agents/counter.ts')} has no export "nope" (it exports graph)`]);
    assert.equal(await api.exited, 1);
    assert.equal(api.output.length, 1, api.output.join('\n'));
    assert.match(api.output[0], /^agentcron: graph "ghost": \.\/agents\/ghost\.ts not found \(.*\/agents\/ghost\.ts\)$/);
  });
});
