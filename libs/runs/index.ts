export { insertRuns } from './enqueue.ts';
export type { NewRun, MultitaskStrategy } from './enqueue.ts';
export { RunWorker, finishRuns } from './worker.ts';
export type { RunWorkerOptions, RunResult, RunStatus } from './worker.ts';
export { getRun, toRunResponse } from './repository.ts';
export type { RunResponse } from './repository.ts';
