/**
 * A network's Linux bridge in the host namespace: the containers' gateway (bridge networks,
 * and each host's share of an overlay network). Marked `nsnet:<network>`.
 */
import { NetlinkError, NsnetError } from '../errors';
import { macFromIp } from '../ipam/mac';
import type { Netlink } from '../netlink/netlink';
import { ownerAlias } from './marks';

/**
 * The index of each bridge this process made sure of, per host handle: a veth is created with
 * its master by index, without asking the kernel for it first (one round trip per connect less).
 * Kept by createBridge, dropped by removeBridge. A bridge deleted under a long-lived host makes
 * the veth's creation fail (ENODEV: the façade makes sure of the network again, which refreshes
 * this); indexes are allocated cyclically, so a stale one does not name another device.
 */
const indexes = new WeakMap<Netlink, Map<string, number>>();

/** The index of `bridge` as createBridge last saw it, or undefined. */
export function bridgeIndex(host: Netlink, bridge: string): number | undefined {
  return indexes.get(host)?.get(bridge);
}

/** Forgets `bridge`'s index (it names no device any more). */
export function forgetBridgeIndex(host: Netlink, bridge: string): void {
  remember(host, bridge, undefined);
}

function remember(host: Netlink, bridge: string, index: number | undefined): void {
  let m = indexes.get(host);
  if (!m) indexes.set(host, (m = new Map()));
  if (index === undefined) m.delete(bridge);
  else m.set(bridge, index);
}

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
  remember(host, net.bridge, undefined);
  const existing = await host.links.find(net.bridge);
  let index: number;
  if (existing) {
    if (existing.kind !== 'bridge' || existing.alias !== alias)
      throw new NsnetError('ERR_NAME_IN_USE', `a link named ${net.bridge} exists and is not nsnet's bridge for ${net.name}`, { bridge: net.bridge });
    if (existing.mac !== mac) await host.links.set(net.bridge, { mac });
    index = existing.index;
  } else {
    index = (await host.links.add({ kind: 'bridge', name: net.bridge, mtu: net.mtu, alias, stp: false, mac })).index;
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
  remember(host, net.bridge, index);
}

/** Removes the network's bridge (already gone is fine). @throws ERR_NAME_IN_USE when the link of that name is not nsnet's */
export async function removeBridge(host: Netlink, net: Pick<BridgeDevice, 'name' | 'bridge'>): Promise<void> {
  remember(host, net.bridge, undefined);
  const link = await host.links.find(net.bridge);
  if (!link) return;
  if (link.alias !== ownerAlias(net.name))
    throw new NsnetError('ERR_NAME_IN_USE', `${net.bridge} is not nsnet's bridge for ${net.name}; left alone`, { bridge: net.bridge });
  await host.links.remove(link.index).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}
