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
import type { DriverContext, DriverFirewall, InUse, NetworkOption, UndoLog } from './drivers/driver';
import { driverFirewall } from './drivers/driver';
import type {
  ConnectOptions,
  Endpoint,
  GcReport,
  Network,
  NetworkHostOptions,
  NetworkInspect,
  NetworkRecord,
  NetworkSpec,
  PlainNetworkRecord,
  PortMapping,
  ReconcileReport,
} from './host-types';
import { DEFAULT_NETWORK_SPEC, driverOf, drivers, findDriver } from './drivers/registry';
import { faultPoint } from './faults';
import { Firewall } from './firewall/firewall';
import { Ipam } from './ipam/index';
import { checkNetworkDns } from './dns/names';
// The resolver (and dns-packet) is loaded by runDns() when asked for: a CNI plugin process or a
// CLI command opens a host and never serves DNS, and should not pay for loading it.
import type { DnsResolver, InternalDnsOptions } from './dns/resolver';
import type { DnsOptions } from './dns/types';
import { Attachments } from './attachments';
import { Maintenance } from './maintenance';
import { isSlot, slotNetnsPrefix, WarmPool } from './pool';
import { Netlink } from './netlink/netlink';
import { Netns, type NetnsSpec } from './netns';
import type { OverlayAgent } from './overlay/agent';
import { OverlayMembership } from './overlay/membership';
import { NETWORKS } from './state/collections';
import { emitWarning, endpointsOn, isRecorded, readNetworks, type WarningHandler } from './state/damage';
import { endpointsOf, markSharing, sharingUnmarked } from './state/views';
import { FileStore } from './store/filestore';
import type { Store, StoreTx, StoreView } from './store/index';
import * as v from './validate';

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
  private readonly reaper: VethReaper;
  private readonly fw: DriverFirewall;
  private readonly ctx: DriverContext;
  private readonly maintenance: Maintenance;
  private readonly pool: WarmPool;
  private readonly attachments: Attachments;

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
      host,
      firewall: this.fw,
      overlay,
      reaper: { soon: () => this.reaper.soon(), now: () => this.reaper.now() },
      sysctl: async (key, value) => {
        await Netns.sysctl(netns, key, value);
      },
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
    this.attachments = new Attachments(this.ctx, firewall, this.ipam, this.pool, netns, {
      operation: (fn) => this.operation(fn),
      readNetwork: (name) => this.store.read((view) => this.network(view, name)),
      realize: (net) => this.realize(net),
      forgetNetwork: (name) => {
        this.ready.delete(name);
        this.fw.forget();
      },
    });
  }

  /** Opens the state store and handles in the host namespace. */
  static async open(opts: NetworkHostOptions = {}): Promise<NetworkHost> {
    v.knownKeys(opts, ['stateDir', 'netns', 'controlPlane', 'hostId', 'underlay', 'reconcileInterval', 'onWarning'], 'NetworkHost.open options');
    if (opts.onWarning !== undefined && typeof opts.onWarning !== 'function')
      throw invalid('ERR_INVALID_ARGUMENT', 'onWarning must be a function', { option: 'onWarning' });
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
        const recorded = (): Promise<{ network: string; subnet: string }[]> =>
          store.read((view) => readNetworks(view, warn).flatMap((n) => driverOf(n).agentServes?.(n as never) ?? []));
        overlay = await OverlayMembership.open(
          {
            controlPlane: opts.controlPlane,
            ...(opts.hostId !== undefined ? { hostId: opts.hostId } : {}),
            ...(opts.underlay !== undefined ? { underlay: opts.underlay } : {}),
            ...(opts.reconcileInterval !== undefined ? { reconcileInterval: opts.reconcileInterval } : {}),
          },
          host,
          opts.netns,
          recorded,
        );
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
    const { runDns } = await import('./dns/resolver');
    const r = await runDns({
      ...opts,
      stateDir: this.stateDir,
      ...(this.netns !== undefined ? { netns: this.netns } : {}),
      store: this.store,
    } as InternalDnsOptions);
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
    if (!this.overlay)
      throw new NsnetError('ERR_NO_CONTROL_PLANE', 'overlay networks need a control plane: open the NetworkHost with { controlPlane, hostId, underlay }');
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
      const kinds = drivers
        .filter((d) => d.define)
        .map((d) => d.name)
        .join(', ');
      const hint = driver?.predefined ? ` (${driver.name} is a predefined network: connect to it)` : '';
      throw invalid('ERR_INVALID_ARGUMENT', `driver ${JSON.stringify(spec.driver)} is not one of ${kinds}${hint}`, { driver: spec.driver });
    }
    for (const k of NETWORK_OPTIONS)
      if (spec[k] !== undefined && !driver.networkOptions.includes(k))
        throw invalid('ERR_INVALID_ARGUMENT', `${k} does not apply to a ${driver.name} network`, { option: k });
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
      if (name === DEFAULT_NETWORK || (net && driverOf(net).predefined))
        throw new NsnetError('ERR_INVALID_ARGUMENT', `the predefined network ${name} cannot be removed`, { network: name });
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      const all = endpointsOn(tx, name);
      const eps = all.filter((e) => !isSlot(e.id));
      if (eps.length)
        throw new NsnetError(
          'ERR_NETWORK_IN_USE',
          `network ${name} has ${eps.length} endpoint(s): ${eps
            .slice(0, 5)
            .map((e) => e.id)
            .join(', ')}`,
          { network: name },
        );
      // The warm pool's slots go with it (their namespaces were nsnet's).
      if (all.length)
        await this.pool.drain(
          tx,
          net,
          driverOf(net),
          all.filter((e) => isSlot(e.id)),
        );
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
      if (!driver.adopt)
        throw invalid('ERR_INVALID_ARGUMENT', `a ${driver.name} network has no warm pool (bridge networks have)`, { network, driver: driver.name });
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
    return this.attachments.connect(network, opts);
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
    return this.attachments.publish(network, id, publish);
  }

  /**
   * Disconnects a container from a network: what connect made is undone (published ports,
   * veth pair or macvlan child, addresses, port claims). A `none` endpoint's loopback stays up.
   * (An endpoint whose network record is gone is forgotten; gc() removes what it left.)
   * @throws ERR_ENDPOINT_NOT_FOUND; ERR_ENDPOINT_IN_USE when it is the last attachment of a
   *   namespace that container-mode endpoints share (disconnect those first)
   */
  async disconnect(network: string, id: string): Promise<void> {
    await this.attachments.disconnect(network, id);
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
    await this.attachments.close();
    await this.firewall.close();
    await this.store.close();
  }
}
