export { insertRuns } from './enqueue.ts';
export type { NewRun, MultitaskStrategy } from './enqueue.ts';
export { RunWorker } from './worker.ts';
export type { RunWorkerOptions } from './worker.ts';
export { finishRuns, finishRunsIn, endRuns, endRunsIn } from './finish.ts';
export type { RunResult, RunStatus, EndOutcome } from './finish.ts';
export { maxTimeoutSeconds, parseTimeoutSeconds, runTimeoutSeconds } from './timeout.ts';
export type { RunTimeoutSettings } from './timeout.ts';
export { RUN_CANCEL_CHANNEL } from './cancel.ts';
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
