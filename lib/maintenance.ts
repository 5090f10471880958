/**
 * gc() and reconcile() of the façade: the record is the truth. gc removes what no record
 * explains (endpoints whose namespace is gone, links marked as nsnet's without a record, firewall
 * elements of unknown owners) and then heals; heal makes the kernel match the records, one
 * network and one endpoint at a time, each driver judging its own objects, and reports what it
 * found broken (whoever else may be repairing it at the same time) and what it could not heal.
 */
import { NetlinkError, NsnetError } from './errors';
import { parseOwnerAlias } from './devices/marks';
import type { DriverContext } from './drivers/driver';
import type { EndpointRecord, GcReport, NetworkRecord, ReconcileReport } from './host-types';
import { DEFAULT_NETWORK_SPEC, driverOf, drivers } from './drivers/registry';
import type { Firewall } from './firewall/firewall';
import type { Ipam } from './ipam/index';
import * as path from 'node:path';
import { NETNS_DIR, Netns, openNetns, type NetnsSpec } from './netns';
import { removeSlotNetns } from './pool';
import { ENDPOINTS, NETWORKS, epKey } from './state/collections';
import { damageProblem, readEndpoints, readNetworks, type WarningHandler } from './state/damage';
import { handOver } from './state/handover';
import { claimantOf, receivingPorts, releaseClaims } from './state/ledger';
import { repairDamaged } from './state/repair';
import type { StoreTx } from './store/index';

/** The network made at its first connect: its absence is normal. */
const LAZY_NETWORK = DEFAULT_NETWORK_SPEC;

/** What maintenance needs of the façade's own state. */
export interface FacadeState {
  /** Makes sure of a network through the façade (which remembers it as made sure of). */
  realize(net: NetworkRecord): Promise<void>;
  /** Forgets every network and the firewall as made sure of. */
  reset(): void;
  /** Forgets one network as made sure of. */
  forgetNetwork(name: string): void;
  /** The name prefix of the namespaces this state directory's warm-pool slots live in. */
  slotNetnsPrefix: string;
}

/** Whether a namespace still exists. */
function alive(netns: string): boolean {
  try {
    openNetns(netns).close();
    return true;
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND') return false;
    throw e;
  }
}

export class Maintenance {
  constructor(
    private readonly ctx: DriverContext,
    private readonly firewall: Firewall,
    private readonly ipam: Ipam,
    private readonly hostNetns: NetnsSpec | undefined,
    private readonly facade: FacadeState,
  ) {}

  /** gc()'s work, inside a store transaction (the caller has reaped retired veths). */
  async gc(tx: StoreTx): Promise<GcReport> {
    const report: GcReport = { endpoints: [], links: [], firewallOwners: [], repaired: [], problems: [], damaged: [] };
    await this.ctx.firewall.ensure();
    // Damaged documents first: the passes below remove what no sound record explains.
    report.damaged = await repairDamaged({
      tx,
      host: this.ctx.host,
      hostNetns: this.hostNetns,
      firewall: this.firewall,
      ipam: this.ipam,
      defaultNetwork: LAZY_NETWORK,
      predefined: drivers.filter((d) => d.predefined).map((d) => d.name),
    });
    const known = new Map(tx.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
    for (const { value: ep } of tx.list<EndpointRecord>(ENDPOINTS)) {
      // Host mode has nothing in the kernel to outlive; a live namespace is the endpoint's.
      if (ep.netns === undefined || alive(ep.netns)) continue;
      // Handed over and not moved yet (or moved back out): the caller makes its namespace later.
      if (ep.handOver !== undefined && (await this.ctx.host.links.find(ep.handOver))) continue;
      // The namespace is gone (a macvlan child went with it; a veth's host end did too, but the
      // firewall elements and the retired-link bookkeeping remain).
      const net = known.get(ep.network);
      const driver = net && driverOf(net);
      if (net && driver) await driver.forget?.(this.ctx, net as never, ep);
      if (ep.ipv4 !== undefined && driver?.addressed) this.ipam.release(tx, ep.network, ep.id);
      // Ports it received that another attachment of its container publishes go to that one.
      const { handovers } = releaseClaims(tx, claimantOf(ep, driver?.portsFrom), ep.ports);
      await handOver(this.firewall, tx, ep, handovers);
      tx.delete(ENDPOINTS, epKey(ep.network, ep.id));
      report.endpoints.push(epKey(ep.network, ep.id));
    }
    // Namespaces of warm-pool slots that no record explains (a prepare() killed before its commit).
    const held = new Set(tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.value.netns));
    for (const name of await Netns.list()) {
      const p = path.join(NETNS_DIR, name);
      if (!name.startsWith(this.facade.slotNetnsPrefix) || held.has(p)) continue;
      await removeSlotNetns(p);
      (report.namespaces ??= []).push(name);
    }
    const nets = new Map(tx.list<NetworkRecord>(NETWORKS).map((n) => [n.key, n.value]));
    const eps = new Set(tx.keys(ENDPOINTS));
    for (const link of await this.ctx.host.links.list()) {
      const owner = parseOwnerAlias(link.alias);
      if (!owner) continue;
      const net = nets.get(owner.network);
      const mine =
        owner.endpoint === undefined
          ? net !== undefined && driverOf(net).ownsLink?.(net as never, link) === true
          : eps.has(epKey(owner.network, owner.endpoint));
      if (mine) continue;
      await this.ctx.host.links.remove(link.index).catch((e) => {
        if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
      });
      report.links.push(link.name);
    }
    const ids = new Set(tx.list<EndpointRecord>(ENDPOINTS).map((e) => e.value.id));
    for (const owner of (await this.firewall.listOwned()).keys()) {
      const [kind, name] = [owner.slice(0, owner.indexOf(':')), owner.slice(owner.indexOf(':') + 1)];
      if ((kind === 'ep' && ids.has(name)) || (kind === 'net' && nets.has(name))) continue;
      await this.firewall.removeOwner(owner);
      report.firewallOwners.push(owner);
    }
    for (const n of report.endpoints) this.facade.forgetNetwork(n.split('/')[0]!);
    // What a crash in the middle of disconnect or removeNetwork left: back to the record.
    const healed = await this.heal(tx);
    report.repaired = [...healed.networks.map((n) => `network ${n}`), ...healed.endpoints.map((e) => `endpoint ${e}`)];
    report.problems = healed.problems;
    return report;
  }

  /** reconcile()'s work, inside a store transaction. */
  async heal(tx: StoreTx): Promise<ReconcileReport> {
    const report: ReconcileReport = { networks: [], endpoints: [], firewallRebuilt: false, problems: [] };
    /** One network's or endpoint's healing: a failure is reported and the rest goes on. */
    const attempt = async <T>(network: string, endpoint: string | undefined, step: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await step();
      } catch (e) {
        const err = e instanceof NsnetError ? e : new NsnetError('ERR_INTERNAL', String(e));
        report.problems.push({ network, ...(endpoint !== undefined ? { endpoint } : {}), code: err.code, message: err.message });
        return undefined;
      }
    };
    // A damaged record is left out and reported (gc() repairs it); the others are healed.
    const damaged: WarningHandler = (w) => report.problems.push(damageProblem(w));
    const nets = readNetworks(tx, damaged);
    const eps = readEndpoints(tx, damaged);
    const byName = new Map(nets.map((n) => [n.name, n]));
    // What the firewall holds of an endpoint: the ports it receives (lib/state/ledger.ts).
    const receiving = (e: EndpointRecord): EndpointRecord => {
      const n = byName.get(e.network);
      return e.ports.length && n ? { ...e, ports: receivingPorts(tx, claimantOf(e, driverOf(n).portsFrom), e.ports) } : e;
    };
    this.facade.reset();
    if (!(await this.firewall.isIntact())) {
      await this.firewall.rebuild({
        networks: nets.flatMap((n) => driverOf(n).firewallNetwork?.(n as never) ?? []),
        endpoints: eps.flatMap((e) => {
          const n = byName.get(e.network);
          return (n && driverOf(n).firewallEndpoint?.(n as never, receiving(e))) || [];
        }),
      });
      report.firewallRebuilt = true;
    }
    await this.ctx.firewall.ensure();
    const owned = await this.firewall.listOwned();
    const broken = new Set<string>();
    for (const net of nets) {
      const driver = driverOf(net);
      if (!driver.diagnose) continue;
      const state = { owned, inUse: eps.some((e) => e.network === net.name), lazy: net.name === LAZY_NETWORK.name };
      const found = await attempt(net.name, undefined, () => driver.diagnose!(this.ctx, net as never, state));
      if (found === 'absent') continue;
      // Looked at before it is made sure of: the report says what was found, whoever repairs it.
      const fine = await attempt(net.name, undefined, () => this.facade.realize(net).then(() => true));
      if (!fine) broken.add(net.name);
      else if (found !== 'fine' || driver.repairedByOthers?.(this.ctx, net as never)) report.networks.push(net.name);
    }
    for (const ep of eps) {
      const net = byName.get(ep.network);
      const driver = net && driverOf(net);
      if (!net || !driver?.healEndpoint || ep.netns === undefined || broken.has(net.name) || !alive(ep.netns)) continue; // gone: gc() removes it
      const state = { owned, inUse: true, lazy: false };
      if (await attempt(ep.network, ep.id, () => driver.healEndpoint!(this.ctx, net as never, receiving(ep), state)))
        report.endpoints.push(`${ep.network}/${ep.id}`);
    }
    return report;
  }
}
