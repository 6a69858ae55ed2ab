// A static check of `npm test` (test/checks.ts): no line of the product, its tests or its bench
// over 160 characters. The formatter (oxfmt) wraps code at 160 but never a string or a comment; this check
// keeps those wrapped too. Prints each long line as file:line (length).
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const MAX = 160;

const files = fs
  .globSync(['apps/**/*.{ts,js,mjs,sh}', 'libs/**/*.{ts,js,mjs}', 'test/**/*.{ts,js,mjs}', 'bench/**/*.{ts,js,mjs}', '*.{ts,js,mjs}'], { cwd: ROOT })
  .filter((f) => !f.includes('node_modules'))
  .sort();
const long: string[] = [];
for (const file of files) {
  fs.readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.length > MAX) long.push(`${file}:${i + 1} (${line.length})`);
    });
}
if (long.length) {
  process.stdout.write(`${long.length} line(s) over ${MAX} characters (wrap the string or comment):\n${long.join('\n')}\n`);
  process.exitCode = 1;
}
