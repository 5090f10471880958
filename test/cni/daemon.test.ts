/**
 * The nsnet-cni daemon and its native client: the socket's permissions, one daemon per socket,
 * stale sockets, malformed frames, serving the client's own host namespace (and declining when
 * it cannot prove which one that is, so the client falls back), idle host namespaces closed,
 * and the client falling back when the daemon is gone.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { NetworkHost } from '../../lib/host';
import { decodeReply, encodeRequest, frameLength, STATUS_DECLINED, STATUS_SERVED } from '../../lib/cni/protocol';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { ipJson } from '../helpers/oracle';
import { CLIENT, LAUNCHER, ROOT, containerId, invoke, startTestDaemon, tempStateDir } from '../helpers/cni';

/** Sends raw bytes; resolves with the reply bytes ('' when the daemon closed without one). */
function exchange(socket: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.on('error', () => resolve(Buffer.concat(chunks)));
    c.on('close', () => resolve(Buffer.concat(chunks)));
    c.on('connect', () => c.end(bytes));
  });
}

const veths = (ns?: string): string[] =>
  ipJson(['link', 'show'], ns)
    .map((l: any) => l.ifname)
    .filter((n: string) => n.startsWith('ve-'));

describe('nsnet-cni daemon and client', function () {
  this.timeout(60000);
  useSandbox();

  it('listens on a 0600 socket in a 0700 directory; a second daemon is refused; a stale socket is replaced', async () => {
    const d = await startTestDaemon();
    assert.equal(fs.statSync(d.socket).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(d.socket)).mode & 0o777, 0o700);
    const second = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js'), '--socket', d.socket], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /a daemon already runs for /u);
    d.process.kill('SIGKILL');
    await new Promise((r) => d.process.once('exit', r));
    assert.equal(fs.existsSync(d.socket), true, 'a killed daemon leaves its socket');
    const third = spawn(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js'), '--socket', d.socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    registerCleanup(() => {
      third.kill('SIGKILL');
    });
    const line = await new Promise<string>((resolve) => third.stdout!.once('data', (x) => resolve(String(x))));
    assert.equal(line.trim(), `listening ${d.socket}`);
    const v = await invoke({ command: 'VERSION', config: { cniVersion: '1.1.0' } }, d.socket);
    assert.equal(v.exitCode, 0);
  });

  it('drops malformed frames without a reply and keeps serving', async () => {
    const d = await startTestDaemon();
    const good = encodeRequest({
      pid: process.pid,
      netnsInode: fs.statSync('/proc/self/ns/net').ino,
      env: { CNI_COMMAND: 'VERSION' },
      stdin: Buffer.from('{"cniVersion":"1.0.0"}'),
    });
    const oversize = Buffer.from(good);
    oversize.writeUInt32LE(64 * 1024 * 1024, 12);
    const badEnv = encodeRequest({ pid: process.pid, netnsInode: 1, env: { PATH: '/tmp/evil' }, stdin: Buffer.alloc(0) });
    const truncated = Buffer.from(good);
    truncated.writeUInt32LE(good.length - 16 - 4, 12); // the body claims fewer bytes than its fields need
    for (const [what, bytes] of [
      ['garbage', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
      ['a wrong protocol version', Buffer.concat([Buffer.from('NSNETCNI'), Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])])],
      ['a body over the limit', oversize],
      ['a variable that is not CNI_*', badEnv],
      ['a truncated body', truncated.subarray(0, good.length - 4)],
    ] as [string, Buffer][]) {
      assert.equal((await exchange(d.socket, bytes)).length, 0, `${what}: no reply`);
    }
    const reply = await exchange(d.socket, good);
    assert.equal(frameLength(reply), reply.length);
    const r = decodeReply(reply);
    assert.equal(r.status, STATUS_SERVED);
    assert.equal(JSON.parse(r.stdout.toString()).cniVersion, '1.0.0');
    assert.equal(d.process.exitCode, null, 'the daemon is still running');
  });

  it('serves each client in its own host namespace; declines a pid it cannot match, and the client falls back', async () => {
    const d = await startTestDaemon();
    const stateDir = tempStateDir();
    const [h1, h2, h3] = await Promise.all(['dh', 'dh', 'dh'].map((p) => makeNetns(p)));
    const [c1, c2, c3] = await Promise.all(['dc', 'dc', 'dc'].map((p) => makeNetns(p)));
    // One state directory per host namespace (each host has its own networks).
    const conf = (dir: string) => ({ cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '10.44.0.0/16', stateDir: dir });
    const dirs = [stateDir, `${stateDir}/2`, `${stateDir}/3`];
    const [a, b] = await Promise.all(
      [
        [h1, c1, dirs[0]],
        [h2, c2, dirs[1]],
      ].map(([h, c, dir]) =>
        invoke({ command: 'ADD', containerId: containerId(c!), netns: `/var/run/netns/${c}`, ifname: 'eth0', host: h, config: conf(dir!) }, d.socket),
      ),
    );
    assert.equal(a!.exitCode, 0, a!.stdout);
    assert.equal(b!.exitCode, 0, b!.stdout);
    assert.deepEqual(veths(h1!), [a!.json.interfaces[0].name], 'the first host namespace got its veth');
    assert.deepEqual(veths(h2!), [b!.json.interfaces[0].name], 'the second got its own');
    assert.deepEqual(veths(), [], "nothing in the daemon's own namespace");
    // A raw request naming a pid whose namespace is not the one claimed: declined.
    const lie = decodeReply(await exchange(d.socket, encodeRequest({ pid: 1, netnsInode: 12345, env: { CNI_COMMAND: 'VERSION' }, stdin: Buffer.alloc(0) })));
    assert.equal(lie.status, STATUS_DECLINED);
    // The real client in a pid namespace of its own (its pid means another process to the
    // daemon): declined, the client runs the plugin itself, in the right namespace.
    const r = spawnSync('ip', ['netns', 'exec', h3!, 'unshare', '--pid', '--fork', CLIENT], {
      input: JSON.stringify(conf(dirs[2]!)),
      encoding: 'utf8',
      timeout: 30000,
      env: {
        PATH: process.env.PATH,
        NSNET_CNI_SOCKET: d.socket,
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: containerId('pidns'),
        CNI_NETNS: `/var/run/netns/${c3}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
      },
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(veths(h3!), [JSON.parse(r.stdout).interfaces[0].name], "the veth is in the client's host namespace");
  });

  it('closes an idle host namespace it held; the client falls back once the daemon is gone', async () => {
    const d = await startTestDaemon({ idleTimeout: 1 });
    const h = await makeNetns('ih');
    const c = await makeNetns('ic');
    const ino = String(fs.statSync(`/var/run/netns/${h}`).ino);
    const held = (): boolean =>
      fs.readdirSync(`/proc/${d.process.pid}/fd`).some((f) => {
        try {
          return fs.readlinkSync(`/proc/${d.process.pid}/fd/${f}`) === `net:[${ino}]`;
        } catch {
          return false;
        }
      });
    const conf = { cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '10.45.0.0/16', stateDir: tempStateDir() };
    // A network without DNS: a container using the daemon's resolver would keep the namespace
    // held (test/cni/dns.test.ts), which is not what this test is about.
    const pre = await NetworkHost.open({ stateDir: conf.stateDir, netns: h });
    await pre.createNetwork({ name: 'app', subnet: '10.45.0.0/16', dns: false }).finally(() => pre.close());
    const att = { containerId: containerId('idle'), netns: `/var/run/netns/${c}`, ifname: 'eth0', host: h };
    const add = await invoke({ command: 'ADD', ...att, config: conf }, d.socket);
    assert.equal(add.exitCode, 0, add.stdout);
    assert.equal(held(), true, 'the daemon holds the host namespace while it is in use');
    const deadline = Date.now() + 8000;
    while (held() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(held(), false, 'and lets it go when idle');
    await d.stop();
    assert.equal(fs.existsSync(d.socket), false, 'a stopped daemon removes its socket');
    const del = await invoke({ command: 'DEL', ...att, config: conf }, d.socket);
    assert.equal(del.exitCode, 0, `the client falls back: ${del.stdout}${del.stderr}`);
    assert.deepEqual(veths(h), []);
  });

  it('the package bin (bin/nsnet-cni) runs the client', async () => {
    const r = await invoke({ command: 'VERSION', plugin: LAUNCHER, config: { cniVersion: '0.4.0' } });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.json.cniVersion, '0.4.0');
  });
});
