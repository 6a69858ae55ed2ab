import { randomUUID } from 'node:crypto';
import type { AgentRegistry } from '../agents/index.ts';
import type { Queryable } from '../db/index.ts';
import { conflict, forbidden, invalid, missing } from '../refusal/index.ts';
import { getAssistant, insertAssistant, patchAssistant } from './repository.ts';
import type { AssistantPatch, AssistantResponse, VisibleAssistant } from './repository.ts';

// The assistants' rules for the API: a graph this deployment runs, an id taken (raise or answer
// the existing one), a graph's default assistant read-only, and the graph as LangGraph draws and
// describes it. Refusals (libs/refusal) name what is wrong.

/** An assistant as asked for (the API's AssistantCreate, validated). */
export interface AssistantRequest {
  graph_id: string;
  assistant_id?: string | null;
  if_exists?: 'raise' | 'do_nothing' | null;
  name?: string | null;
  description?: string | null;
  config?: Record<string, unknown> | null;
  context?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/** A graph id in a request must name a graph this deployment runs. */
function requireGraph(agents: AgentRegistry, graphId: string): void {
  if (!agents.get(graphId)) throw invalid('graph_id', `unknown graph "${graphId}" (registered: ${agents.graphIds().join(', ') || 'none'})`);
}

/** Creates the caller's assistant; an id taken answers the existing one (if_exists do_nothing, when the caller can see it) or a conflict. */
export async function createAssistant(db: Queryable, agents: AgentRegistry, user: string, b: AssistantRequest): Promise<AssistantResponse> {
  requireGraph(agents, b.graph_id);
  const assistantId = b.assistant_id?.toLowerCase() ?? randomUUID();
  const created = await insertAssistant(db, {
    assistant_id: assistantId,
    graph_id: b.graph_id,
    name: b.name ?? 'Untitled',
    description: b.description ?? null,
    config: b.config ?? {},
    context: b.context ?? {},
    metadata: b.metadata ?? {},
    user_id: user,
  });
  if (created) return created;
  // The id is taken: only an assistant the caller can see may be answered.
  const existing = b.if_exists === 'do_nothing' ? await getAssistant(db, assistantId, user) : null;
  if (existing) return existing.assistant;
  throw conflict(`assistant ${assistantId} already exists`);
}

/** An assistant the caller can see (its own, or a graph's default). */
export async function visibleAssistant(db: Queryable, ref: string, user: string): Promise<VisibleAssistant> {
  const found = await getAssistant(db, ref, user);
  if (!found) throw missing('assistant');
  return found;
}

/** The caller's own assistant, ready to change: a graph's default assistant is read-only. */
export async function ownAssistant(db: Queryable, ref: string, user: string): Promise<VisibleAssistant> {
  const found = await visibleAssistant(db, ref, user);
  if (found.system) {
    const { assistant_id, graph_id } = found.assistant;
    throw forbidden(`assistant ${assistant_id} is the default assistant of graph "${graph_id}" and is read-only`);
  }
  return found;
}

/** Changes the caller's own assistant (a new graph_id must be one this deployment runs). */
export async function updateAssistant(db: Queryable, agents: AgentRegistry, ref: string, user: string, p: AssistantPatch): Promise<AssistantResponse> {
  const { assistant } = await ownAssistant(db, ref, user);
  if (p.graph_id) requireGraph(agents, p.graph_id);
  const patched = await patchAssistant(db, assistant.assistant_id, user, p);
  if (!patched) throw missing('assistant');
  return patched;
}

/** The graph of a visible assistant, as this process loaded it (missing when the assistant or its graph is unknown here). */
async function assistantGraph(db: Queryable, agents: AgentRegistry, ref: string, user: string) {
  const graphId = (await visibleAssistant(db, ref, user)).assistant.graph_id;
  const description = agents.describe(graphId);
  if (!description) throw missing('assistant', `graph "${graphId}" is not registered on this deployment`);
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

/** An assistant's graph drawn (LangGraph's drawable graph; any other agent as one node). */
export async function drawAssistantGraph(db: Queryable, agents: AgentRegistry, ref: string, user: string, xray: boolean | number | undefined) {
  const { graphId, description } = await assistantGraph(db, agents, ref, user);
  return description.drawable ? description.drawable({ xray }) : oneNodeGraph(graphId, description.kind);
}

/** An assistant's graph's schemas; unknown ones are {} (any value). LangGraph.js answers the config schema as the context schema too. */
export async function assistantSchemas(db: Queryable, agents: AgentRegistry, ref: string, user: string) {
  const { graphId, description } = await assistantGraph(db, agents, ref, user);
  const known = description.schemas ? await description.schemas() : null;
  return {
    graph_id: graphId,
    input_schema: known?.input ?? {},
    output_schema: known?.output ?? {},
    state_schema: known?.state ?? {},
    config_schema: known?.config ?? {},
    context_schema: known?.config ?? {},
  };
}
