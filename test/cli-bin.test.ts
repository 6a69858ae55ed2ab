import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from './support/processes.ts';

// The `agentcron` bin as a user gets it: from the `npm pack` tarball, unpacked as npm installs a
// package (node_modules/agentcron, its bin linked in node_modules/.bin), run with the system Node
// (older than 24 on this machine: the launcher apps/cli/bin.mjs runs the TypeScript CLI on the
// package's own Node 24, stripping types under node_modules itself). The dependencies are the
// project's (a symlink), so nothing is downloaded; without a Node 24 among them the bin says so.

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** PATH without any node_modules/.bin: `node` and `npm` are the system's. */
const systemPath = (process.env.PATH ?? '/usr/bin:/bin')
  .split(':')
  .filter((p) => !p.includes('node_modules'))
  .join(':');

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { PATH: systemPath, HOME: process.env.HOME ?? '/root', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Unpacks the tarball as an installed package under `dir`, with `deps` as its node_modules. */
async function install(dir: string, tarball: string, deps: string): Promise<string> {
  const pkg = path.join(dir, 'node_modules', 'agentcron');
  mkdirSync(pkg, { recursive: true });
  mkdirSync(path.join(dir, 'node_modules', '.bin'));
  const untar = await run('tar', ['xzf', tarball, '-C', pkg, '--strip-components=1'], dir);
  assert.equal(untar.code, 0, untar.stderr);
  symlinkSync(deps, path.join(pkg, 'node_modules'));
  // Linked as npm links a bin: the path package.json names.
  const { bin } = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { bin: { agentcron: string } };
  symlinkSync(path.join('../agentcron', bin.agentcron), path.join(dir, 'node_modules', '.bin', 'agentcron'));
  return path.join(dir, 'node_modules', '.bin', 'agentcron');
}

describe('the agentcron bin from an npm pack tarball, on the system Node', () => {
  let tmp: string;
  let tarball: string;
  let systemNode: string;

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'agentcron-bin-'));
    const version = await run('node', ['--version'], tmp);
    systemNode = version.stdout.trim();
    const packed = await run('npm', ['pack', '--silent', '--pack-destination', tmp], ROOT);
    assert.equal(packed.code, 0, packed.stderr);
    tarball = path.join(tmp, packed.stdout.trim().split('\n').pop()!);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('installed with a Node 24 among its dependencies: --help, a command, and npx agentcron --help', async () => {
    const dir = path.join(tmp, 'with-node');
    const bin = await install(dir, tarball, realpathSync(path.join(ROOT, 'node_modules')));
    const [help, unreachable, npx] = await Promise.all([
      run(bin, ['--help'], dir),
      run(bin, ['crons', 'get', 'daily report', '--url', 'http://127.0.0.1:9'], dir),
      run('npx', ['--offline', 'agentcron', '--help'], dir),
    ]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: agentcron /);
    assert.match(help.stdout, /^runs ls\|list /m);
    assert.equal(help.stderr, '', `no warnings on Node ${systemNode}`);
    // The TypeScript CLI ran (from under node_modules): its own message for an API it cannot reach.
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^agentcron: cannot reach the API at http:\/\/127\.0\.0\.1:9 /);
    assert.equal(npx.code, 0, npx.stderr);
    assert.match(npx.stdout, /^usage: agentcron /, "npx prints agentcron's help, not npm's");
    assert.doesNotMatch(npx.stderr, /EBADENGINE/);
  });

  test('without a Node 24 it says so in one line', async (t) => {
    if (Number(systemNode.replace(/^v/, '').split('.')[0]) >= 24) {
      t.diagnostic(`the system Node is ${systemNode}: it runs the CLI itself, nothing to refuse`);
    }
    const deps = path.join(tmp, 'deps-without-node');
    mkdirSync(deps);
    const real = realpathSync(path.join(ROOT, 'node_modules'));
    for (const entry of readdirSync(real)) if (entry !== 'node' && entry !== '.bin') symlinkSync(path.join(real, entry), path.join(deps, entry));
    const bin = await install(path.join(tmp, 'without-node'), tarball, deps);
    const r = await run(bin, ['--help'], tmp);
    if (Number(systemNode.replace(/^v/, '').split('.')[0]) >= 24) {
      assert.equal(r.code, 0, r.stderr);
      return;
    }
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `agentcron: needs Node.js 24 (this is Node ${systemNode}) and found no Node 24 in node_modules/node; run it with Node 24, or install ` +
        `one beside it: npm install node@24\n`,
    );
  });
});
