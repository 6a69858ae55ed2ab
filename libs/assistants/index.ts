export { defaultAssistantId, ensureDefaultAssistants } from './assistants.ts';
export {
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
