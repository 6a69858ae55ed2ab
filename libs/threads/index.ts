export {
  countThreads,
  deleteThread,
  getThread,
  insertThread,
  lockThread,
  patchThread,
  searchThreads,
  threadGraphId,
  toCheckpointedThreadState,
  toThreadResponse,
  toThreadState,
} from './repository.ts';
export type { NewThread, ThreadFilter, ThreadResponse, ThreadSortBy, ThreadStateResponse, ThreadStatus } from './repository.ts';
export { currentState, threadHistory } from './history.ts';
