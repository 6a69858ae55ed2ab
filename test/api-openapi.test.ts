import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import '../libs/http/index.ts';
import { EXAMPLES } from '../libs/http/examples.ts';
import { registry } from '../libs/http/openapi.ts';
import { startStack } from './support/stack.ts';
import type { Stack } from './support/stack.ts';

// The OpenAPI document is generated from the same zod schemas the routes validate with, and
// /docs renders it as a self-contained page.

const EXPECTED: [string, string[]][] = [
  ['/threads', ['post']],
  ['/threads/search', ['post']],
  ['/threads/count', ['post']],
  ['/threads/{thread_id}', ['get', 'patch', 'delete']],
  ['/threads/{thread_id}/state', ['get']],
  ['/threads/{thread_id}/runs', ['get', 'post']],
  ['/threads/{thread_id}/runs/wait', ['post']],
  ['/threads/{thread_id}/runs/{run_id}', ['get', 'delete']],
  ['/threads/{thread_id}/runs/{run_id}/join', ['get']],
  ['/threads/{thread_id}/runs/{run_id}/cancel', ['post']],
  ['/assistants', ['post']],
  ['/assistants/search', ['post']],
  ['/assistants/count', ['post']],
  ['/assistants/{assistant_id}', ['get', 'patch', 'delete']],
];

describe('OpenAPI document and /docs', () => {
  let stack: Stack;
  let doc: any;
  before(async () => {
    stack = await startStack('api-openapi', { env: { AUTH_MODE: 'api_key', AUTH_API_KEYS: 'k:u' } });
    const res = await fetch(`${stack.url}/openapi.json`);
    assert.equal(res.status, 200, 'public even with AUTH_MODE=api_key');
    doc = await res.json();
  });
  after(() => stack?.stop());

  test('lists every threads, runs and assistants route with its schemas', () => {
    assert.equal(doc.openapi, '3.1.0');
    for (const [path, methods] of EXPECTED) {
      assert.ok(doc.paths[path], `missing path ${path}`);
      for (const m of methods) assert.ok(doc.paths[path][m], `missing ${m.toUpperCase()} ${path}`);
    }
    // The public endpoints are in the reference too.
    for (const path of ['/ok', '/health', '/metrics']) assert.ok(doc.paths[path]?.get, `missing GET ${path}`);
    for (const name of [
      'Thread',
      'ThreadState',
      'ThreadCreate',
      'ThreadSearch',
      'Run',
      'RunCreate',
      'Assistant',
      'AssistantCreate',
      'AssistantSearch',
      'Error',
    ]) {
      assert.ok(doc.components.schemas[name], `missing schema ${name}`);
    }
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['ApiKey', 'Bearer']);
    assert.equal(doc.components.securitySchemes.ApiKey.name, 'x-api-key');

    // Derived from the validation schemas: required fields, enums and bounds are the ones enforced.
    assert.deepEqual(doc.components.schemas.RunCreate.required, ['assistant_id']);
    assert.ok(JSON.stringify(doc.components.schemas.RunCreate.properties.multitask_strategy).includes('rollback'));
    assert.equal(doc.components.schemas.ThreadSearch.properties.limit.maximum, 1000);
    const create = doc.paths['/threads/{thread_id}/runs'].post;
    assert.equal(create.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Run');
    assert.ok(create.responses['200'].headers['Content-Location']);
    assert.deepEqual(Object.keys(doc.paths['/threads/{thread_id}'].delete.responses).sort(), ['204', '401', '404']);
    const listParams = doc.paths['/threads/{thread_id}/runs'].get.parameters.map((p: any) => `${p.in}:${p.name}`).sort();
    assert.deepEqual(listParams, ['path:thread_id', 'query:limit', 'query:offset', 'query:select', 'query:status']);
  });

  test('/docs is a self-contained HTML reference of the same routes', async () => {
    const res = await fetch(`${stack.url}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    for (const [path] of EXPECTED) assert.ok(html.includes(`<code>${path}</code>`), `docs lack ${path}`);
    assert.match(html, /id="schema-Run"/);
    assert.doesNotMatch(html, /<script|<link|src="http/i, 'no scripts or outside resources');
  });
  test("examples: a request body for every route that takes one and the main answers, each parsed by its route's own zod schema", () => {
    // The schemas the routes validate requests with and answer with, by "METHOD /path".
    const routes = new Map<string, { body?: z.ZodType; ok?: z.ZodType }>();
    for (const d of registry.definitions as any[]) {
      if (d.type !== 'route') continue;
      routes.set(`${d.route.method.toUpperCase()} ${d.route.path}`, {
        body: d.route.request?.body?.content?.['application/json']?.schema,
        ok: d.route.responses?.['200']?.content?.['application/json']?.schema,
      });
    }
    /** Keys an object schema would drop (z.object strips unknown keys, so parsing alone would not see them). */
    const unknownKeys = (schema: z.ZodType, value: unknown): string[] => {
      if (schema instanceof z.ZodArray && Array.isArray(value)) return value.flatMap((v) => unknownKeys(schema.element as z.ZodType, v));
      if (!(schema instanceof z.ZodObject) || !value || typeof value !== 'object') return [];
      return Object.keys(value).filter((k) => !(k in schema.shape));
    };
    const check = (key: string, what: string, schema: z.ZodType, value: unknown) => {
      const parsed = schema.safeParse(value);
      assert.ok(parsed.success, `${key} ${what} example: ${parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3))}`);
      assert.deepEqual(unknownKeys(schema, value), [], `${key} ${what} example has fields its schema does not know`);
    };
    for (const [key, route] of routes) {
      if (!route.body) continue;
      assert.ok(EXAMPLES[key]?.body !== undefined, `${key} takes a body and has no example`);
      check(key, 'request', route.body, EXAMPLES[key].body);
    }
    let answers = 0;
    for (const [key, ex] of Object.entries(EXAMPLES)) {
      const route = routes.get(key);
      assert.ok(route, `the example ${key} names no route`);
      if (ex.response === undefined) continue;
      assert.ok(route.ok, `${key} has no 200 answer schema`);
      check(key, 'answer', route.ok, ex.response);
      answers++;
    }
    assert.ok(answers >= 20, `${answers} answers with an example`);
  });

  test('/openapi.json carries the examples; /docs shows them with a curl line, crons and runs first, admin last', async () => {
    const create = doc.paths['/runs/crons'].post;
    assert.deepEqual(create.requestBody.content['application/json'].example, EXAMPLES['POST /runs/crons'].body);
    assert.deepEqual(create.responses['200'].content['application/json'].example, EXAMPLES['POST /runs/crons'].response);
    assert.deepEqual(doc.paths['/runs'].get.responses['200'].content['application/json'].example, EXAMPLES['GET /runs'].response);
    const html = await (await fetch(`${stack.url}/docs`)).text();
    assert.ok(
      html.includes(
        'curl -s &quot;http://localhost:8000/runs/crons&quot; -H &#39;content-type: application/json&#39; -d ' +
          '&#39;{&quot;assistant_id&quot;:&quot;echo&quot;,&quot;schedule&quot;:&quot;CRON_TZ=Europe/Paris 0 9 * * 1-5&quot;',
      ),
    );
    assert.ok(html.includes('curl -s -X POST &quot;http://localhost:8000/runs/crons/$CRON_ID/trigger&quot;'));
    const order = [...html.matchAll(/<h2 id="tag-([\w-]+)">/g)].map((m) => m[1]);
    assert.deepEqual(order.slice(0, 2), ['crons', 'runs']);
    assert.equal(order.at(-1), 'admin');
    assert.match(html, /@media \(max-width:760px\)/, 'a layout for phones');
    // Where to go: GET / and the api's start line name the dashboard and the reference.
    const root = (await (await fetch(`${stack.url}/`)).json()) as { ui: string; docs: string };
    assert.equal(root.ui, '/ui');
    assert.equal(root.docs, '/docs');
    assert.ok(
      stack.api.output.some((l) => l.includes(`api listening on ${stack.url} (dashboard ${stack.url}/ui, API reference ${stack.url}/docs)`)),
      stack.api.output.join('\n'),
    );
  });
});
