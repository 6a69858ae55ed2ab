import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import type { AgentRegistry, GraphDescription } from '../../agents/index.ts';
import { countAssistants, getAssistant, insertAssistant, patchAssistant, searchAssistants } from '../../assistants/index.ts';
import type { VisibleAssistant } from '../../assistants/index.ts';
import type { Config } from '../../config/index.ts';
import type { Pool } from '../../db/index.ts';
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
      "LangGraph graphs: from their state, input and output definitions (zod or StateSchema converted; an Annotation's channels each of any type). Other agents: {} (any value).",
    params: AssistantParams,
    responses: { 200: json(AssistantSchemasSchema), ...errors(404) },
  },
]);

/** The graph of a visible assistant, as this process loaded it (404 when the assistant or its graph is unknown here). */
async function assistantGraph(pool: Pool, agents: AgentRegistry, ref: string, user: string): Promise<{ graphId: string; description: GraphDescription }> {
  const found = await getAssistant(pool, ref, user);
  if (!found) throw notFound(ASSISTANT_NOT_FOUND);
  const graphId = found.assistant.graph_id;
  const description = agents.describe(graphId);
  if (!description) throw new HttpError(404, `graph "${graphId}" is not registered on this deployment`);
  return { graphId, description };
}

/** An agent that is not a LangGraph graph, drawn as LangGraph draws a one-node graph. */
function oneNodeGraph(graphId: string, kind: string) {
  return {
    nodes: [
      { id: '__start__', type: 'schema', data: '__start__' },
      { id: graphId, type: 'runnable', data: { id: ['agentcron', kind], name: graphId }, metadata: {} },
      { id: '__end__', type: 'schema', data: '__end__' },
    ],
    edges: [
      { source: '__start__', target: graphId, conditional: false },
      { source: graphId, target: '__end__', conditional: false },
    ],
  };
}

/** A graph id in a request must name a graph this deployment runs. */
function requireGraph(agents: AgentRegistry, graphId: string): void {
  if (!agents.get(graphId)) {
    throw new HttpError(422, `body.graph_id: unknown graph "${graphId}" (registered: ${agents.graphIds().join(', ') || 'none'})`);
  }
}

/** An assistant's `config.timeout_seconds` by the worker's rule (libs/runs timeoutSecondsProblem): a 422 naming it. */
function checkTimeout(config: Record<string, unknown> | null | undefined, settings: Config): void {
  const problem = timeoutSecondsProblem(config, { seconds: settings.RUN_TIMEOUT_SECONDS, maxSeconds: settings.RUN_TIMEOUT_MAX_SECONDS });
  if (problem) throw new HttpError(422, `body.${problem}`);
}

/** The caller's own assistant, ready to change: default assistants are refused with 403. */
async function ownAssistant(pool: Pool, ref: string, user: string): Promise<VisibleAssistant> {
  const found = await getAssistant(pool, ref, user);
  if (!found) throw notFound(ASSISTANT_NOT_FOUND);
  if (found.system) {
    const { assistant_id, graph_id } = found.assistant;
    throw new HttpError(403, `assistant ${assistant_id} is the default assistant of graph "${graph_id}" and is read-only`);
  }
  return found;
}

export function assistantsRoutes({ pool, boss, agents, config }: ApiDeps): Router {
  const router = Router();

  router.post('/assistants', async (req, res) => {
    const b = parse(AssistantCreate, req.body);
    checkTimeout(b.config, config);
    checkFlowConfig(b.config);
    requireGraph(agents, b.graph_id);
    const user = userOf(res);
    const assistantId = b.assistant_id?.toLowerCase() ?? randomUUID();
    const created = await insertAssistant(pool, {
      assistant_id: assistantId,
      graph_id: b.graph_id,
      name: b.name ?? 'Untitled',
      description: b.description ?? null,
      config: b.config ?? {},
      context: b.context ?? {},
      metadata: b.metadata ?? {},
      user_id: user,
    });
    if (created) return void res.json(created);
    // The id is taken: only an assistant the caller can see may be answered.
    const existing = b.if_exists === 'do_nothing' ? await getAssistant(pool, assistantId, user) : null;
    if (existing) return void res.json(existing.assistant);
    throw new HttpError(409, `assistant ${assistantId} already exists`);
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
    const found = await getAssistant(pool, req.params.assistant_id, userOf(res));
    if (!found) throw notFound(ASSISTANT_NOT_FOUND);
    res.json(found.assistant);
  });

  router.get('/assistants/:assistant_id/graph', async (req, res) => {
    const q = parse(AssistantGraphQuery, req.query, 'query');
    const { graphId, description } = await assistantGraph(pool, agents, req.params.assistant_id, userOf(res));
    res.json(description.drawable ? await description.drawable({ xray: q.xray }) : oneNodeGraph(graphId, description.kind));
  });

  router.get('/assistants/:assistant_id/schemas', async (req, res) => {
    const { graphId, description } = await assistantGraph(pool, agents, req.params.assistant_id, userOf(res));
    const known = description.schemas ? await description.schemas() : null;
    // Unknown: {} accepts any value. LangGraph.js answers the config schema as the context schema too.
    res.json({
      graph_id: graphId,
      input_schema: known?.input ?? {},
      output_schema: known?.output ?? {},
      state_schema: known?.state ?? {},
      config_schema: known?.config ?? {},
      context_schema: known?.config ?? {},
    });
  });

  router.patch('/assistants/:assistant_id', async (req, res) => {
    const user = userOf(res);
    const b = parse(AssistantPatch, req.body);
    checkTimeout(b.config, config);
    checkFlowConfig(b.config);
    const { assistant } = await ownAssistant(pool, req.params.assistant_id, user);
    if (b.graph_id) requireGraph(agents, b.graph_id);
    const patched = await patchAssistant(pool, assistant.assistant_id, user, b);
    if (!patched) throw notFound(ASSISTANT_NOT_FOUND);
    res.json(patched);
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
