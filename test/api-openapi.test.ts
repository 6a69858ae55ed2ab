import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
});
