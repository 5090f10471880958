/**
 * Endpoints of the façade: connect, publish and disconnect, for every driver. Each is one
 * operation of the façade (a store transaction whose kernel steps are undone if it fails): the
 * options are checked against the network's driver, IPAM gives the addresses, the port ledger
 * the ports (lib/state/ledger.ts), the driver makes the kernel objects, and the record is
 * committed. NetworkHost (lib/host.ts) documents them and calls them; this file is theirs alone.
 */
import { NsnetError, invalid } from './errors';
import type { Attachment, Driver, DriverContext, UndoLog } from './drivers/driver';
import { NetworkGone } from './drivers/driver';
import { driverOf } from './drivers/registry';
import { checkEndpointNames } from './dns/names';
import { faultPoint } from './faults';
import type { Firewall } from './firewall/firewall';
import type { ConnectOptions, Endpoint, EndpointRecord, NetworkRecord, PortMapping } from './host-types';
import { type Ipam, macFromIp } from './ipam/index';
import { Sockets, type BoundSocket } from './netlink/sockets';
import { openNetns, type NetnsSpec } from './netns';
import { phase } from './phases';
import { removeSlotNetns, type WarmPool } from './pool';
import { ENDPOINTS, NETWORKS, epKey } from './state/collections';
import { handOver as handPortsOver } from './state/handover';
import { claimantOf, receivingPorts, recordClaims, releaseClaims, resolvePorts } from './state/ledger';
import { checkPublishFamilies, checkWithFirewall, normalizeClaims, normalizePublish, socketProtocols } from './state/publish';
import { assertNotShared, endpointView, markSharing, recorded } from './state/views';
import type { StoreTx } from './store/index';
import * as v from './validate';

/** Thrown inside connect's transaction when the network's driver is not the one its options were checked for. */
class DriverChanged extends Error {}

/** Connect options that each driver takes or refuses. */
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

/** What the endpoint operations need of the façade. */
export interface Operations {
  /** One operation: a store transaction whose kernel steps register their compensations with `undo`. */
  operation<T>(fn: (tx: StoreTx, undo: UndoLog) => Promise<T>): Promise<T>;
  /** A network's record as the store has it now (a read, no lock held after it). */
  readNetwork(name: string): Promise<NetworkRecord | undefined>;
  /** Makes sure of a network's kernel objects, once per process (per record). */
  realize(net: NetworkRecord): Promise<void>;
  /** Forgets a network (and the firewall) as made sure of: its kernel objects went away under this host. */
  forgetNetwork(name: string): void;
}

export class Attachments {
  /** Each network's driver as this process last read it (connect validates its options before its transaction). */
  private readonly drivers = new Map<string, Driver>();
  private sockets: Promise<Sockets> | undefined;

  constructor(
    private readonly ctx: DriverContext,
    private readonly firewall: Firewall,
    private readonly ipam: Ipam,
    private readonly pool: WarmPool,
    private readonly netns: NetnsSpec | undefined,
    private readonly facade: Operations,
  ) {}

  /** NetworkHost.connect(). */
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
      const known = await this.facade.readNetwork(network);
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
    if (opts.handOver !== undefined && opts.ifname !== undefined)
      throw invalid('ERR_INVALID_ARGUMENT', 'ifname does not apply with handOver: the caller names the interface when it moves it', { option: 'ifname' });
    const handOver = opts.handOver === undefined ? undefined : v.ifname(opts.handOver, 'handOver');
    // Warm pool: no namespace given, a slot made ahead gives one (its addresses and interface).
    const pooled = driver.ownsNetns && opts.netns === undefined && handOver === undefined && driver.adopt !== undefined;
    if (pooled && (opts.ipv4 !== undefined || opts.ipv6 !== undefined || (opts.ifname ?? 'eth0') !== 'eth0'))
      throw invalid('ERR_INVALID_ARGUMENT', "an endpoint taken from the warm pool keeps its slot's addresses and interface (eth0): pass netns to choose them", {
        option: 'netns',
      });
    if (driver.ownsNetns && !pooled) {
      if (opts.netns === undefined)
        throw invalid('ERR_INVALID_ARGUMENT', `connecting to a ${driver.name} network needs the container's netns`, { option: 'netns' });
      if (handOver !== undefined) {
        // The caller makes the namespace when it likes (Docker: when the container starts).
        if (typeof opts.netns !== 'string' || !opts.netns.startsWith('/'))
          throw invalid('ERR_INVALID_ARGUMENT', 'with handOver, netns must be the absolute path the namespace will have', { option: 'netns' });
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
    return this.facade
      .operation(async (tx, undo) => {
        const net = tx.get<NetworkRecord>(NETWORKS, network);
        if (!net || net.driver !== driver.name) {
          this.drivers.delete(network);
          if (net) throw new DriverChanged();
          throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${network} does not exist`, { network });
        }
        const want = driver.resolve ? driver.resolve(recorded(tx), req) : req;
        const key = epKey(network, id);
        const existing = tx.get<EndpointRecord>(ENDPOINTS, key);
        if (existing) {
          const same =
            (existing.netns === want.netns || (pooled && existing.ownNetns === true)) &&
            existing.ifname === ifname &&
            existing.target === want.target &&
            existing.handOver === handOver &&
            existing.name === names.name &&
            JSON.stringify(existing.aliases) === JSON.stringify(names.aliases) &&
            (opts.ipv4 === undefined || opts.ipv4 === existing.ipv4) &&
            JSON.stringify(existing.ports.map((p) => ({ ...p, hostPort: 0 }))) === JSON.stringify(ports.map((p) => ({ ...p, hostPort: 0 })));
          if (same && (existing.container ?? id) === container) return endpointView(tx, existing);
          throw new NsnetError('ERR_ENDPOINT_EXISTS', `endpoint ${id} is connected to ${network} with other settings`, { network, endpoint: id });
        }
        const rec: EndpointRecord = {
          id,
          network,
          ...(want.netns !== undefined ? { netns: want.netns } : {}),
          ...(ifname !== undefined ? { ifname } : {}),
          ...(want.target !== undefined ? { target: want.target } : {}),
          ...(handOver !== undefined ? { handOver } : {}),
          ...names,
          ...(container !== id ? { container } : {}),
          ports: [],
          created: new Date().toISOString(),
        };
        if ('internal' in net && net.internal && ports.length)
          throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
        if (driver.portsFrom === 'publish') checkPublishFamilies(ports, network, driver.addressing?.(net as never).subnet6 !== undefined, opts.ipv6 !== false);
        if (pooled) {
          await this.facade.realize(net);
          // The slot's addresses are the endpoint's: its ports are claimed once they are known.
          let asTaken = '';
          const ep = await this.pool.take(
            tx,
            net,
            driver,
            rec,
            undo,
            async (taken) => receivingView(taken, await this.claimPorts(tx, driver, taken, ports, heldByCaller)),
            (taken) => {
              // Final: durable while the slot is adopted (see below).
              tx.put(ENDPOINTS, key, taken);
              recordClaims(tx, claimantOf(taken, driver.portsFrom), taken.ports);
              asTaken = JSON.stringify(taken);
              tx.commitAhead?.();
            },
          );
          if (!ep)
            throw invalid(
              'ERR_INVALID_ARGUMENT',
              `connecting to a ${driver.name} network needs the container's netns, or a ready slot of its warm pool (prepare())`,
              { option: 'netns' },
            );
          phase('pool');
          if (JSON.stringify(ep) !== asTaken) tx.put(ENDPOINTS, key, ep);
          return endpointView(tx, ep);
        }
        if (driver.addressed) {
          const lease = this.ipam.allocate(tx, network, {
            owner: id,
            ...(opts.ipv4 !== undefined ? { ipv4: opts.ipv4 } : {}),
            ...(opts.ipv6 !== undefined ? { ipv6: opts.ipv6 } : {}),
          });
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
        await this.facade.realize(net);
        faultPoint('connect:network');
        // The record is final here: the store makes it durable while the kernel work goes on
        // (one fdatasync off the path; a failure below commits the record's removal). A crash
        // from here on leaves the record with its kernel objects half made, or the objects
        // without the record: gc() completes the one and removes the other.
        tx.put(ENDPOINTS, key, rec);
        recordClaims(tx, claimantOf(rec, driver.portsFrom), rec.ports);
        const asRecorded = JSON.stringify(rec);
        tx.commitAhead?.();
        // The driver publishes only the ports this attachment receives (another attachment of its
        // container may receive some: see lib/state/ledger.ts).
        await this.attach(driver, net, receivingView(rec, receiving), undo);
        phase('firewall');
        if (JSON.stringify(rec) !== asRecorded) tx.put(ENDPOINTS, key, rec); // (a driver that learnt something while attaching)
        return endpointView(tx, rec);
      })
      .catch((e: unknown) => {
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

  /** NetworkHost.publish(). */
  async publish(network: string, id: string, publish: PortMapping[]): Promise<Endpoint> {
    v.networkName(network);
    v.endpointId(id);
    const ports = normalizePublish(publish);
    return this.facade.operation(async (tx, undo) => {
      const key = epKey(network, id);
      const rec = tx.get<EndpointRecord>(ENDPOINTS, key);
      const net = tx.get<NetworkRecord>(NETWORKS, network);
      if (!rec || !net) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const driver = driverOf(net);
      if (driver.portsFrom !== 'publish' || !driver.republish)
        throw invalid('ERR_INVALID_ARGUMENT', `a ${driver.name} endpoint publishes no ports`, { driver: driver.name });
      if ('internal' in net && net.internal && ports.length)
        throw new NsnetError('ERR_NETWORK_INTERNAL', `network ${network} is internal: it cannot publish ports`, { network });
      // Its own claims go first, so that it may keep a port it holds. A port it receives on
      // behalf of other attachments of its container would pass to the next one and come back
      // out of order: refused (disconnect and connect again to change those).
      const who = claimantOf(rec, driver.portsFrom);
      const { handovers } = releaseClaims(tx, who, rec.ports);
      if (handovers.length) {
        const h = handovers[0]!;
        throw invalid(
          'ERR_INVALID_ARGUMENT',
          `${h.protocol} port ${h.hostPort} is shared with ${h.to}, another attachment of container ${rec.container ?? rec.id}: its ports cannot be republished`,
          { endpoint: id, shared: h.to },
        );
      }
      const was = receivingPorts(tx, who, rec.ports);
      checkPublishFamilies(ports, network, driver.addressing?.(net as never).subnet6 !== undefined, rec.ipv6 !== undefined);
      const next: EndpointRecord = { ...rec, ports: [] };
      let receiving: PortMapping[] = [];
      if (ports.length) {
        ({ ports: next.ports, receiving } = resolvePorts(tx, who, ports, await this.boundSockets(socketProtocols(ports))));
        checkWithFirewall(next.ports, next);
      }
      await this.facade.realize(net);
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
        await this.ctx.reaper.now();
        await driver.attach(this.ctx, net as never, rec, undo);
      }
    };
    try {
      await attempt();
    } catch (e) {
      if (!(e instanceof NetworkGone)) throw e;
      this.facade.forgetNetwork(net.name);
      await this.facade.realize(net);
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

  /** NetworkHost.disconnect(). */
  async disconnect(network: string, id: string): Promise<void> {
    v.networkName(network);
    v.endpointId(id);
    await this.facade.operation(async (tx, undo) => {
      const key = epKey(network, id);
      const rec = tx.get<EndpointRecord>(ENDPOINTS, key);
      if (!rec) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${id} is not connected to ${network}`, { network, endpoint: id });
      const net = tx.get<NetworkRecord>(NETWORKS, network);
      const driver = net && driverOf(net);
      if (driver?.ownsNetns) assertNotShared(tx, network, id);
      // Ports it received that another attachment of its container also publishes go to that
      // one (re-pointed first, so they are never unpublished); the driver removes the rest.
      const { detach: held, handovers } = releaseClaims(tx, claimantOf(rec, driver?.portsFrom), rec.ports);
      const forget = (): void => {
        if (rec.ipv4 !== undefined) this.ipam.release(tx, network, id);
        tx.delete(ENDPOINTS, key);
      };
      if (net && driver) {
        const handBack = await handPortsOver(this.firewall, tx, rec, handovers);
        // (Undone after the detach's own steps: the interface is back when the ports and routes return.)
        if (handBack) undo(handBack);
        // The removal is final here: durable while the kernel objects go (see connect()).
        forget();
        tx.commitAhead?.();
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
      if (!(net && driver)) forget();
    });
  }

  /** Closes the socket-diagnostics handle, if one was opened. */
  async close(): Promise<void> {
    if (this.sockets) (await this.sockets.catch(() => undefined))?.close();
  }
}

/** A ConnectOptions.container: what an endpoint id may be. */
function containerId(value: unknown): string {
  try {
    return v.endpointId(value);
  } catch {
    throw invalid(
      'ERR_INVALID_NAME',
      `container ${JSON.stringify(value)} must be 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit`,
      { option: 'container', value },
    );
  }
}
