import { z } from 'zod';
import { NoContent, documentRoutes, errors, json } from '../schemas/common.ts';
import { CancelQuery, JoinAnswer, JoinStreamQuery, RunBatchCreate, RunCreate, RunListQuery, RunSchema } from '../schemas/runs.ts';
import { JOIN_MAX_WAIT_MS, RunParams, ThreadParams } from './run-params.ts';

// The runs routes' OpenAPI registrations (GET /openapi.json, /docs).

const contentLocation = { headers: { 'Content-Location': { description: '/threads/{thread_id}/runs/{run_id}', schema: { type: 'string' as const } } } };

documentRoutes('runs', [
  {
    method: 'post',
    path: '/threads/{thread_id}/runs',
    summary: 'Start a background run on a thread',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...json(RunSchema), ...contentLocation }, ...errors(404, 409, 422) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/wait',
    summary: "Start a run and answer the thread's values once it ends",
    description:
      'However long the run takes: after 5 s the answer (200) is kept alive with whitespace, so a failure after that point is told in the body ' +
      'as {"__error__": ...}.',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...json(JoinAnswer), ...contentLocation }, ...errors(404, 409, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs',
    summary: "A thread's runs, newest first",
    params: ThreadParams,
    query: RunListQuery,
    responses: { 200: json(z.array(RunSchema)), ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}',
    summary: 'Get a run',
    params: RunParams,
    responses: { 200: json(RunSchema), ...errors(404) },
  },
  {
    method: 'delete',
    path: '/threads/{thread_id}/runs/{run_id}',
    summary: 'Delete a run that has ended',
    params: RunParams,
    responses: { 204: NoContent, ...errors(404, 409) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}/join',
    summary: "Wait for a run to end; answer the thread's values",
    description: `Waits up to ${JOIN_MAX_WAIT_MS / 1000} s, then answers 408 (join again).`,
    params: RunParams,
    responses: { 200: json(JoinAnswer), ...errors(404, 408) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/{run_id}/cancel',
    summary: 'Cancel a run',
    description:
      'A pending run never starts. A running run is marked interrupted at once and its result discarded; the worker executing it learns of it ' +
      'within about a second and aborts the agent (its AbortSignal).',
    params: RunParams,
    query: CancelQuery,
    responses: { 202: { description: 'Cancelled (wait=0).' }, 204: { description: 'Cancelled and ended (wait=1).' }, ...errors(404, 409, 422) },
  },
]);

const sse = {
  description: 'Server-sent events: metadata, then values / updates as the run goes (LangGraph graphs: one per checkpoint), error if it failed, end.',
  content: { 'text/event-stream': { schema: { type: 'string' as const } } },
};
const statelessLocation = { headers: { 'Content-Location': { description: '/runs/{run_id}', schema: { type: 'string' as const } } } };

documentRoutes('runs', [
  {
    method: 'post',
    path: '/runs',
    summary: 'Start a stateless background run',
    description: 'On a fresh thread, deleted with the run once it ends unless on_completion is "keep" (as a stateless cron).',
    body: RunCreate,
    responses: { 200: { ...json(RunSchema), ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/batch',
    summary: 'Start several stateless background runs',
    description: 'Each as POST /runs, all in one transaction (at most 100).',
    body: RunBatchCreate,
    responses: { 200: json(z.array(RunSchema)), ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/wait',
    summary: 'Run on a fresh thread and answer its values once the run ends',
    description:
      'The thread is deleted once the run has ended unless on_completion is "keep". While the run goes the answer is kept alive with whitespace ' +
      '(after 5 s), so a failure then is told in the body as {"__error__": ...}.',
    body: RunCreate,
    responses: { 200: { ...json(JoinAnswer), ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/stream',
    summary: 'Run on a fresh thread and stream its events',
    description: 'The thread is deleted once the run has ended unless on_completion is "keep".',
    body: RunCreate,
    responses: { 200: { ...sse, ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/stream',
    summary: 'Start a run on a thread and stream its events',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...sse, ...contentLocation }, ...errors(404, 409, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}/stream',
    summary: "Join a run's event stream (a cron's run too), until it ends",
    params: RunParams,
    query: JoinStreamQuery,
    responses: { 200: sse, ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/runs/{run_id}/stream',
    summary: "Join a run's event stream by its id alone (stateless runs)",
    params: z.object({ run_id: z.uuid() }),
    query: JoinStreamQuery,
    responses: { 200: sse, ...errors(404, 422) },
  },
]);
