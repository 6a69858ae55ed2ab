// Preloaded into a process under test (NODE_OPTIONS="--import <this file>"): records every module
// the process loads (import and require, through node:module's hooks) and on SIGUSR2 writes them
// to stderr, one `LOADED_MODULE <url>` line each, then `LOADED_MODULES <count>`, so a test can see
// what a role loads.
import { registerHooks } from 'node:module';

const loaded = new Set<string>();
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('SIGUSR2', () => {
  const urls = [...loaded];
  process.stderr.write(`${urls.map((u) => `LOADED_MODULE ${u}\n`).join('')}LOADED_MODULES ${urls.length}\n`);
});
