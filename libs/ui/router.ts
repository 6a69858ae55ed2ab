import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import type { RequestHandler } from 'express';

// The dashboard (/ui): static HTML, CSS and plain ES modules from ./static, plus the browser
// build of cronstrue from node_modules. No CDN, no build step, nothing rendered server-side:
// the page reads and changes everything through the public HTTP API with the key the person
// types (AUTH_MODE=api_key), so it sees exactly what that key sees. The assets carry no data,
// which is why they are served before auth, like /docs.

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'static');

const require = createRequire(import.meta.url);

/** Files of npm packages the page loads, by the name it asks for under /ui/vendor/. */
const VENDOR: Record<string, string> = {
  'cronstrue.js': require.resolve('cronstrue/dist/cronstrue.min.js'),
};

/**
 * Everything the page may load or call comes from this origin: a stray CDN link or an injected
 * script would be refused by the browser, not merely unused.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
};

/** The dashboard's router, mounted at /ui before auth (`app.use('/ui', uiRouter())`). */
export function uiRouter(): Router {
  const router = Router({ strict: true });
  router.use(securityHeaders);
  // /ui -> /ui/ (relative URLs and the hash routes start from the folder).
  router.get('/', (req, res, next) => {
    if (!req.originalUrl.split('?')[0].endsWith('/')) return res.redirect(301, `${req.baseUrl}/`);
    next();
  });
  for (const [name, file] of Object.entries(VENDOR)) {
    router.get(`/vendor/${name}`, (_req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.type('js').sendFile(file);
    });
  }
  router.use(
    express.static(STATIC_DIR, {
      index: 'index.html',
      redirect: false,
      dotfiles: 'ignore',
      // Assets change with the deployment: revalidate (cheap 304s) rather than serve stale code.
      setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache'),
    }),
  );
  // Anything else under /ui is a missing asset (never the API's 401 or its route list).
  router.use((req, res) => {
    res.status(404).json({ detail: `no dashboard file ${req.baseUrl}${req.path}; the dashboard is at ${req.baseUrl}/` });
  });
  return router;
}
