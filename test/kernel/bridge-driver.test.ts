/**
 * Bridge mode, kernel side (lib/devices/): bridge, veth pairs born in the container
 * namespaces, addresses, routes — checked with ip -j and real traffic between test namespaces.
 */
import * as assert from 'node:assert/strict';
import { Netlink, NsnetError } from '../../lib/index';
import { createBridge, removeBridge } from '../../lib/devices/bridge';
import { hostIfname, ownerAlias, parseOwnerAlias } from '../../lib/devices/marks';
import { attachVeth, removeVeth } from '../../lib/devices/veth';
import type { BridgeEndpointRecord, BridgeNetworkRecord } from '../../lib/host-types';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { ipJson } from '../helpers/oracle';
import { tcpReach } from '../helpers/traffic';

function network(over: Partial<BridgeNetworkRecord> = {}): BridgeNetworkRecord {
  return {
    name: 'app',
    driver: 'bridge',
    bridge: 'nsbr-app',
    subnet: '172.29.0.0/16',
    gateway: '172.29.0.1',
    mtu: 1500,
    icc: true,
    internal: false,
    ipMasquerade: true,
    labels: {},
    created: new Date(0).toISOString(),
    ...over,
  };
}

function endpoint(id: string, ip: string, mac: string, netns: string): BridgeEndpointRecord {
  return {
    id,
    network: 'app',
    netns,
    ifname: 'eth0',
    hostIfname: hostIfname('app', id),
    mac,
    ipv4: ip,
    gateway: '172.29.0.1',
    ports: [],
    created: new Date(0).toISOString(),
  };
}

describe('bridge driver (kernel side)', () => {
  useSandbox();

  it('names and marks what it creates', () => {
    assert.match(hostIfname('app', 'c1'), /^ve-[0-9a-f]{12}$/);
    assert.notEqual(hostIfname('app', 'c1'), hostIfname('app', 'c2'));
    assert.deepEqual(parseOwnerAlias(ownerAlias('app', 'c1:x')), { network: 'app', endpoint: 'c1:x' });
    assert.deepEqual(parseOwnerAlias(ownerAlias('app')), { network: 'app' });
    assert.equal(parseOwnerAlias('someone else'), undefined);
  });

  it('connects two containers: addresses, MACs, routes as ip shows them, and traffic flows', async () => {
    const h = await makeNetns('bh');
    const c1 = await makeNetns('bc');
    const c2 = await makeNetns('bc');
    const host = await Netlink.open({ netns: h });
    registerCleanup(() => host.close());
    const ctx = { host };
    const net = network();
    await createBridge(ctx.host, net);
    await createBridge(ctx.host, net); // idempotent
    const br = ipJson(['-d', 'link', 'show', 'nsbr-app'], h)[0];
    assert.equal(br.linkinfo.info_kind, 'bridge');
    assert.equal(br.ifalias, 'nsnet:app');
    assert.ok(br.flags.includes('UP'));
    assert.deepEqual(
      ipJson(['-4', 'addr', 'show', 'nsbr-app'], h)[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`),
      ['172.29.0.1/16'],
    );

    const e1 = endpoint('c1', '172.29.0.2', '02:42:ac:1d:00:02', c1);
    const e2 = endpoint('c2', '172.29.0.3', '02:42:ac:1d:00:03', c2);
    await attachVeth(ctx.host, net, e1, c1);
    await attachVeth(ctx.host, net, e2, c2);
    const he = ipJson(['-d', 'link', 'show', e1.hostIfname], h)[0];
    assert.equal(he.master, 'nsbr-app');
    assert.equal(he.ifalias, 'nsnet:app:c1');
    assert.equal(he.linkinfo.info_slave_data.hairpin, true, 'hairpin mode on the bridge port');
    assert.equal(he.inet6_addr_gen_mode, 'none', 'no IPv6 on an IPv4-only network (host end)');
    assert.deepEqual(ipJson(['-6', 'addr', 'show', 'eth0'], c1), [], 'no IPv6 address in the container');
    assert.ok(he.flags.includes('UP'));
    const eth0 = ipJson(['addr', 'show', 'eth0'], c1)[0];
    assert.equal(eth0.address, '02:42:ac:1d:00:02');
    assert.ok(eth0.addr_info.some((a: any) => a.local === '172.29.0.2' && a.prefixlen === 16));
    assert.ok(ipJson(['link', 'show', 'lo'], c1)[0].flags.includes('UP'));
    assert.deepEqual(
      ipJson(['route', 'show', 'default'], c1).map((r: any) => r.gateway),
      ['172.29.0.1'],
    );

    assert.ok(await tcpReach(c2, c1, '172.29.0.3', 5601), 'c1 reaches c2 across the bridge');
    assert.ok(await tcpReach(h, c1, '172.29.0.1', 5602), 'c1 reaches the gateway on the host');

    await removeVeth(ctx.host, e1.hostIfname);
    await removeVeth(ctx.host, e1.hostIfname); // already gone: fine
    assert.equal(
      ipJson(['link', 'show'], h).some((l: any) => l.ifname === e1.hostIfname),
      false,
    );
    assert.deepEqual(
      ipJson(['link', 'show'], c1).map((l: any) => l.ifname),
      ['lo'],
      'the container end went with it',
    );
    await removeVeth(ctx.host, e2.hostIfname);
    await removeBridge(ctx.host, net);
    assert.deepEqual(
      ipJson(['link', 'show'], h).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('an internal network gets no default route', async () => {
    const h = await makeNetns('bh');
    const c1 = await makeNetns('bc');
    const host = await Netlink.open({ netns: h });
    registerCleanup(() => host.close());
    const net = network({ internal: true });
    await createBridge(host, net);
    await attachVeth(host, net, endpoint('c1', '172.29.0.2', '02:42:ac:1d:00:02', c1), c1);
    assert.deepEqual(ipJson(['route', 'show', 'default'], c1), []);
  });

  it('refuses a bridge name that is not its own, and leaves it alone', async () => {
    const h = await makeNetns('bh');
    const host = await Netlink.open({ netns: h });
    registerCleanup(() => host.close());
    await host.links.add({ kind: 'bridge', name: 'nsbr-app' });
    await assert.rejects(createBridge(host, network()), (e: any) => e instanceof NsnetError && e.code === 'ERR_NAME_IN_USE');
    await assert.rejects(removeBridge(host, network()), (e: any) => e.code === 'ERR_NAME_IN_USE');
    assert.equal(ipJson(['-d', 'link', 'show', 'nsbr-app'], h)[0].ifalias, undefined);
  });

  it('a failed attach leaves nothing behind', async () => {
    const h = await makeNetns('bh');
    const c1 = await makeNetns('bc');
    const host = await Netlink.open({ netns: h });
    registerCleanup(() => host.close());
    const net = network();
    await createBridge(host, net);
    const before = ipJson(['link', 'show'], h).map((l: any) => l.ifname);
    // The gateway address given to a container: the kernel accepts the address, but the route
    // via a gateway outside the subnet fails — after the veth exists.
    const bad = { ...endpoint('c1', '172.29.0.2', '02:42:ac:1d:00:02', c1), gateway: '10.255.255.1' };
    await assert.rejects(attachVeth(host, net, bad, c1), (e: any) => e instanceof NsnetError);
    assert.deepEqual(
      ipJson(['link', 'show'], h).map((l: any) => l.ifname),
      before,
    );
    assert.deepEqual(
      ipJson(['link', 'show'], c1).map((l: any) => l.ifname),
      ['lo'],
    );
    await assert.rejects(
      attachVeth(host, net, endpoint('c2', '172.29.0.3', '02:42:ac:1d:00:03', 'no-such-ns'), 'no-such-ns'),
      (e: any) => e.code === 'ERR_NETNS_NOT_FOUND',
    );
    assert.deepEqual(
      ipJson(['link', 'show'], h).map((l: any) => l.ifname),
      before,
    );
  });
});
