/**
 * NetworkHost: the façade. Networks and endpoints are recorded in the store (intent); the
 * drivers make the kernel match. Every operation runs inside one store transaction, which holds
 * the store's exclusive lock for the whole operation: the kernel work happens, then the record
 * is committed — or, when a step fails, the kernel steps are undone and nothing is committed.
 * A process killed half-way leaves only kernel objects marked as nsnet's (link aliases,
 * firewall element comments) that no record explains; `gc()` removes them.
 */
import { createHash } from 'node:crypto';
import { NetlinkError, NsnetError, invalid } from './errors';
import { RETIRED_GROUP, attachEndpoint, createBridge, detachEndpoint, hostIfname, ownerAlias, parseOwnerAlias, reapRetired, removeBridge, retireEndpoint } from './drivers/bridge';
import type {
  BridgeEndpointRecord, BridgeNetworkRecord, DriverContext, EndpointRecord, MacvlanEndpointRecord, MacvlanMode, MacvlanNetworkRecord,
  NetworkDriver, NetworkRecord, OverlayNetworkRecord, PlainNetworkRecord, PortMapping,
} from './drivers/driver';
import type { AttachNet } from './drivers/bridge';
import { removeOverlay } from './drivers/overlay';
import { RTPROT_NSNET } from './overlay/peers';
import type { FirewallNetwork } from './firewall/elements';
import type { OverlayAgent } from './overlay/agent';
import { OverlayMembership, attachNet, firewallNet, realizeOverlay, type OverlayHostOptions } from './overlay/membership';
import { attachMacvlan, detachMacvlan, macvlanAttached, macvlanParent } from './drivers/macvlan';
import { faultPoint } from './faults';
import { Firewall } from './firewall/firewall';
import type {
  ConnectOptions, Endpoint, GcReport, HostInterface, HostPort, Network, NetworkInspect, NetworkSpec, ReconcileReport,
} from './host-types';
import { Ipam, macFromIp, normalizeNetwork } from './ipam/index';
import { Netlink } from './netlink/netlink';
import { Sockets, type BoundSocket } from './netlink/sockets';
import { Netns, openNetns, type NetnsSpec } from './netns';
import { ENDPOINTS, NETWORKS, PORTS, epKey } from './state/collections';
import { concerning, damageProblem, emitWarning, endpointsOn, isRecorded, readEndpoints, readNetworks, type WarningHandler } from './state/damage';
import { recordClaims, span, type PortClaim } from './state/ledger';
import { repairDamaged } from './state/repair';
import { FileStore } from './store/filestore';
import type { Store, StoreTx, StoreView } from './store/index';
import * as v from './validate';

export interface NetworkHostOptions {
  /** Where the state lives (default /var/lib/nsnet). */
  stateDir?: string;
  /** The host namespace (default: the caller's). */
  netns?: NetnsSpec;
  /**
   * Overlay mode: where the hosts share the overlay's state — `{ etcd: ['http://10.0.0.1:2379'] }`
   * or `{ dir }` (hosts sharing one machine), or a ControlPlane already open.
   */
  controlPlane?: OverlayHostOptions['controlPlane'];
  /** Overlay mode: this host's id (default: the machine's host name). */
  hostId?: string;
  /** Overlay mode: where VXLAN traffic leaves, `{ dev }` or `{ address }` (default: the IPv4 default route's device). */
  underlay?: OverlayHostOptions['underlay'];
  /** Overlay mode: the agent's full reconcile period, ms (default 10 000). */
  reconcileInterval?: number;
  /**
   * Receives warnings: a damaged state document a listing left out (`WARN_STORE_DAMAGED`,
   * naming the file; `gc()` repairs it). Default: `process.emitWarning` (printed on stderr).
   */
  onWarning?: WarningHandler;
}

/** The default network: exists without being created (like Docker's `bridge`). */
export const DEFAULT_NETWORK = 'bridge';
const DEFAULT_BRIDGE = 'nsnet0';
/**
 * The predefined networks besides the default one, recorded at open like Docker's: `host` (the
 * container uses the host's namespace), `none` (loopback only) and `container` (share the
 * namespace of another endpoint: Docker's `--network container:<id>`).
 */
export const PREDEFINED_NETWORKS = ['host', 'none', 'container'] as const;
const MACVLAN_MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/u;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/u;
/** Where `hostPort: 0` looks for a free port (the kernel's default ephemeral range). */
const EPHEMERAL = [32768, 60999] as const;

function networkName(n: unknown): string {
  if (typeof n !== 'string' || !NAME_RE.test(n)) throw invalid('ERR_INVALID_NAME', `network name ${JSON.stringify(n)} must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit`, { value: n });
  return n;
}

function endpointId(id: unknown): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw invalid('ERR_INVALID_NAME', `endpoint id ${JSON.stringify(id)} must be 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit`, { value: id });
  return id;
}

/** How a ledger holder (`network/endpoint`) reads in an error. */
function holderName(holder: string): string {
  const i = holder.indexOf('/');
  return `endpoint ${holder.slice(i + 1)} (network ${holder.slice(0, i)})`;
}

/** Drivers whose endpoints have a namespace of their own that nsnet configured. */
const OWNS_NETNS: ReadonlySet<NetworkDriver> = new Set(['bridge', 'macvlan', 'overlay', 'none']);

/** Validates labels: string keys and values, no prototype keys. */
function labels(l: unknown): Record<string, string> {
  if (l === undefined) return {};
  if (l === null || typeof l !== 'object' || Array.isArray(l)) throw invalid('ERR_INVALID_ARGUMENT', 'labels must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(l)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw invalid('ERR_INVALID_ARGUMENT', `label key ${JSON.stringify(k)} is not allowed`, { key: k });
    out[v.str(k, 'label key', 256)] = v.str(val, `label ${k}`, 4096);
  }
  return out;
}

/** Normalizes the ports a host-mode container claims into ledger mappings (hostPort = containerPort). */
function normalizeHostPorts(ports: unknown): PortMapping[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'ports must be an array of { protocol, port, portEnd?, hostIp? }');
  return ports.map((p: HostPort, i) => {
    v.knownKeys(p, ['protocol', 'port', 'portEnd', 'hostIp'], `ports[${i}]`);
    const protocol = p.protocol ?? 'tcp';
    if (!['tcp', 'udp', 'sctp'].includes(protocol)) throw invalid('ERR_INVALID_ARGUMENT', `ports[${i}].protocol must be tcp, udp or sctp`);
    const port = v.int(p.port, 1, 65535, `ports[${i}].port`, 'ERR_INVALID_PORT');
    const out: PortMapping = { protocol, hostPort: port, containerPort: port };
    if (p.portEnd !== undefined) {
      out.hostPortEnd = v.int(p.portEnd, 1, 65535, `ports[${i}].portEnd`, 'ERR_INVALID_PORT');
      if (out.hostPortEnd < port) throw invalid('ERR_INVALID_PORT', `ports[${i}]: the range ${port}-${out.hostPortEnd} is backwards`);
    }
    if (p.hostIp !== undefined && p.hostIp !== '0.0.0.0') out.hostIp = v.ip(p.hostIp, 4, `ports[${i}].hostIp`).address;
    return out;
  });
}

/** Normalizes and validates published ports (hostPort 0 stays 0: resolved later). */
function normalizePorts(ports: unknown): PortMapping[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'publish must be an array of port mappings');
  return ports.map((p, i) => {
    v.knownKeys(p, ['protocol', 'hostIp', 'hostPort', 'hostPortEnd', 'containerPort'], `publish[${i}]`);
    const m = p as PortMapping;
    const protocol = m.protocol ?? 'tcp';
    if (!['tcp', 'udp', 'sctp'].includes(protocol)) throw invalid('ERR_INVALID_ARGUMENT', `publish[${i}].protocol must be tcp, udp or sctp`);
    const out: PortMapping = { protocol, hostPort: v.int(m.hostPort, 0, 65535, `publish[${i}].hostPort`, 'ERR_INVALID_PORT'), containerPort: v.int(m.containerPort, 1, 65535, `publish[${i}].containerPort`, 'ERR_INVALID_PORT') };
    if (m.hostIp !== undefined && m.hostIp !== '0.0.0.0') out.hostIp = v.ip(m.hostIp, 4, `publish[${i}].hostIp`).address;
    if (m.hostPortEnd !== undefined) {
      out.hostPortEnd = v.int(m.hostPortEnd, 1, 65535, `publish[${i}].hostPortEnd`, 'ERR_INVALID_PORT');
      if (out.hostPort === 0) throw invalid('ERR_INVALID_PORT', `publish[${i}]: a range needs a fixed hostPort`);
      if (out.hostPortEnd < out.hostPort) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the range ${out.hostPort}-${out.hostPortEnd} is backwards`);
      if (out.containerPort + (out.hostPortEnd - out.hostPort) > 65535) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the container range passes 65535`);
    }
    return out;
  });
}

/** Two mappings claim the same host port (same protocol, overlapping addresses and ports). */
function clash(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol) return false;
  if (a.hostIp !== undefined && b.hostIp !== undefined && a.hostIp !== b.hostIp) return false;
  const [a0, a1] = span(a);
  const [b0, b1] = span(b);
  return a0 <= b1 && b0 <= a1;
}

/**
 * The public view of an endpoint. `shared`: in container mode, the target's endpoint whose
 * interface and addresses this one sees.
 */
function toEndpoint(r: EndpointRecord, net: NetworkRecord, shared?: { ep: EndpointRecord; net: NetworkRecord }): Endpoint {
  const out: Endpoint = { id: r.id, network: r.network, driver: net.driver, ports: r.ports };
  if (r.netns !== undefined) out.netns = r.netns;
  if (r.target !== undefined) out.target = r.target;
  const src = shared ?? { ep: r, net };
  const e = src.ep;
  if (e.ifname !== undefined && src.net.driver !== 'none') out.ifname = e.ifname;
  if (e.mac !== undefined) out.mac = e.mac;
  if (src.net.driver === 'overlay') {
    // The container's prefix is this host's block; the rest of the overlay is routed.
    if (e.ipv4 !== undefined) out.ipv4 = `${e.ipv4}/${src.net.hostSubnet.split('/')[1]}`;
  } else if ('subnet' in src.net) {
    if (e.ipv4 !== undefined) out.ipv4 = `${e.ipv4}/${src.net.subnet.split('/')[1]}`;
    if (e.ipv6 && src.net.subnet6) out.ipv6 = `${e.ipv6}/${src.net.subnet6.split('/')[1]}`;
  }
  if (e.gateway !== undefined) out.gateway = e.gateway;
  if (e.gateway6) out.gateway6 = e.gateway6;
  if (r.hostIfname !== undefined) out.hostIfname = r.hostIfname;
  return out;
}

/** The host side of container networking: networks, endpoints, gc and reconcile. */
export class NetworkHost {
  private readonly ipam = new Ipam();
  private firewallReady = false;
  /**
   * Networks whose kernel objects this process has made sure of, by name, with the `created`
   * stamp of the record it realized (a network removed and made again by another process is a
   * new one). A long-lived host can still be wrong about the kernel (someone deleted a bridge):
   * connect re-realizes once when a step says so (see connectAddressed).
   */
  private readonly ready = new Map<string, string>();
  private sockets: Promise<Sockets> | undefined;
  /** Where warnings go (NetworkHostOptions.onWarning). */
  private warn: WarningHandler = emitWarning;

  private constructor(
    /** Where the state lives. */
    readonly stateDir: string,
    private readonly store: Store,
    private readonly host: Netlink,
    private readonly firewall: Firewall,
    private readonly netns: NetnsSpec | undefined,
  ) {}

  /** Overlay mode: the control plane and the agent (when opened with `controlPlane`). */
  private overlay: OverlayMembership | undefined;

  /** Opens the state store and handles in the host namespace. */
  static async open(opts: NetworkHostOptions = {}): Promise<NetworkHost> {
    v.knownKeys(opts, ['stateDir', 'netns', 'controlPlane', 'hostId', 'underlay', 'reconcileInterval', 'onWarning'], 'NetworkHost.open options');
    if (opts.onWarning !== undefined && typeof opts.onWarning !== 'function') throw invalid('ERR_INVALID_ARGUMENT', 'onWarning must be a function', { option: 'onWarning' });
    if (opts.controlPlane === undefined) {
      for (const k of ['hostId', 'underlay', 'reconcileInterval'] as const)
        if (opts[k] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', `${k} applies to overlay mode, which needs a controlPlane`, { option: k });
    }
    const stateDir = opts.stateDir ?? '/var/lib/nsnet';
    const store = await FileStore.open({ dir: stateDir });
    let host: Netlink | undefined;
    try {
      host = await Netlink.open(opts.netns === undefined ? {} : { netns: opts.netns });
      const firewall = await Firewall.open(opts.netns === undefined ? {} : { netns: opts.netns });
      const nh = new NetworkHost(stateDir, store, host, firewall, opts.netns);
      nh.warn = opts.onWarning ?? emitWarning;
      // The default network is recorded on first open; its bridge is made at first connect.
      // (Only written when missing: a read-only state dir still opens, for reads. A damaged
      // record counts as there: gc() repairs it.)
      const complete = await store.read((view) => [DEFAULT_NETWORK, ...PREDEFINED_NETWORKS].every((n) => isRecorded(view, NETWORKS, n)));
      if (!complete) await store.update((tx) => {
        for (const name of PREDEFINED_NETWORKS) {
          if (isRecorded(tx, NETWORKS, name)) continue;
          const rec: PlainNetworkRecord = { name, driver: name, labels: {}, created: new Date().toISOString() };
          tx.put(NETWORKS, name, rec);
        }
        if (isRecorded(tx, NETWORKS, DEFAULT_NETWORK)) return;
        const rec = nh.defaultRecord(tx);
        nh.ipam.createPool(tx, rec.name, { subnet: rec.subnet, gateway: rec.gateway });
        tx.put(NETWORKS, rec.name, rec);
      });
      if (opts.controlPlane !== undefined) {
        // The agent serves the overlay networks recorded here (other processes may join some).
        const recorded = (): Promise<{ network: string; subnet: string }[]> => store.read((view) => readNetworks(view, nh.warn)
          .flatMap((n) => (n.driver === 'overlay' ? [{ network: n.name, subnet: n.hostSubnet }] : [])));
        nh.overlay = await OverlayMembership.open({
          controlPlane: opts.controlPlane,
          ...(opts.hostId !== undefined ? { hostId: opts.hostId } : {}),
          ...(opts.underlay !== undefined ? { underlay: opts.underlay } : {}),
          ...(opts.reconcileInterval !== undefined ? { reconcileInterval: opts.reconcileInterval } : {}),
        }, host, opts.netns, recorded);
      }
      return nh;
    } catch (e) {
      host?.close();
      await store.close();
      throw e;
    }
  }

  private get ctx(): DriverContext {
    return { host: this.host };
  }

  /**
   * One operation: a store transaction whose kernel steps register their compensations with
   * `undo`. When the transaction fails at its commit (a full disk, a read-only state dir) after
   * `fn` finished, the compensations run, newest first, so the kernel is as before. (A failure
   * inside `fn` is undone by `fn` itself, step by step.)
   */
  private async operation<T>(fn: (tx: StoreTx, undo: (step: () => Promise<unknown>) => void) => Promise<T>): Promise<T> {
    const undos: (() => Promise<unknown>)[] = [];
    let finished = false;
    try {
      return await this.store.update(async (tx) => {
        const r = await fn(tx, (step) => undos.push(step));
        finished = true;
        return r;
      });
    } catch (e) {
      if (finished) for (const step of undos.reverse()) await step().catch(() => undefined);
      throw e;
    }
  }

  private async ensureFirewall(): Promise<void> {
    if (this.firewallReady) return;
    await this.firewall.ensure();
    this.firewallReady = true;
  }

  /** The record of a network. */
  private network(view: StoreView, name: string): NetworkRecord | undefined {
    return view.get<NetworkRecord>(NETWORKS, name);
  }

  private defaultRecord(view: StoreView): BridgeNetworkRecord {
    const used = this.ipam.subnets(view);
    const plan = normalizeNetwork({ subnet: used.includes('172.17.0.0/16') ? undefined : '172.17.0.0/16' }, used);
    return this.record({ name: DEFAULT_NETWORK, bridge: DEFAULT_BRIDGE }, plan);
  }

  private record(spec: NetworkSpec, plan: { subnet: string; gateway: string; ipRange?: string; subnet6?: string; gateway6?: string }): BridgeNetworkRecord {
    const r: BridgeNetworkRecord = {
      name: spec.name,
      driver: 'bridge',
      bridge: spec.bridge ?? `nsbr-${createHash('sha256').update(spec.name).digest('hex').slice(0, 10)}`,
      subnet: plan.subnet,
      gateway: plan.gateway,
      mtu: spec.mtu === undefined ? 1500 : v.mtu(spec.mtu),
      icc: spec.icc === undefined ? true : v.bool(spec.icc, 'icc'),
      internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal'),
      ipMasquerade: spec.ipMasquerade === undefined ? true : v.bool(spec.ipMasquerade, 'ipMasquerade'),
      labels: labels(spec.labels),
      created: new Date().toISOString(),
    };
    if (plan.ipRange) r.ipRange = plan.ipRange;
    if (plan.subnet6) r.subnet6 = plan.subnet6;
    if (plan.gateway6) r.gateway6 = plan.gateway6;
    return r;
  }

  private macvlanRecord(spec: NetworkSpec, plan: { subnet: string; gateway: string; ipRange?: string; subnet6?: string; gateway6?: string }, parentMtu: number): MacvlanNetworkRecord {
    const mode = spec.mode ?? 'bridge';
    if (!MACVLAN_MODES.includes(mode)) throw invalid('ERR_INVALID_ARGUMENT', `macvlan mode ${JSON.stringify(mode)} must be one of ${MACVLAN_MODES.join(', ')}`, { mode });
    const mtu = spec.mtu === undefined ? parentMtu : v.mtu(spec.mtu);
    if (mtu > parentMtu) throw invalid('ERR_INVALID_MTU', `mtu ${mtu} is larger than the parent's (${parentMtu})`, { mtu, parentMtu });
    const r: MacvlanNetworkRecord = {
      name: spec.name, driver: 'macvlan', parent: spec.parent!, mode, subnet: plan.subnet, gateway: plan.gateway, mtu,
      internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal'),
      labels: labels(spec.labels), created: new Date().toISOString(),
    };
    if (plan.ipRange) r.ipRange = plan.ipRange;
    if (plan.subnet6) r.subnet6 = plan.subnet6;
    if (plan.gateway6) r.gateway6 = plan.gateway6;
    return r;
  }

  /**
   * Creates the network's kernel objects unless done: a bridge network's bridge, sysctls and
   * firewall elements; a macvlan network only needs its parent to exist.
   */
  private async realize(net: NetworkRecord, op = 'realize'): Promise<void> {
    if (this.ready.get(net.name) === net.created) return;
    if (net.driver === 'macvlan') await macvlanParent(this.ctx, net.parent);
    if (net.driver !== 'bridge' && net.driver !== 'overlay') return;
    await this.ensureFirewall();
    // Overlay: the bridge and VXLAN device from the record (peers are the agent's business).
    if (net.driver === 'overlay') await realizeOverlay(this.ctx, net);
    else await createBridge(this.ctx, net);
    faultPoint(`${op}:bridge`);
    const fw = this.firewallNet(net);
    for (const [key, value] of Object.entries(Firewall.sysctls(fw))) await Netns.sysctl(this.netns, key, value);
    await this.firewall.addNetwork(fw);
    this.ready.set(net.name, net.created);
  }

  /** A bridge-like network (bridge, overlay) as the firewall sees it. */
  private firewallNet(net: BridgeNetworkRecord | OverlayNetworkRecord): FirewallNetwork {
    return net.driver === 'overlay' ? firewallNet(net) : net;
  }

  /** A bridge-like network as the bridge driver attaches containers to it. */
  private attachNet(net: BridgeNetworkRecord | OverlayNetworkRecord): AttachNet {
    return net.driver === 'overlay' ? attachNet(net) : net;
  }

  private requireOverlay(): OverlayMembership {
    if (!this.overlay) throw new NsnetError('ERR_NO_CONTROL_PLANE', 'overlay networks need a control plane: open the NetworkHost with { controlPlane, hostId, underlay }');
    return this.overlay;
  }

  /** Every subnet in use on this host: address pools and the whole range of each overlay. */
  private usedSubnets(view: StoreView): string[] {
    const overlays = view.list<NetworkRecord>(NETWORKS).flatMap((n) => (n.value.driver === 'overlay' ? [n.value.subnet] : []));
    return [...this.ipam.subnets(view), ...overlays];
  }

  /**
   * Overlay mode: the agent that keeps this host's VXLAN peers equal to the control plane's
   * hosts (list + watch + periodic full reconcile), started now (idempotent). Stop it with
   * `close()` (or `agent.stop()`).
   * @throws ERR_NO_CONTROL_PLANE
   */
  runAgent(): OverlayAgent {
    return this.requireOverlay().agent.start();
  }

  /**
   * Creates a network: its record, address pool, bridge and firewall elements. An overlay
   * network is defined in the control plane if it is new there (every host creates it with the
   * same settings), and this host joins it: a block of its subnet, a bridge and a VXLAN device.
   * @throws ERR_INVALID_NAME, ERR_NETWORK_EXISTS, ERR_SUBNET_OVERLAP, ERR_INVALID_CIDR, ERR_NO_FREE_SUBNET;
   *   overlay: ERR_NO_CONTROL_PLANE, ERR_VNI_IN_USE, ERR_INVALID_VNI, ERR_UNDERLAY_NOT_FOUND, ERR_CONTROL_PLANE_UNAVAILABLE
   */
  async createNetwork(spec: NetworkSpec): Promise<Network> {
    v.knownKeys(spec, ['name', 'driver', 'bridge', 'parent', 'mode', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'icc', 'internal', 'ipMasquerade', 'labels', 'vni', 'vxlanPort', 'hostPrefix'], 'network');
    const name = networkName(spec.name);
    const driver = spec.driver ?? 'bridge';
    if (driver !== 'bridge' && driver !== 'macvlan' && driver !== 'overlay') {
      const hint = (PREDEFINED_NETWORKS as readonly string[]).includes(driver as string) ? ` (${driver as string} is a predefined network: connect to it)` : '';
      throw invalid('ERR_INVALID_ARGUMENT', `driver ${JSON.stringify(driver)} is not one of bridge, macvlan, overlay${hint}`, { driver });
    }
    const only = driver === 'bridge' ? ['parent', 'mode', 'vni', 'vxlanPort', 'hostPrefix'] : driver === 'macvlan' ? ['bridge', 'icc', 'ipMasquerade', 'vni', 'vxlanPort', 'hostPrefix']
      : ['bridge', 'parent', 'mode', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'icc', 'internal'];
    for (const k of only) if ((spec as unknown as Record<string, unknown>)[k] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', `${k} does not apply to a ${driver} network`, { option: k });
    if (spec.bridge !== undefined) v.ifname(spec.bridge, 'bridge name');
    if (driver === 'macvlan') {
      if (spec.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'a macvlan network needs a parent device', { option: 'parent' });
      v.ifname(spec.parent, 'parent');
    }
    if (driver === 'overlay') return this.createOverlayNetwork(name, spec);
    return this.operation(async (tx, undo) => {
      if (this.network(tx, name)) {
        const predefined = name === DEFAULT_NETWORK || (PREDEFINED_NETWORKS as readonly string[]).includes(name);
        throw new NsnetError('ERR_NETWORK_EXISTS', predefined ? `${name} is a predefined network` : `network ${name} exists`, { network: name });
      }
      const plan = normalizeNetwork({ subnet: spec.subnet, gateway: spec.gateway, ipRange: spec.ipRange, subnet6: spec.subnet6, gateway6: spec.gateway6 }, this.usedSubnets(tx));
      let rec: BridgeNetworkRecord | MacvlanNetworkRecord;
      if (driver === 'bridge') {
        const bridges = tx.list<NetworkRecord>(NETWORKS).flatMap((n) => (n.value.driver === 'bridge' ? [n.value.bridge] : []));
        if (spec.bridge && bridges.includes(spec.bridge)) throw new NsnetError('ERR_NAME_IN_USE', `bridge ${spec.bridge} belongs to another network`, { bridge: spec.bridge });
        rec = this.record({ ...spec, name }, plan);
      } else {
        const parent = await macvlanParent(this.ctx, spec.parent!);
        if (parent.kind === 'bridge' && parent.alias?.startsWith('nsnet:')) throw invalid('ERR_INVALID_ARGUMENT', `${spec.parent} is the bridge of an nsnet network; a macvlan parent must be an uplink`, { parent: spec.parent });
        rec = this.macvlanRecord({ ...spec, name }, plan, parent.mtu);
      }
      this.ipam.createPool(tx, name, plan);
      tx.put(NETWORKS, name, rec);
      try {
        await this.realize(rec, 'createNetwork');
      } catch (e) {
        await this.unrealize(rec).catch(() => undefined);
        throw e;
      }
      undo(() => this.unrealize(rec));
      faultPoint('createNetwork:realized');
      return { ...rec };
    });
  }

  /** createNetwork() of an overlay network. */
  private async createOverlayNetwork(name: string, spec: NetworkSpec): Promise<Network> {
    const ov = this.requireOverlay();
    return this.operation(async (tx, undo) => {
      if (this.network(tx, name)) throw new NsnetError('ERR_NETWORK_EXISTS', `network ${name} exists`, { network: name });
      const rec = await ov.join(name, {
        subnet: spec.subnet, vni: spec.vni, vxlanPort: spec.vxlanPort, mtu: spec.mtu, hostPrefix: spec.hostPrefix,
        ipMasquerade: spec.ipMasquerade, labels: labels(spec.labels),
      }, this.usedSubnets(tx));
      try {
        // Addresses come from this host's block; the bridge has the gateway, the VXLAN device the block's first address.
        this.ipam.createPool(tx, name, normalizeNetwork({ subnet: rec.hostSubnet, gateway: rec.gateway }, []));
        tx.put(NETWORKS, name, rec);
        await this.realize(rec, 'createNetwork');
      } catch (e) {
        await this.unrealize(rec).catch(() => undefined);
        await ov.leave(name).catch(() => undefined);
        throw e;
      }
      // If the commit fails: the devices and firewall elements go, then the block (reverse order).
      undo(() => ov.leave(name));
      undo(() => this.unrealize(rec));
      faultPoint('createNetwork:realized');
      return { ...rec };
    });
  }

  private async unrealize(net: NetworkRecord): Promise<void> {
    this.ready.delete(net.name);
    if (net.driver !== 'bridge' && net.driver !== 'overlay') return;
    await this.firewall.removeNetwork(net.name);
    faultPoint('removeNetwork:firewall');
    if (net.driver === 'overlay') await removeOverlay(this.ctx, net.name);
    else await removeBridge(this.ctx, net);
    faultPoint('removeNetwork:bridge');
  }

  /**
   * Removes a network (not while endpoints are connected).
   * @throws ERR_NETWORK_NOT_FOUND, ERR_NETWORK_IN_USE
   */
  async removeNetwork(name: string): Promise<void> {
    networkName(name);
    await this.reap();
    await this.operation(async (tx, undo) => {
      if (name === DEFAULT_NETWORK || (PREDEFINED_NETWORKS as readonly string[]).includes(name)) throw new NsnetError('ERR_INVALID_ARGUMENT', `the predefined network ${name} cannot be removed`, { network: name });
      const net = this.network(tx, name);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      const eps = endpointsOn(tx, name);
      if (eps.length) throw new NsnetError('ERR_NETWORK_IN_USE', `network ${name} has ${eps.length} endpoint(s): ${eps.slice(0, 5).map((e) => e.id).join(', ')}`, { network: name });
      await this.unrealize(net);
      undo(() => this.realize(net));
      // Overlay: this host's block is released everywhere (without a control plane, it expires
      // with the lease of the process that holds it); the definition goes with the last host.
      if (net.driver === 'overlay' && this.overlay) {
        const ov = this.overlay;
        try {
          await ov.leave(name);
        } catch (e) {
          await this.realize(net).catch(() => undefined); // the control plane is away: nothing changes
          throw e;
        }
        undo(() => ov.agent.join(name)); // (undone in reverse: joined again before realize)
      }
      if (net.driver === 'bridge' || net.driver === 'macvlan' || net.driver === 'overlay') this.ipam.deletePool(tx, name);
      tx.delete(NETWORKS, name);
    });
  }

  /**
   * Every network, the default one included. A damaged record is left out, with a warning
   * naming its file (NetworkHostOptions.onWarning).
   */
  async listNetworks(): Promise<Network[]> {
    return this.store.read((view) => readNetworks(view, this.warn).map((n) => ({ ...n })));
  }

  /** A network with its endpoints and the host state it depends on. */
  async inspectNetwork(name: string): Promise<NetworkInspect> {
    networkName(name);
    const { net, eps } = await this.store.read((view) => {
      const net = this.network(view, name);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      return { net, eps: this.endpointsOf(view, name, this.warn) };
    });
    const ipForward = (await Netns.sysctl(this.netns, 'net.ipv4.ip_forward')) === '1';
    const out: NetworkInspect = { ...net, endpoints: eps, ipForward };
    if (net.driver === 'bridge' || net.driver === 'overlay') out.bridgeUp = (await this.host.links.find(net.bridge))?.up === true;
    if (net.driver === 'overlay') {
      out.vxlanUp = (await this.host.links.find(net.vxlan))?.up === true;
      out.peers = out.vxlanUp ? (await this.host.routes.list({ family: 4, dev: net.vxlan })).filter((r) => r.protocol === String(RTPROT_NSNET)).length : 0;
    }
    if (net.driver === 'macvlan') out.parentUp = (await this.host.links.find(net.parent))?.up === true;
    if (net.driver === 'host') out.interfaces = await this.hostInterfaces();
    return out;
  }

  /** The host namespace's interfaces and addresses. */
  private async hostInterfaces(): Promise<HostInterface[]> {
    const [links, addrs] = await Promise.all([this.host.links.list(), this.host.addresses.list()]);
    return links.map((l) => ({
      name: l.name, index: l.index, kind: l.kind, up: l.up, mtu: l.mtu, ...(l.mac ? { mac: l.mac } : {}),
      addresses: addrs.filter((a) => a.index === l.index).map((a) => a.cidr),
    }));
  }

  /**
   * Public views of the endpoints of one network, or of all (container-mode ones show their
   * target's addresses). Damaged records are left out; `warn` hears of those that matter.
   */
  private endpointsOf(view: StoreView, network?: string, warn: WarningHandler = () => undefined): Endpoint[] {
    const nets = new Map(readNetworks(view, network === undefined ? warn : concerning(network, warn)).map((n) => [n.name, n]));
    const all = readEndpoints(view, warn, network);
    return all
      .filter((e) => network === undefined || e.network === network)
      .flatMap((e) => {
        const net = nets.get(e.network);
        if (!net) return [];
        let shared: { ep: EndpointRecord; net: NetworkRecord } | undefined;
        if (e.target !== undefined) {
          const t = all.find((x) => x.id === e.target && nets.get(x.network)?.driver !== 'container' && x.ipv4 !== undefined)
            ?? all.find((x) => x.id === e.target && nets.get(x.network)?.driver !== 'container');
          if (t) shared = { ep: t, net: nets.get(t.network)! };
        }
        return [toEndpoint(e, net, shared)];
      });
  }

  /**
   * Endpoints of one network, or of all. A damaged record is left out, with a warning naming
   * its file (NetworkHostOptions.onWarning).
   */
  async listEndpoints(network?: string): Promise<Endpoint[]> {
    if (network !== undefined) networkName(network);
    return this.store.read((view) => this.endpointsOf(view, network, this.warn));
  }

  /**
   * Connects a container to a network. What happens depends on the network's driver:
   * - bridge: a veth pair to the network's bridge, addresses, routes, published ports;
   * - macvlan: a child of the parent device inside the container, with its address and route;
   * - `host`: the container uses the host's namespace; its `ports` are claimed host-wide;
   * - `none`: the container's loopback comes up, nothing else;
   * - `container`: the endpoint joins the namespace of the connected endpoint `target`.
   * Connecting an endpoint that exists with the same arguments returns it unchanged; with
   * other arguments it is refused.
   * @throws ERR_NETWORK_NOT_FOUND, ERR_ENDPOINT_EXISTS, ERR_ENDPOINT_NOT_FOUND (container target),
   *   ERR_NETNS_NOT_FOUND, ERR_ADDRESS_IN_USE, ERR_ADDRESS_OUTSIDE_SUBNET, ERR_SUBNET_FULL,
   *   ERR_PORT_IN_USE, ERR_NETWORK_INTERNAL, ERR_PARENT_NOT_FOUND, ERR_INVALID_ARGUMENT
   */
  async connect(network: string, opts: ConnectOptions): Promise<Endpoint> {
    networkName(network);
    v.knownKeys(opts, ['id', 'netns', 'ifname', 'ipv4', 'ipv6', 'publish', 'ports', 'target'], 'connect options');
    const id = endpointId(opts.id);
    const driver = await this.store.read((view) => this.network(view, network)?.driver);
    if (!driver) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
    const allowed: Record<NetworkDriver, string[]> = {
      bridge: ['netns', 'ifname', 'ipv4', 'ipv6', 'publish'],
      macvlan: ['netns', 'ifname', 'ipv4', 'ipv6'],
      overlay: ['netns', 'ifname', 'ipv4', 'publish'],
      host: ['ports'],
      none: ['netns'],
      container: ['target'],
    };
    for (const k of ['netns', 'ifname', 'ipv4', 'ipv6', 'publish', 'ports', 'target'] as const) {
      if (opts[k] === undefined || allowed[driver].includes(k)) continue;
      const why = k === 'publish' && driver === 'macvlan' ? ': a macvlan container is reached at its own address, with no NAT'
        : k === 'publish' && driver === 'host' ? ': a host-mode container listens on host ports itself; claim them with `ports`'
          : k === 'netns' && driver === 'host' ? ': a host-mode container uses the host namespace' : '';
      throw invalid('ERR_INVALID_ARGUMENT', `${k} does not apply to a ${driver} endpoint${why}`, { option: k, driver });
    }
    const needsNetns = driver === 'bridge' || driver === 'macvlan' || driver === 'overlay' || driver === 'none';
    let netnsPath: string | undefined;
    if (needsNetns) {
      if (opts.netns === undefined) throw invalid('ERR_INVALID_ARGUMENT', `connecting to a ${driver} network needs the container's netns`, { option: 'netns' });
      const ns = openNetns(opts.netns); // the namespace must exist (ERR_NETNS_NOT_FOUND)
      ns.close();
      netnsPath = ns.path;
    }
    if (driver === 'container' && (typeof opts.target !== 'string' || !opts.target)) throw invalid('ERR_INVALID_ARGUMENT', 'container mode needs a target: the id of the endpoint whose namespace to share', { option: 'target' });
    const hostPorts = driver === 'host' ? normalizeHostPorts(opts.ports) : [];
    const ports = driver === 'bridge' || driver === 'overlay' ? normalizePorts(opts.publish) : hostPorts;
    const ifname = driver === 'bridge' || driver === 'macvlan' || driver === 'overlay' ? v.ifname(opts.ifname ?? 'eth0', 'ifname') : undefined;
    return this.operation(async (tx, undo) => {
      const net = this.network(tx, network);
      if (!net || net.driver !== driver) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
      const existing = tx.get<EndpointRecord>(ENDPOINTS, epKey(network, id));
      if (existing) {
        const same = (driver === 'container' || existing.netns === netnsPath) && existing.ifname === ifname && (opts.ipv4 === undefined || opts.ipv4 === existing.ipv4) &&
          (driver !== 'container' || existing.target === this.rootTarget(tx, opts.target!).id) &&
          JSON.stringify(existing.ports.map((p) => ({ ...p, hostPort: 0 }))) === JSON.stringify(ports.map((p) => ({ ...p, hostPort: 0 })));
        if (same) return this.endpointsOf(tx, network).find((e) => e.id === id)!;
        throw new NsnetError('ERR_ENDPOINT_EXISTS', `endpoint ${id} is connected to ${network} with other settings`, { network, endpoint: id });
      }
      const created = new Date().toISOString();
      switch (net.driver) {
        case 'host': {
          const rec: EndpointRecord = { id, network, ports: this.resolvePorts(tx, ports, ports.length ? await this.boundSockets([...new Set(ports.map((p) => p.protocol))]) : []), created };
          tx.put(ENDPOINTS, epKey(network, id), rec);
          this.ledger(tx, rec);
          return toEndpoint(rec, net);
        }
        case 'none': {
          const c = await Netlink.open({ netns: netnsPath! });
          try {
            await c.links.set('lo', { up: true });
          } finally {
            c.close();
          }
          const rec: EndpointRecord = { id, network, netns: netnsPath!, ports: [], created };
          tx.put(ENDPOINTS, epKey(network, id), rec);
          return toEndpoint(rec, net);
        }
        case 'container': {
          const root = this.rootTarget(tx, opts.target!);
          openNetns(root.netns).close(); // still there (ERR_NETNS_NOT_FOUND)
          const rec: EndpointRecord = { id, network, netns: root.netns, target: root.id, ports: [], created };
          tx.put(ENDPOINTS, epKey(network, id), rec);
          return this.endpointsOf(tx, network).find((e) => e.id === id)!;
        }
        case 'bridge':
        case 'macvlan':
        case 'overlay':
          return this.connectAddressed(tx, undo, net, { id, netns: netnsPath!, ifname: ifname!, ports, ipv4: opts.ipv4, ipv6: opts.ipv6 });
      }
    });
  }

  /**
   * The endpoint whose namespace a container-mode endpoint joins: `target`'s own namespace
   * (following a target that itself shares another's).
   * @throws ERR_ENDPOINT_NOT_FOUND, ERR_INVALID_ARGUMENT (the target is in host mode)
   */
  private rootTarget(view: StoreView, target: string): { id: string; netns: string } {
    endpointId(target);
    const nets = new Map(view.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
    const mine = view.list<EndpointRecord>(ENDPOINTS).map((e) => e.value).filter((e) => e.id === target);
    const own = mine.find((e) => OWNS_NETNS.has(nets.get(e.network)?.driver ?? 'host') && e.netns !== undefined);
    if (own) return { id: target, netns: own.netns! };
    const sharing = mine.find((e) => e.target !== undefined && e.netns !== undefined);
    if (sharing) return { id: sharing.target!, netns: sharing.netns! };
    if (mine.length) throw invalid('ERR_INVALID_ARGUMENT', `endpoint ${target} uses the host's namespace: connect to the host network instead`, { target });
    throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `no endpoint ${target} is connected: container mode joins the namespace of a connected endpoint`, { endpoint: target });
  }

  /** Connects a bridge or macvlan endpoint (inside the store transaction `tx`). */
  private async connectAddressed(
    tx: StoreTx, undo: (step: () => Promise<unknown>) => void, net: BridgeNetworkRecord | MacvlanNetworkRecord | OverlayNetworkRecord,
    o: { id: string; netns: string; ifname: string; ports: PortMapping[]; ipv4: string | undefined; ipv6: string | boolean | undefined },
  ): Promise<Endpoint> {
    const { id, ports } = o;
    const network = net.name;
    if (net.driver !== 'overlay' && net.internal && ports.length) throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
    const resolved = this.resolvePorts(tx, ports, ports.length ? await this.boundSockets([...new Set(ports.map((p) => p.protocol))]) : []);
    const lease = this.ipam.allocate(tx, network, { owner: id, ...(o.ipv4 !== undefined ? { ipv4: o.ipv4 } : {}), ...(o.ipv6 !== undefined ? { ipv6: o.ipv6 } : {}) });
    const rec: EndpointRecord = {
      id, network, netns: o.netns, ifname: o.ifname, mac: macFromIp(lease.ipv4),
      ipv4: lease.ipv4, gateway: net.gateway, ports: resolved, created: new Date().toISOString(),
    };
    if (net.driver === 'bridge' || net.driver === 'overlay') rec.hostIfname = hostIfname(network, id);
    if (lease.ipv6) rec.ipv6 = lease.ipv6;
    if (lease.ipv6 && net.driver !== 'overlay' && net.gateway6) rec.gateway6 = net.gateway6;
    faultPoint('connect:allocated');
    await this.realize(net);
    faultPoint('connect:network');
    if (net.driver === 'macvlan') {
      await attachMacvlan(this.ctx, net, rec as MacvlanEndpointRecord, o.netns);
      undo(() => detachMacvlan(rec as MacvlanEndpointRecord, network));
      faultPoint('connect:attached');
    } else {
      const ep = rec as BridgeEndpointRecord;
      const attach = async (): Promise<void> => {
        try {
          await attachEndpoint(this.ctx, this.attachNet(net), ep, o.netns);
        } catch (e) {
          // The container's previous interface of that name may be retired but not yet deleted.
          if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
          await this.reap();
          await attachEndpoint(this.ctx, this.attachNet(net), ep, o.netns);
        }
      };
      try {
        await attach();
      } catch (e) {
        // This process believed the bridge was there; someone removed it (ENODEV naming it as
        // master): make sure of the network again, once.
        if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
        this.ready.delete(net.name);
        this.firewallReady = false;
        await this.realize(net);
        await attach();
      }
      undo(() => detachEndpoint(this.ctx, ep));
      faultPoint('connect:attached');
      try {
        try {
          await this.firewall.connectEndpoint({ ...ep, bridge: net.bridge });
        } catch (e) {
          // The firewall's tables or this network's elements went away under a long-lived host.
          if (!(e instanceof NsnetError && (e.code === 'ERR_FIREWALL_MISSING' || e.code === 'ERR_NETWORK_NOT_FOUND'))) throw e;
          this.ready.delete(net.name);
          this.firewallReady = false;
          await this.realize(net);
          await this.firewall.connectEndpoint({ ...ep, bridge: net.bridge });
        }
      } catch (e) {
        await detachEndpoint(this.ctx, ep).catch(() => undefined);
        throw e;
      }
      undo(() => this.firewall.disconnectEndpoint({ ...ep, bridge: net.bridge }));
      faultPoint('connect:published');
    }
    tx.put(ENDPOINTS, epKey(network, id), rec);
    this.ledger(tx, rec);
    return toEndpoint(rec, net);
  }

  /** The host namespace's listening TCP and bound UDP sockets (sock_diag). */
  private async boundSockets(protocols: ('tcp' | 'udp' | 'sctp')[]): Promise<BoundSocket[]> {
    this.sockets ??= Sockets.open(this.netns);
    return (await this.sockets).bound(protocols.filter((p): p is 'tcp' | 'udp' => p !== 'sctp'));
  }

  /**
   * Fills in `hostPort: 0` and refuses ports another endpoint holds (the host-wide ledger, one
   * point lookup per port) or a process on the host has bound (its traffic would silently go to
   * the container instead).
   */
  private resolvePorts(view: StoreView, ports: PortMapping[], sockets: BoundSocket[]): PortMapping[] {
    const out: PortMapping[] = [];
    const holderOf = (p: PortMapping): string | undefined => {
      const [lo, hi] = span(p);
      for (let port = lo; port <= hi; port++) {
        for (const c of view.get<PortClaim[]>(PORTS, `${p.protocol}:${port}`) ?? [])
          if (c.hostIp === undefined || p.hostIp === undefined || c.hostIp === p.hostIp) return holderName(c.holder);
      }
      for (const s of sockets) {
        if (s.protocol !== p.protocol || (s.family !== 4 && s.address !== '::')) continue;
        const wildcard = s.address === '0.0.0.0' || s.address === '::';
        if (clash(p, { protocol: s.protocol, hostPort: s.port, containerPort: 1, ...(wildcard ? {} : { hostIp: s.address }) }))
          return `a listening socket on the host (${s.address}:${s.port})`;
      }
      return out.some((q) => clash(q, p)) ? 'this request (twice)' : undefined;
    };
    for (const want of ports) {
      let p = want;
      if (p.hostPort === 0) {
        let port = EPHEMERAL[0];
        while (port <= EPHEMERAL[1] && holderOf({ ...p, hostPort: port }) !== undefined) port++;
        if (port > EPHEMERAL[1]) throw new NsnetError('ERR_PORT_IN_USE', `no free ${p.protocol} port in ${EPHEMERAL[0]}-${EPHEMERAL[1]}`);
        p = { ...p, hostPort: port };
      }
      const holder = holderOf(p);
      if (holder) throw new NsnetError('ERR_PORT_IN_USE', `${p.protocol} port ${p.hostIp ?? '*'}:${p.hostPort}${p.hostPortEnd ? `-${p.hostPortEnd}` : ''} is held by ${holder}`, { holder, port: p });
      out.push(p);
    }
    return out;
  }

  /** Records (or, with `release`, forgets) an endpoint's ports in the ledger. */
  private ledger(tx: StoreTx, rec: EndpointRecord, release = false): void {
    recordClaims(tx, epKey(rec.network, rec.id), rec.ports, release);
  }

  /**
   * Disconnects a container from a network: what connect made is undone (published ports,
   * veth pair or macvlan child, addresses, port claims). A `none` endpoint's loopback stays up.
   * @throws ERR_ENDPOINT_NOT_FOUND; ERR_ENDPOINT_IN_USE when it is the last attachment of a
   *   namespace that container-mode endpoints share (disconnect those first)
   */
  async disconnect(network: string, id: string): Promise<void> {
    networkName(network);
    endpointId(id);
    let retired = false;
    await this.operation(async (tx, undo) => {
      const rec = tx.get<EndpointRecord>(ENDPOINTS, epKey(network, id));
      if (!rec) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const net = this.network(tx, network);
      if (net && OWNS_NETNS.has(net.driver)) {
        // Keys only (no document is read) unless some endpoint is in container mode: a
        // disconnect must not cost more with every endpoint on the host.
        const keys = tx.keys(ENDPOINTS);
        const sharers = keys.filter((k) => k.startsWith('container/'))
          .map((k) => tx.get<EndpointRecord>(ENDPOINTS, k)!).filter((e) => e.target === id);
        const keeps = sharers.length > 0 && keys.some((k) => {
          const slash = k.indexOf('/');
          if (k.slice(slash + 1) !== id || k.slice(0, slash) === network) return false;
          return OWNS_NETNS.has(this.network(tx, k.slice(0, slash))?.driver ?? 'host');
        });
        if (!keeps && sharers.length) {
          throw new NsnetError('ERR_ENDPOINT_IN_USE', `endpoint ${id}'s namespace is shared by ${sharers.map((e) => e.id).join(', ')}: disconnect them first`, { network, endpoint: id, sharers: sharers.map((e) => e.id) });
        }
      }
      if (net?.driver === 'bridge' || net?.driver === 'overlay' || (!net && rec.hostIfname)) {
        const ep = rec as BridgeEndpointRecord;
        await this.firewall.disconnectEndpoint({ ...ep, bridge: net?.driver === 'bridge' || net?.driver === 'overlay' ? net.bridge : '' });
        faultPoint('disconnect:unpublished');
        // Retired now (down, off the bridge), deleted with others in one go a moment later.
        await retireEndpoint(this.ctx, ep);
        retired = true;
        if (net?.driver === 'bridge' || net?.driver === 'overlay') undo(() => this.restoreEndpoint(ep, net));
      } else if (net?.driver === 'macvlan') {
        await detachMacvlan(rec as MacvlanEndpointRecord, network);
        undo(() => attachMacvlan(this.ctx, net, rec as MacvlanEndpointRecord, rec.netns!));
      }
      faultPoint('disconnect:detached');
      if (rec.ipv4 !== undefined) this.ipam.release(tx, network, id);
      this.ledger(tx, rec, true);
      tx.delete(ENDPOINTS, epKey(network, id));
    });
    if (retired) this.scheduleReap();
  }

  /** Puts a retired (or deleted) bridge endpoint back: veth on its bridge, its elements. */
  private async restoreEndpoint(ep: BridgeEndpointRecord, net: BridgeNetworkRecord | OverlayNetworkRecord): Promise<void> {
    const link = await this.host.links.find(ep.hostIfname);
    if (!link) await attachEndpoint(this.ctx, this.attachNet(net), ep, ep.netns);
    else {
      await this.host.links.set(link.index, { master: net.bridge, group: 0, up: true });
      await this.host.links.set(link.index, { bridgePort: { hairpin: true } });
    }
    await this.firewall.connectEndpoint({ ...ep, bridge: net.bridge });
  }

  private reapTimer: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;
  /** The reap that runs after the one in flight (for veths retired while it runs). */
  private reapNext: Promise<void> | undefined;

  /** Deletes retired veths soon (one kernel operation for all of them). */
  private scheduleReap(): void {
    if (this.reapTimer) return;
    this.reapTimer = setTimeout(() => {
      this.reapTimer = undefined;
      void this.reap().catch(() => undefined); // gc() removes what a failed reap leaves
    }, 50);
    this.reapTimer.unref();
  }

  /**
   * Deletes the veths of disconnected endpoints now (disconnect retires them at once and deletes
   * them in batches shortly after; close(), removeNetwork() and gc() wait for it).
   */
  async reap(): Promise<void> {
    if (this.reapTimer) {
      clearTimeout(this.reapTimer);
      this.reapTimer = undefined;
    }
    if (!this.reaping) {
      this.reaping = reapRetired(this.ctx).finally(() => { this.reaping = undefined; });
      return this.reaping;
    }
    // A group delete in flight may have started before the caller's veth was retired: the
    // caller waits for the next one, which every caller arriving meanwhile shares.
    this.reapNext ??= this.reaping.catch(() => undefined).then(() => {
      this.reapNext = undefined;
      return this.reap();
    });
    return this.reapNext;
  }

  /**
   * Brings a crashed process's leftovers to a consistent state: removes what no record explains
   * (endpoints whose namespace is gone, links marked as nsnet's without a record, firewall
   * elements of unknown owners: an interrupted connect or createNetwork is undone), then puts
   * back what a record still claims (an interrupted disconnect or removeNetwork is undone, as
   * {@link reconcile} does). Either way the kernel ends exactly as before the interrupted
   * operation or exactly as after it.
   */
  async gc(): Promise<GcReport> {
    await this.reap();
    return this.store.update(async (tx) => {
      const report: GcReport = { endpoints: [], links: [], firewallOwners: [], repaired: [], problems: [], damaged: [] };
      await this.ensureFirewall();
      // Damaged documents first: the passes below remove what no sound record explains.
      report.damaged = await repairDamaged({
        tx, host: this.host, hostNetns: this.netns, firewall: this.firewall, ipam: this.ipam,
        defaultNetwork: { name: DEFAULT_NETWORK, bridge: DEFAULT_BRIDGE }, predefined: PREDEFINED_NETWORKS,
      });
      const known = new Map(tx.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
      for (const { value: ep } of tx.list<EndpointRecord>(ENDPOINTS)) {
        if (ep.netns === undefined) continue; // host mode: nothing in the kernel to outlive
        try {
          openNetns(ep.netns).close();
          continue;
        } catch (e) {
          if (!(e instanceof NsnetError) || e.code !== 'ERR_NETNS_NOT_FOUND') throw e;
        }
        // The namespace is gone (a macvlan child went with it; a veth's host end did too, but
        // the firewall elements and the retired-link bookkeeping remain).
        const net = known.get(ep.network);
        if (ep.hostIfname !== undefined) {
          await this.firewall.disconnectEndpoint(ep.id);
          await detachEndpoint(this.ctx, ep as BridgeEndpointRecord);
        }
        if (ep.ipv4 !== undefined && net && (net.driver === 'bridge' || net.driver === 'macvlan' || net.driver === 'overlay')) this.ipam.release(tx, ep.network, ep.id);
        this.ledger(tx, ep, true);
        tx.delete(ENDPOINTS, epKey(ep.network, ep.id));
        report.endpoints.push(`${ep.network}/${ep.id}`);
      }
      const nets = new Map(tx.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
      const eps = new Set(tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.key));
      for (const link of await this.host.links.list()) {
        const owner = parseOwnerAlias(link.alias);
        if (!owner) continue;
        const net = nets.get(owner.network);
        const mine = owner.endpoint === undefined
          ? (net?.driver === 'bridge' && net.bridge === link.name) || (net?.driver === 'overlay' && (net.bridge === link.name || net.vxlan === link.name))
          : eps.has(epKey(owner.network, owner.endpoint));
        if (mine) continue;
        await this.host.links.remove(link.index).catch((e) => { if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e; });
        report.links.push(link.name);
      }
      const ids = new Set(tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.value.id));
      for (const owner of (await this.firewall.listOwned()).keys()) {
        const [kind, name] = [owner.slice(0, owner.indexOf(':')), owner.slice(owner.indexOf(':') + 1)];
        if ((kind === 'ep' && ids.has(name)) || (kind === 'net' && nets.has(name))) continue;
        await this.firewall.removeOwner(owner);
        report.firewallOwners.push(owner);
      }
      for (const n of report.endpoints) this.ready.delete(n.split('/')[0]!);
      // What a crash in the middle of disconnect or removeNetwork left: back to the record.
      const healed = await this.heal(tx);
      report.repaired = [...healed.networks.map((n) => `network ${n}`), ...healed.endpoints.map((e) => `endpoint ${e}`)];
      report.problems = healed.problems;
      return report;
    });
  }

  /**
   * Makes the kernel match the store: nsnet's firewall tables, bridges and their elements,
   * veths and macvlan children of live endpoints and their published ports. It also finishes
   * undoing what a process killed in the middle of disconnect or removeNetwork left (a veth
   * retired but still recorded, a network whose elements are gone): the record is the truth.
   * (A macvlan network whose parent is gone is skipped: nsnet never makes a parent.)
   */
  async reconcile(): Promise<ReconcileReport> {
    return this.store.update((tx) => this.heal(tx));
  }

  /** reconcile()'s work, inside a store transaction. */
  private async heal(tx: StoreTx): Promise<ReconcileReport> {
    const report: ReconcileReport = { networks: [], endpoints: [], firewallRebuilt: false, problems: [] };
    /** One network's or endpoint's healing: a failure is reported and the rest goes on. */
    const attempt = async (network: string, endpoint: string | undefined, step: () => Promise<void>): Promise<boolean> => {
      try {
        await step();
        return true;
      } catch (e) {
        const err = e instanceof NsnetError ? e : new NsnetError('ERR_INTERNAL', String(e));
        report.problems.push({ network, ...(endpoint !== undefined ? { endpoint } : {}), code: err.code, message: err.message });
        return false;
      }
    };
    // A damaged record is left out and reported (gc() repairs it); the others are healed.
    const damaged: WarningHandler = (w) => report.problems.push(damageProblem(w));
    const nets = readNetworks(tx, damaged);
    // Bridge and overlay networks alike: a bridge with containers on veths (overlay: plus its VXLAN device).
    const bridges = nets.filter((n): n is BridgeNetworkRecord | OverlayNetworkRecord => n.driver === 'bridge' || n.driver === 'overlay');
    const eps = readEndpoints(tx, damaged);
    const bridgeEps = eps.flatMap((e) => {
      const n = bridges.find((x) => x.name === e.network);
      return n && e.hostIfname !== undefined ? [{ ep: e as BridgeEndpointRecord, net: n }] : [];
    });
    this.ready.clear();
    this.firewallReady = false;
    if (!(await this.firewall.isIntact())) {
      await this.firewall.rebuild({ networks: bridges.map((n) => this.firewallNet(n)), endpoints: bridgeEps.map(({ ep, net }) => ({ ...ep, bridge: net.bridge })) });
      report.firewallRebuilt = true;
    }
    this.firewallReady = true;
    const owned = await this.firewall.listOwned();
    const brokenNets = new Set<string>();
    for (const net of bridges) {
      const bridge = await this.host.links.find(net.bridge);
      const mine = bridge?.alias === ownerAlias(net.name);
      // The default network is made at its first connect: not being there is its normal state.
      const lazy = net.name === DEFAULT_NETWORK && !mine && !owned.has(`net:${net.name}`) && !bridgeEps.some((x) => x.net === net);
      if (lazy) continue;
      const vxlanDown = net.driver === 'overlay' && (await this.host.links.find(net.vxlan))?.up !== true;
      const fine = await attempt(net.name, undefined, () => this.realize(net));
      if (!fine) brokenNets.add(net.name);
      else if (!mine || !bridge.up || vxlanDown || !owned.has(`net:${net.name}`)) report.networks.push(net.name);
    }
    const alive = (ns: string): boolean => {
      try {
        openNetns(ns).close();
        return true;
      } catch {
        return false; // its namespace is gone: gc() removes it
      }
    };
    for (const { ep, net } of bridgeEps) {
      if (!alive(ep.netns) || brokenNets.has(net.name)) continue;
      const link = await this.host.links.find(ep.hostIfname);
      const bridgeIndex = (await this.host.links.find(net.bridge))?.index;
      // Missing, or retired by a disconnect that never committed, or without its elements.
      const broken = !link || link.group === RETIRED_GROUP || link.master !== bridgeIndex || !link.up ||
        ((ep.ports.length > 0 || (net.driver === 'bridge' && !net.icc)) && !owned.has(`ep:${ep.id}`));
      if (!broken) continue;
      if (await attempt(ep.network, ep.id, () => this.restoreEndpoint(ep, net))) report.endpoints.push(`${ep.network}/${ep.id}`);
    }
    for (const e of eps) {
      const net = nets.find((n) => n.name === e.network);
      if (net?.driver !== 'macvlan' || e.netns === undefined || !alive(e.netns)) continue;
      if (!(await this.host.links.find(net.parent))) {
        report.problems.push({ network: net.name, endpoint: e.id, code: 'ERR_PARENT_NOT_FOUND', message: `the macvlan parent ${net.parent} does not exist` });
        continue;
      }
      const ep = e as MacvlanEndpointRecord;
      if (await macvlanAttached(ep, net.name)) continue;
      if (await attempt(ep.network, ep.id, () => attachMacvlan(this.ctx, net, ep, ep.netns))) report.endpoints.push(`${ep.network}/${ep.id}`);
    }
    return report;
  }

  /**
   * Closes the store and handles; overlay mode: stops the agent and closes the control plane
   * (this host's blocks are kept until its lease expires: its containers still use them).
   */
  async close(): Promise<void> {
    await this.overlay?.close().catch(() => undefined);
    await this.reap().catch(() => undefined);
    this.host.close();
    if (this.sockets) (await this.sockets.catch(() => undefined))?.close();
    await this.firewall.close();
    await this.store.close();
  }
}

