export { insertRuns } from './enqueue.ts';
export type { NewRun, MultitaskStrategy } from './enqueue.ts';
export { RunWorker, finishRuns, endRuns } from './worker.ts';
export type { RunWorkerOptions, RunResult, RunStatus } from './worker.ts';
export {
  activeThreadRunIds,
  cancelRuns,
  deleteEndedRun,
  getRun,
  getThreadRun,
  insertBackgroundRun,
  listThreadRuns,
  runEnded,
  threadValues,
  toRunResponse,
  waitForRunEnd,
} from './repository.ts';
export type { BackgroundRun, CancelAction, RunResponse } from './repository.ts';
