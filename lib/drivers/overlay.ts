/**
 * Overlay mode: one network across hosts over VXLAN. Creating it defines it in the control
 * plane (the same settings on every host) and joins this host: a block of its range, a bridge
 * (the containers' gateway) and a VXLAN device (lib/overlay/devices.ts); the agent programs the
 * other hosts as peers. Containers attach to the bridge exactly as in bridge mode, and their
 * egress to anything outside the overlay is masqueraded.
 */
import { NsnetError } from '../errors';
import { ownerAlias } from '../devices/marks';
import { faultPoint } from '../faults';
import { Firewall } from '../firewall/firewall';
import { normalizeNetwork } from '../ipam/index';
import { createOverlay, removeOverlay, resolveUnderlay, type OverlayDevices } from '../overlay/devices';
import { RTPROT_NSNET } from '../overlay/peers';
import type { OverlayMembership } from '../overlay/membership';
import * as v from '../validate';
import { bridgedEndpoints, type BridgedView } from './bridged';
import type { Driver, DriverContext } from './driver';
import type { OverlayNetworkRecord } from '../host-types';

/** How an overlay network's share on this host looks to its containers and to the firewall. */
function view(r: OverlayNetworkRecord): BridgedView {
  return {
    veth: { name: r.name, bridge: r.bridge, mtu: r.mtu, subnet: r.hostSubnet, internal: false },
    firewall: { name: r.name, bridge: r.bridge, subnet: r.hostSubnet, vxlan: r.vxlan, ipMasquerade: r.ipMasquerade },
  };
}

function membership(ctx: DriverContext): OverlayMembership {
  if (!ctx.overlay)
    throw new NsnetError('ERR_NO_CONTROL_PLANE', 'overlay networks need a control plane: open the NetworkHost with { controlPlane, hostId, underlay }');
  return ctx.overlay;
}

/**
 * Makes (or corrects) the network's bridge and VXLAN device from its record. With this host's
 * membership, through its agent's queue (never at once with the agent's own work on them; the
 * agent serves the network from then on); without one, from the record alone.
 */
async function makeDevices(ctx: DriverContext, r: OverlayNetworkRecord): Promise<void> {
  const underlay = await resolveUnderlay(ctx.host, r.underlay);
  const d: OverlayDevices = {
    network: r.name,
    bridge: r.bridge,
    vxlan: r.vxlan,
    vni: r.vni,
    vxlanPort: r.vxlanPort,
    mtu: r.mtu,
    subnet: r.hostSubnet,
    gateway: r.gateway,
    vtepAddress: r.hostSubnet.split('/')[0]!,
    vtepMac: r.vtepMac,
    underlay,
  };
  if (ctx.overlay) await ctx.overlay.agent.realize(d);
  else await createOverlay(ctx.host, d);
}

/**
 * Removes the network's devices from this host. With this host's membership, through its
 * agent's queue, which first stops serving the network: no work of the agent's is half done on
 * them when they go, and none touches them after (the block stays claimed until `release`).
 */
async function removeDevices(ctx: DriverContext, network: string): Promise<void> {
  if (ctx.overlay) await ctx.overlay.agent.drop(network);
  else await removeOverlay(ctx.host, network);
}

// (No warm pool on overlay networks: their endpoints are published to the control plane as they connect.)
const { bridgeUp, adopt: _noPool, ...endpoints } = bridgedEndpoints<OverlayNetworkRecord>(view);

/** The overlay driver. */
export const overlayDriver: Driver<OverlayNetworkRecord> = {
  name: 'overlay',
  networkOptions: ['subnet', 'mtu', 'vni', 'vxlanPort', 'hostPrefix', 'ipMasquerade', 'dns'],
  connectOptions: ['netns', 'ifname', 'ipv4', 'publish', 'handOver'],
  ownsNetns: true,
  addressed: true,
  portsFrom: 'publish',

  async define(ctx, spec, inUse) {
    const ov = membership(ctx);
    const ipMasquerade = spec.ipMasquerade === undefined ? true : v.bool(spec.ipMasquerade, 'ipMasquerade');
    const { config, devices: d } = await ov.join(
      spec.name,
      {
        subnet: spec.subnet,
        vni: spec.vni,
        vxlanPort: spec.vxlanPort,
        mtu: spec.mtu,
        hostPrefix: spec.hostPrefix,
      },
      inUse.subnets,
    );
    const record: OverlayNetworkRecord = {
      name: spec.name,
      driver: 'overlay',
      subnet: config.subnet,
      hostSubnet: d.subnet,
      gateway: d.gateway,
      vni: config.vni,
      vxlanPort: config.vxlanPort,
      hostPrefix: config.hostPrefix,
      mtu: d.mtu,
      bridge: d.bridge,
      vxlan: d.vxlan,
      vtepMac: d.vtepMac,
      underlay: { address: d.underlay.address, dev: d.underlay.dev },
      ipMasquerade,
      labels: spec.labels,
      created: new Date().toISOString(),
    };
    // Addresses come from this host's block; the bridge has the gateway, the VXLAN device the block's first address.
    return { record, pool: normalizeNetwork({ subnet: record.hostSubnet, gateway: record.gateway }, []), undo: () => ov.leave(spec.name) };
  },

  agentServes: (net) => ({ network: net.name, subnet: net.hostSubnet }),

  /** The whole overlay range is taken on this host, not only this host's block. */
  reserved: (net) => [net.subnet],

  async realize(ctx, net) {
    await ctx.firewall.ensure();
    // The bridge and VXLAN device from the record (peers are the agent's business).
    await makeDevices(ctx, net);
    faultPoint('realize:bridge');
    const fw = view(net).firewall;
    for (const [key, value] of Object.entries(Firewall.sysctls(fw))) await ctx.sysctl(key, value);
    await ctx.firewall.addNetwork(fw);
  },

  async unrealize(ctx, net) {
    await ctx.firewall.removeNetwork(net.name);
    faultPoint('removeNetwork:firewall');
    await removeDevices(ctx, net.name);
    faultPoint('removeNetwork:bridge');
  },

  /**
   * This host's block is released everywhere (without a control plane, it expires with the lease
   * of the process that holds it); the definition goes with the last host.
   */
  async release(ctx, net) {
    const ov = ctx.overlay;
    if (!ov) return undefined;
    try {
      await ov.leave(net.name);
    } catch (e) {
      await overlayDriver.realize(ctx, net).catch(() => undefined); // the control plane is away: nothing changes
      throw e;
    }
    return () => ov.agent.join(net.name);
  },

  ...endpoints,

  addressing: (net) => ({ subnet: net.hostSubnet, gateway: net.gateway }),

  async inspect(ctx, net) {
    const vxlanUp = (await ctx.host.links.find(net.vxlan))?.up === true;
    const peers = vxlanUp ? (await ctx.host.routes.list({ family: 4, dev: net.vxlan })).filter((r) => r.protocol === String(RTPROT_NSNET)).length : 0;
    return { ...(await bridgeUp(ctx, net)), vxlanUp, peers };
  },

  ownsLink: (net, link) => link.name === net.bridge || link.name === net.vxlan,

  /** What the running agent found broken and remade first (asked after realize, which waits for any pass in flight). */
  repairedByOthers: (ctx, net) => ctx.overlay?.agent.takeRepaired(net.name) === true,

  async diagnose(ctx, net, state) {
    const [bridge, vxlan] = await Promise.all([ctx.host.links.find(net.bridge), ctx.host.links.find(net.vxlan)]);
    const mine = bridge?.alias === ownerAlias(net.name) && vxlan?.alias === ownerAlias(net.name);
    return mine && bridge.up && vxlan.up && state.owned.has(`net:${net.name}`) ? 'fine' : 'broken';
  },
};
