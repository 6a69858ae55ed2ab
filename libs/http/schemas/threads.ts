import { z } from 'zod';
import { registry } from '../openapi.ts';
import { Metadata, SortOrder, bodyLimit, bodyOffset, queryLimit, selectFields } from './common.ts';

export const ThreadStatus = z.enum(['idle', 'busy', 'interrupted', 'error']);

export const ThreadSchema = registry.register(
  'Thread',
  z.object({
    thread_id: z.uuid(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
    state_updated_at: z.iso.datetime(),
    metadata: Metadata,
    status: ThreadStatus,
    values: z.unknown().describe("The thread's state: the output of its last successful run ({} before any)."),
    interrupts: z.record(z.string(), z.array(z.unknown())),
  }),
);

const CheckpointRef = z.object({
  thread_id: z.uuid(),
  checkpoint_ns: z.string(),
  checkpoint_id: z.string().nullable(),
  checkpoint_map: z.null(),
});

export const ThreadStateSchema = registry.register(
  'ThreadState',
  z.object({
    values: z.unknown(),
    next: z.array(z.string()),
    tasks: z.array(z.unknown()).describe('LangGraph graphs: the tasks to run from this checkpoint, with their `result` once they have run.'),
    checkpoint: CheckpointRef,
    metadata: Metadata,
    created_at: z.iso.datetime(),
    parent_checkpoint: CheckpointRef.nullable().describe('The checkpoint this one follows (history of LangGraph graphs); null otherwise.'),
    interrupts: z.array(z.unknown()),
  }),
);

/** A checkpoint to read before: its id, or a config / checkpoint naming it (the SDKs send a Config). */
const beforeCheckpoint = z
  .union([
    z.string().min(1),
    z.looseObject({ configurable: z.looseObject({ checkpoint_id: z.string().min(1) }) }),
    z.looseObject({ checkpoint_id: z.string().min(1) }),
  ])
  .nullish()
  .describe('Only checkpoints older than this one: a checkpoint id, {"configurable": {"checkpoint_id": ...}} or {"checkpoint_id": ...}.');

export const ThreadHistoryRequest = registry.register(
  'ThreadHistoryRequest',
  z.object({
    limit: bodyLimit(10),
    before: beforeCheckpoint,
    metadata: Metadata.nullish().describe("Containment on the checkpoints' metadata (LangGraph graphs; other threads: on the thread's)."),
    checkpoint: z.record(z.string(), z.unknown()).nullish().describe('Accepted for compatibility; the root namespace is always read.'),
    select: z.unknown().optional().describe('Accepted for compatibility; every field is answered.'),
  }),
);

export const ThreadHistoryQuery = z.object({
  limit: queryLimit(10),
  before: z.string().min(1).optional().describe('Only checkpoints older than this checkpoint id.'),
});

/** The checkpoint id a `before` names. */
export function beforeId(before: z.output<typeof beforeCheckpoint>): string | null {
  if (!before) return null;
  if (typeof before === 'string') return before;
  const configurable = (before as { configurable?: { checkpoint_id?: unknown } }).configurable;
  const id = configurable?.checkpoint_id ?? (before as { checkpoint_id?: unknown }).checkpoint_id;
  return typeof id === 'string' ? id : null;
}

export const ThreadCreate = registry.register(
  'ThreadCreate',
  z.object({
    thread_id: z.uuid().nullish().describe('Choose the id; a new UUID when absent.'),
    metadata: Metadata.nullish(),
    if_exists: z.enum(['raise', 'do_nothing']).nullish().describe('When thread_id is taken: raise (409, default) or answer the existing thread.'),
    supersteps: z
      .array(z.object({ updates: z.array(z.object({ values: z.unknown().optional(), as_node: z.string().nullish() })) }))
      .nullish()
      .describe("Initial state: the last update's values become the thread's values."),
  }),
);

export const ThreadPatch = registry.register(
  'ThreadPatch',
  z.object({ metadata: Metadata.nullish().describe('Merged into the stored metadata: keys sent replace, others stay.') }),
);

const threadFilters = {
  metadata: Metadata.nullish().describe('Containment: threads whose metadata includes every key/value given.'),
  values: Metadata.nullish().describe('Containment on the state values.'),
  status: ThreadStatus.nullish(),
};

export const THREAD_SELECT = ['thread_id', 'created_at', 'updated_at', 'state_updated_at', 'metadata', 'status', 'values', 'interrupts'] as const;

export const ThreadSearch = registry.register(
  'ThreadSearch',
  z.object({
    ...threadFilters,
    ids: z.array(z.uuid()).nullish(),
    limit: bodyLimit(10),
    offset: bodyOffset,
    sort_by: z.enum(['thread_id', 'status', 'created_at', 'updated_at', 'state_updated_at']).nullish(),
    sort_order: SortOrder.nullish(),
    select: selectFields(THREAD_SELECT).nullish(),
  }),
);

export const ThreadCount = registry.register('ThreadCount', z.object(threadFilters));
