import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { assertInSandbox, makeNetns, netnsInode, uniqueName, useSandbox, withNetns } from '../helpers/sandbox';
import { countFds, countThreads, ipJson } from '../helpers/oracle';

describe('test sandbox', () => {
  useSandbox();

  it('runs inside its own network namespace', () => {
    assertInSandbox();
    assert.strictEqual(process.env.NSNET_SANDBOX, netnsInode());
  });

  it('gives distinct names of at most 15 bytes', () => {
    const names = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const n = uniqueName(i % 2 ? 'a-very-long-prefix' : 'v');
      assert.ok(Buffer.byteLength(n) <= 15, n);
      names.add(n);
    }
    assert.strictEqual(names.size, 2000);
  });

  it('creates namespaces and tears them down', async () => {
    let name = '';
    await withNetns((ns) => {
      name = ns;
      const lo = ipJson(['link', 'show', 'lo'], ns);
      assert.ok(lo[0].flags.includes('UP'));
    });
    const left = ipJson(['netns', 'list']).map((n: { name: string }) => n.name);
    assert.ok(!left.includes(name));
    assert.ok(countFds() > 2 && countThreads() >= 1);
  });

  let registered = '';
  it('registers a namespace for teardown after the test', async () => {
    registered = await makeNetns('gd');
    assert.ok(ipJson(['netns', 'list']).some((n: { name: string }) => n.name === registered));
  });

  it('... and it is gone once that test ended', () => {
    assert.ok(registered);
    assert.ok(!ipJson(['netns', 'list']).some((n: { name: string }) => n.name === registered));
  });

  it('the runner refuses to run outside the sandbox it makes', () => {
    const env = { ...process.env };
    delete env.NSNET_SANDBOX;
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'scripts', 'test.js')], { env, encoding: 'utf8' });
    assert.strictEqual(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /sandbox|namespace/i);
  });

  const ROOT = path.join(__dirname, '..', '..', '..');
  const BENCH = path.join(ROOT, 'dist', 'bench', 'run.js');
  const TEST = path.join(ROOT, 'scripts', 'test.js');

  it('the bench refuses to run outside the sandbox', () => {
    const env = { ...process.env };
    delete env.NSNET_SANDBOX;
    const r = spawnSync(process.execPath, [BENCH, '--list'], { env, encoding: 'utf8' });
    assert.strictEqual(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /bench: refusing to run outside the private network namespace/);
    assert.strictEqual(r.stdout, '', 'no suite was listed');
  });

  // A process in another network namespace that sets NSNET_SANDBOX to that namespace's inode:
  // only the marker file (written by scripts/sandbox.js, naming the sandbox's own namespace)
  // tells it apart. The namespace is a throw-away one made by `unshare --net` inside the sandbox.
  for (const [who, args, refusal] of [
    ['the test runner', [TEST, 'test/unit/sandbox-guard.test.ts'], /test: not inside the nsnet test sandbox/],
    ['the bench', [BENCH, '--list'], /bench: refusing to run outside/],
  ] as const) {
    it(`${who} checks the marker file, not only NSNET_SANDBOX`, () => {
      const script = 'NSNET_SANDBOX=$(stat -Lc %i /proc/self/ns/net) exec "$0" "$@"';
      const r = spawnSync('unshare', ['--net', 'sh', '-c', script, process.execPath, ...args], { encoding: 'utf8' });
      assert.strictEqual(r.status, 2, r.stdout + r.stderr);
      assert.match(r.stderr, refusal);
      assert.match(r.stderr, /\/run\/nsnet-sandbox says \d+, this network namespace is \d+/);
    });
  }
});
