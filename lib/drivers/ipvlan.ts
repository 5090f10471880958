/**
 * ipvlan mode: each container gets an ipvlan child of the network's parent device, sharing the
 * parent's MAC address: on its L2 segment (l2), or routed through it by the host (l3, l3s: the
 * segment's router needs a route to the subnet via the host). The rest is macvlan's
 * (lib/drivers/children.ts). Kernels without ipvlan refuse at connect with ERR_NOT_AVAILABLE;
 * `nsnet doctor` says which kinds this kernel has.
 */
import { invalid } from '../errors';
import type { IpvlanNetworkRecord } from '../host-types';
import type { IpvlanFlags, IpvlanMode } from '../netlink/link-types';
import { addressFields, childEndpoints, parentName, parentOf, planChildNetwork } from './children';
import type { Driver } from './driver';

const MODES: readonly IpvlanMode[] = ['l2', 'l3', 'l3s'];
const FLAGS: readonly IpvlanFlags[] = ['bridge', 'private', 'vepa'];

const { inspect, ...endpoints } = childEndpoints<IpvlanNetworkRecord>((net) => ({
  parent: net.parent,
  link: { kind: 'ipvlan', mode: net.mode, flags: net.ipvlanFlag },
  ownMac: false,
  mtu: net.mtu,
  subnet: net.subnet,
  subnet6: net.subnet6,
  internal: net.internal,
}));

/** The ipvlan driver. */
export const ipvlanDriver: Driver<IpvlanNetworkRecord> = {
  name: 'ipvlan',
  networkOptions: ['parent', 'mode', 'ipvlanFlag', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'internal'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'ipv6'],
  whyNot: (option) => (option === 'publish' ? ': an ipvlan container is reached at its own address, with no NAT' : undefined),
  ownsNetns: true,
  addressed: true,

  async define(ctx, spec, inUse) {
    const parent = parentName('ipvlan', spec);
    const mode = (spec.mode ?? 'l2') as IpvlanMode;
    if (!MODES.includes(mode)) throw invalid('ERR_INVALID_ARGUMENT', `ipvlan mode ${JSON.stringify(mode)} must be one of ${MODES.join(', ')}`, { mode });
    const ipvlanFlag = spec.ipvlanFlag ?? 'bridge';
    if (!FLAGS.includes(ipvlanFlag))
      throw invalid('ERR_INVALID_ARGUMENT', `ipvlanFlag ${JSON.stringify(ipvlanFlag)} must be one of ${FLAGS.join(', ')}`, { ipvlanFlag });
    const p = await planChildNetwork(ctx, 'ipvlan', spec, parent, inUse);
    const record: IpvlanNetworkRecord = {
      name: spec.name,
      driver: 'ipvlan',
      parent,
      mode,
      ipvlanFlag,
      ...addressFields(p),
      labels: spec.labels,
      created: new Date().toISOString(),
    };
    return { record, pool: p.plan };
  },

  /** Only the parent must exist: nsnet never makes or changes it. */
  async realize(ctx, net) {
    await parentOf(ctx, net.parent);
  },
  async unrealize() {},

  ...endpoints,
  addressing: (net) => net,
  inspect,
};
