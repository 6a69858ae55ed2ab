import { z } from 'zod';
import { registry } from '../openapi.ts';
import { FLOW_CONFIG_NOTE, Metadata, SortOrder, bodyLimit, bodyOffset, selectFields } from './common.ts';

const iso = z.iso.datetime();

const TIMEOUT_NOTE =
  "config.timeout_seconds: this assistant's run timeout instead of RUN_TIMEOUT_SECONDS, a positive number (or numeric string) of seconds at " +
  'most RUN_TIMEOUT_MAX_SECONDS; anything else is a 422. ' +
  FLOW_CONFIG_NOTE;

export const AssistantSchema = registry.register(
  'Assistant',
  z.object({
    assistant_id: z.uuid(),
    graph_id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    config: Metadata,
    context: Metadata,
    metadata: Metadata.describe('A default assistant carries {"created_by": "system"}.'),
    version: z.number().int().describe('1 on creation, +1 on every change.'),
    created_at: iso,
    updated_at: iso,
  }),
);

export const AssistantCreate = registry.register(
  'AssistantCreate',
  z.object({
    graph_id: z.string({ error: 'required' }).min(1).describe('A graph registered on this deployment.'),
    assistant_id: z.uuid().nullish().describe('Choose the id; a new UUID when absent.'),
    if_exists: z.enum(['raise', 'do_nothing']).nullish().describe('When assistant_id is taken: raise (409, default) or answer the existing assistant.'),
    name: z.string().min(1).nullish().describe('Default "Untitled".'),
    description: z.string().nullish(),
    config: Metadata.nullish().describe(TIMEOUT_NOTE),
    context: Metadata.nullish(),
    metadata: Metadata.nullish(),
  }),
);

export const AssistantPatch = registry.register(
  'AssistantPatch',
  z.object({
    graph_id: z.string().min(1).nullish(),
    name: z.string().min(1).nullish(),
    description: z.string().nullish(),
    config: Metadata.nullish().describe(`Replaces the stored config. ${TIMEOUT_NOTE}`),
    context: Metadata.nullish().describe('Replaces the stored context.'),
    metadata: Metadata.nullish().describe('Merged into the stored metadata: keys sent replace, others stay.'),
  }),
);

const assistantFilters = {
  graph_id: z.string().nullish(),
  name: z.string().nullish().describe('Case-insensitive substring of the name.'),
  metadata: Metadata.nullish().describe('Containment: assistants whose metadata includes every key/value given.'),
};

export const ASSISTANT_SELECT = [
  'assistant_id',
  'graph_id',
  'name',
  'description',
  'config',
  'context',
  'created_at',
  'updated_at',
  'metadata',
  'version',
] as const;

export const AssistantSearch = registry.register(
  'AssistantSearch',
  z.object({
    ...assistantFilters,
    limit: bodyLimit(10),
    offset: bodyOffset,
    sort_by: z.enum(['assistant_id', 'graph_id', 'name', 'created_at', 'updated_at']).nullish(),
    sort_order: SortOrder.nullish(),
    select: selectFields(ASSISTANT_SELECT).nullish(),
  }),
);

export const AssistantCount = registry.register('AssistantCount', z.object(assistantFilters));

export const AssistantDeleteQuery = z.object({
  delete_threads: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => v === 'true' || v === '1')
    .describe("Also delete the caller's threads whose metadata.assistant_id is this assistant."),
});

/** `xray`: true, false, or a depth (subgraphs up to it). */
export const AssistantGraphQuery = z.object({
  xray: z
    .preprocess(
      (v) => (v === 'true' ? true : v === 'false' ? false : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
      z.union([z.boolean(), z.number().int().min(0)], { error: 'must be true, false or a depth (a whole number)' }),
    )
    .optional()
    .describe('Include subgraphs (true, or up to a depth).'),
});

export const AssistantGraphSchema = registry.register(
  'AssistantGraph',
  z.object({
    nodes: z.array(z.unknown()),
    edges: z.array(z.unknown()),
  }),
);

export const AssistantSchemasSchema = registry.register(
  'AssistantSchemas',
  z.object({
    graph_id: z.string(),
    input_schema: z.unknown().describe('JSON schema; {} when nothing is known (any value).'),
    output_schema: z.unknown(),
    state_schema: z.unknown(),
    config_schema: z.unknown(),
    context_schema: z.unknown(),
  }),
);
