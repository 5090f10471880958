// The README's API tour, runnable: `sudo ip netns add try && sudo ip netns exec try node examples/tour.js`.
// It creates a namespace c1, a bridge, a veth into c1, addresses, a route, a vxlan device with
// FDB and neighbour entries, prints what it made, and removes it all again.
'use strict';
const { Netns, Netlink, NetlinkError } = require('nsnet');

async function main() {
  await Netns.create('c1');
  const host = await Netlink.open();
  const c1 = await Netlink.open({ netns: 'c1' });
  try {
    await host.links.add({ kind: 'bridge', name: 'br0' });
    await host.links.add({ kind: 'veth', name: 've-c1', peer: { name: 'eth0', netns: 'c1' } });
    await host.links.set('ve-c1', { master: 'br0', up: true, mtu: 1450 });
    await host.addresses.add('br0', '172.20.0.1/16');
    await c1.addresses.add('eth0', '172.20.0.2/16');
    await c1.links.set('eth0', { up: true });
    await c1.routes.add({ dst: 'default', gateway: '172.20.0.1' });
    await host.links.add({ kind: 'vxlan', name: 'vx0', vni: 42, local: '198.18.0.1', port: 4789, learning: false, proxy: true });
    await host.fdb.add({ dev: 'vx0', mac: '02:42:ac:14:00:09', dst: '198.18.0.2', self: true, permanent: true });
    await host.neighbors.add({ dev: 'vx0', ip: '172.20.1.9', mac: '02:42:ac:14:01:09', state: 'permanent' });
    for (const link of await host.links.list()) {
      const extra = link.kind === 'vxlan' ? ` vni ${link.vxlan.vni}` : link.master ? ` master ${link.master}` : '';
      console.log(`link ${link.index} ${link.name} ${link.kind}${extra}`);
    }
    for (const r of await c1.routes.list()) console.log(`c1 route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}`);
    console.log(`c1 ip_forward ${await Netns.sysctl('c1', 'net.ipv4.ip_forward', '1')}`);
    try {
      await host.links.add({ kind: 'nosuchkind', name: 'bad0' });
    } catch (e) {
      if (e instanceof NetlinkError) console.log(`refused: ${e.code} ${e.extack}`);
      else throw e;
    }
  } finally {
    await host.links.removeMany(['br0', 've-c1', 'vx0']).catch(() => {});
    host.close();
    c1.close();
    await Netns.remove('c1');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
