import { Router } from 'express';
import type { ApiDeps } from '../deps.ts';

export function threadsRoutes(_deps: ApiDeps): Router {
  const router = Router();
  return router;
}
