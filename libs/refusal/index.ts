export { Refusal, conflict, forbidden, invalid, missing, overLimit } from './refusal.ts';
export type { Missing, RefusalKind } from './refusal.ts';
