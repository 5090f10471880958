/**
 * Bridge mode: a Linux bridge per network with the gateway address, and per container a veth
 * pair on it (lib/devices/veth.ts) with the container's address, MAC (from its IPv4 address),
 * default route and loopback; NAT, published ports and isolation are the firewall's elements
 * (lib/firewall/), addresses come from the network's pool (lib/ipam/). The default network
 * `bridge` (device `nsnet0`) is recorded at open and made at its first connect.
 */
import { createHash } from 'node:crypto';
import { NsnetError } from '../errors';
import { createBridge, removeBridge } from '../devices/bridge';
import { ownerAlias } from '../devices/marks';
import { faultPoint } from '../faults';
import { Firewall } from '../firewall/firewall';
import { normalizeNetwork } from '../ipam/index';
import * as v from '../validate';
import { bridgedEndpoints } from './bridged';
import type { Driver } from './driver';
import type { BridgeNetworkRecord } from '../host-types';

/** The default network's bridge device. */
export const DEFAULT_BRIDGE = 'nsnet0';
/** The default network's subnet, when free (Docker's). */
const DEFAULT_SUBNET = '172.17.0.0/16';

const { bridgeUp, ...endpoints } = bridgedEndpoints<BridgeNetworkRecord>((net) => ({ veth: net, firewall: net }));

/** The bridge driver. */
export const bridgeDriver: Driver<BridgeNetworkRecord> = {
  name: 'bridge',
  networkOptions: ['bridge', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'icc', 'internal', 'ipMasquerade', 'dns'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'ipv6', 'publish', 'handOver'],
  whyNot: (option) => (option === 'ports' ? ': ports are claims of host-mode containers; publish them with `publish`' : undefined),
  ownsNetns: true,
  addressed: true,
  portsFrom: 'publish',

  async define(_ctx, spec, inUse) {
    if (spec.bridge !== undefined) {
      v.ifname(spec.bridge, 'bridge name');
      if (inUse.networks.some((n) => n.driver === 'bridge' && n.bridge === spec.bridge))
        throw new NsnetError('ERR_NAME_IN_USE', `bridge ${spec.bridge} belongs to another network`, { bridge: spec.bridge });
    }
    // The default network takes Docker's subnet unless another network has it.
    const subnet = spec.subnet ?? (spec.bridge === DEFAULT_BRIDGE && !inUse.subnets.includes(DEFAULT_SUBNET) ? DEFAULT_SUBNET : undefined);
    const plan = normalizeNetwork({ subnet, gateway: spec.gateway, ipRange: spec.ipRange, subnet6: spec.subnet6, gateway6: spec.gateway6 }, inUse.subnets);
    const record: BridgeNetworkRecord = {
      name: spec.name,
      driver: 'bridge',
      bridge: spec.bridge ?? `nsbr-${createHash('sha256').update(spec.name).digest('hex').slice(0, 10)}`,
      subnet: plan.subnet,
      gateway: plan.gateway,
      mtu: spec.mtu === undefined ? 1500 : v.mtu(spec.mtu),
      icc: spec.icc === undefined ? true : v.bool(spec.icc, 'icc'),
      internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal'),
      ipMasquerade: spec.ipMasquerade === undefined ? true : v.bool(spec.ipMasquerade, 'ipMasquerade'),
      labels: spec.labels,
      created: new Date().toISOString(),
      ...(plan.ipRange ? { ipRange: plan.ipRange } : {}),
      ...(plan.subnet6 ? { subnet6: plan.subnet6 } : {}),
      ...(plan.gateway6 ? { gateway6: plan.gateway6 } : {}),
    };
    return { record, pool: plan };
  },

  async realize(ctx, net) {
    await ctx.firewall.ensure();
    await createBridge(ctx.host, net);
    faultPoint('realize:bridge');
    for (const [key, value] of Object.entries(Firewall.sysctls(net))) await ctx.sysctl(key, value);
    await ctx.firewall.addNetwork(net);
  },

  async unrealize(ctx, net) {
    await ctx.firewall.removeNetwork(net.name);
    faultPoint('removeNetwork:firewall');
    await removeBridge(ctx.host, net);
    faultPoint('removeNetwork:bridge');
  },

  ...endpoints,

  addressing: (net) => net,
  inspect: bridgeUp,

  async diagnose(ctx, net, state) {
    const bridge = await ctx.host.links.find(net.bridge);
    const mine = bridge?.alias === ownerAlias(net.name);
    const elements = state.owned.has(`net:${net.name}`);
    if (state.lazy && !mine && !elements && !state.inUse) return 'absent';
    return mine && bridge.up && elements ? 'fine' : 'broken';
  },
};

/** The default network's spec: `bridge` on `nsnet0`, Docker's 172.17.0.0/16 when free. */
export const DEFAULT_NETWORK_SPEC = { name: 'bridge', driver: 'bridge', bridge: DEFAULT_BRIDGE } as const;
