/**
 * A container's veth pair on a network's bridge: the host end on the bridge (hairpin on, marked
 * `nsnet:<network>:<endpoint>`), the other end born directly inside the container's namespace
 * under its final name (one atomic request, nothing to move or rename). Disconnecting retires
 * the pair at once and deletes retired pairs in batches.
 */
import { NetlinkError, NsnetError } from '../errors';
import { Netlink } from '../netlink/netlink';
import { phase } from '../phases';
import type { NetnsSpec } from '../netns';
import { assertIfnameFree, configureContainer } from './container';
import { RETIRED_GROUP, ownerAlias } from './marks';

/** The bridge a veth joins. */
export interface VethBridge {
  /** The network (for the mark). */
  name: string;
  bridge: string;
  mtu: number;
  subnet: string;
  subnet6?: string | undefined;
  /** No default route in the container. */
  internal: boolean;
}

/** The endpoint a veth is for. */
export interface VethEndpoint {
  id: string;
  ifname: string;
  hostIfname: string;
  mac: string;
  ipv4: string;
  ipv6?: string | undefined;
  gateway?: string | undefined;
  gateway6?: string | undefined;
}

/**
 * Attaches a container: the veth pair (peer created in the container namespace as `ifname`),
 * then the container side's address, loopback and default route. Undone if any step fails.
 * @throws ERR_IFNAME_IN_USE (the container has an interface of that name: nothing is made);
 *   ERR_NAME_IN_USE (a link of the host end's name exists and is not this endpoint's)
 */
export async function attachVeth(host: Netlink, net: VethBridge, ep: VethEndpoint, netns: NetnsSpec): Promise<void> {
  const c = await Netlink.open({ netns });
  phase('container handle');
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
      await host.links.add(veth);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
      // The container's name was free: the host end's name is taken. This endpoint's own
      // leftover (a connect killed before its commit) is replaced; anything else is refused.
      const left = await host.links.find(ep.hostIfname);
      if (!left) throw e;
      if (left.alias !== ownerAlias(net.name, ep.id))
        throw new NsnetError('ERR_NAME_IN_USE', `a link named ${ep.hostIfname} exists in the host namespace and is not endpoint ${ep.id}'s veth`, { link: ep.hostIfname });
      await host.links.remove(left.index);
      await host.links.add(veth);
    }
  } catch (e) {
    c.close();
    throw e;
  }
  phase('link');
  try {
    await configureContainer(c, {
      ifname: ep.ifname, ipv4: ep.ipv4, prefix: Number(net.subnet.split('/')[1]), ipv6: ep.ipv6, gateway: ep.gateway, gateway6: ep.gateway6,
      prefix6: net.subnet6 ? Number(net.subnet6.split('/')[1]) : undefined, internal: net.internal, addrGenOff: !net.subnet6,
    });
  } catch (e) {
    await host.links.remove(ep.hostIfname).catch(() => undefined);
    throw e;
  } finally {
    c.close();
  }
  phase('addresses/routes');
}

/** Puts a retired host end back on its bridge, up (or reports it missing: false). */
export async function unretireVeth(host: Netlink, hostIfname: string, bridge: string): Promise<boolean> {
  const link = await host.links.find(hostIfname);
  if (!link) return false;
  await host.links.set(link.index, { master: bridge, group: 0, up: true });
  await host.links.set(link.index, { bridgePort: { hairpin: true } });
  return true;
}

/**
 * Retires a container's veth at once, without waiting for the kernel's unregister: the host end
 * goes down (the container loses its link), leaves the bridge and joins {@link RETIRED_GROUP};
 * {@link reapRetired} deletes every retired pair later in one operation. Already gone is fine.
 */
export async function retireVeth(host: Netlink, hostIfname: string): Promise<void> {
  await host.links.set(hostIfname, { up: false, master: null, group: RETIRED_GROUP }).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}

/** Deletes every retired veth pair in one kernel operation. */
export async function reapRetired(host: Netlink): Promise<void> {
  await host.links.removeGroup(RETIRED_GROUP).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e; // none retired
  });
}

/** Detaches a container at once: removing the host end removes the pair (already gone is fine). */
export async function removeVeth(host: Netlink, hostIfname: string): Promise<void> {
  await host.links.remove(hostIfname).catch((e) => {
    if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
  });
}
