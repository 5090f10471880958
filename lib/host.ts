/**
 * NetworkHost: the façade. Networks and endpoints are recorded in the store (intent); each
 * network's driver (lib/drivers/) makes the kernel match. What every mode shares is here: every
 * operation is one store transaction, which holds the store's exclusive lock for the whole
 * operation — the kernel work happens, then the record is committed; or, when a step fails, the
 * steps are undone and nothing is committed — plus IPAM and the host-wide port ledger. A process
 * killed half-way leaves only kernel objects marked as nsnet's (link aliases, firewall element
 * comments) that no record explains; `gc()` removes them (lib/maintenance.ts).
 */
import { NsnetError, invalid } from './errors';
import { VethReaper } from './devices/reaper';
import type { Attachment, Driver, DriverContext, DriverFirewall, InUse, NetworkOption, Recorded, UndoLog } from './drivers/driver';
import { NetworkGone, driverFirewall } from './drivers/driver';
import type { ConnectOptions, Endpoint, EndpointRecord, GcReport, Network, NetworkHostOptions, NetworkInspect, NetworkRecord, NetworkSpec, PlainNetworkRecord, PortMapping, ReconcileReport } from './host-types';
import { DEFAULT_NETWORK_SPEC, driverOf, drivers, findDriver } from './drivers/registry';
import { faultPoint } from './faults';
import { phase } from './phases';
import { Firewall } from './firewall/firewall';
import { Ipam, macFromIp } from './ipam/index';
import { checkEndpointNames, checkNetworkDns } from './dns/names';
import { runDns, type DnsResolver, type InternalDnsOptions } from './dns/resolver';
import type { DnsOptions } from './dns/types';
import { Maintenance } from './maintenance';
import { isSlot, removeSlotNetns, slotNetnsPrefix, WarmPool } from './pool';
import { Netlink } from './netlink/netlink';
import { Sockets, type BoundSocket } from './netlink/sockets';
import { Netns, openNetns, type NetnsSpec } from './netns';
import type { OverlayAgent } from './overlay/agent';
import { OverlayMembership, type OverlayHostOptions } from './overlay/membership';
import { ENDPOINTS, NETWORKS, epKey } from './state/collections';
import { emitWarning, endpointsOn, isRecorded, readNetworks, type WarningHandler } from './state/damage';
import { handOver as handPortsOver } from './state/handover';
import { claimantOf, receivingPorts, recordClaims, releaseClaims, resolvePorts } from './state/ledger';
import { checkPublishFamilies, checkWithFirewall, normalizeClaims, normalizePublish, socketProtocols } from './state/publish';
import { assertNotShared, endpointView, endpointsOf, markSharing, recorded, sharingUnmarked } from './state/views';
import { FileStore } from './store/filestore';
import type { Store, StoreTx, StoreView } from './store/index';
import * as v from './validate';

/** Thrown inside connect's transaction when the network's driver is not the one its options were checked for. */
class DriverChanged extends Error {}

/** The default network: exists without being created (like Docker's `bridge`). */
export const DEFAULT_NETWORK = DEFAULT_NETWORK_SPEC.name;
/**
 * The predefined networks besides the default one, recorded at open like Docker's: `host` (the
 * container uses the host's namespace), `none` (loopback only) and `container` (share the
 * namespace of another endpoint: Docker's `--network container:<id>`).
 */
export const PREDEFINED_NETWORKS = ['host', 'none', 'container'] as const;

/** Every createNetwork option some driver takes (each driver refuses the others). */
const NETWORK_OPTIONS: readonly NetworkOption[] = [...new Set(drivers.flatMap((d) => d.networkOptions))];
const CONNECT_OPTIONS = ['netns', 'ifname', 'ipv4', 'ipv6', 'publish', 'ports', 'target', 'handOver'] as const;
/** What every endpoint may carry, whatever its driver (names resolve where the network has DNS). */
const NAME_OPTIONS = ['name', 'aliases'] as const;
/** How the caller's ports are to be claimed, whatever the driver. */
const PORT_OPTIONS = ['container', 'hostPortsHeldByCaller'] as const;

/** The record as its driver attaches it: with only the ports it receives (all of them, usually). */
function receivingView(rec: EndpointRecord, receiving: PortMapping[]): EndpointRecord {
  const all = receiving.length === rec.ports.length && receiving.every((p, i) => p === rec.ports[i]);
  return all ? rec : { ...rec, ports: receiving };
}

/** The host side of container networking: networks, endpoints, gc and reconcile. */
export class NetworkHost {
  private readonly ipam = new Ipam();
  /**
   * Networks whose kernel objects this process has made sure of, by name, with the `created`
   * stamp of the record it realized (a network removed and made again by another process is a
   * new one). A long-lived host can still be wrong about the kernel (someone deleted a bridge):
   * a driver's step then says so (NetworkGone) and connect makes sure of the network again.
   */
  private readonly ready = new Map<string, string>();
  /** Each network's driver as this process last read it (connect validates its options before its transaction). */
  private readonly drivers = new Map<string, Driver>();
  private sockets: Promise<Sockets> | undefined;
  private readonly reaper: VethReaper;
  private readonly fw: DriverFirewall;
  private readonly ctx: DriverContext;
  private readonly maintenance: Maintenance;
  private readonly pool: WarmPool;

  private constructor(
    /** Where the state lives. */
    readonly stateDir: string,
    private readonly store: Store,
    private readonly host: Netlink,
    private readonly firewall: Firewall,
    private readonly netns: NetnsSpec | undefined,
    /** Overlay mode: the control plane and the agent (when opened with `controlPlane`). */
    private readonly overlay: OverlayMembership | undefined,
    /** Where warnings go (NetworkHostOptions.onWarning). */
    private readonly warn: WarningHandler,
  ) {
    this.reaper = new VethReaper(host);
    this.fw = driverFirewall(firewall);
    this.ctx = {
      host, firewall: this.fw, overlay, reaper: { soon: () => this.reaper.soon(), now: () => this.reaper.now() },
      sysctl: async (key, value) => { await Netns.sysctl(netns, key, value); },
    };
    this.maintenance = new Maintenance(this.ctx, firewall, this.ipam, netns, {
      realize: (net) => this.realize(net),
      reset: () => {
        this.ready.clear();
        this.fw.forget();
      },
      forgetNetwork: (name) => this.ready.delete(name),
      slotNetnsPrefix: slotNetnsPrefix(stateDir),
    });
    this.pool = new WarmPool(this.ctx, this.ipam, stateDir);
  }

  /** Opens the state store and handles in the host namespace. */
  static async open(opts: NetworkHostOptions = {}): Promise<NetworkHost> {
    v.knownKeys(opts, ['stateDir', 'netns', 'controlPlane', 'hostId', 'underlay', 'reconcileInterval', 'onWarning'], 'NetworkHost.open options');
    if (opts.onWarning !== undefined && typeof opts.onWarning !== 'function') throw invalid('ERR_INVALID_ARGUMENT', 'onWarning must be a function', { option: 'onWarning' });
    const warn = opts.onWarning ?? emitWarning;
    if (opts.controlPlane === undefined) {
      for (const k of ['hostId', 'underlay', 'reconcileInterval'] as const)
        if (opts[k] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', `${k} applies to overlay mode, which needs a controlPlane`, { option: k });
    }
    const stateDir = opts.stateDir ?? '/var/lib/nsnet';
    const store = await FileStore.open({ dir: stateDir });
    let host: Netlink | undefined;
    let firewall: Firewall | undefined;
    let overlay: OverlayMembership | undefined;
    try {
      host = await Netlink.open(opts.netns === undefined ? {} : { netns: opts.netns });
      firewall = await Firewall.open(opts.netns === undefined ? {} : { netns: opts.netns });
      if (opts.controlPlane !== undefined) {
        // The agent serves the overlay networks recorded here (other processes may join some).
        const recorded = (): Promise<{ network: string; subnet: string }[]> => store.read((view) => readNetworks(view, warn)
          .flatMap((n) => driverOf(n).agentServes?.(n as never) ?? []));
        overlay = await OverlayMembership.open({
          controlPlane: opts.controlPlane,
          ...(opts.hostId !== undefined ? { hostId: opts.hostId } : {}),
          ...(opts.underlay !== undefined ? { underlay: opts.underlay } : {}),
          ...(opts.reconcileInterval !== undefined ? { reconcileInterval: opts.reconcileInterval } : {}),
        }, host, opts.netns, recorded);
      }
      const nh = new NetworkHost(stateDir, store, host, firewall, opts.netns, overlay, warn);
      await nh.recordPredefined();
      // A store an earlier version wrote: its container-mode endpoints get their flag (views.ts).
      if (await store.read((view) => sharingUnmarked(view))) await store.update((tx) => markSharing(tx)).catch(() => undefined);
      return nh;
    } catch (e) {
      await overlay?.close().catch(() => undefined);
      await firewall?.close();
      host?.close();
      await store.close();
      throw e;
    }
  }

  /**
   * Records the predefined networks and the default one on first open (its bridge is made at
   * first connect). Only written when missing: a read-only state dir still opens, for reads. A
   * damaged record counts as there: gc() repairs it.
   */
  private async recordPredefined(): Promise<void> {
    const names = [DEFAULT_NETWORK, ...drivers.filter((d) => d.predefined).map((d) => d.name)];
    if (await this.store.read((view) => names.every((n) => isRecorded(view, NETWORKS, n)))) return;
    await this.store.update(async (tx) => {
      for (const d of drivers) {
        if (!d.predefined || isRecorded(tx, NETWORKS, d.name)) continue;
        const rec: PlainNetworkRecord = { name: d.name, driver: d.name as PlainNetworkRecord['driver'], labels: {}, created: new Date().toISOString() };
        tx.put(NETWORKS, d.name, rec);
      }
      if (isRecorded(tx, NETWORKS, DEFAULT_NETWORK)) return;
      const driver = findDriver(DEFAULT_NETWORK_SPEC.driver)!;
      const { record, pool } = await driver.define!(this.ctx, { ...DEFAULT_NETWORK_SPEC, labels: {} }, this.inUse(tx));
      if (pool) this.ipam.createPool(tx, record.name, pool);
      tx.put(NETWORKS, record.name, record);
    });
  }

  /**
   * One operation: a store transaction whose kernel steps register their compensations with
   * `undo`. When the transaction fails at its commit (a full disk, a read-only state dir) after
   * `fn` finished, the compensations run, newest first, so the kernel is as before. (A failure
   * inside `fn` is undone by `fn` itself, step by step.)
   */
  private async operation<T>(fn: (tx: StoreTx, undo: UndoLog) => Promise<T>): Promise<T> {
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

  /** The record of a network. */
  private network(view: StoreView, name: string): NetworkRecord | undefined {
    return view.get<NetworkRecord>(NETWORKS, name);
  }

  /** Every subnet in use on this host (pools, and what networks reserve beyond them) and every network. */
  private inUse(view: StoreView): InUse {
    const networks = view.list<NetworkRecord>(NETWORKS).map((n) => n.value);
    return { subnets: [...this.ipam.subnets(view), ...networks.flatMap((n) => driverOf(n).reserved?.(n as never) ?? [])], networks };
  }

  /** Makes sure of the network's kernel objects, once per process (per record). */
  private async realize(net: NetworkRecord): Promise<void> {
    if (this.ready.get(net.name) === net.created) return;
    await driverOf(net).realize(this.ctx, net as never);
    this.ready.set(net.name, net.created);
  }

  private async unrealize(net: NetworkRecord): Promise<void> {
    this.ready.delete(net.name);
    await driverOf(net).unrealize(this.ctx, net as never);
  }

  /** Resolvers this host started (runDns): they learn of new networks at once. */
  private readonly resolvers = new Set<DnsResolver>();

  /**
   * The embedded DNS resolver for this host's networks (those with DNS on): it listens on each
   * one's gateway, port 53, UDP and TCP, answers the names, ids and aliases of the network's
   * endpoints to queries from that network and forwards the rest. It follows the store, so a
   * name resolves when connect() returns, whichever process connected it. Stop it with its
   * `close()` (or this host's).
   */
  async runDns(opts: Pick<DnsOptions, 'resolvConf' | 'upstreamTimeout' | 'tcpIdleTimeout' | 'onError'> = {}): Promise<DnsResolver> {
    v.knownKeys(opts, ['resolvConf', 'upstreamTimeout', 'tcpIdleTimeout', 'onError'], 'runDns options');
    const r = await runDns({ ...opts, stateDir: this.stateDir, ...(this.netns !== undefined ? { netns: this.netns } : {}), store: this.store } as InternalDnsOptions);
    this.resolvers.add(r);
    const close = r.close.bind(r);
    r.close = async () => {
      this.resolvers.delete(r);
      await close();
    };
    return r;
  }

  /** A network just made or removed: this process's resolvers listen (or stop) at once. */
  private async dnsFollows<T>(result: T): Promise<T> {
    for (const r of this.resolvers) await r.sync();
    return result;
  }

  /**
   * Overlay mode: the agent that keeps this host's VXLAN peers equal to the control plane's
   * hosts (list + watch + periodic full reconcile), started now (idempotent). Stop it with
   * `close()` (or `agent.stop()`).
   * @throws ERR_NO_CONTROL_PLANE
   */
  runAgent(): OverlayAgent {
    if (!this.overlay) throw new NsnetError('ERR_NO_CONTROL_PLANE', 'overlay networks need a control plane: open the NetworkHost with { controlPlane, hostId, underlay }');
    return this.overlay.agent.start();
  }

  /**
   * Creates a network: its record, address pool, and the driver's kernel objects (a bridge and
   * its firewall elements). An overlay network is defined in the control plane if it is new
   * there (every host creates it with the same settings), and this host joins it: a block of its
   * subnet, a bridge and a VXLAN device.
   * @throws ERR_INVALID_NAME, ERR_NETWORK_EXISTS, ERR_SUBNET_OVERLAP, ERR_INVALID_CIDR, ERR_NO_FREE_SUBNET;
   *   overlay: ERR_NO_CONTROL_PLANE, ERR_VNI_IN_USE, ERR_INVALID_VNI, ERR_UNDERLAY_NOT_FOUND, ERR_CONTROL_PLANE_UNAVAILABLE
   */
  async createNetwork(spec: NetworkSpec): Promise<Network> {
    v.knownKeys(spec, ['name', 'driver', 'labels', ...NETWORK_OPTIONS], 'network');
    const name = v.networkName(spec.name);
    const driver = findDriver(spec.driver ?? DEFAULT_NETWORK_SPEC.driver);
    if (!driver?.define) {
      const kinds = drivers.filter((d) => d.define).map((d) => d.name).join(', ');
      const hint = driver?.predefined ? ` (${driver.name} is a predefined network: connect to it)` : '';
      throw invalid('ERR_INVALID_ARGUMENT', `driver ${JSON.stringify(spec.driver)} is not one of ${kinds}${hint}`, { driver: spec.driver });
    }
    for (const k of NETWORK_OPTIONS) if (spec[k] !== undefined && !driver.networkOptions.includes(k)) throw invalid('ERR_INVALID_ARGUMENT', `${k} does not apply to a ${driver.name} network`, { option: k });
    const labels = v.labels(spec.labels);
    return this.operation(async (tx, undo) => {
      if (this.network(tx, name)) {
        const predefined = name === DEFAULT_NETWORK || findDriver(name)?.predefined === true;
        throw new NsnetError('ERR_NETWORK_EXISTS', predefined ? `${name} is a predefined network` : `network ${name} exists`, { network: name });
      }
      const { record, pool, undo: unDefine } = await driver.define!(this.ctx, { ...spec, name, labels }, this.inUse(tx));
      const dns = checkNetworkDns(spec.dns);
      if (dns !== undefined) record.dns = dns;
      try {
        if (pool) this.ipam.createPool(tx, name, pool);
        tx.put(NETWORKS, name, record);
        await this.realize(record);
      } catch (e) {
        await this.unrealize(record).catch(() => undefined);
        await unDefine?.().catch(() => undefined);
        throw e;
      }
      // If the commit fails: the kernel objects go, then what defining did (reverse order).
      if (unDefine) undo(unDefine);
      undo(() => this.unrealize(record));
      faultPoint('createNetwork:realized');
      return { ...record };
    }).then((net) => this.dnsFollows(net));
  }

  /**
   * Removes a network (not while endpoints are connected).
   * @throws ERR_NETWORK_NOT_FOUND, ERR_NETWORK_IN_USE
   */
  async removeNetwork(name: string): Promise<void> {
    v.networkName(name);
    await this.reaper.now();
    await this.operation(async (tx, undo) => {
      const net = this.network(tx, name);
      if (name === DEFAULT_NETWORK || (net && driverOf(net).predefined)) throw new NsnetError('ERR_INVALID_ARGUMENT', `the predefined network ${name} cannot be removed`, { network: name });
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      const all = endpointsOn(tx, name);
      const eps = all.filter((e) => !isSlot(e.id));
      if (eps.length) throw new NsnetError('ERR_NETWORK_IN_USE', `network ${name} has ${eps.length} endpoint(s): ${eps.slice(0, 5).map((e) => e.id).join(', ')}`, { network: name });
      // The warm pool's slots go with it (their namespaces were nsnet's).
      if (all.length) await this.pool.drain(tx, net, driverOf(net), all.filter((e) => isSlot(e.id)));
      await this.unrealize(net);
      undo(() => this.realize(net));
      const unRelease = await driverOf(net).release?.(this.ctx, net as never);
      if (unRelease) undo(unRelease); // (undone in reverse: released things come back before realize)
      this.ipam.deletePool(tx, name);
      tx.delete(NETWORKS, name);
    });
    await this.dnsFollows(undefined);
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
    v.networkName(name);
    const { net, eps } = await this.store.read((view) => {
      const net = this.network(view, name);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      return { net, eps: endpointsOf(view, name, this.warn) };
    });
    const ipForward = (await Netns.sysctl(this.netns, 'net.ipv4.ip_forward')) === '1';
    return { ...net, endpoints: eps, ipForward, ...(await driverOf(net).inspect?.(this.ctx, net as never)) };
  }

  /**
   * Endpoints of one network, or of all. A damaged record is left out, with a warning naming
   * its file (NetworkHostOptions.onWarning).
   */
  async listEndpoints(network?: string): Promise<Endpoint[]> {
    if (network !== undefined) v.networkName(network);
    return this.store.read((view) => endpointsOf(view, network, this.warn));
  }

  /**
   * The warm pool (lib/pool.ts): makes sure `count` endpoints of a bridge network are ready
   * ahead of time — each a network namespace made by nsnet with the container's interface in
   * it, addressed, up and routed, its veth on the network's bridge. A `connect()` that passes
   * no `netns` then takes one: the endpoint's `netns` is the slot's namespace (run the
   * container there), and connecting costs no kernel object creation, only a handover. Slots
   * already ready count; none is removed (removeNetwork removes them with the network). One
   * transaction: on failure nothing is left.
   * @returns how many slots are ready
   * @throws ERR_NETWORK_NOT_FOUND, ERR_INVALID_ARGUMENT (a network without a warm pool: not
   *   bridge; count not an integer 0–1024), ERR_SUBNET_FULL
   */
  async prepare(network: string, count: number): Promise<{ network: string; ready: number }> {
    v.networkName(network);
    v.int(count, 0, 1024, 'count');
    return this.operation(async (tx, undo) => {
      const net = this.network(tx, network);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
      const driver = driverOf(net);
      if (!driver.adopt) throw invalid('ERR_INVALID_ARGUMENT', `a ${driver.name} network has no warm pool (bridge networks have)`, { network, driver: driver.name });
      await this.realize(net);
      return { network, ready: await this.pool.fill(tx, net, driver, count, undo) };
    });
  }

  /**
   * Connects a container to a network. What happens depends on the network's driver:
   * - bridge, overlay: a veth pair to the network's bridge, addresses, routes, published ports;
   * - macvlan: a child of the parent device inside the container, with its address and route;
   * - `host`: the container uses the host's namespace; its `ports` are claimed host-wide;
   * - `none`: the container's loopback comes up, nothing else;
   * - `container`: the endpoint joins the namespace of the connected endpoint `target`.
   * Connecting an endpoint that exists with the same arguments returns it unchanged; with
   * other arguments it is refused. Without `netns`, a bridge network with a warm pool
   * ({@link prepare}) gives the endpoint a ready slot and its namespace (`endpoint.netns`).
   * @throws ERR_NETWORK_NOT_FOUND, ERR_ENDPOINT_EXISTS, ERR_ENDPOINT_NOT_FOUND (container target),
   *   ERR_NETNS_NOT_FOUND, ERR_ADDRESS_IN_USE, ERR_ADDRESS_OUTSIDE_SUBNET, ERR_SUBNET_FULL,
   *   ERR_PORT_IN_USE, ERR_NETWORK_INTERNAL, ERR_PARENT_NOT_FOUND, ERR_IFNAME_IN_USE, ERR_INVALID_ARGUMENT
   */
  async connect(network: string, opts: ConnectOptions): Promise<Endpoint> {
    v.networkName(network);
    v.knownKeys(opts, ['id', ...CONNECT_OPTIONS, ...NAME_OPTIONS, ...PORT_OPTIONS], 'connect options');
    const id = v.endpointId(opts.id);
    const container = opts.container === undefined ? id : containerId(opts.container);
    const heldByCaller = opts.hostPortsHeldByCaller === undefined ? false : v.bool(opts.hostPortsHeldByCaller, 'hostPortsHeldByCaller');
    const names = checkEndpointNames(opts);
    // The network's driver as last read (a network keeps its driver; one removed and made again
    // with another is seen in the transaction, which then tries again with the new one).
    let driver = this.drivers.get(network);
    if (!driver) {
      const known = await this.store.read((view) => this.network(view, network));
      if (!known) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
      this.drivers.set(network, (driver = driverOf(known)));
    } else if (CONNECT_OPTIONS.some((k) => opts[k] !== undefined && !driver!.connectOptions.includes(k))) {
      // Refused by the driver as last read: read it again before saying so.
      this.drivers.delete(network);
      return this.connect(network, opts);
    }
    for (const k of CONNECT_OPTIONS) {
      if (opts[k] === undefined || driver.connectOptions.includes(k)) continue;
      throw invalid('ERR_INVALID_ARGUMENT', `${k} does not apply to a ${driver.name} endpoint${driver.whyNot?.(k) ?? ''}`, { option: k, driver: driver.name });
    }
    const req: Attachment = { id };
    if (opts.handOver !== undefined && opts.ifname !== undefined) throw invalid('ERR_INVALID_ARGUMENT', 'ifname does not apply with handOver: the caller names the interface when it moves it', { option: 'ifname' });
    const handOver = opts.handOver === undefined ? undefined : v.ifname(opts.handOver, 'handOver');
    // Warm pool: no namespace given, a slot made ahead gives one (its addresses and interface).
    const pooled = driver.ownsNetns && opts.netns === undefined && handOver === undefined && driver.adopt !== undefined;
    if (pooled && (opts.ipv4 !== undefined || opts.ipv6 !== undefined || (opts.ifname ?? 'eth0') !== 'eth0'))
      throw invalid('ERR_INVALID_ARGUMENT', 'an endpoint taken from the warm pool keeps its slot\'s addresses and interface (eth0): pass netns to choose them', { option: 'netns' });
    if (driver.ownsNetns && !pooled) {
      if (opts.netns === undefined) throw invalid('ERR_INVALID_ARGUMENT', `connecting to a ${driver.name} network needs the container's netns`, { option: 'netns' });
      if (handOver !== undefined) {
        // The caller makes the namespace when it likes (Docker: when the container starts).
        if (typeof opts.netns !== 'string' || !opts.netns.startsWith('/')) throw invalid('ERR_INVALID_ARGUMENT', 'with handOver, netns must be the absolute path the namespace will have', { option: 'netns' });
        req.netns = opts.netns;
      } else {
        const ns = openNetns(opts.netns); // the namespace must exist (ERR_NETNS_NOT_FOUND)
        ns.close();
        req.netns = ns.path;
      }
    }
    if (opts.target !== undefined) req.target = opts.target;
    const ports = driver.portsFrom === 'publish' ? normalizePublish(opts.publish) : driver.portsFrom === 'ports' ? normalizeClaims(opts.ports) : [];
    const ifname = driver.connectOptions.includes('ifname') ? v.ifname(handOver ?? opts.ifname ?? 'eth0', 'ifname') : undefined;
    if (ports.length && !heldByCaller) this.askSockets(socketProtocols(ports)); // while the lock is awaited
    phase('validate');
    return this.operation(async (tx, undo) => {
      const net = this.network(tx, network);
      if (!net || net.driver !== driver.name) {
        this.drivers.delete(network);
        if (net) throw new DriverChanged();
        throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
      }
      const want = driver.resolve ? driver.resolve(recorded(tx), req) : req;
      const key = epKey(network, id);
      const existing = tx.get<EndpointRecord>(ENDPOINTS, key);
      if (existing) {
        const same = (existing.netns === want.netns || (pooled && existing.ownNetns === true)) && existing.ifname === ifname && existing.target === want.target &&
          existing.handOver === handOver && existing.name === names.name && JSON.stringify(existing.aliases) === JSON.stringify(names.aliases) &&
          (opts.ipv4 === undefined || opts.ipv4 === existing.ipv4) &&
          JSON.stringify(existing.ports.map((p) => ({ ...p, hostPort: 0 }))) === JSON.stringify(ports.map((p) => ({ ...p, hostPort: 0 })));
        if (same && (existing.container ?? id) === container) return endpointView(tx, existing);
        throw new NsnetError('ERR_ENDPOINT_EXISTS', `endpoint ${id} is connected to ${network} with other settings`, { network, endpoint: id });
      }
      const rec: EndpointRecord = {
        id, network, ...(want.netns !== undefined ? { netns: want.netns } : {}), ...(ifname !== undefined ? { ifname } : {}),
        ...(want.target !== undefined ? { target: want.target } : {}), ...(handOver !== undefined ? { handOver } : {}), ...names,
        ...(container !== id ? { container } : {}),
        ports: [],
        created: new Date().toISOString(),
      };
      if ('internal' in net && net.internal && ports.length) throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
      if (driver.portsFrom === 'publish') checkPublishFamilies(ports, network, driver.addressing?.(net as never).subnet6 !== undefined, opts.ipv6 !== false);
      if (pooled) {
        await this.realize(net);
        // The slot's addresses are the endpoint's: its ports are claimed once they are known.
        const ep = await this.pool.take(tx, net, driver, rec, undo, async (taken) => receivingView(taken, await this.claimPorts(tx, driver, taken, ports, heldByCaller)));
        if (!ep) throw invalid('ERR_INVALID_ARGUMENT', `connecting to a ${driver.name} network needs the container's netns, or a ready slot of its warm pool (prepare())`, { option: 'netns' });
        phase('pool');
        tx.put(ENDPOINTS, key, ep);
        recordClaims(tx, claimantOf(ep, driver.portsFrom), ep.ports);
        return endpointView(tx, ep);
      }
      if (driver.addressed) {
        const lease = this.ipam.allocate(tx, network, { owner: id, ...(opts.ipv4 !== undefined ? { ipv4: opts.ipv4 } : {}), ...(opts.ipv6 !== undefined ? { ipv6: opts.ipv6 } : {}) });
        const a = driver.addressing!(net as never);
        Object.assign(rec, { mac: macFromIp(lease.ipv4), ipv4: lease.ipv4, gateway: a.gateway });
        if (lease.ipv6) rec.ipv6 = lease.ipv6;
        if (lease.ipv6 && a.gateway6) rec.gateway6 = a.gateway6;
      }
      const receiving = await this.claimPorts(tx, driver, rec, ports, heldByCaller);
      driver.complete?.(net as never, rec);
      if (rec.target !== undefined) markSharing(tx);
      phase('ipam');
      faultPoint('connect:allocated');
      await this.realize(net);
      faultPoint('connect:network');
      // The driver publishes only the ports this attachment receives (another attachment of its
      // container may receive some: see lib/state/ledger.ts).
      await this.attach(driver, net, receivingView(rec, receiving), undo);
      phase('firewall');
      tx.put(ENDPOINTS, key, rec);
      recordClaims(tx, claimantOf(rec, driver.portsFrom), rec.ports);
      return endpointView(tx, rec);
    }).catch((e: unknown) => {
      // The network was made again with another driver since this process last read it.
      if (e instanceof DriverChanged) return this.connect(network, opts);
      throw e;
    });
  }

  /**
   * Checks the ports `rec` asks for against the port ledger and, unless the caller holds them
   * (hostPortsHeldByCaller), the host's bound sockets — once its addresses are known: a
   * dual-stack endpoint claims both families. Fills in `rec.ports` (free ports chosen); returns
   * the ports whose traffic this attachment receives (another attachment of its container may
   * receive some: see lib/state/ledger.ts). Records nothing.
   * @throws ERR_PORT_IN_USE, and the firewall's refusals of the ports
   */
  private async claimPorts(tx: StoreTx, driver: Driver, rec: EndpointRecord, ports: PortMapping[], heldByCaller: boolean): Promise<PortMapping[]> {
    if (!ports.length) return [];
    const sockets = heldByCaller ? undefined : await this.boundSockets(socketProtocols(ports));
    const resolved = resolvePorts(tx, claimantOf(rec, driver.portsFrom), ports, sockets);
    rec.ports = resolved.ports;
    if (driver.portsFrom === 'publish') checkWithFirewall(rec.ports, rec);
    return resolved.receiving;
  }

  /**
   * Replaces the ports a connected endpoint publishes (bridge, overlay) with `publish`: the
   * port ledger and the firewall change in one operation; `[]` unpublishes them all. For
   * callers that learn the ports after the endpoint exists (Docker's remote driver protocol
   * publishes in ProgramExternalConnectivity, after Join). The endpoint's own ports may be
   * asked for again; a port another endpoint or a host process holds is refused and nothing
   * changes. Returns the endpoint (free ports asked for with `hostPort: 0` filled in).
   * @throws ERR_ENDPOINT_NOT_FOUND, ERR_PORT_IN_USE, ERR_NETWORK_INTERNAL, ERR_INVALID_PORT,
   *   ERR_INVALID_ARGUMENT (the endpoint's driver publishes no ports)
   */
  async publish(network: string, id: string, publish: PortMapping[]): Promise<Endpoint> {
    v.networkName(network);
    v.endpointId(id);
    const ports = normalizePublish(publish);
    return this.operation(async (tx, undo) => {
      const key = epKey(network, id);
      const rec = tx.get<EndpointRecord>(ENDPOINTS, key);
      const net = this.network(tx, network);
      if (!rec || !net) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const driver = driverOf(net);
      if (driver.portsFrom !== 'publish' || !driver.republish) throw invalid('ERR_INVALID_ARGUMENT', `a ${driver.name} endpoint publishes no ports`, { driver: driver.name });
      if ('internal' in net && net.internal && ports.length) throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
      // Its own claims go first, so that it may keep a port it holds. A port it receives on
      // behalf of other attachments of its container would pass to the next one and come back
      // out of order: refused (disconnect and connect again to change those).
      const who = claimantOf(rec, driver.portsFrom);
      const { handovers } = releaseClaims(tx, who, rec.ports);
      if (handovers.length) {
        const h = handovers[0]!;
        throw invalid('ERR_INVALID_ARGUMENT', `${h.protocol} port ${h.hostPort} is shared with ${h.to}, another attachment of container ${rec.container ?? rec.id}: its ports cannot be republished`, { endpoint: id, shared: h.to });
      }
      const was = receivingPorts(tx, who, rec.ports);
      checkPublishFamilies(ports, network, driver.addressing?.(net as never).subnet6 !== undefined, rec.ipv6 !== undefined);
      const next: EndpointRecord = { ...rec, ports: [] };
      let receiving: PortMapping[] = [];
      if (ports.length) {
        ({ ports: next.ports, receiving } = resolvePorts(tx, who, ports, await this.boundSockets(socketProtocols(ports))));
        checkWithFirewall(next.ports, next);
      }
      await this.realize(net);
      await driver.republish(this.ctx, net as never, { ...rec, ports: was }, { ...next, ports: receiving }, undo);
      tx.put(ENDPOINTS, key, next);
      recordClaims(tx, who, next.ports);
      return endpointView(tx, next);
    });
  }

  /**
   * The driver's attach, retried once when it found the name the container's interface needs
   * held by a retired interface not yet deleted, or the network's kernel objects gone under this
   * long-lived host (made sure of again first).
   */
  private async attach(driver: Driver, net: NetworkRecord, rec: EndpointRecord, undo: UndoLog): Promise<void> {
    const attempt = async (): Promise<void> => {
      try {
        await driver.attach(this.ctx, net as never, rec, undo);
      } catch (e) {
        if (!(e instanceof NsnetError && e.code === 'ERR_IFNAME_IN_USE')) throw e;
        await this.reaper.now();
        await driver.attach(this.ctx, net as never, rec, undo);
      }
    };
    try {
      await attempt();
    } catch (e) {
      if (!(e instanceof NetworkGone)) throw e;
      this.ready.delete(net.name);
      this.fw.forget();
      await this.realize(net);
      await attempt();
    }
  }

  /** A listing asked for ahead (connect asks before it waits for the store's lock), by protocols. */
  private asked: { key: string; bound: Promise<BoundSocket[]>; at: number } | undefined;

  /**
   * Asks for the host's bound sockets now, for the connect about to wait for the store's lock:
   * its transaction takes this listing. Connects started together share one (32 in flight ask
   * once). The listing is a check against processes of the host, which may bind a port at any
   * moment anyway: one taken up to a second before the transaction is as good as any.
   */
  private askSockets(protocols: ('tcp' | 'udp')[]): void {
    const key = protocols.join();
    if (this.asked?.key === key && Date.now() - this.asked.at < 20) return;
    this.sockets ??= Sockets.open(this.netns);
    const bound = this.sockets.then((s) => s.bound(protocols));
    bound.catch(() => undefined); // seen by the transaction that takes it
    this.asked = { key, bound, at: Date.now() };
  }

  /** The host namespace's listening TCP and bound UDP sockets (sock_diag). */
  private async boundSockets(protocols: ('tcp' | 'udp')[]): Promise<BoundSocket[]> {
    const asked = this.asked?.key === protocols.join() && Date.now() - this.asked.at < 1000 ? this.asked : undefined;
    this.sockets ??= Sockets.open(this.netns);
    const bound = await (asked ? asked.bound : (await this.sockets).bound(protocols));
    phase('ports: sock_diag');
    return bound;
  }

  /**
   * Disconnects a container from a network: what connect made is undone (published ports,
   * veth pair or macvlan child, addresses, port claims). A `none` endpoint's loopback stays up.
   * (An endpoint whose network record is gone is forgotten; gc() removes what it left.)
   * @throws ERR_ENDPOINT_NOT_FOUND; ERR_ENDPOINT_IN_USE when it is the last attachment of a
   *   namespace that container-mode endpoints share (disconnect those first)
   */
  async disconnect(network: string, id: string): Promise<void> {
    v.networkName(network);
    v.endpointId(id);
    await this.operation(async (tx, undo) => {
      const key = epKey(network, id);
      const rec = tx.get<EndpointRecord>(ENDPOINTS, key);
      if (!rec) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const net = this.network(tx, network);
      const driver = net && driverOf(net);
      if (driver?.ownsNetns) assertNotShared(tx, network, id);
      // Ports it received that another attachment of its container also publishes go to that
      // one (re-pointed first, so they are never unpublished); the driver removes the rest.
      const { detach: held, handovers } = releaseClaims(tx, claimantOf(rec, driver?.portsFrom), rec.ports);
      if (net && driver) {
        const handBack = await handPortsOver(this.firewall, tx, rec, handovers);
        // (Undone after the detach's own steps: the interface is back when the ports and routes return.)
        if (handBack) undo(handBack);
        try {
          await driver.detach(this.ctx, net as never, { ...rec, ports: held }, undo);
        } catch (e) {
          await handBack?.().catch(() => undefined);
          throw e;
        }
      }
      // A namespace nsnet made (a warm-pool slot's) goes too; nothing can bring it back.
      if (rec.ownNetns && rec.netns !== undefined) await removeSlotNetns(rec.netns);
      faultPoint('disconnect:detached');
      if (rec.ipv4 !== undefined) this.ipam.release(tx, network, id);
      tx.delete(ENDPOINTS, key);
    });
  }

  /**
   * Deletes the veths of disconnected endpoints now (disconnect retires them at once and deletes
   * them in batches shortly after; close(), removeNetwork() and gc() wait for it).
   */
  async reap(): Promise<void> {
    await this.reaper.now();
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
    await this.reaper.now();
    return this.store.update((tx) => this.maintenance.gc(tx));
  }

  /**
   * Makes the kernel match the store: nsnet's firewall tables, bridges and their elements,
   * veths and macvlan children of live endpoints and their published ports. It also finishes
   * undoing what a process killed in the middle of disconnect or removeNetwork left (a veth
   * retired but still recorded, a network whose elements are gone): the record is the truth.
   * (A macvlan network whose parent is gone is skipped: nsnet never makes a parent.)
   */
  async reconcile(): Promise<ReconcileReport> {
    return this.store.update((tx) => this.maintenance.heal(tx));
  }

  /**
   * Closes the store and handles; overlay mode: stops the agent and closes the control plane
   * (this host's blocks are kept until its lease expires: its containers still use them).
   */
  async close(): Promise<void> {
    for (const r of [...this.resolvers]) await r.close().catch(() => undefined);
    await this.overlay?.close().catch(() => undefined);
    await this.reaper.now().catch(() => undefined);
    this.host.close();
    if (this.sockets) (await this.sockets.catch(() => undefined))?.close();
    await this.firewall.close();
    await this.store.close();
  }
}

/** A ConnectOptions.container: what an endpoint id may be. */
function containerId(value: unknown): string {
  try {
    return v.endpointId(value);
  } catch {
    throw invalid('ERR_INVALID_NAME', `container ${JSON.stringify(value)} must be 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit`, { option: 'container', value });
  }
}
