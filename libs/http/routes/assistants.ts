import { Router } from 'express';
import { z } from 'zod';
import {
  assistantSchemas,
  countAssistants,
  createAssistant,
  drawAssistantGraph,
  ownAssistant,
  searchAssistants,
  updateAssistant,
  visibleAssistant,
} from '../../assistants/index.ts';
import type { Config } from '../../config/index.ts';
import { deleteAssistantWithRuns, timeoutSecondsProblem } from '../../runs/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { ASSISTANT_NOT_FOUND, HttpError, notFound } from '../errors.ts';
import { NoContent, checkFlowConfig, documentRoutes, errors, json, project } from '../schemas/common.ts';
import {
  AssistantCount,
  AssistantCreate,
  AssistantDeleteQuery,
  AssistantGraphQuery,
  AssistantGraphSchema,
  AssistantPatch,
  AssistantSchema,
  AssistantSchemasSchema,
  AssistantSearch,
} from '../schemas/assistants.ts';
import { parse } from '../validate.ts';

const AssistantParams = z.object({ assistant_id: z.string().describe('An assistant id, or a graph id (its default assistant).') });

const paginationNext = { 'X-Pagination-Next': { description: 'The offset of the next page, when there may be one.', schema: { type: 'string' as const } } };

documentRoutes('assistants', [
  {
    method: 'post',
    path: '/assistants',
    summary: 'Create an assistant',
    body: AssistantCreate,
    responses: { 200: json(AssistantSchema), ...errors(409, 422) },
  },
  {
    method: 'post',
    path: '/assistants/search',
    summary: "Search the caller's and the default assistants",
    body: AssistantSearch,
    responses: { 200: { ...json(z.array(AssistantSchema)), headers: paginationNext }, ...errors(422) },
  },
  {
    method: 'post',
    path: '/assistants/count',
    summary: "Count the caller's and the default assistants",
    body: AssistantCount,
    responses: { 200: json(z.number().int(), 'A bare integer.'), ...errors(422) },
  },
  {
    method: 'get',
    path: '/assistants/{assistant_id}',
    summary: 'Get an assistant',
    params: AssistantParams,
    responses: { 200: json(AssistantSchema), ...errors(404) },
  },
  {
    method: 'patch',
    path: '/assistants/{assistant_id}',
    summary: 'Change an assistant',
    description: 'Default assistants are read-only: 403.',
    params: AssistantParams,
    body: AssistantPatch,
    responses: { 200: json(AssistantSchema), ...errors(403, 404, 422) },
  },
  {
    method: 'delete',
    path: '/assistants/{assistant_id}',
    summary: 'Delete an assistant with its crons and runs',
    description: 'Default assistants are read-only: 403.',
    params: AssistantParams,
    query: AssistantDeleteQuery,
    responses: { 204: NoContent, ...errors(403, 404, 422) },
  },
]);

documentRoutes('assistants', [
  {
    method: 'get',
    path: '/assistants/{assistant_id}/graph',
    summary: "The assistant's graph: nodes and edges",
    description: 'LangGraph graphs as LangGraph draws them; any other agent is one node between __start__ and __end__.',
    params: AssistantParams,
    query: AssistantGraphQuery,
    responses: { 200: json(AssistantGraphSchema), ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/assistants/{assistant_id}/schemas',
    summary: "The JSON schemas of the assistant's graph",
    description:
      "LangGraph graphs: from their state, input and output definitions (zod or StateSchema converted; an Annotation's channels each of any " +
      'type). Other agents: {} (any value).',
    params: AssistantParams,
    responses: { 200: json(AssistantSchemasSchema), ...errors(404) },
  },
]);

/** An assistant's `config.timeout_seconds` by the worker's rule (libs/runs timeoutSecondsProblem): a 422 naming it. */
function checkTimeout(config: Record<string, unknown> | null | undefined, settings: Config): void {
  const problem = timeoutSecondsProblem(config, { seconds: settings.RUN_TIMEOUT_SECONDS, maxSeconds: settings.RUN_TIMEOUT_MAX_SECONDS });
  if (problem) throw new HttpError(422, `body.${problem}`);
}

export function assistantsRoutes({ pool, boss, agents, config }: ApiDeps): Router {
  const router = Router();

  router.post('/assistants', async (req, res) => {
    const b = parse(AssistantCreate, req.body);
    checkTimeout(b.config, config);
    checkFlowConfig(b.config);
    res.json(await createAssistant(pool, agents, userOf(res), b));
  });

  router.post('/assistants/search', async (req, res) => {
    const b = parse(AssistantSearch, req.body);
    // One extra row tells whether there is a next page (the SDK's includePagination reads the header).
    const rows = await searchAssistants(pool, userOf(res), b, {
      limit: b.limit + 1,
      offset: b.offset,
      sort_by: b.sort_by ?? 'created_at',
      sort_order: b.sort_order ?? 'desc',
    });
    if (rows.length > b.limit) res.setHeader('X-Pagination-Next', String(b.offset + b.limit));
    res.json(rows.slice(0, b.limit).map((a) => project(a, b.select)));
  });

  router.post('/assistants/count', async (req, res) => {
    res.json(await countAssistants(pool, userOf(res), parse(AssistantCount, req.body)));
  });

  router.get('/assistants/:assistant_id', async (req, res) => {
    res.json((await visibleAssistant(pool, req.params.assistant_id, userOf(res))).assistant);
  });

  router.get('/assistants/:assistant_id/graph', async (req, res) => {
    const q = parse(AssistantGraphQuery, req.query, 'query');
    res.json(await drawAssistantGraph(pool, agents, req.params.assistant_id, userOf(res), q.xray));
  });

  router.get('/assistants/:assistant_id/schemas', async (req, res) => {
    res.json(await assistantSchemas(pool, agents, req.params.assistant_id, userOf(res)));
  });

  router.patch('/assistants/:assistant_id', async (req, res) => {
    const b = parse(AssistantPatch, req.body);
    checkTimeout(b.config, config);
    checkFlowConfig(b.config);
    res.json(await updateAssistant(pool, agents, req.params.assistant_id, userOf(res), b));
  });

  router.delete('/assistants/:assistant_id', async (req, res) => {
    const user = userOf(res);
    const q = parse(AssistantDeleteQuery, req.query, 'query');
    const { assistant } = await ownAssistant(pool, req.params.assistant_id, user);
    if (!(await deleteAssistantWithRuns(pool, boss, assistant.assistant_id, user, q.delete_threads))) throw notFound(ASSISTANT_NOT_FOUND);
    res.status(204).end();
  });

  return router;
}
