/**
 * No daemon to start by hand: a client that finds none starts one (detached, in a session of
 * its own, holding the lock), concurrent clients that all find none start exactly one, the
 * daemon exits when idle and the next client starts another; a stale socket, an unsafe socket
 * directory and NSNET_CNI_AUTOSTART=0. `nsnet daemon` in the foreground, and under socket
 * activation (systemd-socket-activate hands it a listening fd, as systemd would).
 *
 * "Served by the daemon" is proven, not assumed: these clients get NSNET_CNI_MAIN pointing at
 * a script that does not exist, so a client that fell back to running the plugin in node fails.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FileLock } from '../../lib/store/flock';
import { makeNetns, registerCleanup, uniqueName, useSandbox } from '../helpers/sandbox';
import { ipJson } from '../helpers/oracle';
import { ROOT, containerId, daemonsOf, freshSocket, invoke, tempStateDir, waitFor, type Outcome } from '../helpers/cni';

const NO_FALLBACK = '/nonexistent/nsnet-cni-main.js';
const lockOf = (socket: string): string => socket.replace(/\.sock$/u, '.lock');
const logOf = (socket: string): string => socket.replace(/\.sock$/u, '.log');
const veths = (ns: string): string[] =>
  ipJson(['link', 'show'], ns)
    .map((l: any) => l.ifname)
    .filter((n: string) => n.startsWith('ve-'));

/** Whether the daemon's lock is free (nobody holds it). */
async function lockFree(socket: string): Promise<boolean> {
  try {
    (await FileLock.acquire(lockOf(socket), { wait: false })).release();
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_LOCKED') return false;
    throw e;
  }
}

/** Environment of a client that may start a daemon and must not fall back. */
const auto = (idleExit: number, extra: Record<string, string> = {}): Record<string, string> => ({
  NSNET_CNI_AUTOSTART: '1',
  NSNET_CNI_IDLE_EXIT: String(idleExit),
  NSNET_CNI_MAIN: NO_FALLBACK,
  ...extra,
});

const ok = (r: Outcome, what: string): void => assert.equal(r.exitCode, 0, `${what}: ${r.stdout}${r.stderr}`);

describe('nsnet-cni starts its daemon when none runs', function () {
  this.timeout(120000);
  useSandbox();

  it('the first client starts a detached daemon that holds the lock and serves this and later requests', async () => {
    const socket = freshSocket();
    const h = await makeNetns('ah');
    const c = await makeNetns('ac');
    const conf = { cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '10.46.0.0/16', stateDir: tempStateDir(), hostNetns: h };
    const att = { containerId: containerId('auto'), netns: `/var/run/netns/${c}`, ifname: 'eth0' };
    assert.equal(fs.existsSync(path.dirname(socket)), false, 'not even the socket directory exists yet');

    const add = await invoke({ command: 'ADD', ...att, config: conf, env: auto(60) }, socket);
    ok(add, 'ADD');
    assert.deepEqual(veths(h), [add.json.interfaces[0].name]);
    const [d, ...more] = daemonsOf(socket);
    assert.ok(d, 'a daemon runs');
    assert.deepEqual(more, [], 'exactly one');
    assert.notEqual(d.ppid, process.pid, 'it is not a child of the test');
    assert.notEqual(d.sid, Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[3]), 'a session of its own');
    assert.equal(d.tty, 0, 'no controlling terminal');
    assert.ok(d.args.includes('--max-semi-space-size=1'), `node runs it with a small young generation: ${d.args.join(' ')}`);
    assert.match(fs.readFileSync(`/proc/${d.pid}/environ`, 'utf8'), /(^|\0)MALLOC_ARENA_MAX=2\0/u);
    assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
    assert.equal(await lockFree(socket), false, 'the daemon holds the lock');
    assert.match(fs.readFileSync(logOf(socket), 'utf8'), new RegExp(`pid ${d.pid} listening on ${socket}`, 'u'));
    assert.equal(fs.statSync(logOf(socket)).mode & 0o777, 0o600);

    const del = await invoke({ command: 'DEL', ...att, config: { ...conf, prevResult: add.json }, env: auto(60) }, socket);
    ok(del, 'DEL');
    assert.deepEqual(veths(h), []);
    assert.deepEqual(
      daemonsOf(socket).map((x) => x.pid),
      [d.pid],
      'the same daemon served the DEL',
    );

    process.kill(d.pid, 'SIGTERM');
    assert.ok(await waitFor(() => daemonsOf(socket).length === 0, 20000), 'SIGTERM stops it');
    assert.equal(fs.existsSync(socket), false, 'and it removed its socket');
    assert.equal(await lockFree(socket), true, 'and the lock is free');
  });

  it('concurrent clients that all find no daemon start exactly one, and every one is served by it', async () => {
    const socket = freshSocket();
    const h = await makeNetns('ch');
    const n = 8;
    const cs = await Promise.all(Array.from({ length: n }, () => makeNetns('cc')));
    const conf = { cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '10.47.0.0/16', stateDir: tempStateDir(), hostNetns: h };
    const adds = await Promise.all(
      cs.map((c, i) =>
        invoke({ command: 'ADD', containerId: containerId(`cc${i}`), netns: `/var/run/netns/${c}`, ifname: 'eth0', config: conf, env: auto(60) }, socket),
      ),
    );
    adds.forEach((r, i) => ok(r, `ADD ${i}`));
    assert.equal(veths(h).length, n, 'every container is connected');
    assert.equal(new Set(adds.map((r) => r.json.ips[0].address)).size, n, 'with addresses of their own');
    const ds = daemonsOf(socket);
    assert.equal(ds.length, 1, `one daemon: ${JSON.stringify(ds)}`);
    const log = fs.readFileSync(logOf(socket), 'utf8');
    assert.equal(log.match(/listening on/gu)?.length, 1, `one daemon ever started:\n${log}`);
    assert.doesNotMatch(log, /already runs/u);
  });

  it('exits when idle (its socket and lock gone); the next client starts another', async () => {
    const socket = freshSocket();
    const version = (): Promise<Outcome> => invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: auto(1) }, socket);
    ok(await version(), 'VERSION');
    const [first] = daemonsOf(socket);
    assert.ok(first, 'a daemon was started');
    assert.ok(await waitFor(() => daemonsOf(socket).length === 0, 30000), 'it exits after 1 s without requests');
    assert.equal(fs.existsSync(socket), false, 'its socket is gone');
    assert.equal(await lockFree(socket), true, 'the lock is free');
    assert.match(fs.readFileSync(logOf(socket), 'utf8'), /no request for 1 s: exiting/u);
    ok(await version(), 'VERSION after the idle exit');
    const [second] = daemonsOf(socket);
    assert.ok(second && second.pid !== first.pid, 'a new daemon serves it');
  });

  it('a daemon killed with SIGKILL leaves its socket behind: the next client starts a new one over it', async () => {
    const socket = freshSocket();
    const version = (): Promise<Outcome> => invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: auto(60) }, socket);
    ok(await version(), 'VERSION');
    const [d] = daemonsOf(socket);
    process.kill(d!.pid, 'SIGKILL');
    // Gone means its files are closed (the lock free): a dying process loses its command line
    // before its descriptors, and a client connecting in between gets no reply (it would run
    // the plugin in node, which this test forbids).
    assert.ok(await waitFor(async () => daemonsOf(socket).length === 0 && (await lockFree(socket)), 10000));
    assert.equal(fs.lstatSync(socket).isSocket(), true, 'the stale socket is still there');
    ok(await version(), 'VERSION with a stale socket');
    const [again] = daemonsOf(socket);
    assert.ok(again && again.pid !== d!.pid);
  });

  it('a daemon that goes away after accepting (as one exiting when idle may): the client asks a new one', async () => {
    const socket = freshSocket();
    fs.mkdirSync(path.dirname(socket), { mode: 0o700 });
    // A listener that takes one connection, drops it unanswered, and disappears with its socket.
    let dropped = 0;
    const fake = net.createServer((c) => {
      dropped++;
      fake.close();
      c.destroy();
    });
    await new Promise<void>((r) => fake.listen(socket, r));
    const v = await invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: auto(60) }, socket);
    ok(v, 'VERSION');
    assert.equal(dropped, 1, 'the first connection was dropped');
    assert.equal(daemonsOf(socket).length, 1, 'a real daemon, started by the client, answered');
  });

  it('NSNET_CNI_AUTOSTART=0 starts nothing; an unsafe socket directory starts nothing and says why; both run the plugin in node', async () => {
    const socket = freshSocket();
    const off = await invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: { NSNET_CNI_AUTOSTART: '0' } }, socket);
    ok(off, 'VERSION without autostart');
    assert.deepEqual(daemonsOf(socket), []);
    assert.equal(fs.existsSync(path.dirname(socket)), false, 'nothing was created');

    fs.mkdirSync(path.dirname(socket), { mode: 0o777 });
    fs.chmodSync(path.dirname(socket), 0o777); // writable by anyone, not sticky: they could replace the socket
    const unsafe = await invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: { NSNET_CNI_AUTOSTART: '1' } }, socket);
    ok(unsafe, 'VERSION with an unsafe directory (in node)');
    assert.match(unsafe.stderr, /cannot start the nsnet daemon: the socket directory .*running the plugin in node/u);
    assert.deepEqual(daemonsOf(socket), []);
    assert.equal(fs.existsSync(lockOf(socket)), false, 'no lock file was made there');
  });
});

describe('nsnet daemon (the CLI, for supervisors)', function () {
  this.timeout(120000);
  useSandbox();
  const BIN = path.join(ROOT, 'bin', 'nsnet');

  /** `nsnet daemon ARGS` in the background; resolves once it printed its first line. */
  async function cliDaemon(args: string[]): Promise<{ proc: ReturnType<typeof spawn>; line: string; exited: Promise<number | null>; stderr: () => string }> {
    const proc = spawn(process.execPath, [BIN, 'daemon', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    registerCleanup(() => {
      proc.kill('SIGKILL');
    }, 'kill nsnet daemon');
    let err = '';
    proc.stderr!.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const line = await new Promise<string>((resolve, reject) => {
      proc.stdout!.once('data', (d) => resolve(String(d).trim()));
      void exited.then((code) => reject(new Error(`nsnet daemon exited ${code}: ${err}`)));
    });
    return { proc, line, exited, stderr: () => err };
  }

  it('runs in the foreground until SIGTERM; a second one for the same socket is refused (ERR_DAEMON_RUNNING, 4)', async () => {
    const socket = freshSocket();
    const d = await cliDaemon(['--socket', socket]);
    assert.equal(d.line, `listening ${socket}`);
    const second = spawnSync(process.execPath, [BIN, 'daemon', '--socket', socket], { encoding: 'utf8', timeout: 30000 });
    assert.equal(second.status, 4, second.stderr);
    assert.match(second.stderr, /^nsnet: ERR_DAEMON_RUNNING: a daemon already runs for /u);
    const v = await invoke({ command: 'VERSION', config: { cniVersion: '0.4.0' }, env: { NSNET_CNI_MAIN: NO_FALLBACK } }, socket);
    ok(v, 'VERSION through nsnet daemon');
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.equal(fs.existsSync(socket), false);
  });

  it('--idle-exit makes it exit by itself (status 0); bad values are usage errors', async () => {
    const socket = freshSocket();
    const d = await cliDaemon(['--socket', socket, '--idle-exit', '1']);
    assert.equal(await d.exited, 0, d.stderr());
    assert.equal(fs.existsSync(socket), false);
    const bad = spawnSync(process.execPath, [BIN, 'daemon', '--socket', socket, '--idle-exit', 'soon'], { encoding: 'utf8' });
    assert.equal(bad.status, 5);
    assert.match(bad.stderr, /ERR_INVALID_ARGUMENT: --idle-exit must be a non-negative number of seconds/u);
  });

  it('socket activation: serves on the listening socket it inherits (LISTEN_FDS) and leaves it to its owner', async function () {
    if (spawnSync('systemd-socket-activate', ['--help']).error) this.skip(); // reason: systemd-socket-activate is not installed
    const socket = freshSocket();
    fs.mkdirSync(path.dirname(socket), { mode: 0o700 });
    // systemd-socket-activate binds the socket, waits for a connection, then execs the daemon
    // with the listening socket as fd 3 — what systemd does for nsnet.socket + nsnet.service.
    const act = spawn('systemd-socket-activate', ['-l', socket, process.execPath, BIN, 'daemon', '--socket', socket, '--idle-exit', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    registerCleanup(() => {
      act.kill('SIGKILL');
    }, 'kill systemd-socket-activate');
    let err = '';
    act.stderr!.on('data', (x) => {
      err += x;
    });
    const exited = new Promise<number | null>((r) => act.once('exit', (code) => r(code)));
    assert.ok(await waitFor(() => fs.existsSync(socket), 10000), `systemd-socket-activate listens: ${err}`);
    const v = await invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, env: { NSNET_CNI_MAIN: NO_FALLBACK } }, socket);
    ok(v, 'VERSION through the activated daemon');
    assert.equal(await exited, 0, err);
    assert.match(err, /socket activation/u);
    assert.equal(fs.lstatSync(socket).isSocket(), true, "the socket is its owner's: the daemon did not remove it");
  });
});

describe('installing nsnet-cni into a CNI plugin directory', function () {
  this.timeout(120000);
  useSandbox();
  const BIN = path.join(ROOT, 'bin', 'nsnet');

  function pluginDir(): string {
    const dir = path.join('/tmp', uniqueName('cnibin'));
    registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }), `rm ${dir}`);
    return dir;
  }

  it('a plain copy of bin/nsnet-cni says it cannot find its package and how to install it', async () => {
    const dir = pluginDir();
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(ROOT, 'bin', 'nsnet-cni'), path.join(dir, 'nsnet-cni'));
    fs.chmodSync(path.join(dir, 'nsnet-cni'), 0o755);
    const r = await invoke({ command: 'VERSION', config: { cniVersion: '1.0.0' }, plugin: path.join(dir, 'nsnet-cni') });
    assert.equal(r.exitCode, 1);
    assert.equal(r.json.code, 100);
    assert.equal(r.json.details, 'ERR_NOT_INSTALLED');
    assert.match(r.json.msg, /nsnet cni install --bin-dir/u);
  });

  it('`nsnet cni install --bin-dir DIR` writes a launcher that works from there: ADD and DEL through it', async () => {
    const dir = pluginDir();
    const r = spawnSync(process.execPath, [BIN, '--json', 'cni', 'install', '--bin-dir', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const plugin = path.join(dir, 'nsnet-cni');
    assert.equal(doc.installed, plugin);
    assert.equal(doc.package, ROOT);
    assert.equal(fs.statSync(plugin).mode & 0o777, 0o755);
    // Like a runtime: CNI_PATH=DIR and a small environment; autostart on, no fallback allowed.
    const socket = freshSocket();
    const h = await makeNetns('ih');
    const c = await makeNetns('ic');
    const conf = { cniVersion: '1.0.0', name: 'app', type: 'nsnet-cni', subnet: '10.48.0.0/16', stateDir: tempStateDir(), hostNetns: h };
    const att = { containerId: containerId('inst'), netns: `/var/run/netns/${c}`, ifname: 'eth0', plugin };
    const env = { ...auto(60), CNI_PATH: dir, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const add = await invoke({ command: 'ADD', ...att, config: conf, env }, socket);
    ok(add, 'ADD through the installed plugin');
    assert.deepEqual(veths(h), [add.json.interfaces[0].name]);
    const del = await invoke({ command: 'DEL', ...att, config: { ...conf, prevResult: add.json }, env }, socket);
    ok(del, 'DEL through the installed plugin');
    assert.deepEqual(veths(h), []);
    assert.equal(daemonsOf(socket).length, 1, 'served by the daemon it started');

    // Reinstalling replaces the launcher; a file nsnet did not write is kept unless --force.
    assert.equal(spawnSync(process.execPath, [BIN, 'cni', 'install', '--bin-dir', dir]).status, 0);
    fs.writeFileSync(plugin, '#!/bin/sh\necho someone else\n');
    const refused = spawnSync(process.execPath, [BIN, 'cni', 'install', '--bin-dir', dir], { encoding: 'utf8' });
    assert.equal(refused.status, 4);
    assert.match(refused.stderr, /ERR_PLUGIN_EXISTS/u);
    assert.equal(fs.readFileSync(plugin, 'utf8'), '#!/bin/sh\necho someone else\n');
    assert.equal(spawnSync(process.execPath, [BIN, 'cni', 'install', '--bin-dir', dir, '--force']).status, 0);
    assert.match(fs.readFileSync(plugin, 'utf8'), /^pkg='/mu);
  });
});
