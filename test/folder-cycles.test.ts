// No import cycles between libs/ folders (type-only imports included): each folder is one concern,
// and a cycle would mean two concerns that cannot be read, tested or loaded apart. Reads every
// import of libs/**/*.{ts,js} (static, dynamic and JSDoc `import('...')` types) and fails naming
// the cycle's folders.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..');
const LIBS = path.join(ROOT, 'libs');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

/** folder -> the folders its files import. */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of fs.globSync('libs/**/*.{ts,js}', { cwd: ROOT })) {
    const from = file.split('/')[1];
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const [, spec] of fs.readFileSync(path.join(ROOT, file), 'utf8').matchAll(IMPORT)) {
      if (!spec.startsWith('.')) continue;
      const target = path.relative(LIBS, path.resolve(ROOT, path.dirname(file), spec));
      const to = target.split(path.sep)[0];
      if (!target.startsWith('..') && to !== from) edges.add(to);
    }
  }
  return graph;
}

/** The first cycle found, as its folders, or null. */
export function findCycle(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === 'done') return null;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      const found = visit(next);
      if (found) return found;
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

test('no import cycle between libs/ folders', () => {
  const graph = folderGraph();
  assert.ok(graph.size > 10, `read ${graph.size} folders`);
  assert.ok(graph.get('http')?.has('crons'), 'the reader sees imports (libs/http imports libs/crons)');
  const cycle = findCycle(graph);
  assert.equal(cycle, null, `libs/ folders import each other in a cycle: ${cycle?.join(' -> ')}`);
});

test('the cycle finder names a cycle it is given', () => {
  const graph = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a'])],
    ['d', new Set(['a'])],
  ]);
  assert.deepEqual(findCycle(graph), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(new Map([['a', new Set(['b'])]])), null);
});
