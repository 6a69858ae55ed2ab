export { defaultAssistantId, ensureDefaultAssistants } from './assistants.ts';
