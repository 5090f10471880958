/**
 * VLAN mode (Docker's macvlan with `parent: eth0.10`): the network is an 802.1Q (or 802.1ad)
 * sub-interface of a trunk device, made by nsnet and marked `nsnet:<network>` when it does not
 * exist (an existing one of that name and tag is used as it is, and never removed), and the
 * containers are macvlan children of it, on that VLAN of the trunk's segment
 * (lib/drivers/children.ts). Kernels without 802.1Q refuse at createNetwork with
 * ERR_NOT_AVAILABLE; `nsnet doctor` says which kinds this kernel has.
 */
import { NetlinkError, NsnetError, invalid } from '../errors';
import { ownerAlias } from '../devices/marks';
import type { VlanNetworkRecord } from '../host-types';
import type { VlanProtocol } from '../netlink/link-types';
import * as v from '../validate';
import { addressFields, childEndpoints, parentName, parentOf, planChildNetwork } from './children';
import type { Driver, DriverContext } from './driver';
import { macvlanMode } from './macvlan';

const PROTOCOLS: readonly VlanProtocol[] = ['802.1Q', '802.1ad'];

/** The trunk and tag a spec names: `parent` with `vlanId`, or Docker's `eth0.10`. @throws ERR_INVALID_ARGUMENT */
function trunkOf(parent: string, vlanId: unknown): { trunk: string; id: number } {
  if (vlanId !== undefined) return { trunk: parent, id: v.int(vlanId, 1, 4094, 'vlanId') };
  const m = /^(.+)\.(\d{1,4})$/u.exec(parent);
  if (!m)
    throw invalid('ERR_INVALID_ARGUMENT', `a vlan network needs a vlanId, or a parent written trunk.id (eth0.10): ${JSON.stringify(parent)} is neither`, {
      option: 'vlanId',
    });
  return { trunk: m[1]!, id: v.int(Number(m[2]), 1, 4094, 'the VLAN id after the dot') };
}

/** Makes the sub-interface unless it exists (an existing one must be that trunk's VLAN). */
async function makeSubInterface(ctx: DriverContext, net: VlanNetworkRecord): Promise<void> {
  const trunk = await parentOf(ctx, net.parent);
  const link = await ctx.host.links.find(net.subInterface);
  if (link) {
    if (link.kind !== 'vlan' || link.vlan.id !== net.vlanId || link.parentIndex !== trunk.index)
      throw new NsnetError('ERR_NAME_IN_USE', `a link named ${net.subInterface} exists and is not VLAN ${net.vlanId} of ${net.parent}`, {
        link: net.subInterface,
      });
    if (link.alias === ownerAlias(net.name) && !link.up) await ctx.host.links.set(link.index, { up: true });
    return;
  }
  await ctx.host.links
    .add({
      kind: 'vlan',
      name: net.subInterface,
      parent: net.parent,
      id: net.vlanId,
      protocol: net.vlanProtocol,
      mtu: net.mtu,
      alias: ownerAlias(net.name),
      up: true,
    })
    .catch((e) => {
      if (e instanceof NetlinkError && e.code === 'EOPNOTSUPP')
        throw new NsnetError('ERR_NOT_AVAILABLE', `this kernel has no vlan links (${e.extack ?? e.message}): see nsnet doctor`, { kind: 'vlan' });
      throw e;
    });
}

const { inspect, ...endpoints } = childEndpoints<VlanNetworkRecord>((net) => ({
  parent: net.subInterface,
  link: { kind: 'macvlan', mode: net.mode },
  ownMac: true,
  mtu: net.mtu,
  subnet: net.subnet,
  subnet6: net.subnet6,
  internal: net.internal,
}));

/** The vlan driver. */
export const vlanDriver: Driver<VlanNetworkRecord> = {
  name: 'vlan',
  networkOptions: ['parent', 'vlanId', 'vlanProtocol', 'mode', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'internal'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'ipv6'],
  whyNot: (option) => (option === 'publish' ? ': a vlan container is reached at its own address, with no NAT' : undefined),
  ownsNetns: true,
  addressed: true,

  async define(ctx, spec, inUse) {
    const { trunk, id } = trunkOf(parentName('vlan', spec), spec.vlanId);
    const subInterface = v.ifname(`${trunk}.${id}`, 'the sub-interface name (trunk.id)');
    const vlanProtocol = spec.vlanProtocol ?? '802.1Q';
    if (!PROTOCOLS.includes(vlanProtocol))
      throw invalid('ERR_INVALID_ARGUMENT', `vlanProtocol ${JSON.stringify(vlanProtocol)} must be 802.1Q or 802.1ad`, { vlanProtocol });
    if (inUse.networks.some((n) => n.driver === 'vlan' && n.subInterface === subInterface))
      throw new NsnetError('ERR_NAME_IN_USE', `${subInterface} is the sub-interface of another vlan network`, { link: subInterface });
    const p = await planChildNetwork(ctx, 'vlan', spec, trunk, inUse);
    const record: VlanNetworkRecord = {
      name: spec.name,
      driver: 'vlan',
      parent: trunk,
      vlanId: id,
      vlanProtocol,
      subInterface,
      mode: macvlanMode(spec.mode),
      ...addressFields(p),
      labels: spec.labels,
      created: new Date().toISOString(),
    };
    return { record, pool: p.plan };
  },

  realize: makeSubInterface,

  /** Removes the sub-interface if nsnet made it (its mark); one that existed before stays. */
  async unrealize(ctx, net) {
    const link = await ctx.host.links.find(net.subInterface);
    if (link?.alias !== ownerAlias(net.name)) return;
    await ctx.host.links.remove(link.index).catch((e) => {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
    });
  },

  ...endpoints,
  addressing: (net) => net,
  inspect,
  ownsLink: (net, link) => link.name === net.subInterface,

  async diagnose(ctx, net) {
    const link = await ctx.host.links.find(net.subInterface);
    return link?.kind === 'vlan' && link.vlan.id === net.vlanId && link.up ? 'fine' : 'broken';
  },
};
