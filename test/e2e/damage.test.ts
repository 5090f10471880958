/**
 * Damaged state documents (damage from outside: a disk, a hand), through NetworkHost: what does
 * not need a damaged document keeps working (listings leave it out with a warning naming the
 * file), what needs it fails with ERR_STORE_CORRUPT naming the file, and gc() repairs — a
 * record rebuilt from the kernel's marks equals the one that was lost (but `created`), one that
 * cannot be rebuilt is dropped with what it held released, and the damaged bytes are kept as
 * `<name>.damaged`. Oracles: the state files, `ip -j`, `nft -j`, and real traffic.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetworkHost, type StateWarning } from '../../lib/index';
import { rejectsWith } from '../helpers/assert';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { makeWorld, type World } from '../helpers/world';
import { ask, server } from '../helpers/traffic';

const TRUNCATED = '{"trunc';

/** A state file's path: `collection/key.json` (keys URI-encoded, as the store names them). */
const file = (stateDir: string, collection: string, key: string): string => path.join(stateDir, collection, `${encodeURIComponent(key)}.json`);
/** A document's value as the store holds it, or undefined. */
function doc(stateDir: string, collection: string, key: string): any {
  try {
    return JSON.parse(fs.readFileSync(file(stateDir, collection, key), 'utf8')).value;
  } catch {
    return undefined;
  }
}
/** Damages a document the way a disk or a hand would: its file cut short. */
function damage(stateDir: string, collection: string, key: string, text = TRUNCATED): string {
  const f = file(stateDir, collection, key);
  assert.ok(fs.existsSync(f), `${f} exists`);
  fs.writeFileSync(f, text);
  return f;
}
const withoutCreated = ({ created: _created, ...rest }: any): any => rest;
/** nsnet's set and map elements owned by `owner` in the host namespace. */
function elementsOf(h: string, owner: string): string[] {
  const out: string[] = [];
  for (const o of nftJson(h).nftables) {
    const set = o.set ?? o.map;
    for (const e of set?.elem ?? []) if (JSON.stringify(e).includes(`"${owner}"`)) out.push(`${set.name} ${JSON.stringify(e)}`);
  }
  return out.sort();
}
const linkNames = (ns: string): string[] =>
  ipJson(['link', 'show'], ns)
    .map((l: any) => l.ifname)
    .sort();

describe('damaged state documents (NetworkHost)', function () {
  this.timeout(120000);
  useSandbox();

  let world: World;
  let h: string;
  let ext: string;
  let stateDir: string;
  let host: NetworkHost;
  let c1: string;
  let c2: string;
  /** What the host's onWarning heard (emptied by hand). */
  const warnings: StateWarning[] = [];

  /** A host that collects its warnings. */
  async function reopen(): Promise<void> {
    await host.close();
    warnings.length = 0;
    host = world.host = await NetworkHost.open({ stateDir, netns: h, onWarning: (w) => warnings.push(w) });
  }

  beforeEach(async () => {
    world = await makeWorld({ prefix: 'd', hostIp: '10.96.0.1', extIp: '10.96.0.2' });
    ({ h, ext, stateDir, host } = world);
    c1 = await makeNetns('dc1');
    c2 = await makeNetns('dc2');
    await reopen();
    await host.createNetwork({ name: 'app', subnet: '172.26.0.0/24' });
    await host.connect('app', {
      id: 'c1',
      netns: c1,
      publish: [
        { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostPort: 9000, hostPortEnd: 9001, containerPort: 9000 },
      ],
    });
    await host.connect('app', { id: 'c2', netns: c2 });
  });

  it('listings leave a damaged endpoint out and warn naming the file; what needs it fails naming the file; the rest works', async () => {
    const f = damage(stateDir, 'endpoints', 'app/c1');
    assert.deepEqual((await host.listNetworks()).map((n) => n.name).sort(), ['app', 'bridge', 'container', 'host', 'none']);
    assert.equal(warnings.length, 0, 'the networks do not need the endpoint');
    assert.deepEqual(
      (await host.listEndpoints()).map((e) => e.id),
      ['c2'],
    );
    assert.deepEqual(
      warnings.map((w) => [w.code, w.document.file, w.document.collection, w.document.key]),
      [['WARN_STORE_DAMAGED', f, 'endpoints', 'app/c1']],
    );
    assert.ok(
      warnings[0]!.message.includes(`${f} is damaged (not valid JSON (truncated?)): endpoint c1 of network app is left out; \`nsnet gc\``),
      warnings[0]!.message,
    );
    warnings.length = 0;
    assert.deepEqual(
      (await host.inspectNetwork('app')).endpoints.map((e) => e.id),
      ['c2'],
    );
    assert.equal(warnings.length, 1);
    warnings.length = 0;
    assert.deepEqual((await host.inspectNetwork('bridge')).endpoints, []);
    assert.deepEqual(await host.listEndpoints('bridge'), []);
    assert.equal(warnings.length, 0, "another network's listing does not need it");
    // What needs it: ERR_STORE_CORRUPT naming the file.
    for (const op of [() => host.disconnect('app', 'c1'), () => host.connect('app', { id: 'c1', netns: c1 })]) {
      await assert.rejects(op(), (e: any) => e.code === 'ERR_STORE_CORRUPT' && e.details.file === f && e.message.includes(f));
    }
    // What does not: another endpoint comes and goes; another network is made and removed.
    const c3 = await makeNetns('dc3');
    const ep3 = await host.connect('app', { id: 'c3', netns: c3 });
    assert.notEqual(ep3.ipv4, '172.26.0.2/24', "c1's leased address is not handed out again");
    await host.disconnect('app', 'c3');
    await host.createNetwork({ name: 'other', subnet: '172.27.0.0/24' });
    await host.removeNetwork('other');
    // Removing app needs all of its endpoints: the damaged one may be one.
    await host.disconnect('app', 'c2');
    await assert.rejects(host.removeNetwork('app'), (e: any) => e.code === 'ERR_STORE_CORRUPT' && e.details.file === f && e.details.network === 'app');
    // reconcile heals the others and reports it.
    const r = await host.reconcile();
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.network, p.endpoint, p.file]),
      [['ERR_STORE_CORRUPT', 'app', 'c1', f]],
    );
    assert.equal(fs.readFileSync(f, 'utf8'), TRUNCATED, 'nothing but gc touches it');
  });

  it('by default a warning is a process warning (code WARN_STORE_DAMAGED)', async () => {
    const f = damage(stateDir, 'endpoints', 'app/c2');
    await host.close();
    host = world.host = await NetworkHost.open({ stateDir, netns: h });
    const got: Error[] = [];
    const listener = (w: Error): void => void got.push(w);
    process.on('warning', listener);
    try {
      await host.listEndpoints();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', listener);
    }
    assert.deepEqual(
      got.map((w) => [(w as any).code, w.message.includes(f)]),
      [['WARN_STORE_DAMAGED', true]],
    );
  });

  it("gc rebuilds a damaged endpoint from the kernel's marks as it was; traffic never stops; the damaged bytes are kept", async () => {
    const before = doc(stateDir, 'endpoints', 'app/c1');
    const ledger = ['tcp:8080', 'udp:9000', 'udp:9001'].map((k) => doc(stateDir, 'ports', k));
    const f = damage(stateDir, 'endpoints', 'app/c1');
    const srv = await server(c1, 80, 'c1');
    try {
      assert.match(ask(ext, '10.96.0.1', 8080), /^c1 /u, 'the kernel is untouched by the damage');
      const report = await host.gc();
      assert.deepEqual(
        report.damaged.map((d) => [d.document.file, d.action, d.keptAs]),
        [[f, 'rebuilt', `${f}.damaged`]],
      );
      assert.match(report.damaged[0]!.detail, /rebuilt from veth ve-[0-9a-f]{12} \(alias nsnet:app:c1\), its container end eth0 in \/var\/run\/netns\/dc1/u);
      assert.deepEqual([report.endpoints, report.links, report.firewallOwners], [[], [], []], 'nothing else removed');
      assert.deepEqual(withoutCreated(doc(stateDir, 'endpoints', 'app/c1')), withoutCreated(before));
      assert.deepEqual(
        ['tcp:8080', 'udp:9000', 'udp:9001'].map((k) => doc(stateDir, 'ports', k)),
        ledger,
      );
      assert.equal(fs.readFileSync(`${f}.damaged`, 'utf8'), TRUNCATED);
      assert.match(ask(ext, '10.96.0.1', 8080), /^c1 /u);
    } finally {
      srv.kill();
    }
    warnings.length = 0;
    assert.deepEqual(
      (await host.listEndpoints()).map((e) => e.id),
      ['c1', 'c2'],
    );
    assert.equal(warnings.length, 0);
    // The rebuilt record is a working one: disconnect removes everything it made.
    await host.disconnect('app', 'c1');
    await host.reap();
    assert.deepEqual(linkNames(c1), ['lo']);
    assert.deepEqual(elementsOf(h, 'ep:c1'), []);
    assert.equal(doc(stateDir, 'ports', 'tcp:8080'), undefined);
    assert.deepEqual((await host.gc()).damaged, [], 'nothing left to repair');
  });

  it('gc drops an endpoint it cannot rebuild (its namespace is gone): its lease, port claims and firewall elements are released', async () => {
    const f = damage(stateDir, 'endpoints', 'app/c1', '');
    sh('ip', ['netns', 'del', c1]);
    assert.notDeepEqual(elementsOf(h, 'ep:c1'), [], 'its elements outlive its namespace');
    const report = await host.gc();
    assert.deepEqual(
      report.damaged.map((d) => [d.document.file, d.document.reason, d.action, d.keptAs]),
      [[f, 'empty file', 'dropped', `${f}.damaged`]],
    );
    assert.match(report.damaged[0]!.detail, /cannot be rebuilt \(no veth .* in the host namespace\); released 172\.26\.0\.2, tcp:8080, udp:9000, udp:9001/u);
    assert.deepEqual(report.firewallOwners, ['ep:c1']);
    assert.deepEqual(elementsOf(h, 'ep:c1'), []);
    assert.equal(fs.existsSync(f), false);
    assert.equal(doc(stateDir, 'ipam-owner', 'app/c1'), undefined);
    assert.equal(doc(stateDir, 'ipam-addr', 'app/172.26.0.2'), undefined);
    assert.equal(doc(stateDir, 'ipam', 'app').used, 1, 'the pool counts c2 only');
    // The port is free again.
    const c3 = await makeNetns('dc3');
    await host.connect('app', { id: 'c3', netns: c3, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
  });

  it('gc rebuilds damaged pools, leases and port claims from the records: nothing is handed out twice', async () => {
    const pool = doc(stateDir, 'ipam', 'app');
    const names = [
      ['ipam', 'app'],
      ['ipam-owner', 'app/c1'],
      ['ipam-addr', 'app/172.26.0.3'],
      ['ports', 'tcp:8080'],
      ['ports', 'udp:9001'],
    ];
    const before = names.map(([c, k]) => doc(stateDir, c!, k!));
    for (const [c, k] of names) damage(stateDir, c!, k!);
    // A connect needs the pool: refused, naming it.
    const c3 = await makeNetns('dc3');
    await assert.rejects(
      host.connect('app', { id: 'c3', netns: c3 }),
      (e: any) => e.code === 'ERR_STORE_CORRUPT' && e.details.file === file(stateDir, 'ipam', 'app'),
    );
    const report = await host.gc();
    assert.deepEqual(report.damaged.map((d) => [d.document.collection, d.document.key, d.action]).sort(), names.map(([c, k]) => [c, k, 'rebuilt']).sort());
    const after = names.map(([c, k]) => doc(stateDir, c!, k!));
    assert.deepEqual({ ...after[0], next: pool.next }, pool, 'the pool: its plan and counters (its search mark starts over)');
    assert.deepEqual(after.slice(1), before.slice(1));
    const ep3 = await host.connect('app', { id: 'c3', netns: c3 });
    assert.ok(!['172.26.0.2/24', '172.26.0.3/24'].includes(ep3.ipv4!), `c3 got ${ep3.ipv4}, not an address held`);
    await rejectsWith(
      host.connect('app', { id: 'c4', netns: await makeNetns('dc4'), publish: [{ protocol: 'udp', hostPort: 9001, containerPort: 1 }] }),
      'ERR_PORT_IN_USE',
    );
  });

  it('gc rebuilds a damaged bridge network (bridge, addresses, icc, internal, mtu) and a predefined one; the default network from its pool', async () => {
    await host.createNetwork({ name: 'back', subnet: '172.28.0.0/24', icc: false, internal: true, mtu: 1400 });
    const recs = Object.fromEntries(['back', 'host', 'bridge', 'app'].map((n) => [n, doc(stateDir, 'networks', n)]));
    const files = ['back', 'host', 'bridge'].map((n) => damage(stateDir, 'networks', n, '{"key":"x","value":1}'));
    // A record that parses but is another's: damaged too (doctor and listings say so).
    const wrong = damage(stateDir, 'networks', 'app', JSON.stringify({ key: 'app', value: { name: 'elsewhere', driver: 'bridge' } }));
    assert.deepEqual((await host.listNetworks()).map((n) => n.name).sort(), ['container', 'none']);
    assert.deepEqual(warnings.map((w) => w.document.file).sort(), [...files, wrong].sort());
    await rejectsWith(host.inspectNetwork('back'), 'ERR_STORE_CORRUPT');
    warnings.length = 0;
    assert.deepEqual(await host.listEndpoints('back'), []);
    assert.deepEqual(
      warnings.map((w) => w.document.file),
      [files[0]],
      'the network listed is damaged: said so',
    );
    // The store still opens (the predefined ones are not written again over the damage).
    await reopen();
    const report = await host.gc();
    assert.deepEqual(report.damaged.map((d) => [path.basename(d.document.file), d.action]).sort(), [
      ['app.json', 'rebuilt'],
      ['back.json', 'rebuilt'],
      ['bridge.json', 'rebuilt'],
      ['host.json', 'rebuilt'],
    ]);
    for (const n of ['back', 'host', 'bridge']) assert.deepEqual(withoutCreated(doc(stateDir, 'networks', n)), withoutCreated(recs[n]), n);
    assert.deepEqual(withoutCreated(doc(stateDir, 'networks', 'app')), withoutCreated(recs.app));
    assert.deepEqual(report.links, [], 'no bridge was taken for a stray');
    const c3 = await makeNetns('dc3');
    await host.connect('back', { id: 'b1', netns: c3 });
    await host.connect('bridge', { id: 'd1', netns: c3, ifname: 'eth1' });
  });

  it('macvlan: a damaged endpoint is rebuilt from its marked child; a damaged network (not rebuildable) is dropped with its endpoints, whose children go', async () => {
    sh('ip', ['-n', h, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan0p']);
    sh('ip', ['-n', h, 'link', 'set', 'lan0', 'up']);
    await host.createNetwork({ name: 'lan', driver: 'macvlan', parent: 'lan0', subnet: '192.168.66.0/24' });
    const m = await makeNetns('dm');
    await host.connect('lan', { id: 'm1', netns: m });
    const rec = doc(stateDir, 'endpoints', 'lan/m1');
    const f = damage(stateDir, 'endpoints', 'lan/m1');
    let report = await host.gc();
    assert.deepEqual(
      report.damaged.map((d) => [d.document.file, d.action]),
      [[f, 'rebuilt']],
    );
    assert.deepEqual(withoutCreated(doc(stateDir, 'endpoints', 'lan/m1')), withoutCreated(rec));
    const n = damage(stateDir, 'networks', 'lan');
    report = await host.gc();
    assert.deepEqual(
      report.damaged.map((d) => [d.document.file, d.action]),
      [[n, 'dropped']],
    );
    assert.match(report.damaged[0]!.detail, /cannot be rebuilt \(no bridge is marked nsnet:lan .*\); dropped with its address pool, and its endpoints m1/u);
    assert.deepEqual(linkNames(m), ['lo'], 'the child is detached');
    assert.equal(doc(stateDir, 'endpoints', 'lan/m1'), undefined);
    assert.equal(doc(stateDir, 'ipam', 'lan'), undefined);
    assert.equal(doc(stateDir, 'ipam-owner', 'lan/m1'), undefined);
    assert.equal(fs.readFileSync(`${n}.damaged`, 'utf8'), TRUNCATED);
    // The subnet is free again.
    await host.createNetwork({ name: 'lan2', driver: 'macvlan', parent: 'lan0', subnet: '192.168.66.0/24' });
  });

  it('host mode is rebuilt from its port claims; none and container endpoints leave no mark and are dropped', async () => {
    await host.connect('host', { id: 'web', ports: [{ protocol: 'tcp', port: 7000, portEnd: 7002 }] });
    await host.connect('none', { id: 'n1', netns: c1 });
    const web = doc(stateDir, 'endpoints', 'host/web');
    const files = [damage(stateDir, 'endpoints', 'host/web'), damage(stateDir, 'endpoints', 'none/n1')];
    const report = await host.gc();
    assert.deepEqual(
      report.damaged.map((d) => [d.document.file, d.action]),
      [
        [files[0], 'rebuilt'],
        [files[1], 'dropped'],
      ],
    );
    assert.deepEqual(withoutCreated(doc(stateDir, 'endpoints', 'host/web')), withoutCreated(web));
    await rejectsWith(host.connect('host', { id: 'other', ports: [{ protocol: 'tcp', port: 7001 }] }), 'ERR_PORT_IN_USE');
  });
});
