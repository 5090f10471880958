/**
 * macvlan mode: each container gets a macvlan child of the network's parent device, born
 * directly inside the container's namespace (IFLA_NET_NS_FD: nothing to move or rename, and
 * nothing is ever left in the host namespace), with its address from IPAM, a MAC derived from it
 * and a default route to the segment's gateway. Traffic goes straight onto the parent's L2
 * segment: no bridge, no NAT, no firewall elements. The child carries the alias
 * `nsnet:<network>:<endpoint>` so a leftover of a crash is recognised as nsnet's.
 *
 * The parent is never changed (not brought up, not reconfigured): it is the host's interface.
 */
import { NsnetError, invalid } from '../errors';
import { assertIfnameFree, configureContainer, removeMarkedLink } from '../devices/container';
import { ownerAlias } from '../devices/marks';
import { faultPoint } from '../faults';
import { normalizeNetwork } from '../ipam/index';
import type { Link } from '../netlink/link-types';
import { Netlink } from '../netlink/netlink';
import * as v from '../validate';
import type { Driver, DriverContext } from './driver';
import type { MacvlanEndpointRecord, MacvlanMode, MacvlanNetworkRecord } from '../host-types';

const MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

/** The parent device. @throws ERR_PARENT_NOT_FOUND when the host namespace has no such link. */
async function parentOf(ctx: DriverContext, parent: string): Promise<Link> {
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
async function attachChild(ctx: DriverContext, net: MacvlanNetworkRecord, ep: MacvlanEndpointRecord): Promise<void> {
  await parentOf(ctx, net.parent);
  const c = await Netlink.open({ netns: ep.netns });
  try {
    // A child of that name that is nsnet's own for this endpoint (a crash's leftover) is
    // replaced; any other interface of that name is refused before anything is made.
    const left = await c.links.find(ep.ifname);
    if (left?.alias === ownerAlias(net.name, ep.id)) await c.links.remove(left.index);
    else await assertIfnameFree(c, ep.ifname, ep.netns);
    await ctx.host.links.add({
      kind: 'macvlan', name: ep.ifname, parent: net.parent, mode: net.mode, mac: ep.mac, netns: ep.netns,
      alias: ownerAlias(net.name, ep.id), ...(net.mtu ? { mtu: net.mtu } : {}),
      // No IPv6 on an IPv4-only network: no DAD or MLD on the segment for nothing.
      ...(net.subnet6 ? {} : { addrGenMode: 'none' as const }),
    });
    try {
      await configureContainer(c, {
        ifname: ep.ifname, ipv4: ep.ipv4, prefix: Number(net.subnet.split('/')[1]), ipv6: ep.ipv6, gateway: ep.gateway, gateway6: ep.gateway6,
        prefix6: net.subnet6 ? Number(net.subnet6.split('/')[1]) : undefined, internal: net.internal,
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

/** The macvlan driver. */
export const macvlanDriver: Driver<MacvlanNetworkRecord> = {
  name: 'macvlan',
  networkOptions: ['parent', 'mode', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'internal'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'ipv6'],
  whyNot: (option) => (option === 'publish' ? ': a macvlan container is reached at its own address, with no NAT' : undefined),
  ownsNetns: true,
  addressed: true,

  async define(ctx, spec, inUse) {
    if (spec.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'a macvlan network needs a parent device', { option: 'parent' });
    v.ifname(spec.parent, 'parent');
    const plan = normalizeNetwork({ subnet: spec.subnet, gateway: spec.gateway, ipRange: spec.ipRange, subnet6: spec.subnet6, gateway6: spec.gateway6 }, inUse.subnets);
    const parent = await parentOf(ctx, spec.parent);
    if (parent.kind === 'bridge' && parent.alias?.startsWith('nsnet:')) throw invalid('ERR_INVALID_ARGUMENT', `${spec.parent} is the bridge of an nsnet network; a macvlan parent must be an uplink`, { parent: spec.parent });
    const mode = spec.mode ?? 'bridge';
    if (!MODES.includes(mode)) throw invalid('ERR_INVALID_ARGUMENT', `macvlan mode ${JSON.stringify(mode)} must be one of ${MODES.join(', ')}`, { mode });
    const mtu = spec.mtu === undefined ? parent.mtu : v.mtu(spec.mtu);
    if (mtu > parent.mtu) throw invalid('ERR_INVALID_MTU', `mtu ${mtu} is larger than the parent's (${parent.mtu})`, { mtu, parentMtu: parent.mtu });
    const record: MacvlanNetworkRecord = {
      name: spec.name, driver: 'macvlan', parent: spec.parent, mode, subnet: plan.subnet, gateway: plan.gateway, mtu,
      internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal'),
      labels: spec.labels, created: new Date().toISOString(),
      ...(plan.ipRange ? { ipRange: plan.ipRange } : {}),
      ...(plan.subnet6 ? { subnet6: plan.subnet6 } : {}),
      ...(plan.gateway6 ? { gateway6: plan.gateway6 } : {}),
    };
    return { record, pool: plan };
  },

  /** Only the parent must exist: nsnet never makes or changes it. */
  async realize(ctx, net) {
    await parentOf(ctx, net.parent);
  },
  async unrealize() {},

  async attach(ctx, net, ep, undo) {
    await attachChild(ctx, net, ep as MacvlanEndpointRecord);
    undo(() => removeMarkedLink(ep.netns!, ep.ifname!, ownerAlias(net.name, ep.id)));
    faultPoint('connect:attached');
  },

  async detach(ctx, net, ep, undo) {
    await removeMarkedLink(ep.netns!, ep.ifname!, ownerAlias(net.name, ep.id));
    undo(() => attachChild(ctx, net, ep as MacvlanEndpointRecord));
  },

  addressing: (net) => net,

  async inspect(ctx, net) {
    return { parentUp: (await ctx.host.links.find(net.parent))?.up === true };
  },

  async healEndpoint(ctx, net, rec) {
    const ep = rec as MacvlanEndpointRecord;
    await parentOf(ctx, net.parent);
    if (await attached(ep, net.name)) return false;
    await attachChild(ctx, net, ep);
    return true;
  },
};
