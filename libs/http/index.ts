export { createApp, finishApp } from './app.ts';
export type { AppDeps } from './app.ts';
export { HttpError, notFound, errorHandler } from './errors.ts';
export { parse } from './validate.ts';
export { registry, openApiDocument } from './openapi.ts';
export { noAuth, userOf, authMiddleware, IMPLICIT_USER } from './auth.ts';
export { apiRoutes } from './routes/index.ts';
export type { ApiDeps } from './deps.ts';
export { waitingForSchema } from './waiting.ts';
