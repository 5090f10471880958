/**
 * Names through the CLI: `connect --name/--alias` on a network with DNS starts the nsnet daemon
 * (none runs before), which serves the names to the network's other containers, stays up while
 * the network has endpoints, resumes after a restart from its registry and exits once nothing
 * needs it; `network create --no-dns` / `--dns-upstream`; a connect that cannot have a daemon
 * still succeeds, with one warning line.
 *
 * Each test has a socket of its own (NSNET_CNI_SOCKET), so "no daemon before" is a fact, and
 * the daemons it started are killed afterwards (freshSocket).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readResolvConf } from '../../lib/dns/resolvconf';
import { ROOT, daemonsOf, freshSocket, waitFor } from '../helpers/cni';
import { DnsClient } from '../helpers/dns';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { type Result, fails, json, nsnet, stateDir } from './run';

const logOf = (socket: string): string => socket.replace(/\.sock$/u, '.log');
const registryOf = (socket: string): string => socket.replace(/\.sock$/u, '.dns.json');
const readLog = (socket: string): string => (fs.existsSync(logOf(socket)) ? fs.readFileSync(logOf(socket), 'utf8') : '');

describe('cli: names (connect --name, --alias; network create --no-dns, --dns-upstream)', function () {
  this.timeout(120000);
  useSandbox();
  let h: string;
  let socket: string;
  let run: (args: string[], env?: NodeJS.ProcessEnv) => Result;

  beforeEach(async () => {
    h = await makeNetns('dh');
    const dir = stateDir();
    socket = freshSocket(); // after the state directory: its daemons are stopped before it is removed
    run = (args, env = {}) => nsnet(['--state-dir', dir, '--host-netns', h, ...args], { NSNET_CNI_SOCKET: socket, ...env });
  });

  it('connect --name starts the daemon, which serves the names to the other containers, stays while they are connected, then exits', async () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.31.0.0/16', 'app']));
    assert.deepEqual(daemonsOf(socket), [], 'no daemon yet');
    const [c1, c2] = [await makeNetns('d1'), await makeNetns('d2')];
    // The daemon it starts exits after 1 s without requests, unless containers use its DNS.
    const r = run(['connect', 'app', 'c1', '--netns', c1, '--name', 'web', '--alias', 'www', '--alias', 'shop.internal'], { NSNET_CNI_IDLE_EXIT: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no warning: the names are served');
    const search = readResolvConf().search;
    const block = r.stdout
      .split('\n\n')[1]!
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/:\s+/u));
    assert.deepEqual(block, [
      ['Name', 'web'],
      ['Aliases', 'www, shop.internal'],
      ['Nameservers', '172.31.0.1'],
      ...(search.length ? [['Search', search.join(' ')]] : []),
      ['Options', 'ndots:0'],
    ]);
    const [d, ...more] = daemonsOf(socket);
    assert.ok(d, 'connect started a daemon');
    assert.deepEqual(more, []);
    assert.equal(d.sid, d.pid, 'detached: the leader of a session of its own');

    const ep2 = json(run(['--json', 'connect', 'app', 'c2', '--netns', c2]));
    assert.deepEqual(ep2.dns, { nameservers: ['172.31.0.1'], search, options: ['ndots:0'] });
    const client = await DnsClient.start(c2);
    for (const name of ['web', 'www', 'shop.internal', 'c1', 'WEB']) {
      assert.deepEqual(await client.resolve('172.31.0.1', name), { ok: true, result: ['172.31.0.2'] }, name);
    }
    assert.deepEqual(await client.reverse('172.31.0.1', '172.31.0.2'), { ok: true, result: ['web'] }, 'PTR names the container');
    assert.deepEqual(await client.resolve('172.31.0.1', 'nosuch'), { ok: false, code: 'ENOTFOUND' });

    // Idle for 1 s, but containers use its DNS: it says so and stays.
    assert.ok(await waitFor(() => /containers use its DNS: staying/u.test(readLog(socket)), 20000), readLog(socket));
    assert.deepEqual(
      daemonsOf(socket).map((x) => x.pid),
      [d.pid],
      'the same daemon still runs',
    );
    assert.deepEqual(await client.resolve('172.31.0.1', 'web'), { ok: true, result: ['172.31.0.2'] });

    json(run(['--json', 'disconnect', 'app', 'c1']));
    assert.deepEqual(await client.resolve('172.31.0.1', 'web'), { ok: false, code: 'ENOTFOUND' }, 'gone with its endpoint');
    json(run(['--json', 'disconnect', 'app', 'c2']));
    assert.ok(await waitFor(() => daemonsOf(socket).length === 0, 30000), 'no endpoint left: it exits when idle');
    assert.match(readLog(socket), /no request for 1 s: exiting/u);
    assert.equal(fs.existsSync(registryOf(socket)), false, 'the idle exit empties its registry');
  });

  it('a daemon killed and started again (as systemd restarts it) serves the names at once from its registry', async () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.31.0.0/16', 'app']));
    const [c1, c2] = [await makeNetns('r1'), await makeNetns('r2')];
    json(run(['--json', 'connect', 'app', 'c1', '--netns', c1, '--name', 'web']));
    json(run(['--json', 'connect', 'app', 'c2', '--netns', c2]));
    assert.deepEqual(
      JSON.parse(fs.readFileSync(registryOf(socket), 'utf8')).hosts.map((x: any) => x.netns),
      [`/var/run/netns/${h}`],
    );
    const [d] = daemonsOf(socket);
    process.kill(d!.pid, 'SIGKILL');
    assert.ok(await waitFor(() => daemonsOf(socket).length === 0, 10000));
    const again = spawn(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js'), '--socket', socket], { stdio: ['ignore', 'pipe', 'ignore'] });
    registerCleanup(() => {
      again.kill('SIGKILL');
    });
    await new Promise((resolve) => again.stdout!.once('data', resolve));
    const client = await DnsClient.start(c2);
    assert.ok(await waitFor(async () => (await client.resolve('172.31.0.1', 'web', 'A', 500)).ok, 10000), 'web resolves with no CLI command since the restart');
    assert.deepEqual(await client.resolve('172.31.0.1', 'web'), { ok: true, result: ['172.31.0.2'] });
  });

  it('--no-dns: no dns in connect, no daemon started, nothing answers on the gateway; --dns-upstream is shown and checked', async () => {
    const quiet = json(run(['--json', 'network', 'create', '--subnet', '172.32.0.0/16', '--no-dns', 'quiet']));
    assert.equal(quiet.dns, false);
    const lab = json(
      run(['--json', 'network', 'create', '--subnet', '172.33.0.0/16', '--dns-upstream', '192.0.2.53', '--dns-upstream', '[2001:db8::53]:5353', 'lab']),
    );
    assert.deepEqual(lab.dns, { upstream: ['192.0.2.53', '[2001:db8::53]:5353'] });
    const ls = run(['network', 'ls'])
      .stdout.trimEnd()
      .split('\n')
      .map((l) => l.split(/\s{2,}/u));
    assert.equal(ls[0]![5], 'DNS');
    assert.deepEqual(Object.fromEntries(ls.slice(1).map((r) => [r[0], r[5]])), {
      bridge: 'off',
      container: '-',
      host: '-',
      lab: 'on',
      none: '-',
      quiet: 'off',
    });
    assert.match(run(['network', 'inspect', 'quiet']).stdout, /^DNS: +off$/mu);
    assert.match(run(['network', 'inspect', 'lab']).stdout, /^DNS: +on, other names through 192\.0\.2\.53, \[2001:db8::53\]:5353$/mu);

    const [c1, c2] = [await makeNetns('q1'), await makeNetns('q2')];
    const ep = json(run(['--json', 'connect', 'quiet', 'c1', '--netns', c1, '--name', 'web']));
    assert.equal(ep.dns, undefined, 'no resolv.conf to write');
    assert.equal(ep.name, 'web', 'the name is recorded all the same');
    json(run(['--json', 'connect', 'quiet', 'c2', '--netns', c2]));
    assert.deepEqual(daemonsOf(socket), [], 'no daemon was started');
    assert.equal(fs.existsSync(socket), false);
    const client = await DnsClient.start(c2);
    assert.equal((await client.resolve('172.32.0.1', 'web', 'A', 1000)).ok, false, 'nothing answers on the gateway');

    const before = run(['--json', 'network', 'ls']).stdout;
    fails(run(['network', 'create', '--dns-upstream', '192.0.2', 'x']), 'ERR_INVALID_IP', 5);
    fails(run(['network', 'create', '--dns-upstream', 'fe80::1', 'x']), 'ERR_INVALID_IP', 5);
    fails(run(['network', 'create', '--no-dns', '--dns-upstream', '192.0.2.53', 'x']), 'ERR_INVALID_ARGUMENT', 5);
    fails(run(['connect', 'quiet', 'c3', '--netns', c2, '--name', 'bad name']), 'ERR_INVALID_NAME', 5);
    fails(run(['connect', 'quiet', 'c3', '--netns', c2, '--alias', '-x']), 'ERR_INVALID_NAME', 5);
    assert.equal(run(['--json', 'network', 'ls']).stdout, before, 'nothing was created');
  });

  it('when no daemon can be had (NSNET_CNI_AUTOSTART=0) connect succeeds and says the names are not served; NSNET_CNI_SOCKET=none says nothing', async () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.34.0.0/16', 'app']));
    const [c1, c2] = [await makeNetns('n1'), await makeNetns('n2')];
    const r = run(['--json', 'connect', 'app', 'c1', '--netns', c1, '--name', 'web'], { NSNET_CNI_AUTOSTART: '0' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).name, 'web', 'stdout is still the one document');
    assert.match(
      r.stderr,
      /^nsnet: warning: ERR_DNS_NOT_SERVED: names on network app resolve only while an nsnet daemon serves them \(`sudo nsnet daemon`\): no daemon listens on .* NSNET_CNI_AUTOSTART=0 /u,
    );
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
    assert.deepEqual(daemonsOf(socket), []);
    const quietly = run(['--json', 'connect', 'app', 'c2', '--netns', c2], { NSNET_CNI_SOCKET: 'none' });
    assert.deepEqual([quietly.status, quietly.stderr], [0, '']);
    assert.deepEqual(daemonsOf(socket), []);
  });
});
