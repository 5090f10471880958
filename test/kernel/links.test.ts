/**
 * Links against the kernel, in namespaces made by the test; `ip -j` is the oracle.
 */
import * as assert from 'node:assert/strict';
import { Netlink, NetlinkError, NsnetError, type Link } from '../../lib/index';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson } from '../helpers/oracle';
import { skipBecause } from '../helpers/skip';

async function rejects(p: Promise<unknown>, code: string, extra?: (e: any) => void): Promise<void> {
  await assert.rejects(p, (e: any) => {
    assert.ok(e instanceof NsnetError, `an NsnetError, got ${e}`);
    assert.equal(e.code, code, e.message);
    extra?.(e);
    return true;
  });
}

const linkNames = (ns: string): string[] =>
  ipJson(['link', 'show'], ns)
    .map((l: any) => l.ifname)
    .sort();
const oracle = (ns: string, name: string): any => ipJson(['-d', 'link', 'show', 'dev', name], ns)[0];

describe('links', function () {
  useSandbox();
  let ns: string;
  let nl: Netlink;

  beforeEach(async () => {
    ns = await makeNetns('lk');
    nl = await Netlink.open({ netns: ns });
  });
  afterEach(() => nl.close());

  it('adds a bridge that ip -d link shows with the same attributes', async () => {
    const br = await nl.links.add({ kind: 'bridge', name: 'br0', mtu: 1400, mac: '02:42:ac:11:00:01', alias: 'nsnet:test:br0', stp: false, ageingTime: 120 });
    const o = oracle(ns, 'br0');
    assert.equal(o.linkinfo.info_kind, 'bridge');
    assert.equal(br.kind, 'bridge');
    assert.equal(br.index, o.ifindex);
    assert.equal(o.mtu, 1400);
    assert.equal(br.mtu, 1400);
    assert.equal(o.address, '02:42:ac:11:00:01');
    assert.equal(br.mac, o.address);
    assert.equal(o.ifalias, 'nsnet:test:br0');
    assert.equal(o.linkinfo.info_data.ageing_time, 12000);
    if (br.kind === 'bridge') assert.equal(br.bridge.ageingTime, 120);
  });

  it('creates a veth whose peer is born in another namespace, then enslaves, raises and resizes it', async () => {
    const other = await makeNetns('lkp');
    const br = await nl.links.add({ kind: 'bridge', name: 'br0', up: true });
    const ve = await nl.links.add({ kind: 'veth', name: 've-c1', peer: { name: 'eth0', netns: other, mac: '02:42:ac:14:00:02' } });
    assert.equal(ve.kind, 'veth');
    assert.ok(!linkNames(ns).includes('eth0'), 'the peer is not in this namespace');
    const peer = oracle(other, 'eth0');
    assert.equal(peer.linkinfo.info_kind, 'veth');
    assert.equal(peer.address, '02:42:ac:14:00:02');
    await nl.links.set('ve-c1', { master: 'br0', up: true, mtu: 1450 });
    const o = oracle(ns, 've-c1');
    assert.equal(o.master, 'br0');
    assert.equal(o.mtu, 1450);
    assert.ok(o.flags.includes('UP'));
    const got = await nl.links.get('ve-c1');
    assert.equal(got.master, br.index);
    assert.equal(got.up, true);
    assert.equal(got.bridgePort !== undefined, true, 'bridge port attributes decoded');
  });

  it('creates a vxlan device with every option the overlay needs', async () => {
    const vx = await nl.links.add({
      kind: 'vxlan',
      name: 'vx0',
      vni: 42,
      local: '198.18.0.1',
      port: 4789,
      learning: false,
      proxy: true,
      ttl: 64,
      udpChecksum: true,
      srcPortRange: [40000, 50000],
    });
    const d = oracle(ns, 'vx0').linkinfo.info_data;
    assert.equal(d.id, 42);
    assert.equal(d.local, '198.18.0.1');
    assert.equal(d.port, 4789);
    assert.equal(d.learning, false);
    assert.equal(d.proxy, true);
    assert.equal(d.ttl, 64);
    assert.equal(d.udp_csum, true);
    assert.deepEqual(d.port_range, { low: 40000, high: 50000 });
    assert.equal(vx.kind, 'vxlan');
    if (vx.kind === 'vxlan') assert.deepEqual([vx.vxlan.vni, vx.vxlan.local, vx.vxlan.learning, vx.vxlan.proxy], [42, '198.18.0.1', false, true]);
    const remote = await nl.links.add({ kind: 'vxlan', name: 'vx1', vni: 43, remote: '198.18.0.2', dev: 'vx0' });
    const r = oracle(ns, 'vx1').linkinfo.info_data;
    assert.equal(r.remote, '198.18.0.2');
    if (remote.kind === 'vxlan') assert.equal(remote.vxlan.remote, '198.18.0.2');
  });

  it('creates macvlan children of a parent in each mode', async () => {
    await nl.links.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
    for (const mode of ['bridge', 'private', 'vepa'] as const) {
      const name = `mv-${mode}`.slice(0, 15);
      const m = await nl.links.add({ kind: 'macvlan', name, parent: 'up0', mode });
      const o = oracle(ns, name);
      assert.equal(o.linkinfo.info_kind, 'macvlan');
      assert.equal(o.linkinfo.info_data.mode, mode);
      assert.equal(m.kind === 'macvlan' && m.macvlan.mode, mode);
    }
  });

  /**
   * Tries the first child of a kind the kernel may lack (ipvlan, vlan: not on the project's
   * machine): when the kernel says it has no such kind, nothing was made and the test is
   * skipped with the kernel's own words; any other refusal fails it.
   */
  async function firstOrSkip(ctx: Mocha.Context, kind: string, add: () => Promise<Link>): Promise<Link> {
    const before = linkNames(ns);
    try {
      return await add();
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EOPNOTSUPP' && e.extack === 'Unknown device type')) throw e;
      assert.deepEqual(linkNames(ns), before, 'a refused kind leaves nothing behind');
      return skipBecause(
        ctx,
        `this kernel has no ${kind} links: RTM_NEWLINK ${e.code} "${e.extack}" (the request is checked against iproute2's in test/unit/link-kinds.test.ts)`,
      );
    }
  }

  it('creates ipvlan children in each mode and with each flag, as ip -d link shows them', async function () {
    await nl.links.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
    const parent = await nl.links.get('up0');
    const cases = [
      ['l2', 'bridge'],
      ['l3', 'private'],
      ['l3s', 'vepa'],
    ] as const;
    const first = await firstOrSkip(this, 'ipvlan', () => nl.links.add({ kind: 'ipvlan', name: 'ipv-l2', parent: 'up0', mode: 'l2', flags: 'bridge' }));
    const made = [first];
    for (const [mode, flags] of cases.slice(1)) made.push(await nl.links.add({ kind: 'ipvlan', name: `ipv-${mode}`, parent: 'up0', mode, flags }));
    for (const [i, [mode, flags]] of cases.entries()) {
      const l = made[i]!;
      const o = oracle(ns, l.name);
      assert.equal(o.linkinfo.info_kind, 'ipvlan');
      assert.equal(o.linkinfo.info_data.mode, mode);
      assert.ok(JSON.stringify(o.linkinfo.info_data).includes(`"${flags}"`), `ip shows ${flags}: ${JSON.stringify(o.linkinfo.info_data)}`);
      assert.equal(o.link, 'up0');
      assert.equal(l.kind, 'ipvlan');
      if (l.kind === 'ipvlan') assert.deepEqual(l.ipvlan, { mode, flags });
      assert.equal(l.parentIndex, parent.index);
      assert.equal(l.mac, parent.mac, "ipvlan children share the parent's MAC");
    }
    const plain = await nl.links.add({ kind: 'ipvlan', name: 'ipv-dflt', parent: 'up0' });
    assert.equal(plain.kind === 'ipvlan' && plain.ipvlan.mode, 'l3', "the kernel's default mode");
  });

  it('creates 802.1Q and 802.1ad vlan sub-interfaces, as ip -d link shows them', async function () {
    await nl.links.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
    const parent = await nl.links.get('up0');
    const q = await firstOrSkip(this, 'vlan', () => nl.links.add({ kind: 'vlan', name: 'up0.10', parent: 'up0', id: 10 }));
    const ad = await nl.links.add({ kind: 'vlan', name: 'up0.4094', parent: 'up0', id: 4094, protocol: '802.1ad' });
    for (const [l, id, protocol] of [
      [q, 10, '802.1Q'],
      [ad, 4094, '802.1ad'],
    ] as const) {
      const o = oracle(ns, l.name);
      assert.equal(o.linkinfo.info_kind, 'vlan');
      assert.equal(o.linkinfo.info_data.id, id);
      assert.equal(o.linkinfo.info_data.protocol, protocol);
      assert.equal(o.link, 'up0');
      assert.equal(l.kind, 'vlan');
      if (l.kind === 'vlan') assert.deepEqual(l.vlan, { id, protocol });
      assert.equal(l.parentIndex, parent.index);
    }
    await rejects(nl.links.add({ kind: 'vlan', name: 'up0.10b', parent: 'up0', id: 10 }), 'EEXIST');
  });

  it('creates a macvlan child directly in another namespace, finished there (alias, addrGenMode)', async () => {
    const other = await makeNetns('lk');
    await nl.links.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
    const m = await nl.links.add({
      kind: 'macvlan',
      name: 'eth0',
      parent: 'up0',
      netns: other,
      alias: 'nsnet:x:y',
      addrGenMode: 'none',
      mac: '02:42:0a:00:00:09',
    });
    assert.equal(m.name, 'eth0');
    assert.equal(m.kind === 'macvlan' && m.macvlan.mode, 'bridge');
    const o = oracle(other, 'eth0');
    assert.equal(o.ifindex, m.index, 'the returned link is the one in the other namespace');
    assert.equal(o.ifalias, 'nsnet:x:y');
    assert.equal(o.inet6_addr_gen_mode, 'none');
    assert.equal(o.address, '02:42:0a:00:00:09');
    assert.deepEqual(linkNames(ns), ['lo', 'up0', 'up1'], 'nothing was left here');
    await rejects(nl.links.add({ kind: 'macvlan', name: 'eth0', parent: 'up0', netns: other }), 'EEXIST');
    await rejects(nl.links.add({ kind: 'bridge', name: 'b0', netns: other, master: 'up0' }), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(linkNames(other), ['eth0', 'lo']);
  });

  it('stacks a link of a kind without a typed spec on a parent (generic `parent`: IFLA_LINK)', async () => {
    await nl.links.add({ kind: 'veth', name: 'gp0', peer: { name: 'gp1' } });
    const parent = await nl.links.get('gp0');
    const tap = await nl.links.add({ kind: 'macvtap', name: 'mvt0', parent: 'gp0' });
    const o = oracle(ns, 'mvt0');
    assert.equal(o.linkinfo.info_kind, 'macvtap');
    assert.equal(o.link, 'gp0');
    assert.equal(tap.parentIndex, parent.index);
    await rejects(nl.links.add({ kind: 'macvtap', name: 'mvt1', parent: 'nope0' }), 'ENODEV');
    assert.ok(!linkNames(ns).includes('mvt1'));
  });

  it('lists every link, typed by kind, and keeps links of other kinds with their raw attributes', async () => {
    await nl.links.add({ kind: 'bridge', name: 'br0' });
    await nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
    await nl.links.add({ kind: 'ifb', name: 'ifbx' });
    const links = await nl.links.list();
    const names = links.map((l) => l.name).sort();
    assert.deepEqual(names, linkNames(ns));
    const byName = new Map(links.map((l) => [l.name, l]));
    assert.equal(byName.get('lo')?.kind, 'device');
    assert.equal(byName.get('br0')?.kind, 'bridge');
    assert.equal(byName.get('va')?.kind, 'veth');
    const ifb = byName.get('ifbx') as Link;
    assert.equal(ifb.kind, 'other');
    assert.equal(ifb.kernelKind, 'ifb');
    assert.deepEqual((ifb.raw.linkinfo as any).kind, 'ifb');
    for (const l of links) {
      const o = ipJson(['link', 'show', 'dev', l.name], ns)[0];
      assert.equal(l.index, o.ifindex);
      assert.equal(l.mtu, o.mtu);
    }
    assert.deepEqual((await nl.links.list({ kind: 'veth' })).map((l) => l.name).sort(), ['va', 'vb']);
  });

  it('gets by name and by index; find() says undefined for a missing link', async () => {
    const br = await nl.links.add({ kind: 'bridge', name: 'br0' });
    assert.equal((await nl.links.get('br0')).index, br.index);
    assert.equal((await nl.links.get(br.index)).name, 'br0');
    assert.equal(await nl.links.find('nope0'), undefined);
    await rejects(nl.links.get('nope0'), 'ENODEV', (e) => {
      assert.ok(e instanceof NetlinkError);
      assert.equal(e.operation, 'RTM_GETLINK');
    });
  });

  it('sets name, MAC, alias, group, txqlen, down and nomaster, each as ip shows', async () => {
    await nl.links.add({ kind: 'bridge', name: 'br0' });
    await nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb' }, master: 'br0', up: true });
    assert.equal(oracle(ns, 'va').master, 'br0');
    await nl.links.set('va', { name: 'vc', mac: '02:00:00:00:00:0c', alias: 'hello', group: 7, txqlen: 500, up: false, master: null });
    const o = oracle(ns, 'vc');
    assert.equal(o.address, '02:00:00:00:00:0c');
    assert.equal(o.ifalias, 'hello');
    assert.equal(o.group, '7');
    assert.equal(o.txqlen, 500);
    assert.ok(!o.flags.includes('UP'));
    assert.equal(o.master, undefined);
    await nl.links.set('vc', { alias: null });
    assert.equal(oracle(ns, 'vc').ifalias, undefined);
    await nl.links.set('vc', { master: 'br0' });
    await nl.links.set('vc', { bridgePort: { hairpin: true, learning: false } });
    const port = oracle(ns, 'vc').linkinfo.info_slave_data;
    assert.equal(port.hairpin, true);
    assert.equal(port.learning, false);
    assert.equal((await nl.links.get('vc')).bridgePort?.hairpin, true);
  });

  it('moves a link into another namespace and renames it on arrival', async () => {
    const other = await makeNetns('lkm');
    await nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
    await nl.links.set('vb', { netns: other, name: 'eth0' });
    assert.ok(!linkNames(ns).includes('vb'));
    assert.equal(oracle(other, 'eth0').linkinfo.info_kind, 'veth');
  });

  it('refuses to move onto a taken name, leaving the link where it was', async () => {
    const other = await makeNetns('lkt');
    const on = await Netlink.open({ netns: other });
    try {
      await on.links.add({ kind: 'bridge', name: 'eth0' });
    } finally {
      on.close();
    }
    await nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
    await rejects(nl.links.set('vb', { netns: other, name: 'eth0' }), 'EEXIST');
    assert.ok(linkNames(ns).includes('vb'));
  });

  it('restores what it changed when the kernel refuses part of a set', async () => {
    await nl.links.add({ kind: 'bridge', name: 'br0' });
    await nl.links.add({ kind: 'bridge', name: 'br1', mtu: 1500 });
    // mtu 1400 is fine, the name is taken: the kernel applies the mtu before failing the rename.
    await rejects(nl.links.set('br1', { mtu: 1400, name: 'br0', alias: 'x' }), 'EEXIST');
    const o = oracle(ns, 'br1');
    assert.equal(o.mtu, 1500);
    assert.equal(o.ifalias, undefined);
  });

  it('removes links; removing again says ENODEV', async () => {
    await nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb' } });
    await nl.links.remove('va');
    assert.ok(!linkNames(ns).includes('va') && !linkNames(ns).includes('vb'), 'the peer went with it');
    await rejects(nl.links.remove('va'), 'ENODEV');
  });

  it('reports kernel refusals with errno code and extended-ACK text', async () => {
    await nl.links.add({ kind: 'bridge', name: 'br0' });
    await rejects(nl.links.add({ kind: 'bridge', name: 'br0' }), 'EEXIST', (e) => {
      assert.equal(e.errno, 17);
      assert.equal(e.operation, 'RTM_NEWLINK');
    });
    await rejects(nl.links.add({ kind: 'nosuchkind', name: 'bad0' }), 'EOPNOTSUPP', (e) => {
      assert.equal(e.extack, 'Unknown device type');
      assert.match(e.message, /Unknown device type/);
    });
    await rejects(nl.links.add({ kind: 'macvlan', name: 'mv0', parent: 'nope0' }), 'ENODEV');
    await rejects(nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'br0' } }), 'EEXIST');
    assert.ok(!linkNames(ns).includes('va'), 'a refused veth leaves no half behind');
  });

  it('validates input before anything reaches the kernel, and changes nothing', async () => {
    const before = linkNames(ns);
    const bad: [() => Promise<unknown>, string][] = [
      [() => nl.links.add({ kind: 'bridge', name: 'a-name-of-16byte' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: '' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: 'a/b' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: 'a b' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: '..' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: 'br\n0' }), 'ERR_INVALID_NAME'],
      [() => nl.links.add({ kind: 'bridge', name: 'br0', mtu: 67 }), 'ERR_INVALID_MTU'],
      [() => nl.links.add({ kind: 'bridge', name: 'br0', mtu: 65536 }), 'ERR_INVALID_MTU'],
      [() => nl.links.add({ kind: 'bridge', name: 'br0', mac: '01:00:5e:00:00:01' }), 'ERR_INVALID_MAC'],
      [() => nl.links.add({ kind: 'bridge', name: 'br0', mac: '02:42:ac:11:00' }), 'ERR_INVALID_MAC'],
      [() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 0 }), 'ERR_INVALID_ARGUMENT'],
      [() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 1 << 24 }), 'ERR_INVALID_ARGUMENT'],
      [() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 5, local: '300.1.1.1' }), 'ERR_INVALID_IP'],
      [() => nl.links.add({ kind: 'vxlan', name: 'vx0', vni: 5, group: '10.0.0.1' }), 'ERR_INVALID_IP'],
      [() => nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb', netns: 'no-such-ns' } }), 'ERR_NETNS_NOT_FOUND'],
      [() => nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb', netns: '/etc/hostname' } }), 'ERR_NOT_A_NETNS'],
      [() => nl.links.add({ kind: 'Bad Kind', name: 'x0' }), 'ERR_INVALID_ARGUMENT'],
      [() => nl.links.removeGroup(0), 'ERR_INVALID_ARGUMENT'],
      // the kernel cannot raise one end of a pair it is creating (ENOTCONN): refused up front
      [() => nl.links.add({ kind: 'veth', name: 'va', peer: { name: 'vb', up: true } as never }), 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [fn, code] of bad) await rejects(fn(), code);
    assert.deepEqual(linkNames(ns), before);
  });

  it('adds many links all or nothing, naming the one that failed', async () => {
    await nl.links.add({ kind: 'bridge', name: 'taken' });
    const before = linkNames(ns);
    await rejects(
      nl.links.addMany([
        { kind: 'bridge', name: 'm0' },
        { kind: 'veth', name: 'm1', peer: { name: 'm1p' } },
        { kind: 'bridge', name: 'taken' },
        { kind: 'bridge', name: 'm3' },
      ]),
      'EEXIST',
      (e) => assert.equal(e.index, 2),
    );
    assert.deepEqual(linkNames(ns), before);
    const made = await nl.links.addMany(Array.from({ length: 50 }, (_, i) => ({ kind: 'veth' as const, name: `p${i}`, peer: { name: `q${i}` } })));
    assert.equal(made.length, 50);
    assert.deepEqual(
      made.map((l) => l.name),
      Array.from({ length: 50 }, (_, i) => `p${i}`),
    );
    assert.equal(linkNames(ns).length, before.length + 100);
  });

  it('removes many links in one bulk operation, ignoring missing ones; group 0 is refused', async () => {
    const keep = await nl.links.add({ kind: 'bridge', name: 'keep0' });
    await nl.links.addMany(Array.from({ length: 30 }, (_, i) => ({ kind: 'veth' as const, name: `d${i}`, peer: { name: `e${i}` } })));
    await nl.links.removeMany([...Array.from({ length: 30 }, (_, i) => `d${i}`), 'missing0']);
    assert.deepEqual(linkNames(ns), ['keep0', 'lo']);
    assert.equal(oracle(ns, 'keep0').group, 'default', 'bystanders keep their group');
    await nl.links.add({ kind: 'bridge', name: 'g1', group: 9 });
    await nl.links.add({ kind: 'bridge', name: 'g2', group: 9 });
    await nl.links.removeGroup(9);
    assert.deepEqual(linkNames(ns), ['keep0', 'lo']);
    assert.equal((await nl.links.get(keep.index)).name, 'keep0');
  });

  it('removeMany: duplicates and indexes mixed with names; a target that cannot be deleted removes nothing', async () => {
    const made = await nl.links.addMany(Array.from({ length: 4 }, (_, i) => ({ kind: 'veth' as const, name: `r${i}`, peer: { name: `s${i}` } })));
    await nl.links.add({ kind: 'bridge', name: 'other9', group: 9 });
    const before = linkNames(ns);
    // lo has no rtnl_link_ops: the kernel refuses the group delete before deleting any member.
    await assert.rejects(nl.links.removeMany(['r0', made[1]!.index, 'lo']), (e: NetlinkError) => e.code === 'EOPNOTSUPP');
    assert.deepEqual(linkNames(ns), before, 'nothing was removed');
    for (const n of ['r0', 'r1', 'lo']) assert.equal(oracle(ns, n).group, 'default', `${n} is back in group 0`);
    assert.equal(oracle(ns, 'other9').group, '9', 'a bystander keeps its group');
    await nl.links.removeMany(['r0', made[0]!.index, 'r1', made[2]!.index, 'r2', 'r3', 'r3']);
    assert.deepEqual(
      linkNames(ns),
      before.filter((n) => !/^[rs]\d$/u.test(n)),
    );
    assert.equal(oracle(ns, 'other9').group, '9');
    await nl.links.remove('other9');
  });

  it('the empty-group probe removeMany relies on: a group with a member is seen, and nothing changes', async () => {
    const { groupIsEmpty } = await import('../../lib/netlink/link-remove');
    await nl.links.add({ kind: 'bridge', name: 'pg1', group: 4242, mtu: 1400 });
    const conn = (nl.links as unknown as { conn: import('../../lib/netlink/conn').Conn }).conn;
    assert.equal(await groupIsEmpty(conn, 4243), true);
    assert.equal(await groupIsEmpty(conn, 4242), false);
    const o = oracle(ns, 'pg1');
    assert.equal(o.mtu, 1400, 'the probe changed no MTU');
    assert.equal(o.group, '4242');
    await nl.links.remove('pg1');
  });

  it('watches links being added, changed and removed', async () => {
    const w = await nl.links.watch();
    try {
      await nl.links.add({ kind: 'bridge', name: 'wb0' });
      const added = await w.waitFor((e) => e.type === 'added' && e.link.name === 'wb0');
      assert.equal(added.type, 'added');
      await nl.links.set('wb0', { mtu: 1300 });
      const changed = await w.waitFor((e) => e.type === 'changed' && e.link.name === 'wb0' && e.link.mtu === 1300);
      assert.equal(changed.type, 'changed');
      await nl.links.remove('wb0');
      const removed = await w.waitFor((e) => e.type === 'removed' && e.link.name === 'wb0');
      assert.equal(removed.type, 'removed');
    } finally {
      w.close();
    }
    assert.deepEqual(await w.next(), { value: undefined, done: true });
  });
});
