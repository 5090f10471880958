/**
 * A network's Linux bridge in the host namespace: the containers' gateway (bridge networks,
 * and each host's share of an overlay network). Marked `nsnet:<network>`.
 */
import { NetlinkError, NsnetError } from '../errors';
import { macFromIp } from '../ipam/mac';
import type { Netlink } from '../netlink/netlink';
import { ownerAlias } from './marks';

/** What making a network's bridge needs: its name, device, MTU and gateway address(es). */
export interface BridgeDevice {
  name: string;
  bridge: string;
  mtu: number;
  subnet: string;
  gateway: string;
  subnet6?: string;
  gateway6?: string;
}

/**
 * Creates (or adopts, if it is already nsnet's for this network) the network's bridge. Its MAC
 * is set, derived from the gateway address: left to the kernel, a bridge takes the lowest MAC of
 * its ports, which changes when that container leaves — under every other container's ARP cache,
 * which then loses its gateway (and the network's resolver) until the entry expires.
 * @throws ERR_NAME_IN_USE
 */
export async function createBridge(host: Netlink, net: BridgeDevice): Promise<void> {
  const alias = ownerAlias(net.name);
  const mac = macFromIp(net.gateway);
  const existing = await host.links.find(net.bridge);
  if (existing) {
    if (existing.kind !== 'bridge' || existing.alias !== alias)
      throw new NsnetError('ERR_NAME_IN_USE', `a link named ${net.bridge} exists and is not nsnet's bridge for ${net.name}`, { bridge: net.bridge });
    if (existing.mac !== mac) await host.links.set(net.bridge, { mac });
  } else {
    await host.links.add({ kind: 'bridge', name: net.bridge, mtu: net.mtu, alias, stp: false, mac });
  }
  try {
    const prefix = net.subnet.split('/')[1];
    const have = new Set((await host.addresses.list({ dev: net.bridge })).map((a) => a.cidr));
    if (!have.has(`${net.gateway}/${prefix}`)) await host.addresses.add(net.bridge, `${net.gateway}/${prefix}`);
    if (net.subnet6 && net.gateway6) {
      const p6 = net.subnet6.split('/')[1];
      if (!have.has(`${net.gateway6}/${p6}`)) await host.addresses.add(net.bridge, `${net.gateway6}/${p6}`, { nodad: true });
    }
    await host.links.set(net.bridge, { up: true });
  } catch (e) {
    if (!existing) await host.links.remove(net.bridge).catch(() => undefined);
    throw e;
  }
}

/** Removes the network's bridge (already gone is fine). @throws ERR_NAME_IN_USE when the link of that name is not nsnet's */
export async function removeBridge(host: Netlink, net: Pick<BridgeDevice, 'name' | 'bridge'>): Promise<void> {
  const link = await host.links.find(net.bridge);
  if (!link) return;
  if (link.alias !== ownerAlias(net.name)) throw new NsnetError('ERR_NAME_IN_USE', `${net.bridge} is not nsnet's bridge for ${net.name}; left alone`, { bridge: net.bridge });
  await host.links.remove(link.index).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}
