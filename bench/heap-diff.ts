// Compares two V8 heap snapshots of the same process (bench/memory-soak.ts takes them):
// `node bench/heap-diff.ts a.heapsnapshot b.heapsnapshot [top]`. Prints the totals of each, the
// groups (node type + constructor or name) whose count or self size changed most, and what B holds
// that was allocated after A (objects with an id above A's highest: V8 keeps ids across snapshots
// of one process), grouped the same way. A leak shows as a group that grows from snapshot to
// snapshot and as many objects allocated after A still alive in B.
import { readFileSync } from 'node:fs';

interface Snapshot {
  nodes: number;
  bytes: number;
  maxId: number;
  groups: Map<string, { count: number; bytes: number }>;
  ids: Int32Array | number[];
  keys: string[];
  sizes: number[];
}

function load(file: string): Snapshot {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const [fType, fName, fId, fSize] = ['type', 'name', 'id', 'self_size'].map((f) => fields.indexOf(f));
  const groups = new Map<string, { count: number; bytes: number }>();
  const ids: number[] = [];
  const keys: string[] = [];
  const sizes: number[] = [];
  let bytes = 0;
  let maxId = 0;
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + fType]];
    let name = raw.strings[raw.nodes[i + fName]];
    // Strings and code are grouped by their type alone (their names are their contents).
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const size = raw.nodes[i + fSize];
    const id = raw.nodes[i + fId];
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
    ids.push(id);
    keys.push(key);
    sizes.push(size);
    bytes += size;
    if (id > maxId) maxId = id;
  }
  return { nodes: ids.length, bytes, maxId, groups, ids, keys, sizes };
}

const [fileA, fileB, topArg] = process.argv.slice(2);
if (!fileA || !fileB) {
  process.stderr.write('usage: node bench/heap-diff.ts a.heapsnapshot b.heapsnapshot [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 20);
const a = load(fileA);
const b = load(fileB);
const mb = (x: number) => `${(x / 1048576).toFixed(2)} MB`;
const say = (line = '') => process.stdout.write(`${line}\n`);
say(`A: ${a.nodes} objects, ${mb(a.bytes)}; B: ${b.nodes} objects, ${mb(b.bytes)}; change ${b.nodes - a.nodes} objects, ${mb(b.bytes - a.bytes)}`);

const diff = [...new Set([...a.groups.keys(), ...b.groups.keys()])].map((key) => {
  const ga = a.groups.get(key) ?? { count: 0, bytes: 0 };
  const gb = b.groups.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: gb.count - ga.count, bytes: gb.bytes - ga.bytes, countB: gb.count, bytesB: gb.bytes };
});
say(`\ngroups whose self size grew most (B - A):`);
for (const d of diff.sort((x, y) => y.bytes - x.bytes).slice(0, top))
  say(`  ${String(d.bytes).padStart(10)} B ${String(d.count).padStart(7)} objects  ${d.key}  (B: ${d.countB}, ${d.bytesB} B)`);
say(`\ngroups whose count grew most (B - A):`);
for (const d of diff.sort((x, y) => y.count - x.count).slice(0, top))
  say(`  ${String(d.count).padStart(7)} objects ${String(d.bytes).padStart(10)} B  ${d.key}`);

const young = new Map<string, { count: number; bytes: number }>();
let youngCount = 0;
let youngBytes = 0;
for (let i = 0; i < b.nodes; i++) {
  if (b.ids[i] <= a.maxId) continue;
  const g = young.get(b.keys[i]) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += b.sizes[i];
  young.set(b.keys[i], g);
  youngCount++;
  youngBytes += b.sizes[i];
}
say(`\nobjects in B allocated after A (still alive): ${youngCount}, ${mb(youngBytes)}; largest groups:`);
for (const [key, g] of [...young].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, top))
  say(`  ${String(g.bytes).padStart(10)} B ${String(g.count).padStart(7)} objects  ${key}`);
