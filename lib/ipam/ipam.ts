/**
 * IPAM: leases kept in the state store, read and written inside the caller's transaction, so
 * an allocation commits together with the endpoint that uses it.
 *
 * Layout (every operation touches a few small documents, whatever the number of leases):
 * - `ipam` / network: the {@link PoolDoc} (plan, where the next search starts, counters);
 * - `ipam-addr` / `network/address`: the owner of a leased address;
 * - `ipam-owner` / `network/owner`: the {@link Lease} an owner holds.
 *
 * Dynamic addresses are handed out sequentially from where the last one was (wrapping), so a
 * freed address is not reused at once.
 */
import { NsnetError, invalid } from '../errors';
import type { StoreTx, StoreView } from '../store/index';
import * as validate from '../validate';
import { contains, formatBlock, fromBig, lastOf, parseAddress, parseBlock, toBig, type Block, type Family } from './addr';
import { normalizeNetwork, type NormalizedNetwork } from './network';

/** The stored address plan and allocation state of one network. */
export interface PoolDoc extends NormalizedNetwork {
  /** Where the next dynamic IPv4 search starts. */
  next: string;
  /** Where the next dynamic IPv6 search starts (dual-stack networks). */
  next6?: string;
  /** IPv4 leases inside the dynamic range (ipRange, else the subnet): the subnet is full when it reaches the range's capacity. */
  used: number;
  /** IPv6 leases (dual-stack networks). */
  used6?: number;
}

/** The addresses an owner holds on a network. */
export interface Lease {
  ipv4: string;
  ipv6?: string;
}

/** What {@link Ipam.allocate} is asked for. */
export interface AllocateOptions {
  /** Who holds the lease (an endpoint id): asking again returns the same lease. */
  owner: string;
  /** A static IPv4 address (inside the subnet; may be outside ipRange). */
  ipv4?: string;
  /**
   * A static IPv6 address, `true` (a dynamic one; ERR_NO_IPV6_SUBNET on an IPv4-only network)
   * or `false` (none). Default: a dynamic one when the network is dual-stack.
   */
  ipv6?: string | boolean;
}

/** One leased address, as listed by {@link Ipam.leases}. */
export interface LeaseEntry {
  address: string;
  family: Family;
  owner: string;
}

/** One family of a pool: blocks and the gateway. */
interface Plan {
  family: Family;
  subnet: Block;
  /** Where dynamic addresses come from (ipRange, else the subnet). */
  range: Block;
  gateway: bigint;
}

/** An address decided for one family: `fresh` if it is to be leased now; `next`: the new search mark. */
interface Choice {
  address: string;
  fresh: boolean;
  next?: string;
}

const FIELDS = ['subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6'] as const;

function networkName(value: unknown): string {
  const s = validate.str(value, 'network name');
  if (s === '' || s.includes('/')) throw invalid('ERR_INVALID_ARGUMENT', `network name ${JSON.stringify(value)} must be non-empty, without "/"`, { value });
  return s;
}

function ownerName(value: unknown): string {
  const s = validate.str(value, 'lease owner');
  if (s === '') throw invalid('ERR_INVALID_ARGUMENT', 'lease owner may not be empty', { value });
  return s;
}

function planOf(doc: PoolDoc, family: Family): Plan | undefined {
  if (family === 4) {
    const subnet = parseBlock(doc.subnet, 4, 'subnet', true);
    return { family, subnet, range: doc.ipRange ? parseBlock(doc.ipRange, 4, 'ipRange', true) : subnet, gateway: toBig(doc.gateway) };
  }
  if (doc.subnet6 === undefined || doc.gateway6 === undefined) return undefined;
  const subnet = parseBlock(doc.subnet6, 6, 'subnet6', true);
  return { family, subnet, range: subnet, gateway: toBig(doc.gateway6) };
}

/** Addresses never leased: the network address, the IPv4 broadcast address, the gateway. */
function reserved(p: Plan): Set<bigint> {
  const r = new Set([p.subnet.base, p.gateway]);
  if (p.family === 4) r.add(lastOf(p.subnet));
  return r;
}

/** Address management over a store transaction; stateless itself, so one instance can be shared. */
export class Ipam {
  /** The collection of leased addresses (`<collection>-addr`, keys `network/address`, values the owner). */
  readonly addrs: string;
  /** The collection of owners' leases (`<collection>-owner`, keys `network/owner`, values {@link Lease}). */
  readonly owners: string;

  /** @param collection the pools' collection (default 'ipam'); leases use `<collection>-addr` and `<collection>-owner` */
  constructor(readonly collection = 'ipam') {
    this.addrs = `${collection}-addr`;
    this.owners = `${collection}-owner`;
  }

  /**
   * Records a network's address plan (idempotent for the same plan; ERR_NETWORK_EXISTS for a
   * different one; ERR_SUBNET_OVERLAP against the other pools). `plan` comes from
   * {@link normalizeNetwork}, called in the same transaction with {@link Ipam.subnets}.
   */
  createPool(tx: StoreTx, network: string, plan: NormalizedNetwork): PoolDoc {
    networkName(network);
    const p = normalizeNetwork(plan, []);
    for (const k of FIELDS) {
      if (plan[k] !== p[k])
        throw invalid('ERR_INVALID_ARGUMENT', `the plan must be normalized (${k}: ${String(plan[k])}, expected ${String(p[k])}); use normalizeNetwork()`, {
          [k]: plan[k],
        });
    }
    const existing = this.pool(tx, network);
    if (existing) {
      if (FIELDS.every((k) => existing[k] === p[k])) return existing;
      throw invalid(
        'ERR_NETWORK_EXISTS',
        `network ${network} already has the address plan ${existing.subnet}${existing.subnet6 ? ` + ${existing.subnet6}` : ''}`,
        { network },
      );
    }
    normalizeNetwork(p, this.subnets(tx, network)); // ERR_SUBNET_OVERLAP
    const doc: PoolDoc = { ...p, next: (p.ipRange ?? p.subnet).split('/')[0]!, used: 0 };
    if (p.subnet6) Object.assign(doc, { next6: p.subnet6.split('/')[0]!, used6: 0 });
    tx.put(this.collection, network, doc);
    return doc;
  }

  /** Removes a network's pool: false when there is none, ERR_NETWORK_IN_USE while leases exist. */
  deletePool(tx: StoreTx, network: string): boolean {
    if (!this.pool(tx, network)) return false;
    const prefix = `${network}/`;
    const owners = tx
      .keys(this.owners)
      .filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length));
    if (owners.length > 0)
      throw invalid(
        'ERR_NETWORK_IN_USE',
        `network ${network} still has ${owners.length} endpoint(s) with addresses: ${owners.slice(0, 5).join(', ')}${owners.length > 5 ? ', …' : ''}`,
        { network, owners },
      );
    tx.delete(this.collection, network);
    return true;
  }

  /** A network's pool document, or undefined. */
  pool(view: StoreView, network: string): PoolDoc | undefined {
    const doc = view.get<PoolDoc>(this.collection, networkName(network));
    if (doc === undefined) return undefined;
    if (typeof doc?.subnet !== 'string' || typeof doc.gateway !== 'string' || typeof doc.next !== 'string' || typeof doc.used !== 'number')
      throw new NsnetError('ERR_STORE_CORRUPT', `the address pool of network ${network} is malformed`, { collection: this.collection, key: network });
    return doc;
  }

  /**
   * Every pool's subnets (IPv4 and IPv6), but those of network `except`: the `existingSubnets`
   * of {@link normalizeNetwork}.
   */
  subnets(view: StoreView, except?: string): string[] {
    return view
      .list<PoolDoc>(this.collection)
      .filter((e) => e.key !== except)
      .flatMap((e) => [e.value.subnet, ...(e.value.subnet6 ? [e.value.subnet6] : [])]);
  }

  /**
   * Leases addresses to `opts.owner` (see {@link AllocateOptions}); an owner that holds a lease
   * gets it back (adding an IPv6 address if asked and missing). Dynamic addresses skip the
   * network, broadcast and gateway addresses.
   * @throws ERR_NETWORK_NOT_FOUND, ERR_SUBNET_FULL, ERR_ADDRESS_OUTSIDE_SUBNET,
   *   ERR_ADDRESS_RESERVED, ERR_ADDRESS_IN_USE (details.owner), ERR_LEASE_MISMATCH (the owner
   *   holds another address), ERR_NO_IPV6_SUBNET, ERR_INVALID_IP, ERR_INVALID_ARGUMENT
   */
  allocate(tx: StoreTx, network: string, opts: AllocateOptions): Lease {
    validate.knownKeys(opts, ['owner', 'ipv4', 'ipv6'], 'allocate options');
    const owner = ownerName(opts.owner);
    if (opts.ipv6 !== undefined && typeof opts.ipv6 !== 'boolean' && typeof opts.ipv6 !== 'string')
      throw invalid('ERR_INVALID_ARGUMENT', 'ipv6 must be an address, true or false', { value: opts.ipv6 });
    const doc = this.mustGet(tx, network);
    const held = tx.get<Lease>(this.owners, `${network}/${owner}`);
    // Decide both families first, write after: a refusal leaves the transaction untouched.
    const plan4 = planOf(doc, 4)!;
    const v4 = this.choose(tx, doc, network, owner, plan4, opts.ipv4, held?.ipv4);
    let v6: Choice | undefined;
    let plan6: Plan | undefined;
    if (opts.ipv6 === undefined ? doc.subnet6 !== undefined : opts.ipv6 !== false) {
      plan6 = planOf(doc, 6);
      if (!plan6) throw invalid('ERR_NO_IPV6_SUBNET', `network ${network} has no IPv6 subnet`, { network });
      v6 = this.choose(tx, doc, network, owner, plan6, typeof opts.ipv6 === 'string' ? opts.ipv6 : undefined, held?.ipv6);
    }
    const lease: Lease = { ipv4: v4.address };
    if (v6) lease.ipv6 = v6.address;
    else if (held?.ipv6) lease.ipv6 = held.ipv6;
    if (!v4.fresh && !v6?.fresh) return lease;
    for (const [c, plan] of [
      [v4, plan4],
      [v6, plan6],
    ] as const) {
      if (!c?.fresh || !plan) continue;
      tx.put(this.addrs, `${network}/${c.address}`, owner);
      if (c.next !== undefined) doc[plan.family === 4 ? 'next' : 'next6'] = c.next;
      if (contains(plan.range, plan.family, toBig(c.address))) {
        if (plan.family === 4) doc.used++;
        else doc.used6 = (doc.used6 ?? 0) + 1;
      }
    }
    tx.put(this.owners, `${network}/${owner}`, lease);
    tx.put(this.collection, network, doc);
    return lease;
  }

  /** Frees every address `owner` holds on `network`; false when it held none (or no such pool). */
  release(tx: StoreTx, network: string, owner: string): boolean {
    const key = `${networkName(network)}/${ownerName(owner)}`;
    const held = tx.get<Lease>(this.owners, key);
    if (!held) return false;
    const doc = this.pool(tx, network);
    for (const address of [held.ipv4, held.ipv6]) {
      if (typeof address !== 'string') continue;
      const akey = `${network}/${address}`;
      if (tx.get(this.addrs, akey) !== owner) continue;
      tx.delete(this.addrs, akey);
      const plan = doc && planOf(doc, address.includes(':') ? 6 : 4);
      if (plan && contains(plan.range, plan.family, toBig(address))) {
        if (plan.family === 4) doc.used = Math.max(0, doc.used - 1);
        else doc.used6 = Math.max(0, (doc.used6 ?? 1) - 1);
      }
    }
    tx.delete(this.owners, key);
    if (doc) tx.put(this.collection, network, doc);
    return true;
  }

  /**
   * Counts a pool's leases again (after a repair rebuilt or dropped some of them): `used` and
   * `used6` become the number of leased addresses in the dynamic range. False when there is no
   * such pool.
   */
  recount(tx: StoreTx, network: string): boolean {
    const doc = this.pool(tx, networkName(network));
    if (!doc) return false;
    const plans = [planOf(doc, 4)!, planOf(doc, 6)];
    const used = [0, 0];
    const prefix = `${network}/`;
    for (const k of tx.keys(this.addrs)) {
      if (!k.startsWith(prefix)) continue;
      const address = k.slice(prefix.length);
      const six = address.includes(':') ? 1 : 0;
      const plan = plans[six];
      try {
        if (plan && contains(plan.range, plan.family, toBig(address))) used[six]!++;
      } catch {
        /* not an address: not counted */
      }
    }
    doc.used = used[0]!;
    if (plans[1]) doc.used6 = used[1]!;
    tx.put(this.collection, network, doc);
    return true;
  }

  /** The addresses `owner` holds on `network`, or undefined (ERR_NETWORK_NOT_FOUND). */
  leaseOf(view: StoreView, network: string, owner: string): Lease | undefined {
    this.mustGet(view, network);
    return view.get<Lease>(this.owners, `${network}/${ownerName(owner)}`);
  }

  /** Every lease of `network`, IPv4 first, in address order (ERR_NETWORK_NOT_FOUND). */
  leases(view: StoreView, network: string): LeaseEntry[] {
    this.mustGet(view, network);
    const prefix = `${network}/`;
    return view
      .keys(this.addrs)
      .filter((k) => k.startsWith(prefix))
      .map((k) => {
        const address = k.slice(prefix.length);
        return { address, owner: String(view.get(this.addrs, k)), family: (address.includes(':') ? 6 : 4) as Family, n: toBig(address) };
      })
      .sort((a, b) => a.family - b.family || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
      .map(({ address, family, owner }) => ({ address, family, owner }));
  }

  private mustGet(view: StoreView, network: string): PoolDoc {
    const doc = this.pool(view, network);
    if (!doc) throw invalid('ERR_NETWORK_NOT_FOUND', `network ${network} has no address pool`, { network });
    return doc;
  }

  /** One address of `plan`'s family for `owner` — the static one, the held one, or the next free — checked, not yet written. */
  private choose(tx: StoreView, doc: PoolDoc, network: string, owner: string, plan: Plan, wanted: unknown, held: string | undefined): Choice {
    if (wanted === undefined) {
      if (held !== undefined) return { address: held, fresh: false };
      const n = this.nextFree(tx, doc, network, plan);
      return { address: fromBig(n, plan.family), fresh: true, next: fromBig(n === lastOf(plan.range) ? plan.range.base : n + 1n, plan.family) };
    }
    const a = parseAddress(wanted, plan.family, plan.family === 4 ? 'ipv4' : 'ipv6');
    const address = a.address;
    if (!contains(plan.subnet, a.family, a.n))
      throw invalid('ERR_ADDRESS_OUTSIDE_SUBNET', `${address} is outside the subnet ${formatBlock(plan.subnet)} of network ${network}`, {
        address,
        subnet: formatBlock(plan.subnet),
      });
    if (a.n === plan.gateway) throw invalid('ERR_ADDRESS_IN_USE', `${address} is the gateway of network ${network}`, { address, owner: 'gateway' });
    if (reserved(plan).has(a.n))
      throw invalid('ERR_ADDRESS_RESERVED', `${address} is the ${a.n === plan.subnet.base ? 'network' : 'broadcast'} address of ${formatBlock(plan.subnet)}`, {
        address,
      });
    if (held !== undefined && held !== address)
      throw invalid('ERR_LEASE_MISMATCH', `${owner} already holds ${held} on network ${network}; release it first to take ${address}`, {
        owner,
        held,
        address,
      });
    const current = tx.get<string>(this.addrs, `${network}/${address}`);
    if (current !== undefined && current !== owner)
      throw invalid('ERR_ADDRESS_IN_USE', `${address} on network ${network} is already leased to ${current}`, { address, owner: current });
    return { address, fresh: held === undefined && current === undefined };
  }

  /** The first free address of the range at or after the `next` mark, wrapping (ERR_SUBNET_FULL). */
  private nextFree(tx: StoreView, doc: PoolDoc, network: string, plan: Plan): bigint {
    const lo = plan.range.base;
    const hi = lastOf(plan.range);
    const skip = new Set([...reserved(plan)].filter((r) => r >= lo && r <= hi));
    const places = hi - lo + 1n;
    const full = (): NsnetError =>
      invalid('ERR_SUBNET_FULL', `network ${network} has no free IPv${plan.family} address left in ${formatBlock(plan.range)}`, {
        network,
        range: formatBlock(plan.range),
      });
    if (BigInt((plan.family === 4 ? doc.used : doc.used6) ?? 0) >= places - BigInt(skip.size)) throw full();
    const mark = plan.family === 4 ? doc.next : doc.next6;
    let n = mark !== undefined ? toBig(mark) : lo;
    if (n < lo || n > hi) n = lo;
    // The counters say there is room; the bound only guards against a hand-edited store.
    for (let probes = 0n; probes < places; probes++) {
      if (!skip.has(n) && tx.get(this.addrs, `${network}/${fromBig(n, plan.family)}`) === undefined) return n;
      n = n === hi ? lo : n + 1n;
    }
    throw full();
  }
}
