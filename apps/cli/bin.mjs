#!/usr/bin/env node
// The `agentcron` command on the PATH (package.json "bin"): plain JavaScript, so any Node can
// start it. The CLI is TypeScript run by Node 24's type stripping: on Node 24 or newer this file
// runs it in place; on an older Node (a system Node 20) it runs it on the package's own Node 24
// (the `node` package in node_modules: a devDependency, or `npm install node@24` beside an
// installed agentcron), or says in one line what is missing. Node refuses to strip types of files
// under node_modules (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), where an installed agentcron
// lives, so the TypeScript files are stripped by a load hook instead (ts-hooks.mjs).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NEEDED = 24;
const here = fileURLToPath(import.meta.url);
const major = (version) => Number(String(version).replace(/^v/, '').split('.')[0]);

if (major(process.versions.node) >= NEEDED) {
  await import('./ts-hooks.mjs');
  await import(pathToFileURL(path.join(path.dirname(here), 'main.ts')).href);
} else {
  const node = ownNode();
  if (node === null) {
    process.stderr.write(
      `agentcron: needs Node.js ${NEEDED} (this is Node ${process.version}) and found no Node ${NEEDED} in node_modules/node; ` +
        `run it with Node ${NEEDED}, or install one beside it: npm install node@${NEEDED}\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, [here, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`agentcron: cannot start ${node}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/** The `node` package's binary (node_modules/node/bin/node) when it is Node 24 or newer, else null. */
function ownNode() {
  let dir;
  try {
    dir = path.dirname(createRequire(here).resolve('node/package.json'));
  } catch {
    return null;
  }
  try {
    if (major(JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version) < NEEDED) return null;
  } catch {
    return null;
  }
  const bin = path.join(dir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  return existsSync(bin) ? bin : null;
}
