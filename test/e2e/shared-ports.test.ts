/**
 * Published ports as container runtimes use them, through NetworkHost with real traffic:
 * - a runtime that holds its published host ports open itself (podman's conmon, dockerd's
 *   userland proxy) connects with `hostPortsHeldByCaller`: its socket is no conflict;
 * - one container attached to several networks publishing the same port (`podman run --network
 *   net1,net2 -p 8083:80`): the first attachment receives the traffic, the next one takes over
 *   when it leaves, the port never unpublished in between; another container is refused.
 *
 *   ext eth0 10.97.0.2, 2001:db8:97::2 ── up0 10.97.0.1, 2001:db8:97::1 [h]
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { NsnetError, type NetworkHost } from '../../lib/index';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld } from '../helpers/world';
import { ipJson, nftObjects, sh } from '../helpers/oracle';
import { ask, failed, tcp } from '../helpers/echo';

const HOST = '10.97.0.1';
const HOST6 = '2001:db8:97::1';
const PEER6 = '2001:db8:97::2';
/** The first IPv6 contact with a container just connected may wait a second (see ipv6.test.ts). */
const FIRST = 4000;

/** nsnet's published-port elements: `set key -> value owner`, sorted. */
function published(ns: string): string[] {
  const out: string[] = [];
  for (const m of nftObjects('map', ns)) {
    if (m.table !== 'nsnet' || !String(m.name).startsWith('published')) continue;
    for (const [k, val] of m.elem ?? []) out.push(`${m.name} ${JSON.stringify(k.elem.val.concat)} -> ${JSON.stringify(val.concat)} ${k.elem.comment}`);
  }
  return out.sort();
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NsnetError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

/** A TCP server in `ns` on port 80 (both families) answering with the address it was reached at: which attachment got the traffic. */
async function whoami(ns: string): Promise<void> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    require('net').createServer((c) => { c.on('error', () => {}); c.end(String(c.localAddress).replace(/^::ffff:/, '')); }).listen({ port: 80, host: '::' }, () => console.log('ready'));
    setTimeout(() => {}, 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  registerCleanup(() => {
    p.kill();
  }, `stop the server in ${ns}`);
  await new Promise((r) => p.stdout.once('data', r));
}

/** Processes in `ns` holding ports open, as a runtime reserving them does (TCP listening, UDP bound). */
async function holdPorts(ns: string, tcpPorts: number[], udpPorts: number[]): Promise<void> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const net = require('net'), dgram = require('dgram'); let n = ${tcpPorts.length + udpPorts.length};
    const up = () => { if (--n === 0) console.log('ready'); };
    for (const port of ${JSON.stringify(tcpPorts)}) net.createServer().listen({ port, host: '0.0.0.0' }, up);
    for (const port of ${JSON.stringify(udpPorts)}) dgram.createSocket('udp4').bind(port, '0.0.0.0', up);
    setTimeout(() => {}, 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  registerCleanup(() => {
    p.kill();
  }, `stop the port holder in ${ns}`);
  await new Promise((r) => p.stdout.once('data', r));
}

/**
 * A client in `ns` connecting to addr:port over and over, one connection at a time, each line
 * of its output the answer or the error; `lines` grows as they come. Stopped by the test.
 */
function hammer(ns: string, addr: string, port: number): { lines: string[]; stop: () => void } {
  const lines: string[] = [];
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const net = require('net');
    const once = () => new Promise((resolve) => {
      const c = net.connect({ host: ${JSON.stringify(addr)}, port: ${port} });
      let d = ''; const t = setTimeout(() => { c.destroy(); resolve('timeout'); }, 2000);
      c.on('data', (x) => { d += x; }); c.on('end', () => { clearTimeout(t); resolve(d || 'empty'); });
      c.on('error', (e) => { clearTimeout(t); resolve('error:' + e.code); });
    });
    (async () => { for (;;) console.log(await once()); })();`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const stop = (): void => {
    p.kill();
  };
  registerCleanup(stop, 'stop the client');
  return { lines, stop };
}

/** Waits until `cond` holds (polling), at most `ms`. */
async function until(cond: () => boolean, what: string | (() => string), ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('published ports as runtimes use them (NetworkHost, real traffic)', function () {
  this.timeout(120000);
  useSandbox();

  let h: string;
  let ext: string;
  let host: NetworkHost;

  beforeEach(async () => {
    ({ h, ext, host } = await makeWorld({ prefix: 'rp', hostIp: HOST, extIp: '10.97.0.2' }));
  });

  it("hostPortsHeldByCaller: the runtime's own socket on the port is no conflict and traffic reaches the container; another endpoint still is one", async () => {
    await host.createNetwork({ name: 'app', subnet: '172.60.0.0/24' });
    await holdPorts(h, [8080], [5353]);
    const [c1, c2] = [await makeNetns('rpa'), await makeNetns('rpb')];
    const ports = [
      { protocol: 'tcp' as const, hostPort: 8080, containerPort: 80 },
      { protocol: 'udp' as const, hostPort: 5353, containerPort: 53 },
    ];
    // By default a process on the host holding the port is a conflict (its traffic would go to the container).
    await rejects(
      host.connect('app', { id: 'c1', netns: c1, publish: ports }),
      'ERR_PORT_IN_USE',
      /held by a listening socket on the host \(0\.0\.0\.0:8080\)/u,
    );
    assert.deepEqual(published(h), []);
    await rejects(host.connect('app', { id: 'c1', netns: c1, publish: ports, hostPortsHeldByCaller: 'yes' as never }), 'ERR_INVALID_ARGUMENT');
    await host.connect('app', { id: 'c1', netns: c1, publish: ports, hostPortsHeldByCaller: true });
    await whoami(c1);
    assert.equal(tcp(ext, HOST, 8080), '172.60.0.2', 'from outside: DNAT comes before the socket on the host');
    assert.equal(tcp(h, HOST, 8080), '172.60.0.2', 'from the host itself');
    // The ledger still keeps other endpoints off the port, whoever holds sockets.
    await rejects(host.connect('app', { id: 'c2', netns: c2, publish: ports, hostPortsHeldByCaller: true }), 'ERR_PORT_IN_USE', /endpoint c1 \(network app\)/u);
    // Connecting again with the same arguments is the same endpoint.
    assert.equal((await host.connect('app', { id: 'c1', netns: c1, publish: ports, hostPortsHeldByCaller: true })).ipv4, '172.60.0.2/24');
  });

  it('one container on two networks publishing 8083: the first attachment receives; when it leaves the second takes over without a gap; another container is refused', async () => {
    await host.createNetwork({ name: 'net1', subnet: '172.61.0.0/24' });
    await host.createNetwork({ name: 'net2', subnet: '172.62.0.0/24' });
    const c = await makeNetns('rpc');
    const p = [{ protocol: 'tcp' as const, hostPort: 8083, containerPort: 80 }];
    await host.connect('net1', { id: 'ctr', netns: c, ifname: 'eth0', publish: p });
    const e2 = await host.connect('net2', { id: 'ctr', netns: c, ifname: 'eth1', publish: p });
    assert.deepEqual(e2.ports, p, 'the second attachment records the port as published');
    assert.deepEqual(published(h), ['published_any ["tcp",8083] -> ["172.61.0.2",80] ep:ctr'], "one element: the first attachment's");
    await whoami(c);
    assert.equal(tcp(ext, HOST, 8083), '172.61.0.2', 'the first attachment receives the traffic');
    // Another container (another id, or another container named) is refused.
    const o = await makeNetns('rpo');
    await rejects(host.connect('net2', { id: 'other', netns: o, publish: p }), 'ERR_PORT_IN_USE', /endpoint ctr \(network net1\)/u);
    await rejects(host.connect('net2', { id: 'ctr2', container: 'other', netns: o, publish: p }), 'ERR_PORT_IN_USE');
    // The same container on a third network mapping the port elsewhere in it is refused too.
    await host.createNetwork({ name: 'net3', subnet: '172.63.0.0/24' });
    await rejects(host.connect('net3', { id: 'ctr', netns: c, ifname: 'eth2', publish: [{ ...p[0]!, containerPort: 81 }] }), 'ERR_PORT_IN_USE');

    // The first attachment leaves while a client connects over and over: every connection is
    // answered, first by net1's address, then by net2's.
    const client = hammer(ext, HOST, 8083);
    await until(() => client.lines.length >= 5, 'answers before the disconnect');
    await host.disconnect('net1', 'ctr');
    const at = client.lines.length;
    await until(
      () => client.lines.length >= at + 10,
      () => `answers after the disconnect (so far: ${client.lines.join(' ')})`,
    );
    client.stop();
    const seen = client.lines.slice();
    assert.deepEqual(
      seen.filter((l) => l !== '172.61.0.2' && l !== '172.62.0.2'),
      [],
      'no connection refused, lost or cut',
    );
    const switched = seen.indexOf('172.62.0.2');
    assert.ok(switched > 0 && seen.slice(switched).every((l) => l === '172.62.0.2'), `one switch from net1 to net2: ${seen.join(' ')}`);
    assert.deepEqual(published(h), ['published_any ["tcp",8083] -> ["172.62.0.2",80] ep:ctr']);
    assert.deepEqual(
      ipJson(['route', 'show', 'default'], c).map((r: any) => r.gateway),
      ['172.62.0.1'],
      'the default route goes with the port (replies leave the way they came)',
    );

    // Back on net1: it waits behind net2 now. net2 leaves: net1 receives again.
    await host.reap();
    const again = (await host.connect('net1', { id: 'ctr', netns: c, ifname: 'eth0', publish: p })).ipv4!.split('/')[0]!;
    assert.equal(tcp(ext, HOST, 8083), '172.62.0.2');
    await host.disconnect('net2', 'ctr');
    assert.equal(tcp(ext, HOST, 8083), again);
    assert.deepEqual(
      ipJson(['route', 'show', 'default'], c).map((r: any) => r.gateway),
      ['172.61.0.1'],
      'the default route went with the port',
    );
    await host.disconnect('net1', 'ctr');
    assert.deepEqual(published(h), []);
    assert.equal(tcp(ext, HOST, 8083), 'error:ECONNREFUSED', 'the last one leaves: unpublished');
    await host.connect('net2', { id: 'other', netns: o, publish: p }); // free for anyone now
  });

  it('CNI-style attachments (<container>:<ifname>, container named): the owner follows the receiver; dual-stack and IPv4-only attachments split the families; reconcile and gc keep to the receivers', async () => {
    sh('ip', ['-n', h, 'addr', 'add', `${HOST6}/64`, 'dev', 'up0', 'nodad']);
    sh('ip', ['-n', ext, 'addr', 'add', `${PEER6}/64`, 'dev', 'eth0', 'nodad']);
    await host.createNetwork({ name: 'v4', subnet: '172.64.0.0/24' });
    await host.createNetwork({ name: 'ds', subnet: '172.65.0.0/24', subnet6: 'fd00:65::/64' });
    const c = await makeNetns('rpd');
    const p = [{ protocol: 'tcp' as const, hostPort: 8083, containerPort: 80 }];
    await host.connect('v4', { id: 'x:eth0', container: 'x', netns: c, ifname: 'eth0', publish: p });
    const e = await host.connect('ds', { id: 'x:eth1', container: 'x', netns: c, ifname: 'eth1', publish: p });
    assert.equal(e.container, 'x');
    assert.deepEqual(
      published(h),
      ['published_any ["tcp",8083] -> ["172.64.0.2",80] ep:x:eth0', 'published_any6 ["tcp",8083] -> ["fd00:65::2",80] ep:x:eth1'],
      'IPv4 through the first attachment; IPv6 only the second has',
    );
    await whoami(c);
    assert.deepEqual(
      ask(
        ext,
        [
          { proto: 'tcp', addr: HOST, port: 8083 },
          { proto: 'tcp', addr: HOST6, port: 8083 },
        ],
        FIRST,
      ),
      ['172.64.0.2', 'fd00:65::2'],
    );

    // reconcile after a flush puts back the receivers' elements, not the waiting ones'.
    sh('nft', ['flush', 'ruleset'], h);
    assert.equal((await host.reconcile()).firewallRebuilt, true);
    assert.deepEqual(published(h), ['published_any ["tcp",8083] -> ["172.64.0.2",80] ep:x:eth0', 'published_any6 ["tcp",8083] -> ["fd00:65::2",80] ep:x:eth1']);
    assert.deepEqual((await host.reconcile()).endpoints, [], 'nothing left to heal: a waiting attachment has no elements to miss');
    // The IPv4 attachment leaves: the dual-stack one receives both families, owned by it.
    await host.disconnect('v4', 'x:eth0');
    assert.deepEqual(published(h), ['published_any ["tcp",8083] -> ["172.65.0.2",80] ep:x:eth1', 'published_any6 ["tcp",8083] -> ["fd00:65::2",80] ep:x:eth1']);
    assert.deepEqual(
      ask(ext, [
        { proto: 'tcp', addr: HOST, port: 8083 },
        { proto: 'tcp', addr: HOST6, port: 8083 },
      ]),
      ['172.65.0.2', 'fd00:65::2'],
    );
    // The container goes away without a disconnect: gc drops it, elements and claims.
    await host.connect('v4', { id: 'x:eth0', container: 'x', netns: c, ifname: 'eth0', publish: p });
    sh('ip', ['netns', 'del', c]);
    const g = await host.gc();
    assert.deepEqual(g.endpoints.sort(), ['ds/x:eth1', 'v4/x:eth0']);
    assert.deepEqual(published(h), []);
    assert.ok(failed(tcp(ext, HOST, 8083)));
    await host.connect('ds', { id: 'y', netns: await makeNetns('rpe'), publish: p }); // free again
  });
});
