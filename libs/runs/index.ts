export { insertRuns } from './enqueue.ts';
export type { NewRun, MultitaskStrategy } from './enqueue.ts';
export { RunWorker, finishRuns, finishRunsIn, endRuns, endRunsIn, maxTimeoutSeconds, parseTimeoutSeconds, runTimeoutSeconds } from './worker.ts';
export type { RunWorkerOptions, RunResult, RunStatus, EndOutcome, RunTimeoutSettings } from './worker.ts';
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
