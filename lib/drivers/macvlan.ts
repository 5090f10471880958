/**
 * macvlan mode, the kernel side: each container gets a macvlan child of the network's parent
 * device, born directly inside the container's namespace (IFLA_NET_NS_FD: nothing to move or
 * rename, and nothing is ever left in the host namespace), with its address from IPAM, a MAC
 * derived from it and a default route to the segment's gateway. Traffic goes straight onto the
 * parent's L2 segment: no bridge, no NAT, no firewall elements. The child carries the alias
 * `nsnet:<network>:<endpoint>` so a leftover of a crash is recognised as nsnet's.
 *
 * The parent is never changed (not brought up, not reconfigured): it is the host's interface.
 */
import { NetlinkError, NsnetError } from '../errors';
import type { Link } from '../netlink/link-types';
import { Netlink } from '../netlink/netlink';
import { openNetns, type NetnsSpec } from '../netns';
import { addDefaultRoutes, assertIfnameFree, ownerAlias } from './bridge';
import type { DriverContext, MacvlanEndpointRecord, MacvlanNetworkRecord } from './driver';

/**
 * The parent device of a macvlan network.
 * @throws ERR_PARENT_NOT_FOUND when the host namespace has no such link.
 */
export async function macvlanParent(ctx: DriverContext, parent: string): Promise<Link> {
  const link = await ctx.host.links.find(parent);
  if (!link) throw new NsnetError('ERR_PARENT_NOT_FOUND', `the macvlan parent ${parent} does not exist in the host namespace`, { parent });
  return link;
}

/**
 * Attaches a container: the child in its namespace as `ep.ifname`, loopback up, the address,
 * the default route (not on an internal network). Undone if a step fails. A child of the same
 * name that is nsnet's own for this endpoint (left by a crash) is replaced.
 * @throws ERR_PARENT_NOT_FOUND; ERR_IFNAME_IN_USE when the container has a foreign link of that name; NetlinkError EBUSY when a passthru parent already has its child.
 */
export async function attachMacvlan(ctx: DriverContext, net: MacvlanNetworkRecord, ep: MacvlanEndpointRecord, netns: NetnsSpec): Promise<void> {
  await macvlanParent(ctx, net.parent);
  const c = await Netlink.open({ netns });
  try {
    const spec = {
      kind: 'macvlan' as const, name: ep.ifname, parent: net.parent, mode: net.mode, mac: ep.mac, netns,
      alias: ownerAlias(net.name, ep.id), ...(net.mtu ? { mtu: net.mtu } : {}),
      // No IPv6 on an IPv4-only network: no DAD or MLD on the segment for nothing.
      ...(net.subnet6 ? {} : { addrGenMode: 'none' as const }),
    };
    // A child of that name that is nsnet's own for this endpoint (a crash's leftover) is
    // replaced; any other interface of that name is refused before anything is made.
    const left = await c.links.find(ep.ifname);
    if (left?.alias === ownerAlias(net.name, ep.id)) await c.links.remove(left.index);
    else await assertIfnameFree(c, ep.ifname, netns);
    await ctx.host.links.add(spec);
    try {
      await c.links.set('lo', { up: true });
      await c.addresses.add(ep.ifname, `${ep.ipv4}/${net.subnet.split('/')[1]}`);
      await c.links.set(ep.ifname, { up: true });
      if (ep.ipv6 && net.subnet6) await c.addresses.add(ep.ifname, `${ep.ipv6}/${net.subnet6.split('/')[1]}`, { nodad: true });
      if (!net.internal) await addDefaultRoutes(c, ep.gateway, ep.gateway6);
    } catch (e) {
      await c.links.remove(ep.ifname).catch(() => undefined);
      throw e;
    }
  } finally {
    c.close();
  }
}

/** Whether the endpoint's child exists in its namespace (false when the namespace is gone). */
export async function macvlanAttached(ep: MacvlanEndpointRecord, networkName: string): Promise<boolean> {
  let c: Netlink;
  try {
    c = await Netlink.open({ netns: ep.netns });
  } catch {
    return false;
  }
  try {
    return (await c.links.find(ep.ifname))?.alias === ownerAlias(networkName, ep.id);
  } finally {
    c.close();
  }
}

/**
 * Detaches a container: deletes its child if it is still nsnet's for this endpoint. A gone
 * namespace took the child with it: nothing to do.
 */
export async function detachMacvlan(ep: MacvlanEndpointRecord, networkName: string): Promise<void> {
  try {
    openNetns(ep.netns).close();
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND') return;
    throw e;
  }
  const c = await Netlink.open({ netns: ep.netns });
  try {
    const link = await c.links.find(ep.ifname);
    if (link?.alias !== ownerAlias(networkName, ep.id)) return; // not ours (any more)
    await c.links.remove(link.index).catch((e) => {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
    });
  } finally {
    c.close();
  }
}
