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
import { attachEndpoint, createBridge, detachEndpoint, hostIfname, parseOwnerAlias, reapRetired, removeBridge, retireEndpoint } from './drivers/bridge';
import type { DriverContext, EndpointRecord, NetworkRecord, PortMapping } from './drivers/driver';
import { faultPoint } from './faults';
import { Firewall } from './firewall/firewall';
import type {
  ConnectOptions, Endpoint, GcReport, Network, NetworkInspect, NetworkSpec, ReconcileReport,
} from './host-types';
import { Ipam, macFromIp, normalizeNetwork } from './ipam/index';
import { Netlink } from './netlink/netlink';
import { Sockets, type BoundSocket } from './netlink/sockets';
import { Netns, openNetns, type NetnsSpec } from './netns';
import { FileStore } from './store/filestore';
import type { Store, StoreTx, StoreView } from './store/index';
import * as v from './validate';

export interface NetworkHostOptions {
  /** Where the state lives (default /var/lib/nsnet). */
  stateDir?: string;
  /** The host namespace (default: the caller's). */
  netns?: NetnsSpec;
}

/** The default network: exists without being created (like Docker's `bridge`). */
export const DEFAULT_NETWORK = 'bridge';
const DEFAULT_BRIDGE = 'nsnet0';

const NETWORKS = 'networks';
const ENDPOINTS = 'endpoints';
/** The host-wide port ledger: one document per protocol and host port, naming its holders. */
const PORTS = 'ports';

interface PortClaim {
  hostIp?: string;
  /** `network/endpoint`. */
  holder: string;
}

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

const epKey = (network: string, id: string): string => `${network}/${id}`;

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

/** Host ports a mapping covers. */
function span(p: PortMapping): [number, number] {
  return [p.hostPort, p.hostPortEnd ?? p.hostPort];
}

/** Two mappings claim the same host port (same protocol, overlapping addresses and ports). */
function clash(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol) return false;
  if (a.hostIp !== undefined && b.hostIp !== undefined && a.hostIp !== b.hostIp) return false;
  const [a0, a1] = span(a);
  const [b0, b1] = span(b);
  return a0 <= b1 && b0 <= a1;
}

function toEndpoint(r: EndpointRecord, net: NetworkRecord): Endpoint {
  const out: Endpoint = {
    id: r.id, network: r.network, ifname: r.ifname, mac: r.mac, ipv4: `${r.ipv4}/${net.subnet.split('/')[1]}`,
    gateway: r.gateway, ports: r.ports, hostIfname: r.hostIfname,
  };
  if (r.ipv6 && net.subnet6) out.ipv6 = `${r.ipv6}/${net.subnet6.split('/')[1]}`;
  if (r.gateway6) out.gateway6 = r.gateway6;
  return out;
}

/** The host side of container networking: networks, endpoints, gc and reconcile. */
export class NetworkHost {
  private readonly ipam = new Ipam();
  private firewallReady = false;
  /** Networks whose kernel objects this process has made sure of. */
  private readonly ready = new Set<string>();
  private sockets: Promise<Sockets> | undefined;

  private constructor(
    /** Where the state lives. */
    readonly stateDir: string,
    private readonly store: Store,
    private readonly host: Netlink,
    private readonly firewall: Firewall,
    private readonly netns: NetnsSpec | undefined,
  ) {}

  /** Opens the state store and handles in the host namespace. */
  static async open(opts: NetworkHostOptions = {}): Promise<NetworkHost> {
    v.knownKeys(opts, ['stateDir', 'netns'], 'NetworkHost.open options');
    const stateDir = opts.stateDir ?? '/var/lib/nsnet';
    const store = await FileStore.open({ dir: stateDir });
    let host: Netlink | undefined;
    try {
      host = await Netlink.open(opts.netns === undefined ? {} : { netns: opts.netns });
      const firewall = await Firewall.open(opts.netns === undefined ? {} : { netns: opts.netns });
      const nh = new NetworkHost(stateDir, store, host, firewall, opts.netns);
      // The default network is recorded on first open; its bridge is made at first connect.
      await store.update((tx) => {
        if (tx.get(NETWORKS, DEFAULT_NETWORK)) return;
        const rec = nh.defaultRecord(tx);
        nh.ipam.createPool(tx, rec.name, { subnet: rec.subnet, gateway: rec.gateway });
        tx.put(NETWORKS, rec.name, rec);
      });
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

  private async ensureFirewall(): Promise<void> {
    if (this.firewallReady) return;
    await this.firewall.ensure();
    this.firewallReady = true;
  }

  /** The record of a network. */
  private network(view: StoreView, name: string): NetworkRecord | undefined {
    return view.get<NetworkRecord>(NETWORKS, name);
  }

  private defaultRecord(view: StoreView): NetworkRecord {
    const used = this.ipam.subnets(view);
    const plan = normalizeNetwork({ subnet: used.includes('172.17.0.0/16') ? undefined : '172.17.0.0/16' }, used);
    return this.record({ name: DEFAULT_NETWORK, bridge: DEFAULT_BRIDGE }, plan);
  }

  private record(spec: NetworkSpec, plan: { subnet: string; gateway: string; ipRange?: string; subnet6?: string; gateway6?: string }): NetworkRecord {
    const r: NetworkRecord = {
      name: spec.name,
      driver: 'bridge',
      bridge: spec.bridge ?? `nsbr-${createHash('sha256').update(spec.name).digest('hex').slice(0, 10)}`,
      subnet: plan.subnet,
      gateway: plan.gateway,
      mtu: spec.mtu === undefined ? 1500 : v.mtu(spec.mtu),
      icc: spec.icc === undefined ? true : v.bool(spec.icc, 'icc'),
      internal: spec.internal === undefined ? false : v.bool(spec.internal, 'internal'),
      ipMasquerade: spec.ipMasquerade === undefined ? true : v.bool(spec.ipMasquerade, 'ipMasquerade'),
      labels: { ...(spec.labels ?? {}) },
      created: new Date().toISOString(),
    };
    if (plan.ipRange) r.ipRange = plan.ipRange;
    if (plan.subnet6) r.subnet6 = plan.subnet6;
    if (plan.gateway6) r.gateway6 = plan.gateway6;
    return r;
  }

  /** Creates the network's kernel objects (bridge, sysctls, firewall elements) unless done. */
  private async realize(net: NetworkRecord): Promise<void> {
    if (this.ready.has(net.name)) return;
    await this.ensureFirewall();
    await createBridge(this.ctx, net);
    for (const [key, value] of Object.entries(Firewall.sysctls(net))) await Netns.sysctl(this.netns, key, value);
    await this.firewall.addNetwork(net);
    this.ready.add(net.name);
  }

  /**
   * Creates a network: its record, address pool, bridge and firewall elements.
   * @throws ERR_INVALID_NAME, ERR_NETWORK_EXISTS, ERR_SUBNET_OVERLAP, ERR_INVALID_CIDR, ERR_NO_FREE_SUBNET
   */
  async createNetwork(spec: NetworkSpec): Promise<Network> {
    v.knownKeys(spec, ['name', 'driver', 'bridge', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6', 'mtu', 'icc', 'internal', 'ipMasquerade', 'labels'], 'network');
    const name = networkName(spec.name);
    if ((spec.driver ?? 'bridge') !== 'bridge') throw invalid('ERR_INVALID_ARGUMENT', `driver ${JSON.stringify(spec.driver)} is not available (bridge)`);
    if (spec.bridge !== undefined) v.ifname(spec.bridge, 'bridge name');
    return this.store.update(async (tx) => {
      if (this.network(tx, name)) throw new NsnetError('ERR_NETWORK_EXISTS', `network ${name} exists`, { network: name });
      const bridges = tx.list<NetworkRecord>(NETWORKS).map((n) => n.value.bridge);
      if (spec.bridge && bridges.includes(spec.bridge)) throw new NsnetError('ERR_NAME_IN_USE', `bridge ${spec.bridge} belongs to another network`, { bridge: spec.bridge });
      const plan = normalizeNetwork({ subnet: spec.subnet, gateway: spec.gateway, ipRange: spec.ipRange, subnet6: spec.subnet6, gateway6: spec.gateway6 }, this.ipam.subnets(tx));
      const rec = this.record({ ...spec, name }, plan);
      this.ipam.createPool(tx, name, plan);
      tx.put(NETWORKS, name, rec);
      try {
        await this.realize(rec);
      } catch (e) {
        await this.unrealize(rec).catch(() => undefined);
        throw e;
      }
      return { ...rec };
    });
  }

  private async unrealize(net: NetworkRecord): Promise<void> {
    this.ready.delete(net.name);
    await this.firewall.removeNetwork(net.name);
    await removeBridge(this.ctx, net);
  }

  /**
   * Removes a network (not while endpoints are connected).
   * @throws ERR_NETWORK_NOT_FOUND, ERR_NETWORK_IN_USE
   */
  async removeNetwork(name: string): Promise<void> {
    networkName(name);
    await this.reap();
    await this.store.update(async (tx) => {
      if (name === DEFAULT_NETWORK) throw new NsnetError('ERR_INVALID_ARGUMENT', `the default network ${name} cannot be removed`, { network: name });
      const net = this.network(tx, name);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      const eps = tx.list<EndpointRecord>(ENDPOINTS).filter((e) => e.value.network === name);
      if (eps.length) throw new NsnetError('ERR_NETWORK_IN_USE', `network ${name} has ${eps.length} endpoint(s): ${eps.slice(0, 5).map((e) => e.value.id).join(', ')}`, { network: name });
      await this.unrealize(net);
      this.ipam.deletePool(tx, name);
      tx.delete(NETWORKS, name);
    });
  }

  /** Every network, the default one included. */
  async listNetworks(): Promise<Network[]> {
    return this.store.read((view) => view.list<NetworkRecord>(NETWORKS).map((n) => ({ ...n.value })));
  }

  /** A network with its endpoints and the host state it depends on. */
  async inspectNetwork(name: string): Promise<NetworkInspect> {
    networkName(name);
    const { net, eps } = await this.store.read((view) => {
      const net = this.network(view, name);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${name} does not exist`, { network: name });
      return { net, eps: view.list<EndpointRecord>(ENDPOINTS).filter((e) => e.value.network === name).map((e) => e.value) };
    });
    const bridge = await this.host.links.find(net.bridge);
    const ipForward = (await Netns.sysctl(this.netns, 'net.ipv4.ip_forward')) === '1';
    return { ...net, endpoints: eps.map((e) => toEndpoint(e, net)), ipForward, bridgeUp: bridge?.up === true };
  }

  /** Endpoints of one network, or of all. */
  async listEndpoints(network?: string): Promise<Endpoint[]> {
    if (network !== undefined) networkName(network);
    return this.store.read((view) => {
      const nets = new Map(view.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
      return view.list<EndpointRecord>(ENDPOINTS)
        .map((e) => e.value)
        .filter((e) => network === undefined || e.network === network)
        .map((e) => toEndpoint(e, nets.get(e.network)!));
    });
  }

  /**
   * Connects a container: veth pair, addresses, routes, published ports. Connecting an endpoint
   * that exists with the same arguments returns it unchanged; with other arguments it is refused.
   * @throws ERR_NETWORK_NOT_FOUND, ERR_ENDPOINT_EXISTS, ERR_NETNS_NOT_FOUND, ERR_ADDRESS_IN_USE,
   *   ERR_ADDRESS_OUTSIDE_SUBNET, ERR_SUBNET_FULL, ERR_PORT_IN_USE, ERR_NETWORK_INTERNAL
   */
  async connect(network: string, opts: ConnectOptions): Promise<Endpoint> {
    networkName(network);
    v.knownKeys(opts, ['id', 'netns', 'ifname', 'ipv4', 'ipv6', 'publish'], 'connect options');
    const id = endpointId(opts.id);
    const ifname = v.ifname(opts.ifname ?? 'eth0', 'ifname');
    const ports = normalizePorts(opts.publish);
    const ns = openNetns(opts.netns); // the namespace must exist (ERR_NETNS_NOT_FOUND)
    ns.close();
    const netnsPath = ns.path;
    return this.store.update(async (tx) => {
      const net = this.network(tx, network);
      if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
      if (net.internal && ports.length) throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
      const existing = tx.get<EndpointRecord>(ENDPOINTS, epKey(network, id));
      if (existing) {
        const same = existing.netns === netnsPath && existing.ifname === ifname && (opts.ipv4 === undefined || opts.ipv4 === existing.ipv4) &&
          JSON.stringify(existing.ports.map((p) => ({ ...p, hostPort: 0 }))) === JSON.stringify(ports.map((p) => ({ ...p, hostPort: 0 })));
        if (same) return toEndpoint(existing, net);
        throw new NsnetError('ERR_ENDPOINT_EXISTS', `endpoint ${id} is connected to ${network} with other settings`, { network, endpoint: id });
      }
      const resolved = this.resolvePorts(tx, ports, ports.length ? await this.boundSockets([...new Set(ports.map((p) => p.protocol))]) : []);
      const lease = this.ipam.allocate(tx, network, { owner: id, ...(opts.ipv4 !== undefined ? { ipv4: opts.ipv4 } : {}), ...(opts.ipv6 !== undefined ? { ipv6: opts.ipv6 } : {}) });
      const rec: EndpointRecord = {
        id, network, netns: netnsPath, ifname, hostIfname: hostIfname(network, id), mac: macFromIp(lease.ipv4),
        ipv4: lease.ipv4, gateway: net.gateway, ports: resolved, created: new Date().toISOString(),
      };
      if (lease.ipv6) rec.ipv6 = lease.ipv6;
      if (lease.ipv6 && net.gateway6) rec.gateway6 = net.gateway6;
      faultPoint('connect:allocated');
      await this.realize(net);
      faultPoint('connect:network');
      try {
        await attachEndpoint(this.ctx, net, rec, netnsPath);
      } catch (e) {
        // The container's previous interface of that name may be retired but not yet deleted.
        if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
        await this.reap();
        await attachEndpoint(this.ctx, net, rec, netnsPath);
      }
      faultPoint('connect:attached');
      try {
        await this.firewall.connectEndpoint({ ...rec, bridge: net.bridge });
      } catch (e) {
        await detachEndpoint(this.ctx, rec).catch(() => undefined);
        throw e;
      }
      faultPoint('connect:published');
      tx.put(ENDPOINTS, epKey(network, id), rec);
      this.ledger(tx, rec);
      return toEndpoint(rec, net);
    });
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
          if (c.hostIp === undefined || p.hostIp === undefined || c.hostIp === p.hostIp) return `endpoint ${c.holder.slice(c.holder.indexOf('/') + 1)}`;
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
    const holder = epKey(rec.network, rec.id);
    for (const p of rec.ports) {
      const [lo, hi] = span(p);
      for (let port = lo; port <= hi; port++) {
        const key = `${p.protocol}:${port}`;
        const claims = (tx.get<PortClaim[]>(PORTS, key) ?? []).filter((c) => c.holder !== holder);
        if (!release) claims.push({ holder, ...(p.hostIp ? { hostIp: p.hostIp } : {}) });
        if (claims.length) tx.put(PORTS, key, claims);
        else tx.delete(PORTS, key);
      }
    }
  }

  /**
   * Disconnects a container: its published ports, its veth pair, its addresses.
   * @throws ERR_ENDPOINT_NOT_FOUND
   */
  async disconnect(network: string, id: string): Promise<void> {
    networkName(network);
    endpointId(id);
    await this.store.update(async (tx) => {
      const rec = tx.get<EndpointRecord>(ENDPOINTS, epKey(network, id));
      if (!rec) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const net = this.network(tx, network);
      await this.firewall.disconnectEndpoint({ ...rec, bridge: net?.bridge ?? '' });
      // Retired now (down, off the bridge), deleted with others in one go a moment later.
      await retireEndpoint(this.ctx, rec);
      this.ipam.release(tx, network, id);
      this.ledger(tx, rec, true);
      tx.delete(ENDPOINTS, epKey(network, id));
    });
    this.scheduleReap();
  }

  private reapTimer: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;

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
    this.reaping ??= reapRetired(this.ctx).finally(() => { this.reaping = undefined; });
    await this.reaping;
  }

  /**
   * Removes what no record explains: endpoints whose namespace is gone, links marked as nsnet's
   * without a record, firewall elements of unknown owners.
   */
  async gc(): Promise<GcReport> {
    await this.reap();
    return this.store.update(async (tx) => {
      const report: GcReport = { endpoints: [], links: [], firewallOwners: [] };
      await this.ensureFirewall();
      for (const { value: ep } of tx.list<EndpointRecord>(ENDPOINTS)) {
        try {
          openNetns(ep.netns).close();
          continue;
        } catch (e) {
          if (!(e instanceof NsnetError) || e.code !== 'ERR_NETNS_NOT_FOUND') throw e;
        }
        await this.firewall.disconnectEndpoint(ep.id);
        await detachEndpoint(this.ctx, ep);
        this.ipam.release(tx, ep.network, ep.id);
        this.ledger(tx, ep, true);
        tx.delete(ENDPOINTS, epKey(ep.network, ep.id));
        report.endpoints.push(`${ep.network}/${ep.id}`);
      }
      const nets = new Map(tx.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
      const eps = new Set(tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.key));
      for (const link of await this.host.links.list()) {
        const owner = parseOwnerAlias(link.alias);
        if (!owner) continue;
        const known = owner.endpoint === undefined ? nets.get(owner.network)?.bridge === link.name : eps.has(epKey(owner.network, owner.endpoint));
        if (known) continue;
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
      return report;
    });
  }

  /** Makes the kernel match the store: bridges, veths of live endpoints, the firewall. */
  async reconcile(): Promise<ReconcileReport> {
    return this.store.update(async (tx) => {
      const report: ReconcileReport = { networks: [], endpoints: [], firewallRebuilt: false };
      const nets = tx.list<NetworkRecord>(NETWORKS).map((n) => n.value);
      const eps = tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.value);
      this.ready.clear();
      this.firewallReady = false;
      if (!(await this.firewall.isIntact())) {
        await this.firewall.rebuild({
          networks: nets,
          endpoints: eps.flatMap((e) => { const n = nets.find((x) => x.name === e.network); return n ? [{ ...e, bridge: n.bridge }] : []; }),
        });
        report.firewallRebuilt = true;
      }
      this.firewallReady = true;
      for (const net of nets) {
        const bridge = await this.host.links.find(net.bridge);
        if (!bridge || !bridge.up) report.networks.push(net.name);
        await this.realize(net);
      }
      for (const ep of eps) {
        const net = nets.find((n) => n.name === ep.network);
        if (!net) continue;
        if (await this.host.links.find(ep.hostIfname)) continue;
        try {
          openNetns(ep.netns).close();
        } catch {
          continue; // its namespace is gone: gc() removes it
        }
        await attachEndpoint(this.ctx, net, ep, ep.netns);
        await this.firewall.connectEndpoint({ ...ep, bridge: net.bridge });
        report.endpoints.push(`${ep.network}/${ep.id}`);
      }
      return report;
    });
  }

  /** Closes the store and handles. */
  async close(): Promise<void> {
    await this.reap().catch(() => undefined);
    this.host.close();
    if (this.sockets) (await this.sockets.catch(() => undefined))?.close();
    await this.firewall.close();
    await this.store.close();
  }
}

