/**
 * This host's membership in overlay networks, as NetworkHost uses it: the control plane and the
 * agent opened from NetworkHost's options, joining a network (define it cluster-wide if it is
 * new, claim a block, make the devices) and leaving it, and the shapes the firewall and the
 * bridge driver take for an overlay network's record.
 */
import * as os from 'node:os';
import { NsnetError, invalid } from '../errors';
import type { AttachNet } from '../drivers/bridge';
import type { DriverContext, OverlayNetworkRecord } from '../drivers/driver';
import { createOverlay, removeOverlay, resolveUnderlay, type OverlayDevices, type UnderlaySpec } from '../drivers/overlay';
import type { FirewallNetwork } from '../firewall/elements';
import type { Netlink } from '../netlink/netlink';
import type { NetnsSpec } from '../netns';
import * as v from '../validate';
import { OverlayAgent } from './agent';
import { overlaps, type ControlPlane } from './controlplane';
import { EtcdControlPlane, type EtcdControlPlaneOptions } from './etcd';
import { FileControlPlane } from './files';

/**
 * Where the overlay's shared state lives: etcd (client URLs, plus options of
 * {@link EtcdControlPlane}), a directory every host can reach (hosts sharing one machine), or a
 * control plane already open (not closed by NetworkHost).
 */
export type ControlPlaneSpec =
  | ({ etcd: string[] | string } & Partial<Pick<EtcdControlPlaneOptions, 'prefix' | 'ttl' | 'requestTimeout' | 'credentials' | 'auth'>>)
  | { dir: string; ttl?: number; pollInterval?: number }
  | ControlPlane;

/** NetworkHost's overlay options. */
export interface OverlayHostOptions {
  controlPlane: ControlPlaneSpec;
  /** This host's id among the overlay's hosts (default: the machine's host name). */
  hostId?: string;
  /** Where VXLAN traffic leaves (default: the device of the IPv4 default route). */
  underlay?: UnderlaySpec;
  /** The agent's full reconcile period, ms (default 10 000). */
  reconcileInterval?: number;
}

/** What `createNetwork({ driver: 'overlay', ... })` takes besides the name. */
export interface OverlayCreateSpec {
  subnet?: string;
  vni?: number;
  vxlanPort?: number;
  mtu?: number;
  hostPrefix?: number;
  ipMasquerade?: boolean;
  labels: Record<string, string>;
}

const isInstance = (x: unknown): x is ControlPlane => typeof (x as ControlPlane)?.join === 'function' && typeof (x as ControlPlane)?.snapshot === 'function';

/** The device of the IPv4 default route. @throws ERR_UNDERLAY_NOT_FOUND */
export async function defaultUnderlay(nl: Netlink): Promise<UnderlaySpec> {
  const route = (await nl.routes.list({ family: 4 })).find((r) => r.dst === 'default' && r.dev !== undefined);
  if (!route) throw new NsnetError('ERR_UNDERLAY_NOT_FOUND', 'no IPv4 default route to take the underlay from: give underlay { dev } or { address }');
  return { dev: (await nl.links.get(route.dev!)).name };
}

/** The firewall's view of an overlay network on this host: its block, its bridge and VXLAN device. */
export function firewallNet(r: OverlayNetworkRecord): FirewallNetwork {
  return { name: r.name, bridge: r.bridge, subnet: r.hostSubnet, vxlan: r.vxlan, ipMasquerade: r.ipMasquerade };
}

/** The bridge driver's view of an overlay network (containers attach to its bridge). */
export function attachNet(r: OverlayNetworkRecord): AttachNet {
  return { name: r.name, bridge: r.bridge, mtu: r.mtu, subnet: r.hostSubnet, gateway: r.gateway, internal: false };
}

/** The record's devices, with the underlay as it is now. */
async function devicesOf(nl: Netlink, r: OverlayNetworkRecord): Promise<OverlayDevices> {
  const underlay = await resolveUnderlay(nl, r.underlay);
  return {
    network: r.name, bridge: r.bridge, vxlan: r.vxlan, vni: r.vni, vxlanPort: r.vxlanPort, mtu: r.mtu, subnet: r.hostSubnet,
    gateway: r.gateway, vtepAddress: r.hostSubnet.split('/')[0]!, vtepMac: r.vtepMac, underlay,
  };
}

/**
 * Makes (or corrects) the network's bridge and VXLAN device from its record. With this host's
 * membership, through its agent's queue (never at once with the agent's own work on them; the
 * agent serves the network from then on); without one, from the record alone.
 */
export async function realizeOverlay(ctx: DriverContext, r: OverlayNetworkRecord, membership?: OverlayMembership): Promise<void> {
  const d = await devicesOf(ctx.host, r);
  if (membership) await membership.agent.realize(d);
  else await createOverlay(ctx, d);
}

/**
 * Removes the network's devices from this host. With this host's membership, through its
 * agent's queue, which first stops serving the network: no work of the agent's is half done on
 * them when they go, and none touches them after (the block stays claimed until `leave`).
 */
export async function unrealizeOverlay(ctx: DriverContext, network: string, membership?: OverlayMembership): Promise<void> {
  if (membership) await membership.agent.drop(network);
  else await removeOverlay(ctx, network);
}

/** The overlay side of one NetworkHost. */
export class OverlayMembership {
  private constructor(
    readonly controlPlane: ControlPlane,
    readonly agent: OverlayAgent,
    private readonly ownsControlPlane: boolean,
  ) {}

  /**
   * Opens the control plane and the agent (not started).
   * @throws ERR_UNDERLAY_NOT_FOUND, ERR_INVALID_ARGUMENT, ERR_INVALID_NAME (host id)
   */
  static async open(opts: OverlayHostOptions, nl: Netlink, netns: NetnsSpec | undefined, recorded: () => Promise<{ network: string; subnet: string }[]>): Promise<OverlayMembership> {
    const spec = opts.controlPlane;
    if (spec === null || typeof spec !== 'object') throw invalid('ERR_INVALID_ARGUMENT', 'controlPlane must be { etcd: [urls] }, { dir } or a ControlPlane');
    const hostId = opts.hostId ?? os.hostname();
    const underlay = opts.underlay ?? await defaultUnderlay(nl);
    await resolveUnderlay(nl, underlay); // ERR_UNDERLAY_NOT_FOUND before anything is opened
    let cp: ControlPlane;
    let owns = true;
    if (isInstance(spec)) {
      if (opts.hostId !== undefined && opts.hostId !== spec.hostId) throw invalid('ERR_INVALID_ARGUMENT', `hostId ${opts.hostId} differs from the control plane's (${spec.hostId})`);
      cp = spec;
      owns = false;
    } else if ('etcd' in spec) {
      const { etcd, ...rest } = spec;
      cp = await EtcdControlPlane.open({ endpoints: etcd, hostId, ...rest });
    } else if ('dir' in spec) {
      v.knownKeys(spec, ['dir', 'ttl', 'pollInterval'], 'controlPlane');
      cp = await FileControlPlane.open({ ...spec, hostId });
    } else throw invalid('ERR_INVALID_ARGUMENT', 'controlPlane must be { etcd: [urls] }, { dir } or a ControlPlane');
    try {
      const agent = await OverlayAgent.open({
        controlPlane: cp, netlink: nl, underlay, ...(netns !== undefined ? { netns } : {}), networks: recorded,
        ...(opts.reconcileInterval !== undefined ? { reconcileInterval: opts.reconcileInterval } : {}),
      });
      return new OverlayMembership(cp, agent, owns);
    } catch (e) {
      if (owns) await cp.close({ revoke: false }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Joins an overlay network on this host, defining it in the control plane when it is new (the
   * same settings on every host; different ones are refused). Nothing is left behind on failure.
   * @throws ERR_SUBNET_OVERLAP (a local network), ERR_VNI_IN_USE, ERR_NETWORK_EXISTS (other
   *   settings), ERR_UNDERLAY_NOT_FOUND, ERR_NO_FREE_SUBNET, ERR_INVALID_*
   */
  async join(name: string, spec: OverlayCreateSpec, localSubnets: string[]): Promise<OverlayNetworkRecord> {
    if (spec.subnet === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'an overlay network needs its subnet (the range shared by every host)', { option: 'subnet' });
    if (spec.vni === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'an overlay network needs a vni', { option: 'vni' });
    const ipMasquerade = spec.ipMasquerade === undefined ? true : v.bool(spec.ipMasquerade, 'ipMasquerade');
    const c = v.cidr(spec.subnet, 4, 'subnet');
    const range = `${v.networkAddress(c.address, c.prefix)}/${c.prefix}`;
    const clash = localSubnets.find((s) => !s.includes(':') && overlaps(s, range));
    if (clash) throw new NsnetError('ERR_SUBNET_OVERLAP', `subnet ${spec.subnet} overlaps ${clash}, which is already in use on this host`, { subnet: spec.subnet, other: clash });
    const existed = (await this.controlPlane.getNetwork(name)) !== undefined;
    const cfg = await this.controlPlane.defineNetwork({
      name, subnet: spec.subnet, vni: spec.vni,
      ...(spec.vxlanPort !== undefined ? { vxlanPort: spec.vxlanPort } : {}),
      ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
      ...(spec.hostPrefix !== undefined ? { hostPrefix: spec.hostPrefix } : {}),
    });
    let d: OverlayDevices;
    try {
      d = await this.agent.join(name);
    } catch (e) {
      if (!existed) await this.controlPlane.removeNetwork(name).catch(() => undefined);
      throw e;
    }
    return {
      name, driver: 'overlay', subnet: cfg.subnet, hostSubnet: d.subnet, gateway: d.gateway, vni: cfg.vni, vxlanPort: cfg.vxlanPort,
      hostPrefix: cfg.hostPrefix, mtu: d.mtu, bridge: d.bridge, vxlan: d.vxlan, vtepMac: d.vtepMac,
      underlay: { address: d.underlay.address, dev: d.underlay.dev }, ipMasquerade, labels: spec.labels, created: new Date().toISOString(),
    };
  }

  /**
   * Leaves a network on this host (devices removed, block released everywhere); its definition
   * goes from the control plane with the last host that leaves.
   */
  async leave(name: string): Promise<void> {
    await this.agent.leave(name);
    // Best effort: another host may still be on it (ERR_NETWORK_IN_USE), and a definition left
    // behind is harmless (the next host to leave removes it; the same settings reuse it).
    await this.controlPlane.removeNetwork(name).catch(() => undefined);
  }

  /**
   * Stops the agent and closes the control plane without revoking the lease: this host's
   * blocks outlive the process by the lease's TTL (another process, like a running agent, keeps
   * them), since its containers still use them. Removing a network releases its block at once.
   */
  async close(): Promise<void> {
    await this.agent.close();
    if (this.ownsControlPlane) await this.controlPlane.close({ revoke: false });
  }
}

export type { UnderlaySpec };
