export { createApp, finishApp } from './app.ts';
export type { AppDeps } from './app.ts';
export { HttpError, notFound, errorHandler } from './errors.ts';
