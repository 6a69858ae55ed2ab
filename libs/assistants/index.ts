export { defaultAssistantId, ensureDefaultAssistants, isReservedAssistantId } from './assistants.ts';
export type { MovedAssistant } from './assistants.ts';
export {
  AssistantInputError,
  countAssistants,
  deleteAssistant,
  getAssistant,
  insertAssistant,
  patchAssistant,
  resolveAssistantId,
  searchAssistants,
  toAssistantResponse,
} from './repository.ts';
export type { AssistantFilter, AssistantPatch, AssistantResponse, AssistantSortBy, NewAssistant, VisibleAssistant } from './repository.ts';
export { assistantSchemas, createAssistant, drawAssistantGraph, ownAssistant, updateAssistant, visibleAssistant } from './operations.ts';
export type { AssistantRequest } from './operations.ts';
