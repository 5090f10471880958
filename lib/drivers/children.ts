/**
 * What the drivers whose containers get a child link of a host device share (macvlan, ipvlan,
 * vlan): the child is born directly inside the container's namespace (IFLA_NET_NS_FD: nothing
 * to move or rename, and nothing is ever left in the host namespace), with its address from
 * IPAM and a default route to the segment's gateway. Traffic goes straight onto the parent's
 * segment: no bridge, no NAT, no firewall elements. The child carries the alias
 * `nsnet:<network>:<endpoint>` so a leftover of a crash is recognised as nsnet's.
 *
 * The parent is never changed (not brought up, not reconfigured): it is the host's interface.
 */
import { NetlinkError, NsnetError, invalid } from '../errors';
import { assertIfnameFree, configureContainer, removeMarkedLink } from '../devices/container';
import { ownerAlias } from '../devices/marks';
import { faultPoint } from '../faults';
import type { EndpointRecord, MacvlanEndpointRecord, NetworkInspect, NetworkRecord, NetworkSpec } from '../host-types';
import { normalizeNetwork, type NormalizedNetwork } from '../ipam/index';
import type { IpvlanSpec, Link, MacvlanSpec } from '../netlink/link-types';
import { Netlink } from '../netlink/netlink';
import * as v from '../validate';
import type { Driver, DriverContext, InUse } from './driver';

/** How a network's children are made: the link kind's settings, on which parent. */
export interface ChildOf {
  /** The device the children hang on, in the host namespace. */
  parent: string;
  link: Pick<MacvlanSpec, 'kind' | 'mode'> | Pick<IpvlanSpec, 'kind' | 'mode' | 'flags'>;
  /** The child may take the MAC derived from its address (an ipvlan child has its parent's). */
  ownMac: boolean;
  mtu: number;
  subnet: string;
  subnet6?: string | undefined;
  internal: boolean;
}

/** The parent device. @throws ERR_PARENT_NOT_FOUND when the host namespace has no such link. */
export async function parentOf(ctx: DriverContext, parent: string): Promise<Link> {
  const link = await ctx.host.links.find(parent);
  if (!link) throw new NsnetError('ERR_PARENT_NOT_FOUND', `the parent device ${parent} does not exist in the host namespace`, { parent });
  return link;
}

/**
 * A kernel without the link kind says "Unknown device type" (EOPNOTSUPP): that is this kernel's
 * lack, said as such.
 */
function unsupported(e: unknown, kind: string): unknown {
  if (!(e instanceof NetlinkError && e.code === 'EOPNOTSUPP')) return e;
  return new NsnetError('ERR_NOT_AVAILABLE', `this kernel has no ${kind} links (${e.extack ?? e.message}): see nsnet doctor`, { kind });
}

/**
 * Attaches a container: the child in its namespace as `ep.ifname`, loopback up, the address,
 * the default route (not on an internal network). Undone if a step fails. A child of the same
 * name that is nsnet's own for this endpoint (left by a crash) is replaced.
 * @throws ERR_PARENT_NOT_FOUND; ERR_IFNAME_IN_USE when the container has a foreign link of that
 *   name; ERR_NOT_AVAILABLE when the kernel lacks the kind; NetlinkError EBUSY when a passthru
 *   parent already has its child.
 */
async function attachChild(ctx: DriverContext, network: string, c0: ChildOf, ep: MacvlanEndpointRecord): Promise<void> {
  await parentOf(ctx, c0.parent);
  const c = await Netlink.open({ netns: ep.netns });
  try {
    // A child of that name that is nsnet's own for this endpoint (a crash's leftover) is
    // replaced; any other interface of that name is refused before anything is made.
    const left = await c.links.find(ep.ifname);
    if (left?.alias === ownerAlias(network, ep.id)) await c.links.remove(left.index);
    else await assertIfnameFree(c, ep.ifname, ep.netns);
    await ctx.host.links
      .add({
        ...c0.link,
        name: ep.ifname,
        parent: c0.parent,
        netns: ep.netns,
        alias: ownerAlias(network, ep.id),
        mtu: c0.mtu,
        ...(c0.ownMac ? { mac: ep.mac } : {}),
        // No IPv6 on an IPv4-only network: no DAD or MLD on the segment for nothing.
        ...(c0.subnet6 ? {} : { addrGenMode: 'none' as const }),
      })
      .catch((e) => {
        throw unsupported(e, c0.link.kind);
      });
    try {
      await configureContainer(c, {
        ifname: ep.ifname,
        ipv4: ep.ipv4,
        prefix: Number(c0.subnet.split('/')[1]),
        ipv6: ep.ipv6,
        gateway: ep.gateway,
        gateway6: ep.gateway6,
        prefix6: c0.subnet6 ? Number(c0.subnet6.split('/')[1]) : undefined,
        internal: c0.internal,
      });
    } catch (e) {
      await c.links.remove(ep.ifname).catch(() => undefined);
      throw e;
    }
  } finally {
    c.close();
  }
}

/** Whether the endpoint's child exists in its namespace (false when the namespace is gone). */
async function attached(ep: MacvlanEndpointRecord, network: string): Promise<boolean> {
  let c: Netlink;
  try {
    c = await Netlink.open({ netns: ep.netns });
  } catch {
    return false;
  }
  try {
    return (await c.links.find(ep.ifname))?.alias === ownerAlias(network, ep.id);
  } finally {
    c.close();
  }
}

type ChildSteps<N extends NetworkRecord> = Required<Pick<Driver<N>, 'attach' | 'detach' | 'healEndpoint'>> & {
  inspect(ctx: DriverContext, net: N): Promise<Pick<NetworkInspect, 'parentUp'>>;
};

/** The endpoint steps of a driver whose containers get children of a host device. */
export function childEndpoints<N extends NetworkRecord>(view: (net: N) => ChildOf): ChildSteps<N> {
  return {
    async attach(ctx, net, ep: EndpointRecord, undo) {
      await attachChild(ctx, net.name, view(net), ep as MacvlanEndpointRecord);
      undo(() => removeMarkedLink(ep.netns!, ep.ifname!, ownerAlias(net.name, ep.id)));
      faultPoint('connect:attached');
    },
    async detach(ctx, net, ep, undo) {
      await removeMarkedLink(ep.netns!, ep.ifname!, ownerAlias(net.name, ep.id));
      undo(() => attachChild(ctx, net.name, view(net), ep as MacvlanEndpointRecord));
    },
    async healEndpoint(ctx, net, ep) {
      const c0 = view(net);
      await parentOf(ctx, c0.parent);
      if (await attached(ep as MacvlanEndpointRecord, net.name)) return false;
      await attachChild(ctx, net.name, c0, ep as MacvlanEndpointRecord);
      return true;
    },
    async inspect(ctx, net) {
      return { parentUp: (await ctx.host.links.find(view(net).parent))?.up === true };
    },
  };
}

/** What defining a network of children settles: its address plan, MTU and `internal`. */
export interface ChildNetworkPlan {
  plan: NormalizedNetwork;
  mtu: number;
  internal: boolean;
}

/**
 * Validates what every network of children needs: the parent device (which must exist and not
 * be an nsnet bridge), the subnets, an MTU no larger than the parent's.
 * @throws ERR_INVALID_ARGUMENT, ERR_PARENT_NOT_FOUND, ERR_INVALID_MTU, the subnet errors
 */
export async function planChildNetwork(ctx: DriverContext, kind: string, spec: NetworkSpec, parentName: string, inUse: InUse): Promise<ChildNetworkPlan> {
  const plan = normalizeNetwork(
    { subnet: spec.subnet, gateway: spec.gateway, ipRange: spec.ipRange, subnet6: spec.subnet6, gateway6: spec.gateway6 },
    inUse.subnets,
  );
  const parent = await parentOf(ctx, parentName);
  if (parent.kind === 'bridge' && parent.alias?.startsWith('nsnet:'))
    throw invalid('ERR_INVALID_ARGUMENT', `${parentName} is the bridge of an nsnet network; a ${kind} parent must be an uplink`, { parent: parentName });
  const mtu = spec.mtu === undefined ? parent.mtu : v.mtu(spec.mtu);
  if (mtu > parent.mtu) throw invalid('ERR_INVALID_MTU', `mtu ${mtu} is larger than the parent's (${parent.mtu})`, { mtu, parentMtu: parent.mtu });
  return { plan, mtu, internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal') };
}

/** The parent a spec names. @throws ERR_INVALID_ARGUMENT */
export function parentName(kind: string, spec: NetworkSpec): string {
  if (spec.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', `a ${kind} network needs a parent device`, { option: 'parent' });
  return v.ifname(spec.parent, 'parent');
}

/** The address fields of a record from its plan. */
export function addressFields(p: ChildNetworkPlan): {
  subnet: string;
  gateway: string;
  mtu: number;
  internal: boolean;
  ipRange?: string;
  subnet6?: string;
  gateway6?: string;
} {
  return {
    subnet: p.plan.subnet,
    gateway: p.plan.gateway,
    mtu: p.mtu,
    internal: p.internal,
    ...(p.plan.ipRange ? { ipRange: p.plan.ipRange } : {}),
    ...(p.plan.subnet6 ? { subnet6: p.plan.subnet6 } : {}),
    ...(p.plan.gateway6 ? { gateway6: p.plan.gateway6 } : {}),
  };
}
