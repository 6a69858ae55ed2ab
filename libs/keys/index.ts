export { createApiKey, hashApiKey, listApiKeys, revokeApiKey, userForKeyHash } from './store.ts';
export type { StoredApiKey } from './store.ts';
