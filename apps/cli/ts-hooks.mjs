// Imported first (apps/cli/bin.mjs, or `node --import` for a child), on Node 24 or newer: lets
// agentcron's TypeScript files run from under node_modules, where Node refuses to strip types
// itself (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), as in an installed package.
import { readFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';

// stripTypeScriptTypes warns that it is experimental on every run: not the user's concern.
const emitWarning = process.emitWarning;
process.emitWarning = (warning, ...rest) => {
  if (String(warning?.message ?? warning).includes('stripTypeScriptTypes')) return;
  emitWarning.call(process, warning, ...rest);
};

registerHooks({
  load(url, context, nextLoad) {
    if (url.startsWith('file:') && url.endsWith('.ts') && url.includes('/node_modules/')) {
      return { format: 'module', source: stripTypeScriptTypes(readFileSync(new URL(url), 'utf8')), shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});
