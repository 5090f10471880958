/**
 * `nsnet demo` end to end (inside the test sandbox): it runs to completion with every mode
 * working, and a SIGINT or SIGTERM in the middle leaves nothing behind.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { sh } from '../helpers/oracle';
import * as path from 'node:path';
import { installedCopy } from '../helpers/checkout';
import { BIN, fails, nsnet, type Result } from './run';

/** Every network namespace some process of the sandbox is in, and the named ones. */
function namespaces(): string[] {
  const inodes = new Set<string>();
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/u.test(p))) {
    try {
      inodes.add(fs.readlinkSync(`/proc/${pid}/ns/net`));
    } catch {
      /* gone meanwhile */
    }
  }
  return [
    ...inodes,
    ...sh('ip', ['netns', 'list'])
      .split('\n')
      .filter(Boolean)
      .map((n) => `named ${n}`),
  ].sort();
}

async function settle(want: string[], ms = 5000): Promise<string[]> {
  const until = Date.now() + ms;
  let now = namespaces();
  while (JSON.stringify(now) !== JSON.stringify(want) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    now = namespaces();
  }
  return now;
}

describe('cli: demo', function () {
  this.timeout(120000);

  it('runs every mode to completion with real traffic and reports each step as working', async () => {
    const before = namespaces();
    const r = spawnSync(process.execPath, [BIN, '--json', 'demo'], { encoding: 'utf8', timeout: 110000 });
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { ok: boolean; steps: { mode: string; check: string; result: string; detail: string }[] };
    assert.equal(report.ok, true);
    const failed = report.steps.filter((s) => s.result === 'FAILED');
    assert.deepEqual(failed, []);
    for (const mode of ['host', 'bridge', 'none', 'container', 'macvlan', 'overlay', 'teardown', 'machine'])
      assert.ok(
        report.steps.some((s) => s.mode === mode && s.result === 'ok'),
        `${mode} has working steps`,
      );
    assert.deepEqual(
      report.steps.filter((s) => s.result === 'SKIPPED'),
      [],
    );
    for (const check of [
      'a second claim of port 8000 is refused',
      'the published port answers the external peer',
      "egress leaves with the host's address (masquerade)",
      'replies find their way back through conntrack',
      'the lan peer reaches the container directly at its own address',
      'oc1 on host1 reaches oc2 on host2 across VXLAN (UDP 4789 on the underlay)',
    ])
      assert.ok(
        report.steps.some((s) => s.check === check && s.result === 'ok'),
        check,
      );
    // The narrative and the table go to stderr with --json.
    assert.match(r.stderr, /^▸ bridge: /mu);
    assert.match(r.stderr, /^ {2}\$ nsnet connect web web1 --netns nsdemo-\w+-web -p 8080:80$/mu);
    assert.match(r.stderr, /^MODE +CHECK +RESULT +DETAIL$/mu);
    const state = /^state: (\S+)$/mu.exec(r.stderr)![1]!;
    assert.equal(fs.existsSync(state), false, 'the state directory is gone');
    assert.deepEqual(await settle(before), before, 'no namespace left behind');
  });

  for (const [signal, status] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} in the middle stops it and leaves no namespace, process or state behind`, async () => {
      const before = namespaces();
      const p = spawn(process.execPath, [BIN, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => {
        out += String(d);
      });
      p.stderr.on('data', (d) => {
        err += String(d);
      });
      const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
      const until = Date.now() + 60000;
      while (!/\[ok\] {3}create a bridge network/u.test(out) && Date.now() < until && p.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /\[ok\] {3}create a bridge network/u, `the demo got to the bridge section: ${out}${err}`);
      const during = namespaces();
      assert.ok(during.length > before.length, 'the demo has namespaces of its own while it runs');
      p.kill(signal);
      assert.equal(await exited, status);
      assert.match(out, new RegExp(`${signal}: stopping and removing what the demo made`, 'u'));
      assert.match(out, /^removed the demo's namespaces, processes and /mu);
      assert.doesNotMatch(out, /could not clean up/u);
      assert.match(err, new RegExp(`^nsnet: ERR_INTERRUPTED: interrupted by ${signal}`, 'mu'));
      const state = /^state: (\S+)$/mu.exec(out)![1]!;
      assert.equal(fs.existsSync(state), false, 'the state directory is gone');
      assert.deepEqual(await settle(before), before, 'no namespace left behind');
    });
  }

  it('kill -9 of the demo still leaves no namespace behind (they live in its private mount namespace)', async () => {
    const before = namespaces();
    const p = spawn(process.execPath, [BIN, 'demo'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += String(d);
    });
    const until = Date.now() + 60000;
    while (!/\[ok\] {3}create a bridge network/u.test(out) && Date.now() < until && p.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const state = /^state: (\S+)$/mu.exec(out)![1]!;
    // The demo runs as the child of `nsnet demo` (unshare executes it in place).
    const inner = fs.readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/u).map(Number);
    assert.equal(inner.length, 1);
    process.kill(inner[0]!, 'SIGKILL');
    p.kill('SIGKILL');
    try {
      assert.deepEqual(await settle(before, 10000), before, 'no namespace left behind');
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });

  // As an unprivileged user, from a copy of nsnet as installed: the checkout itself may live
  // where only root can read (a `mktemp -d` directory), which is not what this test is about.
  const asNobody = (bin: string, args: string[]): Result => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('explains itself and exits 6 when not run as root', () => {
    const r = asNobody(path.join(installedCopy(), 'bin', 'nsnet'), ['demo']);
    fails(r, 'ERR_NOT_ROOT', 6);
    assert.match(r.stderr, /nsnet demo shows every network mode/u);
    assert.equal(nsnet(['demo', '--help']).status, 0);
  });

  it('a package its user cannot read, or never built: one clear line, no stack', () => {
    const copy = installedCopy();
    fs.chmodSync(path.join(copy, 'dist'), 0o700); // root's only
    const r = asNobody(path.join(copy, 'bin', 'nsnet'), ['--version']);
    fails(r, 'ERR_NOT_READABLE', 6);
    assert.match(r.stderr, /user 65534 cannot read .*dist/u);
    assert.doesNotMatch(r.stderr, /\n\s+at /u, 'no stack');
    fs.rmSync(path.join(copy, 'dist'), { recursive: true });
    const b = spawnSync(process.execPath, [path.join(copy, 'bin', 'nsnet'), '--version'], { encoding: 'utf8' });
    fails({ status: b.status, stdout: b.stdout, stderr: b.stderr }, 'ERR_NOT_BUILT', 1);
    assert.match(b.stderr, /never built \(run npm install/u);
  });
});
