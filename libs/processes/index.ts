export { onShutdown, fatal } from './lifecycle.ts';
export { connect } from './bootstrap.ts';
export type { Connections } from './bootstrap.ts';
export { startApiRole, startSchedulerRole, startWorkerRole } from './roles.ts';
export type { Role, RoleDeps } from './roles.ts';
export { runProcess } from './main.ts';
export type { ProcessSpec } from './main.ts';
