/**
 * Repairing damaged state documents: `gc()`'s first step, inside its store transaction.
 *
 * Every damaged document is set aside (its file kept as `<name>.damaged`: nothing is lost) and
 * then either rebuilt or dropped:
 * - records (networks, endpoints) are rebuilt from the kernel's marks where those determine
 *   them (lib/state/rebuild.ts); otherwise dropped, and what they held is released: an
 *   endpoint's address lease and port claims; a network's address pool, and its endpoints with
 *   theirs. The kernel objects a dropped record leaves (marked links, firewall elements) are
 *   then removed by gc's own passes, which remove whatever no record explains; a macvlan child
 *   of a dropped network is detached here (it lives in the container's namespace, where gc
 *   does not look).
 * - derived documents (address pools, leases, port claims) are rebuilt from the records, or
 *   dropped when no record explains them; the pools' counters are then counted again.
 * - anything else (an unknown collection, a file whose name is no key) is set aside.
 * @internal
 */
import { removeMarkedLink } from '../devices/container';
import { ownerAlias } from '../devices/marks';
import type { DamageRepair, EndpointRecord, NetworkRecord } from '../host-types';
import { NsnetError } from '../errors';
import type { Firewall } from '../firewall/firewall';
import { normalizeNetwork, type NormalizedNetwork } from '../ipam/network';
import type { Ipam, Lease } from '../ipam/ipam';
import type { Netlink } from '../netlink/netlink';
import type { NetnsSpec } from '../netns';
import type { DamagedDocument, StoreTx } from '../store/types';
import { ENDPOINTS, NETWORKS, PORTS, RECORD_CHECKS, checkEndpoint, checkNetwork, epKey, splitEpKey } from './collections';
import { describeDocument } from './damage';
import { driverOf } from '../drivers/registry';
import { claimantOf, claimsOn, parseLedgerKey, recordClaims, releaseHolder, type PortClaim } from './ledger';
import { NamespaceSearch } from './marks';
import { readable, rebuildEndpoint, rebuildNetwork, type Evidence } from './rebuild';

/** What the repair works with. */
export interface RepairContext {
  tx: StoreTx;
  /** rtnetlink in the host namespace. */
  host: Netlink;
  hostNetns: NetnsSpec | undefined;
  firewall: Firewall;
  ipam: Ipam;
  defaultNetwork: { name: string; bridge: string };
  predefined: readonly string[];
}

/** Repairs every damaged document (see the module's comment); returns what was done, by file. */
export async function repairDamaged(c: RepairContext): Promise<DamageRepair[]> {
  const damaged = c.tx.damaged(RECORD_CHECKS);
  if (!damaged.length) return [];
  const ev: Evidence = {
    view: c.tx,
    ipam: c.ipam,
    links: await c.host.links.list(),
    owned: await c.firewall.listOwned(),
    search: new NamespaceSearch(c.hostNetns),
    defaultNetwork: c.defaultNetwork,
    predefined: c.predefined,
    now: new Date().toISOString(),
  };
  return new Repair(c, ev, damaged).run();
}

class Repair {
  private readonly out: DamageRepair[] = [];
  private readonly handled = new Set<string>();
  /** Networks whose pool counters must be counted again. */
  private readonly pools = new Set<string>();
  /** Endpoint records rebuilt: their leases and claims are made to match them. */
  private readonly rebuilt: EndpointRecord[] = [];
  private readonly tx: StoreTx;

  constructor(
    private readonly c: RepairContext,
    private readonly ev: Evidence,
    private readonly damaged: DamagedDocument[],
  ) {
    this.tx = c.tx;
  }

  async run(): Promise<DamageRepair[]> {
    await this.networks();
    await this.endpoints();
    this.addressPools();
    this.leases();
    this.ledger();
    for (const rec of this.rebuilt) this.claim(rec);
    for (const n of this.pools) if (readable(this.tx, NETWORKS, n) !== undefined) this.c.ipam.recount(this.tx, n);
    for (const d of this.pending()) this.keep(d, 'dropped', `${describeDocument(d)}: not a document nsnet can rebuild; set aside`);
    return this.out.sort((a, b) => (a.document.file < b.document.file ? -1 : a.document.file > b.document.file ? 1 : 0));
  }

  /** The damaged documents not dealt with yet (of `collection`). */
  private pending(collection?: string): DamagedDocument[] {
    return this.damaged.filter((d) => !this.handled.has(d.file) && (collection === undefined || d.collection === collection));
  }

  /** Sets `d` aside and reports it (a rebuilt document is put after this). */
  private keep(d: DamagedDocument, action: DamageRepair['action'], detail: string): void {
    this.handled.add(d.file);
    this.out.push({ document: d, action, keptAs: this.tx.setAside(d), detail });
  }

  private async networks(): Promise<void> {
    for (const d of this.pending(NETWORKS)) {
      if (d.key === undefined) continue; // no name: set aside at the end
      const r = rebuildNetwork(this.ev, d.key);
      if ('record' in r) {
        this.keep(d, 'rebuilt', `network ${d.key}: ${r.detail}`);
        this.tx.put(NETWORKS, d.key, r.record);
      } else {
        this.keep(d, 'dropped', `network ${d.key}: cannot be rebuilt (${r.why}); ${await this.dropNetwork(d.key)}`);
      }
    }
  }

  /** Drops what a network held: its endpoints (and theirs), its pool and leases. */
  private async dropNetwork(name: string): Promise<string> {
    const gone: string[] = [];
    for (const { key, value: ep } of this.tx.scan<EndpointRecord>(ENDPOINTS, checkEndpoint).entries) {
      if (ep.network !== name) continue;
      // A macvlan child lives in the container: detached here (a veth is gc's to remove).
      if (ep.hostIfname === undefined && ep.netns !== undefined && ep.ifname !== undefined)
        await removeMarkedLink(ep.netns, ep.ifname, ownerAlias(name, ep.id));
      releaseHolder(this.tx, key);
      this.tx.delete(ENDPOINTS, key);
      gone.push(ep.id);
    }
    for (const d of this.pending(ENDPOINTS).filter((x) => x.key !== undefined && splitEpKey(x.key)?.network === name)) {
      releaseHolder(this.tx, d.key!);
      this.keep(d, 'dropped', `${describeDocument(d)}: its network was dropped`);
    }
    this.dropAddresses(name);
    const eps = gone.length ? `, and its endpoints ${gone.join(', ')} with their port claims` : '';
    return `dropped with its address pool${eps}; gc removes its bridge and firewall elements`;
  }

  /** Drops a network's pool and every lease of it (damaged ones set aside). */
  private dropAddresses(network: string): void {
    const { ipam } = this.c;
    for (const collection of [ipam.collection, ipam.owners, ipam.addrs]) {
      const mine = (key: string | undefined): boolean =>
        key !== undefined && (collection === ipam.collection ? key === network : key.startsWith(`${network}/`));
      for (const e of this.tx.scan(collection).entries) if (mine(e.key)) this.tx.delete(collection, e.key);
      for (const d of this.pending(collection)) if (mine(d.key)) this.keep(d, 'dropped', `${describeDocument(d)}: its network was dropped`);
    }
  }

  private async endpoints(): Promise<void> {
    const nets = new Map(this.tx.scan<NetworkRecord>(NETWORKS, checkNetwork).entries.map((e) => [e.key, e.value]));
    for (const d of this.pending(ENDPOINTS)) {
      const k = d.key === undefined ? undefined : splitEpKey(d.key);
      if (!k) continue; // no key: set aside at the end
      const net = nets.get(k.network);
      const r = net ? await rebuildEndpoint(this.ev, net, k.id) : { why: `network ${k.network} has no record` };
      if ('record' in r) {
        this.keep(d, 'rebuilt', `endpoint ${k.id} of network ${k.network}: ${r.detail}`);
        this.tx.put(ENDPOINTS, d.key!, r.record);
        this.rebuilt.push(r.record);
      } else {
        this.keep(d, 'dropped', `endpoint ${k.id} of network ${k.network}: cannot be rebuilt (${r.why}); ${this.dropEndpoint(k.network, k.id)}`);
      }
    }
  }

  /** Releases what a dropped endpoint held: its addresses and port claims. */
  private dropEndpoint(network: string, id: string): string {
    const { ipam } = this.c;
    const key = epKey(network, id);
    const released: string[] = [];
    if (readable<Lease>(this.tx, ipam.owners, key) !== undefined) this.tx.delete(ipam.owners, key);
    for (const e of this.tx.scan<string>(ipam.addrs).entries) {
      if (!e.key.startsWith(`${network}/`) || e.value !== id) continue;
      this.tx.delete(ipam.addrs, e.key);
      released.push(e.key.slice(network.length + 1));
    }
    this.pools.add(network);
    released.push(...releaseHolder(this.tx, key));
    return `${released.length ? `released ${released.join(', ')}` : 'it held no addresses or ports'}; gc removes its kernel leftovers`;
  }

  /** Damaged address pools: rebuilt from their network's record, or dropped with their leases. */
  private addressPools(): void {
    const { ipam } = this.c;
    const ds = this.pending(ipam.collection).filter((d) => d.key !== undefined);
    const kept = ds.map((d) => ({ d, keptAs: this.tx.setAside(d) })); // all first: rebuilding checks overlaps with the others
    for (const { d, keptAs } of kept) {
      const name = d.key!;
      this.handled.add(d.file);
      const net = readable<NetworkRecord>(this.tx, NETWORKS, name);
      const plan = net && planOf(net);
      const why = plan ? this.rebuildPool(name, plan) : 'no network record explains it';
      if (why === undefined) {
        this.pools.add(name);
        this.out.push({
          document: d,
          action: 'rebuilt',
          keptAs,
          detail: `the address pool of network ${name}: rebuilt from its record (counters counted again from its leases)`,
        });
      } else {
        this.dropAddresses(name);
        this.out.push({ document: d, action: 'dropped', keptAs, detail: `the address pool of network ${name}: ${why}; dropped with its leases` });
      }
    }
  }

  /** Records a pool again; why not, when the plan no longer fits (it overlaps another pool now). */
  private rebuildPool(name: string, plan: NormalizedNetwork): string | undefined {
    try {
      this.c.ipam.createPool(this.tx, name, plan);
      return undefined;
    } catch (e) {
      if (!(e instanceof NsnetError) || e.code.startsWith('ERR_STORE_')) throw e;
      return `its network's plan no longer fits (${e.code}: ${e.message})`;
    }
  }

  /** Damaged leases: rebuilt from the endpoint records that hold them, or dropped. */
  private leases(): void {
    const { ipam } = this.c;
    const eps = this.tx.scan<EndpointRecord>(ENDPOINTS, checkEndpoint).entries.map((e) => e.value);
    for (const d of this.pending(ipam.owners)) {
      const k = d.key === undefined ? undefined : splitEpKey(d.key);
      if (!k) continue;
      const ep = eps.find((e) => e.network === k.network && e.id === k.id && e.ipv4 !== undefined);
      this.pools.add(k.network);
      if (ep) {
        this.keep(d, 'rebuilt', `the address lease of endpoint ${k.id} on network ${k.network}: rebuilt from its record`);
        this.tx.put(ipam.owners, d.key!, { ipv4: ep.ipv4!, ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}) } satisfies Lease);
      } else {
        this.keep(d, 'dropped', `the address lease of ${k.id} on network ${k.network}: no endpoint holds it; dropped`);
        for (const e of this.tx.scan<string>(ipam.addrs).entries) if (e.key.startsWith(`${k.network}/`) && e.value === k.id) this.tx.delete(ipam.addrs, e.key);
      }
    }
    for (const d of this.pending(ipam.addrs)) {
      const k = d.key === undefined ? undefined : splitEpKey(d.key);
      if (!k) continue;
      const address = k.id;
      const ep = eps.find((e) => e.network === k.network && (e.ipv4 === address || e.ipv6 === address));
      this.pools.add(k.network);
      if (ep) {
        this.keep(d, 'rebuilt', `address ${address} of network ${k.network}: leased to endpoint ${ep.id}, as its record says`);
        this.tx.put(ipam.addrs, d.key!, ep.id);
      } else {
        this.keep(d, 'dropped', `address ${address} of network ${k.network}: no endpoint holds it; released`);
      }
    }
    // A rebuilt endpoint whose lease is missing altogether gets it again.
    for (const ep of this.rebuilt) {
      if (ep.ipv4 === undefined || this.c.ipam.pool(this.tx, ep.network) === undefined) continue;
      const key = epKey(ep.network, ep.id);
      if (this.tx.get(ipam.owners, key) === undefined) this.tx.put(ipam.owners, key, { ipv4: ep.ipv4, ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}) } satisfies Lease);
      for (const a of [ep.ipv4, ep.ipv6])
        if (a !== undefined && this.tx.get(ipam.addrs, `${ep.network}/${a}`) === undefined) this.tx.put(ipam.addrs, `${ep.network}/${a}`, ep.id);
      this.pools.add(ep.network);
    }
  }

  /** Damaged port-ledger documents: rebuilt from the endpoint records that claim the port, or dropped. */
  private ledger(): void {
    const eps = this.tx.scan<EndpointRecord>(ENDPOINTS, checkEndpoint).entries.map((e) => e.value);
    for (const d of this.pending(PORTS)) {
      if (d.key === undefined || !parseLedgerKey(d.key)) continue;
      // In the order the records were made (the first claimant of a shared port receives it).
      const claims: PortClaim[] = [...eps]
        .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0))
        .flatMap((e) => claimsOn(d.key!, this.claimant(e), e.ports));
      if (claims.length) {
        this.keep(d, 'rebuilt', `the claims of ${d.key}: rebuilt from the endpoint records (${claims.map((x) => x.holder).join(', ')})`);
        this.tx.put(PORTS, d.key!, claims);
      } else {
        this.keep(d, 'dropped', `the claims of ${d.key}: no endpoint record claims it; released`);
      }
    }
  }

  /** A rebuilt endpoint's claims: exactly its ports. */
  private claim(rec: EndpointRecord): void {
    releaseHolder(this.tx, epKey(rec.network, rec.id));
    recordClaims(this.tx, this.claimant(rec), rec.ports);
  }

  /** An endpoint record as the ledger's claimant (how its network's driver takes ports). */
  private claimant(rec: EndpointRecord): ReturnType<typeof claimantOf> {
    const net = readable<NetworkRecord>(this.tx, NETWORKS, rec.network);
    return claimantOf(rec, net ? driverOf(net).portsFrom : undefined);
  }
}

/** The address plan a network's pool holds, from its record (none for the predefined networks). */
function planOf(net: NetworkRecord): NormalizedNetwork | undefined {
  if (net.driver === 'overlay') return normalizeNetwork({ subnet: net.hostSubnet, gateway: net.gateway }, []);
  if (net.driver === 'bridge' || net.driver === 'macvlan') {
    return normalizeNetwork(
      {
        subnet: net.subnet,
        gateway: net.gateway,
        ...(net.ipRange ? { ipRange: net.ipRange } : {}),
        ...(net.subnet6 ? { subnet6: net.subnet6 } : {}),
        ...(net.gateway6 ? { gateway6: net.gateway6 } : {}),
      },
      [],
    );
  }
  return undefined;
}
