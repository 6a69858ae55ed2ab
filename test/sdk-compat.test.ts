import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { eventually } from './support/engine.ts';
import { ROOT } from './support/processes.ts';
import { startRemoteAgent } from './support/remote-agent.ts';
import type { RemoteAgentServer } from './support/remote-agent.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// The LangGraph SDK calls beyond CRUD, through both published SDKs (2.0.0 and 1.15.x) against
// real api and worker processes: runs.wait / runs.stream (stateless and on a thread),
// runs.joinStream on a cron's run, threads.getHistory, assistants.getGraph / getSchemas, /info,
// for a LangGraph graph (counter, steps), a plain function (notebook), a remote agent (far) and echo.

// Both SDKs are driven through the same calls; typed as 2.0.0's (their generic overloads do not unite).
type AnyClient = Client;
type Part = { event: string; data: any; at: number };

async function collect(stream: AsyncIterable<{ event: string; data: unknown }>): Promise<Part[]> {
  const parts: Part[] = [];
  for await (const p of stream) parts.push({ event: p.event, data: p.data, at: Date.now() });
  return parts;
}

const events = (parts: Part[]) => parts.map((p) => p.event);
const ofKind = (parts: Part[], event: string) => parts.filter((p) => p.event === event).map((p) => p.data);

async function rejectsWith(p: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err?.status, status, String(err?.message ?? err));
    return true;
  });
}

describe('LangGraph SDK compatibility: wait, stream, join, history, graph, schemas, info', () => {
  let stack: Stack;
  let remote: RemoteAgentServer;
  let clients: [string, AnyClient][];
  /** Waits longer than the keep-alive threshold (5 s), started first and checked last so they cost no time of their own. */
  let longWaits: Promise<[unknown, unknown, string]>;
  const q = (sql: string, params: unknown[] = []) => stack.db.pool.query(sql, params);
  const post = (p: string, body: unknown) =>
    fetch(`${stack.url}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  before(async () => {
    remote = await startRemoteAgent((req) => ({ body: JSON.stringify({ remote: req.body.input ?? null }) }));
    const dir = mkdtempSync(path.join(tmpdir(), 'agentcron-sdk-'));
    const config = path.join(dir, 'agentcron.json');
    writeFileSync(
      config,
      JSON.stringify({
        graphs: {
          counter: path.join(ROOT, 'agents/counter.ts:graph'),
          steps: path.join(ROOT, 'test/fixtures/agents/steps.ts:graph'),
          notebook: path.join(ROOT, 'test/fixtures/agents/plain.ts:notebook'),
          far: { url: `${remote.url}/run`, timeout_s: 10 },
        },
      }),
    );
    stack = await startStack('sdk-compat', { worker: true, env: { AGENTCRON_CONFIG: config } });
    clients = [
      ['sdk 2.0.0', new Client({ apiUrl: stack.url, apiKey: null })],
      ['sdk 1.15', new Client1({ apiUrl: stack.url, apiKey: null }) as unknown as Client],
    ];
    const longThread = await clients[1][1].threads.create();
    longWaits = Promise.all([
      clients[0][1].runs.wait(null, 'echo', { input: { sleep_ms: 6000, sdk: 2 } }),
      clients[1][1].runs.wait(longThread.thread_id, 'echo', { input: { sleep_ms: 6000, sdk: 1 } }),
      post('/runs/wait', { assistant_id: 'echo', input: { sleep_ms: 6000, raw: true } }).then(async (r) => `${r.status} ${await r.text()}`),
    ]);
  });
  after(async () => {
    await stack?.stop();
    await remote?.close();
  });

  test('GET /info answers LangGraph server info', async () => {
    const res = await fetch(`${stack.url}/info`);
    assert.equal(res.status, 200);
    const info: any = await res.json();
    assert.equal(typeof info.version, 'string');
    assert.match(info.langgraph_js_version, /^\d+\.\d+\.\d+/);
    assert.equal(info.flags.assistants, true);
    assert.equal(info.flags.crons, true);
    assert.deepEqual(info.graphs, ['counter', 'echo', 'far', 'notebook', 'steps']);
  });

  test('runs.wait stateless: each kind of agent answers its values; the fresh thread is deleted unless kept; no input is no input', async () => {
    await Promise.all(
      clients.map(async ([name, c]) => {
        let created: { run_id: string; thread_id?: string } | undefined;
        const echoed = await c.runs.wait(null, 'echo', { input: { hi: name }, onRunCreated: (m) => (created = m) });
        assert.deepEqual(echoed, { hi: name }, name);
        assert.ok(created?.run_id, `${name}: Content-Location names the run`);
        assert.equal((await q(`SELECT 1 FROM runs WHERE run_id = $1`, [created.run_id])).rowCount, 0, `${name}: the stateless thread went with its run`);

        assert.deepEqual(await c.runs.wait(null, 'counter', { input: { message: name } }), { count: 1, log: [name] }, `${name} counter`);
        const noted: any = await c.runs.wait(null, 'notebook', { input: { note: 1 } });
        assert.deepEqual(noted.seen, [{ note: 1 }], `${name} notebook`);
        assert.deepEqual(await c.runs.wait(null, 'far', { input: { x: 1 } }), { remote: { x: 1 } }, `${name} remote`);
        assert.deepEqual(await c.runs.wait(null, 'echo'), {}, `${name}: no input`);
        // A LangGraph graph given nothing on a fresh thread has nothing to resume: LangGraph's own error, as the run's.
        await assert.rejects(c.runs.wait(null, 'counter'), /EmptyInputError/, `${name}: counter without input`);
        await assert.rejects(c.runs.wait(null, 'echo', { input: { error: 'boom' } }), /boom/);

        let kept: { run_id: string } | undefined;
        // The SDKs' types leave onCompletion out of stateless runs, but send it: LangGraph keeps the thread.
        const keepPayload: any = { input: { keep: true }, onCompletion: 'keep', onRunCreated: (m: { run_id: string }) => (kept = m) };
        await c.runs.wait(null, 'echo', keepPayload);
        const row = await q(`SELECT t.thread_id, t."values" FROM runs r JOIN threads t USING (thread_id) WHERE r.run_id = $1`, [kept!.run_id]);
        assert.deepEqual(row.rows[0]?.values, { keep: true }, `${name}: on_completion keep keeps the thread`);
      }),
    );
    // The same with a bare body: no input at all.
    const res = await post('/runs/wait', { assistant_id: 'echo' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  });

  test('runs.wait on a thread continues a LangGraph thread; input is optional on every run create', async () => {
    const [[, c2], [, c1]] = clients;
    const thread = await c2.threads.create();
    assert.deepEqual(await c2.runs.wait(thread.thread_id, 'counter', { input: { message: 'a' } }), { count: 1, log: ['a'] });
    assert.deepEqual(await c1.runs.wait(thread.thread_id, 'counter', { input: { message: 'b' } }), { count: 2, log: ['a', 'b'] });

    const t2 = await c1.threads.create();
    const run = await c1.runs.create(t2.thread_id, 'echo');
    assert.deepEqual(await c1.runs.join(t2.thread_id, run.run_id), {});
    const stateless = await c2.runs.create(null, 'echo');
    // Created; a fast worker may have taken it already by the time it is read back.
    assert.ok(['pending', 'running', 'success'].includes(stateless.status), stateless.status);
    for (const c of [c1, c2]) {
      const batch = await c.runs.createBatch([
        { assistantId: 'echo', input: { b: 1 } },
        { assistantId: 'counter', input: { message: 'b' } },
        { assistantId: 'echo' },
      ]);
      assert.equal(batch.length, 3);
      assert.equal(new Set(batch.map((r) => r.thread_id)).size, 3, 'each on a fresh thread');
    }
    for (const body of [{ assistant_id: 'echo' }, { assistant_id: 'echo', input: null }]) {
      for (const p of ['/runs', `/threads/${t2.thread_id}/runs`]) {
        const r = await post(p, body);
        assert.equal(r.status, 200, `${p} ${JSON.stringify(body)}: ${await r.clone().text()}`);
      }
    }
  });

  test('runs.stream: values and updates of a LangGraph graph per superstep, final values of other agents, error, end', async () => {
    await Promise.all(
      clients.map(async ([name, c]) => {
        // Stateless, LangGraph graph: LangGraph's own event sequence for counter.
        let created: { run_id: string } | undefined;
        const parts = await collect(
          c.runs.stream(null, 'counter', { input: { message: name }, streamMode: ['values', 'updates'], onRunCreated: (m) => (created = m) }),
        );
        assert.deepEqual(events(parts), ['metadata', 'values', 'updates', 'values', 'end'], name);
        assert.equal(parts[0].data.run_id, created?.run_id);
        assert.deepEqual(parts[1].data, { count: 0, log: [], message: name });
        assert.deepEqual(parts[2].data, { tick: { count: 1, log: [name] } });
        assert.deepEqual(parts[3].data, { count: 1, log: [name] });
        assert.equal((await q(`SELECT 1 FROM runs WHERE run_id = $1`, [created!.run_id])).rowCount, 0, `${name}: stateless thread deleted`);

        // On a thread, second run: only this run's supersteps; values only by default.
        const thread = await c.threads.create();
        await c.runs.wait(thread.thread_id, 'counter', { input: { message: 'one' } });
        const second = await collect(c.runs.stream(thread.thread_id, 'counter', { input: { message: 'two' } }));
        assert.deepEqual(events(second), ['metadata', 'values', 'values', 'end'], `${name} thread`);
        assert.deepEqual(second.at(-2)!.data, { count: 2, log: ['one', 'two'] });

        // A function, a remote agent, echo: their final values (and as the update of their one node).
        const fn = await collect(c.runs.stream(null, 'notebook', { input: { n: 1 }, streamMode: ['updates', 'values'] }));
        assert.deepEqual(events(fn), ['metadata', 'updates', 'values', 'end'], `${name} function`);
        assert.deepEqual(fn[1].data.notebook.seen, [{ n: 1 }]);
        const far = await collect(c.runs.stream(null, 'far', { input: { y: 2 } }));
        assert.deepEqual(ofKind(far, 'values'), [{ remote: { y: 2 } }], `${name} remote`);
        const bare = await collect(c.runs.stream(null, 'echo'));
        assert.deepEqual(ofKind(bare, 'values'), [{}], `${name}: no input`);

        const failed = await collect(c.runs.stream(thread.thread_id, 'echo', { input: { error: 'kaput' } }));
        assert.deepEqual(events(failed), ['metadata', 'error', 'end'], `${name} error`);
        assert.equal(failed[1].data.message, 'kaput');
      }),
    );
  });

  test('runs.stream shows each node of a LangGraph graph as it finishes, before the run ends', async () => {
    await Promise.all(
      clients.map(async ([name, c]) => {
        const thread = await c.threads.create();
        // 1 s between the nodes: the stream polls every 250 ms at most, so with 500 ms the first
        // node's update could be seen as little as ~250 ms before the end, 50 ms over the 200 asked
        // below, which a late poll on a loaded machine eats (the test failed once beside a burner).
        const parts = await collect(c.runs.stream(thread.thread_id, 'steps', { input: { pause_ms: 1000 }, streamMode: 'updates' }));
        assert.deepEqual(events(parts), ['metadata', 'updates', 'updates', 'end'], name);
        assert.deepEqual(
          parts.slice(1, 3).map((p) => p.data),
          [{ first: { trail: ['first'] } }, { second: { trail: ['second'] } }],
        );
        const end = parts.at(-1)!.at;
        assert.ok(end - parts[1].at >= 200, `${name}: the first node's update came ${end - parts[1].at} ms before the end`);
      }),
    );
  });

  test("runs.joinStream and runs.join on a cron's run executing on the worker", async () => {
    const [[, c2], [, c1]] = clients;
    const thread = await c2.threads.create();
    // The cron's first run starts at create; join both SDKs' streams while it goes.
    const cronRun: any = await c2.crons.createForThread(thread.thread_id, 'steps', { schedule: '0 0 1 1 *', input: { pause_ms: 300 } });
    assert.ok(cronRun.run_id, 'the cron answered its first run');
    const [s2, s1] = await Promise.all([
      collect(c2.runs.joinStream(thread.thread_id, cronRun.run_id, { streamMode: ['values', 'updates'] })),
      collect(c1.runs.joinStream(thread.thread_id, cronRun.run_id, { streamMode: ['values', 'updates'] })),
    ]);
    for (const [name, parts] of [
      ['sdk 2.0.0', s2],
      ['sdk 1.15', s1],
    ] as const) {
      assert.equal(events(parts)[0], 'metadata', name);
      assert.equal(events(parts).at(-1), 'end', name);
      assert.deepEqual(ofKind(parts, 'updates'), [{ first: { trail: ['first'] } }, { second: { trail: ['second'] } }], name);
      assert.deepEqual(ofKind(parts, 'values').at(-1), { pause_ms: 300, trail: ['first', 'second'] }, name);
    }
    assert.deepEqual(await c1.runs.join(thread.thread_id, cronRun.run_id), { pause_ms: 300, trail: ['first', 'second'] });

    // A second run of the thread, joined once it has ended: only its own checkpoints are shown.
    const trigger = await post(`/runs/crons/${cronRun.cron_id}/trigger`, {});
    assert.equal(trigger.status, 200);
    const second: any = await trigger.json();
    assert.deepEqual(await c2.runs.join(thread.thread_id, second.run_id), { pause_ms: 300, trail: ['first', 'second', 'first', 'second'] });
    const late = await collect(c1.runs.joinStream(thread.thread_id, second.run_id));
    assert.deepEqual(ofKind(late, 'values'), [
      { pause_ms: 300, trail: ['first', 'second'] },
      { pause_ms: 300, trail: ['first', 'second', 'first'] },
      { pause_ms: 300, trail: ['first', 'second', 'first', 'second'] },
    ]);
    // By run id alone (stateless joins), and the default modes: those the run was created with (values).
    const byId = await collect(c2.runs.joinStream(null, second.run_id));
    assert.deepEqual(events(byId), ['metadata', 'values', 'values', 'values', 'end']);
  });

  test("runs.joinStream: a node's update is streamed even when its writes commit after the next checkpoint", async () => {
    // LangGraph saves a node's writes (putWrites) and the next checkpoint (put) concurrently, on
    // separate connections: under load the checkpoint can be visible first (issue 22: a join
    // stream missed a node's update). Here the first node's writes wait on a lock the test
    // holds (a trigger on their last row, for this thread only) while the run goes on: every
    // checkpoint of the run is there, the first node's writes are not, and the run cannot end.
    const [[, c2], [, c1]] = clients;
    const thread = await c2.threads.create();
    const hold = await stack.db.pool.connect();
    try {
      await q(`CREATE FUNCTION langgraph.test_hold_writes() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN PERFORM pg_advisory_xact_lock_shared(22022); RETURN NEW; END $$`);
      await q(`CREATE TRIGGER test_hold_writes BEFORE INSERT ON langgraph.checkpoint_writes FOR EACH ROW
               WHEN (NEW.thread_id = '${thread.thread_id}' AND NEW.channel = 'branch:to:second') EXECUTE FUNCTION langgraph.test_hold_writes()`);
      await hold.query('BEGIN');
      await hold.query('SELECT pg_advisory_xact_lock(22022)');
      const run = await c2.runs.create(thread.thread_id, 'steps', { input: { pause_ms: 0 } });
      // input, after the input, after first, after second: the run's last checkpoint is written.
      await eventually(
        async () => (await q(`SELECT count(*)::int AS n FROM langgraph.checkpoints WHERE thread_id = $1`, [thread.thread_id])).rows[0].n >= 4,
        "the run's four checkpoints",
      );
      const joins = clients.map(([, c]) => {
        const parts: Part[] = [];
        const done = (async () => {
          for await (const p of c.runs.joinStream(thread.thread_id, run.run_id, { streamMode: ['values', 'updates'] })) parts.push({ ...p, at: Date.now() });
          return parts;
        })();
        return { parts, done };
      });
      // A values event: each stream has read the checkpoints while the first node's writes were not there.
      await eventually(async () => joins.every((j) => j.parts.some((p) => p.event === 'values')), 'a values event on each stream');
      assert.equal((await c1.runs.get(thread.thread_id, run.run_id)).status, 'running', "the run waits for its node's writes");
      await hold.query('COMMIT');
      for (const [i, parts] of (await Promise.all(joins.map((j) => j.done))).entries()) {
        const name = clients[i][0];
        assert.deepEqual(ofKind(parts, 'updates'), [{ first: { trail: ['first'] } }, { second: { trail: ['second'] } }], name);
        assert.deepEqual(
          ofKind(parts, 'values'),
          [
            { pause_ms: 0, trail: [] },
            { pause_ms: 0, trail: ['first'] },
            { pause_ms: 0, trail: ['first', 'second'] },
          ],
          name,
        );
        // LangGraph's order: a superstep's updates, then the state after it.
        assert.deepEqual(events(parts), ['metadata', 'values', 'updates', 'values', 'updates', 'values', 'end'], name);
      }
    } finally {
      await hold.query('ROLLBACK').catch(() => {});
      hold.release();
      await q(`DROP TRIGGER IF EXISTS test_hold_writes ON langgraph.checkpoint_writes`);
    }
  });

  test('threads.getHistory: checkpoints newest first with limit, before and metadata; one state for other agents', async () => {
    const [[, c2], [, c1]] = clients;
    const thread = await c2.threads.create();
    await c2.runs.wait(thread.thread_id, 'counter', { input: { message: 'a' } });
    await c2.runs.wait(thread.thread_id, 'counter', { input: { message: 'b' } });
    for (const [name, c] of clients) {
      const all = await c.threads.getHistory<any>(thread.thread_id, { limit: 100 });
      assert.equal(all.length, 6, `${name}: input, after input, after tick: twice`);
      assert.deepEqual(all[0].values, { count: 2, log: ['a', 'b'] });
      assert.deepEqual(all.at(-1)!.values, { count: 0, log: [] });
      const steps = all.map((s) => s.metadata?.step as number);
      assert.deepEqual(
        steps,
        [...steps].sort((x, y) => y - x),
        `${name}: newest first`,
      );
      assert.equal(all[0].parent_checkpoint?.checkpoint_id, all[1].checkpoint.checkpoint_id);
      const tick = all.find((s) => s.next[0] === 'tick')!;
      assert.deepEqual((tick.tasks[0] as any).result, { count: 2, log: ['b'] }, `${name}: a task shows what it wrote`);

      const page = await c.threads.getHistory(thread.thread_id, { limit: 2 });
      assert.deepEqual(
        page.map((s) => s.checkpoint.checkpoint_id),
        all.slice(0, 2).map((s) => s.checkpoint.checkpoint_id),
      );
      const older = await c.threads.getHistory(thread.thread_id, { limit: 2, before: { configurable: { checkpoint_id: all[1].checkpoint.checkpoint_id } } });
      assert.deepEqual(
        older.map((s) => s.checkpoint.checkpoint_id),
        all.slice(2, 4).map((s) => s.checkpoint.checkpoint_id),
        `${name}: before`,
      );
      const inputs = await c.threads.getHistory(thread.thread_id, { metadata: { source: 'input' } });
      assert.equal(inputs.length, 2, `${name}: metadata filter`);
    }
    const viaGet = await fetch(`${stack.url}/threads/${thread.thread_id}/history?limit=3`);
    assert.equal(viaGet.status, 200);
    assert.equal(((await viaGet.json()) as unknown[]).length, 3);

    const echoThread = await c1.threads.create();
    await c1.runs.wait(echoThread.thread_id, 'echo', { input: { v: 1 } });
    for (const [name, c] of clients) {
      const h = await c.threads.getHistory(echoThread.thread_id);
      assert.equal(h.length, 1, name);
      assert.deepEqual(h[0].values, { v: 1 });
    }
    await rejectsWith(c2.threads.getHistory(randomUUID()), 404);
  });

  test('assistants.getGraph and getSchemas: LangGraph graphs drawn and described; other agents as one node with permissive schemas', async () => {
    for (const [name, c] of clients) {
      const g = await c.assistants.getGraph('counter');
      assert.deepEqual(
        g.nodes.map((n: any) => n.id),
        ['__start__', 'tick', '__end__'],
        name,
      );
      assert.deepEqual(
        g.edges.map((e: any) => [e.source, e.target]),
        [
          ['__start__', 'tick'],
          ['tick', '__end__'],
        ],
      );
      assert.ok((await c.assistants.getGraph('steps', { xray: true })).nodes.some((n: any) => n.id === 'second'));
      for (const other of ['echo', 'notebook', 'far']) {
        const one = await c.assistants.getGraph(other);
        assert.deepEqual(
          one.nodes.map((n: any) => n.id),
          ['__start__', other, '__end__'],
          `${name} ${other}`,
        );
        assert.equal(one.edges.length, 2);
      }

      const s: any = await c.assistants.getSchemas('counter');
      assert.equal(s.graph_id, 'counter');
      assert.deepEqual(Object.keys(s.state_schema.properties).sort(), ['count', 'log', 'message'], name);
      assert.deepEqual(Object.keys(s.input_schema.properties), ['message']);
      assert.deepEqual(Object.keys(s.output_schema.properties).sort(), ['count', 'log']);
      const e: any = await c.assistants.getSchemas('echo');
      assert.deepEqual(e, { graph_id: 'echo', input_schema: {}, output_schema: {}, state_schema: {}, config_schema: {}, context_schema: {} });
      await rejectsWith(c.assistants.getGraph(randomUUID()), 404);
      await rejectsWith(c.assistants.getSchemas('no-such-graph'), 404);
    }
  });

  test('bad input answers 422 naming the field, never a 5xx', async () => {
    const t = (await clients[0][1].threads.create()).thread_id;
    const run = await clients[0][1].runs.create(t, 'echo', { input: {} });
    const cases: [string, Promise<Response>, number, RegExp][] = [
      ['stream without assistant_id', post('/runs/stream', {}), 422, /^body\.assistant_id/],
      ['wait without assistant_id', post('/runs/wait', { input: {} }), 422, /^body\.assistant_id/],
      ['unknown stream mode', post(`/threads/${t}/runs/stream`, { assistant_id: 'echo', stream_mode: 'telepathy' }), 422, /^body\.stream_mode/],
      ['unknown on_completion', post('/runs/wait', { assistant_id: 'echo', on_completion: 'shred' }), 422, /^body\.on_completion/],
      ['unknown on_disconnect', post('/runs/stream', { assistant_id: 'echo', on_disconnect: 'explode' }), 422, /^body\.on_disconnect/],
      ['stateless run on an unknown assistant', post('/runs', { assistant_id: randomUUID() }), 404, /Assistant not found/],
      ['batch entry without assistant_id', post('/runs/batch', [{ assistant_id: 'echo' }, {}]), 422, /^body\.1\.assistant_id/],
      ['empty batch', post('/runs/batch', []), 422, /^body/],
      ['history limit 0', post(`/threads/${t}/history`, { limit: 0 }), 422, /^body\.limit/],
      ['history before a number', post(`/threads/${t}/history`, { before: 5 }), 422, /^body\.before/],
      ['history GET limit text', fetch(`${stack.url}/threads/${t}/history?limit=many`), 422, /^query\.limit/],
      ['join stream unknown mode', fetch(`${stack.url}/threads/${t}/runs/${run.run_id}/stream?stream_mode=nope`), 422, /^query\.stream_mode/],
      ['join stream of a missing run', fetch(`${stack.url}/threads/${t}/runs/${randomUUID()}/stream`), 404, /Run not found/],
      ['stateless join stream of a missing run', fetch(`${stack.url}/runs/${randomUUID()}/stream`), 404, /Run not found/],
      ['graph xray not a boolean', fetch(`${stack.url}/assistants/echo/graph?xray=maybe`), 422, /^query\.xray/],
    ];
    for (const [name, response, status, detail] of cases) {
      const res = await response;
      const text = await res.text();
      assert.equal(res.status, status, `${name}: ${text}`);
      assert.match(JSON.parse(text).detail, detail, name);
    }
  });

  test('on_disconnect / cancel_on_disconnect: the run is cancelled when its client goes away', async () => {
    await Promise.all(
      clients.map(async ([name, c], i) => {
        const thread = await c.threads.create();
        const ac = new AbortController();
        let runId: string | undefined;
        const stream =
          i === 0
            ? c.runs.stream(thread.thread_id, 'echo', {
                input: { sleep_ms: 10_000 },
                onDisconnect: 'cancel',
                signal: ac.signal,
                onRunCreated: (m) => (runId = m.run_id),
              })
            : (() => {
                const run = c.runs.create(thread.thread_id, 'echo', { input: { sleep_ms: 10_000 } });
                return (async function* () {
                  runId = (await run).run_id;
                  yield* c.runs.joinStream(thread.thread_id, runId, { cancelOnDisconnect: true, signal: ac.signal });
                })();
              })();
        await assert.rejects(
          (async () => {
            for await (const part of stream) if (part.event === 'metadata') ac.abort();
            throw new Error('aborted');
          })(),
        );
        const deadline = Date.now() + 10_000;
        let status = '';
        while (Date.now() < deadline && (status = (await c.runs.get(thread.thread_id, runId!)).status) !== 'interrupted')
          await new Promise((r) => setTimeout(r, 50));
        assert.equal(status, 'interrupted', name);
      }),
    );
  });

  test('a wait longer than a few seconds is kept alive with whitespace and answers the values', async () => {
    const [stateless, onThread, raw] = await longWaits;
    assert.deepEqual(stateless, { sleep_ms: 6000, sdk: 2 });
    assert.deepEqual(onThread, { sleep_ms: 6000, sdk: 1 });
    assert.match(raw, /^200 \n+\{/);
    assert.deepEqual(JSON.parse(raw.slice(4)), { sleep_ms: 6000, raw: true });
  });

  test('the api answered no request with a 5xx and logged no unhandled error', () => {
    const bad = stack.api.output.filter((l) => /\b(GET|POST|PATCH|DELETE) \S+ 5\d\d\b/.test(l) || /unhandled error|could not delete the thread/.test(l));
    assert.deepEqual(bad, []);
  });
});
