/**
 * This host's membership in overlay networks, as NetworkHost's overlay driver uses it: the
 * control plane and the agent opened from NetworkHost's options, joining a network (define it
 * cluster-wide if it is new, claim a block, make the devices) and leaving it.
 */
import * as os from 'node:os';
import { NsnetError, invalid } from '../errors';
import type { Netlink } from '../netlink/netlink';
import type { NetnsSpec } from '../netns';
import * as v from '../validate';
import { OverlayAgent } from './agent';
import { overlaps, type ControlPlane, type OverlayNetworkConfig } from './controlplane';
import { resolveUnderlay, type OverlayDevices, type UnderlaySpec } from './devices';
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

/** What `createNetwork({ driver: 'overlay', ... })` takes of the overlay's configuration. */
export interface OverlayCreateSpec {
  subnet?: string;
  vni?: number;
  vxlanPort?: number;
  mtu?: number;
  hostPrefix?: number;
}

/** A network this host joined: the overlay's configuration and this host's devices for it. */
export interface OverlayJoined {
  config: OverlayNetworkConfig;
  devices: OverlayDevices;
}

const isInstance = (x: unknown): x is ControlPlane => typeof (x as ControlPlane)?.join === 'function' && typeof (x as ControlPlane)?.snapshot === 'function';

/** The device of the IPv4 default route. @throws ERR_UNDERLAY_NOT_FOUND */
export async function defaultUnderlay(nl: Netlink): Promise<UnderlaySpec> {
  const route = (await nl.routes.list({ family: 4 })).find((r) => r.dst === 'default' && r.dev !== undefined);
  if (!route) throw new NsnetError('ERR_UNDERLAY_NOT_FOUND', 'no IPv4 default route to take the underlay from: give underlay { dev } or { address }');
  return { dev: (await nl.links.get(route.dev!)).name };
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
  static async open(
    opts: OverlayHostOptions,
    nl: Netlink,
    netns: NetnsSpec | undefined,
    recorded: () => Promise<{ network: string; subnet: string }[]>,
  ): Promise<OverlayMembership> {
    const spec = opts.controlPlane;
    if (spec === null || typeof spec !== 'object') throw invalid('ERR_INVALID_ARGUMENT', 'controlPlane must be { etcd: [urls] }, { dir } or a ControlPlane');
    const hostId = opts.hostId ?? os.hostname();
    const underlay = opts.underlay ?? (await defaultUnderlay(nl));
    await resolveUnderlay(nl, underlay); // ERR_UNDERLAY_NOT_FOUND before anything is opened
    let cp: ControlPlane;
    let owns = true;
    if (isInstance(spec)) {
      if (opts.hostId !== undefined && opts.hostId !== spec.hostId)
        throw invalid('ERR_INVALID_ARGUMENT', `hostId ${opts.hostId} differs from the control plane's (${spec.hostId})`);
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
        controlPlane: cp,
        netlink: nl,
        underlay,
        ...(netns !== undefined ? { netns } : {}),
        networks: recorded,
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
  async join(name: string, spec: OverlayCreateSpec, localSubnets: string[]): Promise<OverlayJoined> {
    if (spec.subnet === undefined)
      throw invalid('ERR_INVALID_ARGUMENT', 'an overlay network needs its subnet (the range shared by every host)', { option: 'subnet' });
    if (spec.vni === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'an overlay network needs a vni', { option: 'vni' });
    const c = v.cidr(spec.subnet, 4, 'subnet');
    const range = `${v.networkAddress(c.address, c.prefix)}/${c.prefix}`;
    const clash = localSubnets.find((s) => !s.includes(':') && overlaps(s, range));
    if (clash)
      throw new NsnetError('ERR_SUBNET_OVERLAP', `subnet ${spec.subnet} overlaps ${clash}, which is already in use on this host`, {
        subnet: spec.subnet,
        other: clash,
      });
    const existed = (await this.controlPlane.getNetwork(name)) !== undefined;
    const cfg = await this.controlPlane.defineNetwork({
      name,
      subnet: spec.subnet,
      vni: spec.vni,
      ...(spec.vxlanPort !== undefined ? { vxlanPort: spec.vxlanPort } : {}),
      ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
      ...(spec.hostPrefix !== undefined ? { hostPrefix: spec.hostPrefix } : {}),
    });
    try {
      return { config: cfg, devices: await this.agent.join(name) };
    } catch (e) {
      if (!existed) await this.controlPlane.removeNetwork(name).catch(() => undefined);
      throw e;
    }
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
