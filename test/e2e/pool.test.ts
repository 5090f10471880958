/**
 * The warm pool (NetworkHost.prepare, lib/pool.ts) end to end: slots made ahead are namespaces
 * with their interface ready; connect without netns hands one over, with real traffic to its
 * published port; disconnect and removeNetwork remove what nsnet made; a prepare killed half-way
 * leaves nothing gc() cannot explain.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { NetworkHost } from '../../lib/index';
import { rejectsWith } from '../helpers/assert';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld } from '../helpers/world';
import { ask, server } from '../helpers/traffic';

const LIB = path.resolve(__dirname, '../../lib/index.js');

/** The namespaces under /var/run/netns that nsnet made for slots. */
const slotNamespaces = (): string[] =>
  sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('nsnet-'))
    .sort();

/** Links (with their alias) and firewall elements of the host namespace. */
function kernelState(h: string): { links: string[]; elements: string[] } {
  const links = ipJson(['-d', 'link', 'show'], h)
    .map((l: any) => `${l.ifname} ${l.ifalias ?? ''}`)
    .sort();
  const elements: string[] = [];
  for (const o of nftJson(h).nftables) {
    const set = o.set ?? o.map;
    for (const e of set?.elem ?? []) elements.push(`${set.table} ${set.name} ${JSON.stringify(e)}`);
  }
  return { links, elements: elements.sort() };
}

describe('warm pool: endpoints made ahead, handed over by connect', function () {
  this.timeout(120000);
  useSandbox();

  let h: string;
  let ext: string;
  let stateDir: string;
  let host: NetworkHost;

  beforeEach(async () => {
    ({ h, ext, stateDir, host } = await makeWorld({ prefix: 'w', hostIp: '10.96.0.1', extIp: '10.96.0.2' }));
    await host.createNetwork({ name: 'app', subnet: '172.26.0.0/24' });
    // The slots a test leaves (its state dir goes with the world) are removed after it.
    registerCleanup(() => {
      for (const ns of slotNamespaces()) sh('ip', ['netns', 'del', ns]);
    }, 'remove slot namespaces');
  });

  it('prepare makes ready namespaces; connect without netns takes one, with its address, route and published port; disconnect removes it', async () => {
    const before = slotNamespaces();
    assert.deepEqual(await host.prepare('app', 3), { network: 'app', ready: 3 });
    const made = slotNamespaces().filter((n) => !before.includes(n));
    assert.equal(made.length, 3, 'three namespaces made');
    for (const ns of made) {
      const eth0 = ipJson(['addr', 'show', 'eth0'], ns)[0];
      assert.ok(eth0.flags.includes('UP'), `${ns}: eth0 up`);
      assert.match(eth0.addr_info.find((a: any) => a.family === 'inet').local, /^172\.26\.0\.\d+$/);
      assert.ok(!eth0.addr_info.some((a: any) => a.family === 'inet6'), `${ns}: no IPv6 on an IPv4-only network`);
      assert.ok(
        ipJson(['route', 'show'], ns).some((r: any) => r.dst === 'default' && r.gateway === '172.26.0.1'),
        `${ns}: default route`,
      );
      assert.ok(ipJson(['link', 'show', 'lo'], ns)[0].flags.includes('UP'), `${ns}: loopback up`);
    }
    assert.deepEqual(await host.listEndpoints(), [], 'slots are no endpoints');
    assert.deepEqual(await host.prepare('app', 2), { network: 'app', ready: 3 }, 'enough ready: nothing made, nothing removed');
    assert.equal(slotNamespaces().length, before.length + 3);

    const ep = await host.connect('app', { id: 'f1', publish: [{ protocol: 'tcp', hostPort: 8093, containerPort: 80 }] });
    const ns = path.basename(ep.netns!);
    assert.ok(made.includes(ns), 'the endpoint lives in one of the slots');
    assert.equal(ep.ifname, 'eth0');
    assert.equal(ep.ipv4, `${ipJson(['addr', 'show', 'eth0'], ns)[0].addr_info.find((a: any) => a.family === 'inet').local}/24`);
    assert.equal(ep.mac, ipJson(['link', 'show', 'eth0'], ns)[0].address);
    assert.deepEqual(
      (await host.listEndpoints()).map((e) => e.id),
      ['f1'],
    );
    assert.equal(ipJson(['-d', 'link', 'show', ep.hostIfname!], h)[0].ifalias, 'nsnet:app:f1', "the host end carries the endpoint's mark");
    await server(ns, 80, 'f1');
    assert.equal(ask(ext, '10.96.0.1', 8093), 'f1 10.96.0.2', 'published and reachable');
    assert.deepEqual(
      await host.connect('app', { id: 'f1', publish: [{ protocol: 'tcp', hostPort: 8093, containerPort: 80 }] }),
      ep,
      'connecting again returns it unchanged',
    );
    assert.deepEqual(await host.prepare('app', 3), { network: 'app', ready: 3 }, 'topped up');

    await host.disconnect('app', 'f1');
    await host.reap();
    assert.ok(!slotNamespaces().includes(ns), 'its namespace removed');
    assert.equal(ask(ext, '10.96.0.1', 8093), '', 'no longer published');
    assert.equal(ipJson(['link', 'show'], h).filter((l: any) => l.ifname === ep.hostIfname).length, 0, 'its veth deleted');
  });

  it('refuses what a slot cannot give, and a network without a pool; removeNetwork removes the slots', async () => {
    await rejectsWith(() => host.connect('app', { id: 'x' }), 'ERR_INVALID_ARGUMENT', /prepare/);
    await host.prepare('app', 2);
    await rejectsWith(() => host.connect('app', { id: 'x', ipv4: '172.26.0.50' }), 'ERR_INVALID_ARGUMENT', /slot/);
    await rejectsWith(() => host.connect('app', { id: 'x', ifname: 'net1' }), 'ERR_INVALID_ARGUMENT', /slot/);
    await rejectsWith(() => host.prepare('host', 1), 'ERR_INVALID_ARGUMENT', /no warm pool/);
    await rejectsWith(() => host.prepare('nope', 1), 'ERR_NETWORK_NOT_FOUND');
    await rejectsWith(() => host.prepare('app', -1), 'ERR_INVALID_ARGUMENT');
    assert.equal(slotNamespaces().length, 2);
    await host.removeNetwork('app');
    await host.reap();
    assert.deepEqual(slotNamespaces(), [], 'the slots went with the network');
    assert.deepEqual(
      ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .filter((n: string) => n.startsWith('ve-')),
      [],
    );
  });

  it('a prepare killed half-way leaves nothing gc() cannot explain; slots survive a new process and are taken there', async () => {
    const before = kernelState(h);
    const ns0 = slotNamespaces();
    // Killed after its slots' kernel objects exist, before their records are committed.
    const code = `
      const { NetworkHost } = require(${JSON.stringify(LIB)});
      NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} }).then((nh) => nh.prepare('app', 4));`;
    const r = await new Promise<{ signal: string | null }>((resolve) =>
      execFile(process.execPath, ['-e', code], { env: { ...process.env, NSNET_STORE_CRASH_AFTER: 'prepare' }, timeout: 60000 }, (err) =>
        resolve({ signal: (err as { signal?: string } | null)?.signal ?? null }),
      ),
    );
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(slotNamespaces().length, ns0.length + 4, 'the crash left namespaces behind');
    const report = await host.gc();
    await host.reap();
    assert.equal(report.namespaces?.length, 4, JSON.stringify(report));
    assert.deepEqual(slotNamespaces(), ns0);
    assert.deepEqual(kernelState(h), before, 'and no link or element');
    // Made by one process, taken by another.
    await host.prepare('app', 2);
    const other = await NetworkHost.open({ stateDir, netns: h });
    try {
      const ep = await other.connect('app', { id: 'g1' });
      assert.ok(slotNamespaces().includes(path.basename(ep.netns!)));
      assert.deepEqual(
        (await host.listEndpoints()).map((e) => e.id),
        ['g1'],
      );
      await other.disconnect('app', 'g1');
    } finally {
      await other.close();
    }
    assert.deepEqual(await host.gc().then((g) => [g.endpoints, g.links, g.namespaces ?? []]), [[], [], []], 'nothing to collect');
  });

  it('a connect taking a slot, killed once its record is durable (committed ahead of the handover), ends whole after gc(): marked, published, answering', async () => {
    await host.prepare('app', 2);
    const slots = await host.listEndpoints();
    assert.equal(slots.length, 0, 'slots are no endpoints');
    const code = `
      const { NetworkHost } = require(${JSON.stringify(LIB)});
      NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} })
        .then((nh) => nh.connect('app', { id: 'k1', publish: [{ protocol: 'tcp', hostPort: 8097, containerPort: 80 }] }));`;
    const r = await new Promise<{ signal: string | null }>((resolve) =>
      execFile(process.execPath, ['-e', code], { env: { ...process.env, NSNET_STORE_CRASH_AFTER: 'journal' }, timeout: 60000 }, (err) =>
        resolve({ signal: (err as { signal?: string } | null)?.signal ?? null }),
      ),
    );
    assert.equal(r.signal, 'SIGKILL');
    await host.gc();
    await host.reap();
    const [ep] = await host.listEndpoints();
    assert.equal(ep?.id, 'k1', 'the record is there');
    const veth = ipJson(['-d', 'link', 'show'], h).find((l: any) => l.ifalias === 'nsnet:app:k1');
    assert.ok(veth, 'a veth carries its mark');
    const p = await server(path.basename(ep!.netns!), 80, 'k1', 'tcp');
    try {
      assert.ok(ask(ext, '10.96.0.1', 8097).startsWith('k1 '), 'its published port answers');
    } finally {
      p.kill();
    }
    await host.disconnect('app', 'k1');
    assert.deepEqual(await host.gc().then((g) => [g.endpoints, g.links]), [[], []], 'nothing to collect');
  });
});
