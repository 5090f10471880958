/**
 * A container's veth pair on a network's bridge: the host end on the bridge (hairpin on, marked
 * `nsnet:<network>:<endpoint>`), the other end born directly inside the container's namespace
 * under its final name (one atomic request, nothing to move or rename). Disconnecting retires
 * the pair at once (down, in a group of its own) and deletes retired pairs in batches.
 */
import { NetlinkError, NsnetError } from '../errors';
import type { Link } from '../netlink/link-types';
import { Netlink } from '../netlink/netlink';
import { phase } from '../phases';
import type { NetnsSpec } from '../netns';
import { assertIfnameFree, configureContainer } from './container';
import { bridgeIndex, forgetBridgeIndex } from './bridge';
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
 * then, at once, the host end's mark, hairpin and up, and the container side's loopback,
 * address(es), up and default routes. Undone if any step fails. Three round trips to the
 * kernel, the last two in parallel, and no thread or handle of its own: the container side is
 * one batch sent by a pooled thread of the addon (Netlink.transient).
 * With `handOver`, the peer is made in the host namespace under that name instead (its MAC and
 * MTU set, nothing else) for the caller to move into the container and configure.
 * @throws ERR_IFNAME_IN_USE (the container — with `handOver`, the host — has an interface of
 *   that name: nothing is made); ERR_NAME_IN_USE (a link of the host end's name exists and is
 *   not this endpoint's)
 */
export async function attachVeth(host: Netlink, net: VethBridge, ep: VethEndpoint, netns: NetnsSpec, handOver?: string): Promise<void> {
  const c = handOver === undefined ? Netlink.transient({ netns }) : undefined;
  /** Refuses the name the container end needs when it is taken (in the container, or in the host with handOver). */
  const assertPeerNameFree = async (): Promise<void> => {
    if (c) await assertIfnameFree(c, ep.ifname, netns);
    else if (await host.links.find(handOver!))
      throw new NsnetError('ERR_IFNAME_IN_USE', `the host namespace already has an interface named ${handOver}: choose another name to hand over`, {
        ifname: handOver,
      });
  };
  try {
    // (The handed-over name is checked first: in the host namespace, EEXIST could not tell it
    // from the host end's own name.)
    if (!c) await assertPeerNameFree();
    const veth = {
      kind: 'veth' as const,
      name: ep.hostIfname,
      mtu: net.mtu,
      master: bridgeIndex(host, net.bridge) ?? (net.bridge as string | number),
      peer: c ? { name: ep.ifname, netns, mac: ep.mac, mtu: net.mtu } : { name: handOver!, mac: ep.mac, mtu: net.mtu },
    };
    let link: Link;
    try {
      link = await host.links.add(veth).catch((e) => {
        // The bridge's index as last seen names no device (EINVAL): it was deleted under this
        // host. Asked by name instead: ENODEV then says the network is gone.
        if (!(e instanceof NetlinkError && e.code === 'EINVAL' && typeof veth.master === 'number')) throw e;
        forgetBridgeIndex(host, net.bridge);
        veth.master = net.bridge;
        return host.links.add(veth);
      });
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
      // One of the two names is taken. The container's: refused, nothing was made.
      await assertPeerNameFree();
      // The host end's: this endpoint's own leftover (a connect killed before its commit) is
      // replaced; anything else is refused.
      const left = await host.links.find(ep.hostIfname);
      if (left) {
        if (left.alias !== ownerAlias(net.name, ep.id))
          throw new NsnetError('ERR_NAME_IN_USE', `a link named ${ep.hostIfname} exists in the host namespace and is not endpoint ${ep.id}'s veth`, {
            link: ep.hostIfname,
          });
        await host.links.remove(left.index);
      }
      // (Neither taken any more: a retired pair was deleted meanwhile.)
      link = await host.links.add(veth);
    }
    phase('link');
    const peer = link.raw.link;
    try {
      const [hostEnd] = await Promise.all([
        host.batch([
          // Marked nsnet's; hairpin: a container reaching its own published port goes out of
          // and back into its port. An IPv4-only network's veths carry no IPv6 at all (else every
          // new port's DAD and MLD multicast is flooded to every other port, and connects slow
          // down with the container count): off before the end comes up, in a request of its own
          // (the kernel applies a request's flags before its IFLA_AF_SPEC).
          host.links.setOp(link.index, {
            alias: ownerAlias(net.name, ep.id),
            bridgePort: { hairpin: true },
            ...(net.subnet6 ? {} : { addrGenMode: 'none' as const }),
          }),
          host.links.setOp(link.index, { up: true }),
        ]),
        // Handed over: the caller configures the container end where it moves it.
        c
          ? configureContainer(c, {
              ifname: ep.ifname,
              index: typeof peer === 'number' ? peer : undefined,
              ipv4: ep.ipv4,
              prefix: Number(net.subnet.split('/')[1]),
              ipv6: ep.ipv6,
              gateway: ep.gateway,
              gateway6: ep.gateway6,
              prefix6: net.subnet6 ? Number(net.subnet6.split('/')[1]) : undefined,
              internal: net.internal,
              addrGenOff: !net.subnet6,
            })
          : undefined,
      ]);
      const failed = hostEnd.find((e) => e !== undefined);
      if (failed) throw failed;
    } catch (e) {
      await host.links.remove(link.index).catch(() => undefined);
      throw e;
    }
    phase('addresses/routes');
  } finally {
    c?.close();
  }
}

/**
 * Whether the veth attachVeth began for `ep` was finished: its host end carries the endpoint's
 * mark (set with hairpin and up, in one request), and the container end is up with the
 * endpoint's addresses (its routes come in the same request). A connect commits its record
 * while it attaches (StoreTx.commitAhead), so a crash can leave one half made: healing tells it
 * by this and makes it again. Handed-over ends are configured by the caller: the mark only.
 */
export async function vethComplete(hostEnd: Link, netName: string, ep: VethEndpoint, netns: NetnsSpec | undefined, handOver?: string): Promise<boolean> {
  if (hostEnd.alias !== ownerAlias(netName, ep.id)) return false;
  if (handOver !== undefined || netns === undefined) return true;
  let c: Netlink | undefined;
  try {
    c = Netlink.transient({ netns });
    const l = await c.links.find(ep.ifname);
    if (!l || !l.up) return false;
    const have = new Set((await c.addresses.list({ dev: l.index })).map((a) => a.address));
    return [ep.ipv4, ep.ipv6].every((a) => a === undefined || have.has(a.split('/')[0]!));
  } catch {
    return false; // its namespace cannot be read: not known to be complete
  } finally {
    c?.close();
  }
}

/** Marks a host end as another endpoint's (the warm pool's handover): one request, no lookup. */
export async function markVeth(host: Netlink, hostIfname: string, alias: string): Promise<void> {
  const [failed] = await host.batch([host.links.setOp(hostIfname, { alias })]);
  if (failed) throw failed;
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
 * goes down (the container loses its link; its bridge port is disabled, its learned addresses
 * forgotten) and joins {@link RETIRED_GROUP}; {@link reapRetired} deletes every retired pair
 * later in one operation, which takes the port off the bridge. Not taken off the bridge here:
 * leaving a bridge costs the kernel time in proportion to its ports (1.96 ms against 0.68 ms
 * with 1,000 ports, measured here), on the disconnect's path. Already gone is fine.
 */
export async function retireVeth(host: Netlink, hostIfname: string): Promise<void> {
  // One request by name, no lookup first: a retirement the kernel refused half-way is finished
  // or undone by the caller's compensation (unretireVeth) or by reconcile().
  const [failed] = await host.batch([{ ...host.links.setOp(hostIfname, { up: false, group: RETIRED_GROUP }), tolerate: ['ENODEV'] }]);
  if (failed) throw failed;
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
