/**
 * macvlan mode: each container gets a macvlan child of the network's parent device, with its
 * own MAC (derived from its address), straight on the parent's L2 segment (lib/drivers/children.ts).
 */
import { invalid } from '../errors';
import type { MacvlanMode, MacvlanNetworkRecord } from '../host-types';
import { addressFields, childEndpoints, parentName, parentOf, planChildNetwork } from './children';
import type { Driver } from './driver';

export const MACVLAN_MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

/** A macvlan mode of a spec (default bridge). @throws ERR_INVALID_ARGUMENT */
export function macvlanMode(mode: unknown): MacvlanMode {
  const m = mode ?? 'bridge';
  if (!MACVLAN_MODES.includes(m as MacvlanMode))
    throw invalid('ERR_INVALID_ARGUMENT', `macvlan mode ${JSON.stringify(m)} must be one of ${MACVLAN_MODES.join(', ')}`, { mode: m });
  return m as MacvlanMode;
}

const { inspect, ...endpoints } = childEndpoints<MacvlanNetworkRecord>((net) => ({
  parent: net.parent,
  link: { kind: 'macvlan', mode: net.mode },
  ownMac: true,
  mtu: net.mtu,
  subnet: net.subnet,
  subnet6: net.subnet6,
  internal: net.internal,
}));

/** The macvlan driver. */
export const macvlanDriver: Driver<MacvlanNetworkRecord> = {
  name: 'macvlan',
  networkOptions: ['parent', 'mode', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'internal'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'ipv6'],
  whyNot: (option) => (option === 'publish' ? ': a macvlan container is reached at its own address, with no NAT' : undefined),
  ownsNetns: true,
  addressed: true,

  async define(ctx, spec, inUse) {
    const parent = parentName('macvlan', spec);
    const p = await planChildNetwork(ctx, 'macvlan', spec, parent, inUse);
    const record: MacvlanNetworkRecord = {
      name: spec.name,
      driver: 'macvlan',
      parent,
      mode: macvlanMode(spec.mode),
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
