export { insertRuns } from './enqueue.ts';
export type { NewRun, MultitaskStrategy } from './enqueue.ts';
export { RunWorker } from './worker.ts';
export type { RunWorkerOptions } from './worker.ts';
export {
  RUN_CANCEL_CHANNEL,
  cancelRuns,
  claimRuns,
  endRuns,
  endRunsBeforeDelete,
  endRunsIn,
  finishRuns,
  finishRunsIn,
  handBackRuns,
  pendingOf,
} from './lifecycle.ts';
export type { CancelAction, ClaimedRun, EndOutcome, EndStatus, FinishedRun, RunDetails, RunResult, RunStatus } from './lifecycle.ts';
export { maxTimeoutSeconds, parseTimeoutSeconds, runTimeoutSeconds, timeoutSecondsProblem } from './timeout.ts';
export type { RunTimeoutSettings } from './timeout.ts';
export {
  activeThreadRunIds,
  attemptsMade,
  deleteEndedRun,
  getRun,
  getThreadRun,
  getRunWithOutput,
  insertBackgroundRun,
  listRuns,
  listThreadRuns,
  runEnded,
  runStreamPosition,
  threadValues,
  toRunResponse,
  waitForRunEnd,
} from './repository.ts';
export type { BackgroundRun, ListedRun, RunFilters, RunResponse, RunStreamPosition } from './repository.ts';
export { claimRunsLimited, clearEndedOccurrenceRun, reopenOccurrence, withdrawUnstartedRuns } from './lifecycle.ts';
export type { WithdrawnOccurrence } from './lifecycle.ts';
export type { Claim, ClaimLimits, RetryRequest } from './lifecycle.ts';
export { DEFAULT_RETRY_POLICY, flowConfigProblem, makeRetryPolicySchema, MAX_CONCURRENCY, parseRetryPolicy } from './retry-policy.ts';
export { setLedgerExcerptBytes } from './excerpt.ts';
export type { ParsedRetryPolicy, RetryPolicy } from './retry-policy.ts';
export { runKwargs, startBackgroundStatelessRuns, startStatelessRun, startThreadRun } from './start.ts';
export type { RunRequest } from './start.ts';
export { deleteAssistantWithRuns, deleteStatelessThread, deleteThreadWithRuns, finishStateless } from './deletion.ts';
export { classifyFailure, resolveRetryPolicy, retryDelaySeconds } from './retry.ts';
export type { AttemptRecord, FailureClass } from './retry.ts';
