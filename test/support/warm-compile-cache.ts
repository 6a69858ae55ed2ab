// Run by test/run.ts before the test files start: loads every libs/ module (and so the packages
// they use) once, so that V8's compile cache (NODE_COMPILE_CACHE) holds them when the suite's
// processes start. In a cold cache each of the first processes, started together, compiled the
// same ~800 modules and wrote the same entries at its exit: 0.2-0.7 s of system CPU apiece on this
// disk, more than the cache saves them. Loading only: nothing here connects or listens.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const LIBS = path.resolve(import.meta.dirname, '../../libs');
const entries = readdirSync(LIBS, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => path.join(LIBS, d.name, 'index.ts'));
await Promise.all(entries.map((file) => import(pathToFileURL(file).href)));
// A module may leave a handle open (a logger's stream); the cache is written at exit all the same.
process.exit(0);
