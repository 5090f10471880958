/**
 * Bridge mode, the kernel side: a Linux bridge per network with the gateway address, and per
 * container a veth pair — the host end on the bridge, the other end born directly inside the
 * container's namespace under its final name (one atomic request, nothing to move or rename) —
 * with the container's address, MAC (from its IPv4 address), default route and loopback.
 * The firewall side (NAT, published ports, isolation) is lib/firewall/; addresses come from
 * lib/ipam/. Every link carries the alias `nsnet:<network>[:<endpoint>]` so gc() finds it.
 */
import { createHash } from 'node:crypto';
import { NetlinkError, NsnetError } from '../errors';
import { Netlink } from '../netlink/netlink';
import type { NetnsSpec } from '../netns';
import type { BridgeEndpointRecord, BridgeNetworkRecord, DriverContext } from './driver';

/** What making a network's bridge needs of its record (the overlay driver reuses it for its per-host bridge). */
export type BridgeNet = Pick<BridgeNetworkRecord, 'name' | 'bridge' | 'mtu' | 'subnet' | 'gateway' | 'subnet6' | 'gateway6'>;
/** What attaching a container needs of its network's record. */
export type AttachNet = BridgeNet & Pick<BridgeNetworkRecord, 'internal'>;
/** What attaching a container needs of its endpoint record. */
export type AttachEndpoint = Pick<BridgeEndpointRecord, 'id' | 'ifname' | 'hostIfname' | 'mac' | 'ipv4' | 'ipv6' | 'gateway' | 'gateway6'>;

/** The alias that marks a kernel object as nsnet's. */
export function ownerAlias(network: string, endpoint?: string): string {
  return endpoint === undefined ? `nsnet:${network}` : `nsnet:${network}:${endpoint}`;
}

/** Parses an alias written by ownerAlias(). */
export function parseOwnerAlias(alias: string | undefined): { network: string; endpoint?: string } | undefined {
  if (!alias?.startsWith('nsnet:')) return undefined;
  const rest = alias.slice(6);
  const i = rest.indexOf(':');
  return i < 0 ? { network: rest } : { network: rest.slice(0, i), endpoint: rest.slice(i + 1) };
}

/** The host end of an endpoint's veth: 've-' + 12 hex digits of a hash of network and id (≤ 15 bytes). */
export function hostIfname(network: string, endpoint: string): string {
  return `ve-${createHash('sha256').update(`${network}\0${endpoint}`).digest('hex').slice(0, 12)}`;
}

/** Creates (or adopts, if it is already nsnet's for this network) the network's bridge. */
export async function createBridge(ctx: DriverContext, net: BridgeNet): Promise<void> {
  const alias = ownerAlias(net.name);
  const existing = await ctx.host.links.find(net.bridge);
  if (existing) {
    if (existing.kind !== 'bridge' || existing.alias !== alias)
      throw new NsnetError('ERR_NAME_IN_USE', `a link named ${net.bridge} exists and is not nsnet's bridge for ${net.name}`, { bridge: net.bridge });
  } else {
    await ctx.host.links.add({ kind: 'bridge', name: net.bridge, mtu: net.mtu, alias, stp: false });
  }
  try {
    const prefix = net.subnet.split('/')[1];
    const have = new Set((await ctx.host.addresses.list({ dev: net.bridge })).map((a) => a.cidr));
    if (!have.has(`${net.gateway}/${prefix}`)) await ctx.host.addresses.add(net.bridge, `${net.gateway}/${prefix}`);
    if (net.subnet6 && net.gateway6) {
      const p6 = net.subnet6.split('/')[1];
      if (!have.has(`${net.gateway6}/${p6}`)) await ctx.host.addresses.add(net.bridge, `${net.gateway6}/${p6}`, { nodad: true });
    }
    await ctx.host.links.set(net.bridge, { up: true });
  } catch (e) {
    if (!existing) await ctx.host.links.remove(net.bridge).catch(() => undefined);
    throw e;
  }
}

/** Removes the network's bridge (already gone is fine). */
export async function removeBridge(ctx: DriverContext, net: Pick<BridgeNetworkRecord, 'name' | 'bridge'>): Promise<void> {
  const link = await ctx.host.links.find(net.bridge);
  if (!link) return;
  if (link.alias !== ownerAlias(net.name)) throw new NsnetError('ERR_NAME_IN_USE', `${net.bridge} is not nsnet's bridge for ${net.name}; left alone`, { bridge: net.bridge });
  await ctx.host.links.remove(link.index).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}

/**
 * Refuses an interface name the container already has, before anything is made: the veth (or
 * macvlan child) would collide with it, and the kernel's EEXIST would name the wrong link.
 * @throws ERR_IFNAME_IN_USE
 * @internal
 */
export async function assertIfnameFree(c: Netlink, ifname: string, netns: NetnsSpec): Promise<void> {
  const link = await c.links.find(ifname);
  if (!link) return;
  const where = typeof netns === 'string' ? netns : JSON.stringify(netns);
  throw new NsnetError('ERR_IFNAME_IN_USE', `the container's namespace ${where} already has an interface named ${ifname} (${link.kernelKind || 'device'}, index ${link.index}): choose another ifname or remove it`, { ifname, netns, index: link.index });
}

/**
 * Attaches a container: the veth pair (peer created in the container namespace as `ifname`),
 * then the container side's address, loopback and default route. Undone if any step fails.
 * @throws ERR_IFNAME_IN_USE (the container has an interface of that name: nothing is made);
 *   ERR_NAME_IN_USE (a link of the host end's name exists and is not this endpoint's)
 */
export async function attachEndpoint(ctx: DriverContext, net: AttachNet, ep: AttachEndpoint, netns: NetnsSpec): Promise<void> {
  const c = await Netlink.open({ netns });
  try {
    await assertIfnameFree(c, ep.ifname, netns);
    const veth = {
      kind: 'veth' as const,
      name: ep.hostIfname,
      mtu: net.mtu,
      master: net.bridge,
      up: true,
      alias: ownerAlias(net.name, ep.id),
      // Hairpin: a container reaching its own published port goes out of and back into its port.
      bridgePort: { hairpin: true },
      // An IPv4-only network's veths carry no IPv6 at all: otherwise every new port's DAD and MLD
      // multicast is flooded to every other port, and connects slow down with the container count.
      ...(net.subnet6 ? {} : { addrGenMode: 'none' as const }),
      peer: { name: ep.ifname, netns, mac: ep.mac, mtu: net.mtu },
    };
    try {
      await ctx.host.links.add(veth);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
      // The container's name was free: the host end's name is taken. This endpoint's own
      // leftover (a connect killed before its commit) is replaced; anything else is refused.
      const left = await ctx.host.links.find(ep.hostIfname);
      if (!left) throw e;
      if (left.alias !== ownerAlias(net.name, ep.id))
        throw new NsnetError('ERR_NAME_IN_USE', `a link named ${ep.hostIfname} exists in the host namespace and is not endpoint ${ep.id}'s veth`, { link: ep.hostIfname });
      await ctx.host.links.remove(left.index);
      await ctx.host.links.add(veth);
    }
  } catch (e) {
    c.close();
    throw e;
  }
  try {
    await c.links.set('lo', { up: true });
    await c.addresses.add(ep.ifname, `${ep.ipv4}/${net.subnet.split('/')[1]}`);
    if (!net.subnet6) await c.links.set(ep.ifname, { addrGenMode: 'none' }); // before it comes up
    await c.links.set(ep.ifname, { up: true });
    if (ep.ipv6 && net.subnet6) await c.addresses.add(ep.ifname, `${ep.ipv6}/${net.subnet6.split('/')[1]}`, { nodad: true });
    // An internal network still reaches its own subnet (the prefix route); no way out.
    if (!net.internal) await addDefaultRoutes(c, ep.gateway, ep.gateway6);
  } catch (e) {
    await ctx.host.links.remove(ep.hostIfname).catch(() => undefined);
    throw e;
  } finally {
    c.close();
  }
}

/**
 * The container's default routes via its network's gateways. A container already attached to
 * another network keeps that one's (EEXIST): like Docker, the first network is the way out.
 * @internal
 */
export async function addDefaultRoutes(c: Netlink, gateway: string | undefined, gateway6: string | undefined): Promise<void> {
  for (const gw of [gateway, gateway6]) {
    if (!gw) continue;
    await c.routes.add({ dst: 'default', gateway: gw }).catch((e) => {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
    });
  }
}

/**
 * The link group of retired veths: deleting links one at a time costs an RCU grace period each
 * (~16 ms), a group delete of any number costs one. nsnet's own mark, documented; only links it
 * retired itself are ever put there.
 */
export const RETIRED_GROUP = 0x6e736e74; // 'nsnt'

/**
 * Retires a container's veth at once, without waiting for the kernel's unregister: the host end
 * goes down (the container loses its link), leaves the bridge and joins {@link RETIRED_GROUP};
 * {@link reapRetired} deletes every retired pair later in one operation. Already gone is fine.
 */
export async function retireEndpoint(ctx: DriverContext, ep: BridgeEndpointRecord): Promise<void> {
  await ctx.host.links.set(ep.hostIfname, { up: false, master: null, group: RETIRED_GROUP }).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}

/** Deletes every retired veth pair in one kernel operation. */
export async function reapRetired(ctx: DriverContext): Promise<void> {
  await ctx.host.links.removeGroup(RETIRED_GROUP).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e; // none retired
  });
}

/** Detaches a container: removing the host end removes the pair (already gone is fine). */
export async function detachEndpoint(ctx: DriverContext, ep: Pick<BridgeEndpointRecord, 'hostIfname'>): Promise<void> {
  await ctx.host.links.remove(ep.hostIfname).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}
