/**
 * The driver interface: what each network mode implements. The façade (lib/host.ts) keeps what
 * every mode shares — the store transaction and its undo log, IPAM, the port ledger — and asks
 * the network's driver (lib/drivers/registry.ts) for everything else; it never names one. A
 * driver reaches the host through its {@link DriverContext} (rtnetlink and sysctls in the host
 * namespace, nsnet's firewall, the veth reaper, the overlay membership) and knows nothing of
 * other drivers. Adding a mode is one file here and one line in the registry.
 */
import { NsnetError } from '../errors';
import type { FirewallEndpoint, FirewallNetwork } from '../firewall/elements';
import type { Firewall, OwnedElement } from '../firewall/firewall';
import type { NormalizedNetwork } from '../ipam/network';
import type { Link } from '../netlink/link-types';
import type { Netlink } from '../netlink/netlink';
import type { OverlayMembership } from '../overlay/membership';
import type { ConnectOptions, EndpointRecord, NetworkDriver, NetworkInspect, NetworkRecord, NetworkSpec } from '../host-types';

/**
 * The firewall as drivers use it (netavark's `FirewallDriver`): made sure of once per host
 * before the first change, and again after a step found its tables gone.
 */
export interface DriverFirewall extends Pick<Firewall, 'addNetwork' | 'removeNetwork' | 'connectEndpoint' | 'disconnectEndpoint' | 'publish' | 'unpublish'> {
  /** Makes sure nsnet's tables exist (cheap once made sure of). */
  ensure(): Promise<void>;
  /** Forgets that the tables were made sure of: the next ensure() checks again. */
  forget(): void;
}

/** The firewall as drivers use it, over nsnet's Firewall: made sure of once, and again after a step found it gone. */
export function driverFirewall(fw: Firewall): DriverFirewall {
  let ready = false;
  return {
    async ensure() {
      if (ready) return;
      await fw.ensure();
      ready = true;
    },
    forget: () => {
      ready = false;
    },
    addNetwork: (n) => fw.addNetwork(n),
    removeNetwork: (n) => fw.removeNetwork(n),
    connectEndpoint: (e) => fw.connectEndpoint(e),
    disconnectEndpoint: (e) => fw.disconnectEndpoint(e),
    publish: (id, ports) => fw.publish(id, ports),
    unpublish: (id, ports) => fw.unpublish(id, ports),
  };
}

/** What a driver gets from the façade. */
export interface DriverContext {
  /** rtnetlink in the host namespace. */
  readonly host: Netlink;
  /** nsnet's firewall in the host namespace. */
  readonly firewall: DriverFirewall;
  /** Sets a `net.*` sysctl in the host namespace. */
  sysctl(key: string, value: string): Promise<void>;
  /** Retired veths are deleted in batches: `soon()` asks for the next batch, `now()` waits for one. */
  readonly reaper: { soon(): void; now(): Promise<void> };
  /** This host's overlay membership (control plane and agent), when it was opened with a control plane. */
  readonly overlay: OverlayMembership | undefined;
}

/** A compensation step, run (newest first) when the operation fails later. */
export type Undo = () => Promise<unknown>;
/** Registers a compensation step. */
export type UndoLog = (step: Undo) => void;

/** The createNetwork options besides name, driver and labels: each driver says which apply. */
export type NetworkOption = Exclude<keyof NetworkSpec, 'name' | 'driver' | 'labels'>;
/** The connect options besides id: each driver says which apply. */
export type ConnectOption = Exclude<keyof ConnectOptions, 'id'>;

/** What defining a network on this host found in use. */
export interface InUse {
  /** Subnets of every network here (pools, and whole overlay ranges). */
  subnets: string[];
  /** Every network record. */
  networks: NetworkRecord[];
}

/** A network a driver defined: its record, the address pool to create for it, how to undo what defining did outside the store. */
export interface Defined<N extends NetworkRecord> {
  record: N;
  pool?: NormalizedNetwork;
  undo?: Undo;
}

/** A connect request as the driver sees it (validated, its namespace resolved). */
export interface Attachment {
  id: string;
  /** The container's namespace path (drivers whose endpoints have one). */
  netns?: string;
  /** Container mode: the endpoint whose namespace to share. */
  target?: string;
}

/** The recorded endpoints, as a driver may look them up while connecting. */
export interface Recorded {
  /** Every attachment of an endpoint id (one per network it is on). */
  attachments(id: string): EndpointRecord[];
  /** Whether a network's endpoints live in namespaces of their own that nsnet configured. */
  ownsNetns(network: string): boolean;
}

/** What the façade knows while healing, shared by the drivers' heal steps. */
export interface HealState {
  /** Owners (`net:…`, `ep:…`) of firewall elements present now. */
  owned: Map<string, OwnedElement[]>;
  /** The network has endpoints recorded. */
  inUse: boolean;
  /** The network is made at its first connect (the default network): its absence is normal. */
  lazy: boolean;
}

/**
 * What reconcile found of a network before making sure of it: all there, something missing or
 * wrong (it is then realized again and reported), or not there at all while that is normal.
 */
export type NetworkHealth = 'fine' | 'broken' | 'absent';

/**
 * One network mode. Only `name`, the option lists and the kernel steps for networks and
 * endpoints are required; what a mode doesn't have (pools, ports, firewall elements, kernel
 * objects to find again) it leaves out.
 */
export interface Driver<N extends NetworkRecord = NetworkRecord> {
  readonly name: NetworkDriver;
  /** A network of this driver's name exists on every host and can't be created or removed (host, none, container). */
  readonly predefined?: boolean;
  /** createNetwork options that apply; any other is refused. */
  readonly networkOptions: readonly NetworkOption[];
  /** connect options that apply; any other is refused (with `whyNot`'s reason when it has one). */
  readonly connectOptions: readonly ConnectOption[];
  whyNot?(option: ConnectOption): string | undefined;
  /**
   * The endpoint lives in a namespace of its own that nsnet configured: `netns` is required,
   * and container mode may join it.
   */
  readonly ownsNetns: boolean;
  /** Endpoints take their addresses from the network's pool (IPAM). */
  readonly addressed?: boolean;
  /** Which option carries the endpoint's host ports: `publish` (DNAT to the container) or `ports` (claims of a host-mode container). */
  readonly portsFrom?: 'publish' | 'ports';

  /**
   * createNetwork: validates the spec and makes the record (and its pool's plan). What it does
   * outside the store (an overlay's control plane) it undoes itself when it fails, and returns
   * the undo for a later failure.
   */
  define?(ctx: DriverContext, spec: NetworkSpec & { name: string; labels: Record<string, string> }, inUse: InUse): Promise<Defined<N>>;
  /** What this host's overlay agent serves for the network: its name and this host's block. */
  agentServes?(net: N): { network: string; subnet: string } | undefined;
  /** Subnets the network reserves on this host beyond its pool (an overlay's whole range). */
  reserved?(net: N): string[];
  /** Makes the network's kernel objects, or corrects them (idempotent). */
  realize(ctx: DriverContext, net: N): Promise<void>;
  /** Removes them (already gone is fine). */
  unrealize(ctx: DriverContext, net: N): Promise<void>;
  /** removeNetwork, after unrealize: what else the network held (an overlay's block); returns its undo. */
  release?(ctx: DriverContext, net: N): Promise<Undo | undefined>;

  /**
   * connect, inside the store transaction: resolves the request against the recorded state
   * (container mode: which namespace to join). Called before the endpoint is compared with an
   * existing one of the same id.
   */
  resolve?(recorded: Recorded, req: Attachment): Attachment;
  /** Fields of the endpoint record the driver fills in before attach (a veth's host end). */
  complete?(net: N, ep: EndpointRecord): void;
  /** connect: the endpoint's kernel side (and firewall elements), compensations registered with `undo`. */
  attach(ctx: DriverContext, net: N, ep: EndpointRecord, undo: UndoLog): Promise<void>;
  /**
   * publish: the connected endpoint `ep` publishes `next.ports` instead of its own (already
   * checked against the ledger), compensations registered with `undo`.
   */
  republish?(ctx: DriverContext, net: N, ep: EndpointRecord, next: EndpointRecord, undo: UndoLog): Promise<void>;
  /** disconnect: undoes attach, compensations registered with `undo`. */
  detach(ctx: DriverContext, net: N, ep: EndpointRecord, undo: UndoLog): Promise<void>;
  /**
   * Warm pool (lib/pool.ts): hands a slot, attached ahead under its own id, over to endpoint
   * `ep` (the slot's interface, addresses and namespace, the caller's id, names and ports): its
   * kernel objects take the endpoint's marks and the ports are published. A driver without it
   * has no warm pool.
   */
  adopt?(ctx: DriverContext, net: N, slot: EndpointRecord, ep: EndpointRecord, undo: UndoLog): Promise<void>;
  /** gc: the endpoint's namespace is gone; removes what of it remains outside (veth host end, firewall elements). */
  forget?(ctx: DriverContext, net: N, ep: EndpointRecord): Promise<void>;

  /** The subnets an endpoint's addresses are written against (their prefix lengths). */
  addressing?(net: N): { subnet: string; gateway: string; subnet6?: string | undefined; gateway6?: string | undefined };
  /** inspectNetwork: the host state the network depends on. */
  inspect?(ctx: DriverContext, net: N): Promise<Partial<Pick<NetworkInspect, 'bridgeUp' | 'vxlanUp' | 'peers' | 'parentUp' | 'interfaces'>>>;
  /** gc: whether a host link marked `nsnet:<network>` (no endpoint) is one of the network's own. */
  ownsLink?(net: N, link: Link): boolean;
  /** reconcile: the firewall's view of the network and its endpoints, to rebuild the tables from. */
  firewallNetwork?(net: N): FirewallNetwork;
  firewallEndpoint?(net: N, ep: EndpointRecord): FirewallEndpoint | undefined;
  /** reconcile: what of the network's kernel objects is there (networks without one are not realized by reconcile). */
  diagnose?(ctx: DriverContext, net: N, state: HealState): Promise<NetworkHealth>;
  /**
   * reconcile, after realize: whether someone else (an overlay's agent) found the network broken
   * and repaired it since the last report, so that reconcile reports what was found whoever
   * repaired it.
   */
  repairedByOthers?(ctx: DriverContext, net: N): boolean;
  /** reconcile: puts the endpoint back if broken (its namespace exists); true when something was repaired. */
  healEndpoint?(ctx: DriverContext, net: N, ep: EndpointRecord, state: HealState): Promise<boolean>;
}

/**
 * A step found the network's kernel objects gone under a long-lived host (someone deleted the
 * bridge, flushed the ruleset): the façade makes sure of the network again and retries once.
 */
export class NetworkGone extends NsnetError {
  constructor(network: string, cause: Error) {
    super('ERR_NETWORK_GONE', `network ${network}'s kernel objects went away: ${cause.message}`, { network });
  }
}
