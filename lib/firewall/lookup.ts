/**
 * Reading nsnet's sets: point queries to the kernel (one NFT_MSG_GETSETELEM each, O(1) however
 * many elements exist — the per-container path), or a snapshot of both tables (one listing,
 * for operations on networks, gc, repair and port ranges larger than {@link POINT_QUERY_MAX}).
 */
import * as ipaddr from 'ipaddr.js';
import { NetlinkError, NsnetError } from '../errors';
import type { NfTables } from '../nftables/nftables';
import type { Element, Key, NftSet, Ruleset } from '../nftables/types';
import { keyId, type IpFamily, type Protocol } from './elements';
import { entryOf, portSets } from './published';
import { INET, L2, SET, tableOf, type SetName } from './layout';

/** Above this many keys, one snapshot is cheaper than point queries. */
export const POINT_QUERY_MAX = 48;

/** Answers what the planning of an operation needs to know about the sets. */
export interface Lookup {
  /** The element holding exactly this key of a hash set or map. */
  get(set: SetName, key: Key): Promise<Element | undefined>;
  /** The element of `internal_subnets` (`internal_subnets6` for an IPv6 address) whose subnet holds the address. */
  internalSubnetOf(ip: string): Promise<Element | undefined>;
  /** The elements of `published_hostip` (`published_hostip6`) for this protocol and port (any address of the family). */
  hostipHolders(family: IpFamily, protocol: Protocol, port: number): Promise<Element[]>;
}

/** Both tables as listed; a table that does not exist is undefined. */
export interface Snapshot {
  inet?: Ruleset;
  l2?: Ruleset;
}

/** The error every operation throws when nsnet's tables are not there. */
export function firewallMissing(cause?: unknown): NsnetError {
  return new NsnetError(
    'ERR_FIREWALL_MISSING',
    "nsnet's nftables tables are missing (was `nft flush ruleset` run?): call ensure(), or rebuild() from the store",
    cause instanceof Error ? { cause: cause.message } : {},
  );
}

/** Lists both tables. */
export async function readSnapshot(nft: NfTables): Promise<Snapshot> {
  const one = async (t: typeof INET | typeof L2): Promise<Ruleset | undefined> => {
    try {
      const rs = await nft.list({ family: t.family, table: t.table });
      return rs.tables.length ? rs : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  };
  return { inet: await one(INET), l2: await one(L2) };
}

/** A set of a snapshot (undefined when it or its table is missing). */
export function setOf(s: Snapshot, name: SetName): NftSet | undefined {
  const t = tableOf(name);
  return (t === INET ? s.inet : s.l2)?.sets.find((x) => x.name === name);
}

function inSubnet(ip: string, key: unknown): boolean {
  if (typeof key !== 'string') return false;
  try {
    const addr = ipaddr.parse(ip);
    if (!key.includes('/')) return addr.toString() === ipaddr.parse(key).toString();
    const [net, len] = ipaddr.parseCIDR(key);
    return addr.kind() === net.kind() && addr.match(net, len);
  } catch {
    return false;
  }
}

/** The internal-subnets set of an address's family. */
const internalSet = (ip: string): SetName => (ip.includes(':') ? SET.internalSubnets6 : SET.internalSubnets);

/** Whether a listed element of a family's `published_hostip` map is for this protocol and port. */
function holds(family: IpFamily, protocol: Protocol, port: number) {
  const set = portSets(family).hostip;
  return (el: Element): boolean => {
    const x = entryOf(set, el);
    return x !== undefined && x.protocol === protocol && x.hostPort === port;
  };
}

/**
 * Point queries to the kernel. A missing set means the firewall is missing (ERR_FIREWALL_MISSING),
 * or, `lenient` (removals), that the set holds nothing.
 */
export class KernelLookup implements Lookup {
  private readonly hostip = new Map<IpFamily, Promise<Element[]>>();
  /**
   * The answers of this operation, by set and key: an operation first asks every question it
   * will ask in one burst (one round trip, see lib/netlink/conn.ts), then plans from these.
   */
  private readonly asked = new Map<string, Promise<Element | undefined>>();
  constructor(
    private readonly nft: NfTables,
    private readonly lenient = false,
  ) {}

  get(set: SetName, key: Key): Promise<Element | undefined> {
    const id = keyId(set, key);
    let answer = this.asked.get(id);
    if (!answer) {
      answer = this.nft.getElement({ ...tableOf(set), set, key }).catch((e) => {
        if (e instanceof NsnetError && e.code === 'ERR_SET_NOT_FOUND') {
          if (this.lenient) return undefined;
          throw firewallMissing(e);
        }
        throw e;
      });
      answer.catch(() => undefined); // asked ahead: a failure is seen when the plan asks again
      this.asked.set(id, answer);
    }
    return answer;
  }

  internalSubnetOf(ip: string): Promise<Element | undefined> {
    return this.get(internalSet(ip), ip);
  }

  async hostipHolders(family: IpFamily, protocol: Protocol, port: number): Promise<Element[]> {
    // Only reached when the index says (protocol, port) is published on some single address:
    // one listing per family, shared by every question of the same operation.
    let list = this.hostip.get(family);
    if (!list) {
      list = this.nft.elements({ ...INET, set: portSets(family).hostip }).catch((e) => {
        if (e instanceof NsnetError && e.code === 'ERR_SET_NOT_FOUND') {
          if (this.lenient) return [];
          throw firewallMissing(e);
        }
        throw e;
      });
      this.hostip.set(family, list);
    }
    return (await list).filter(holds(family, protocol, port));
  }
}

/**
 * The elements of every set of a snapshot, by set. A missing set throws ERR_FIREWALL_MISSING,
 * or, `lenient` (removals), is left out.
 */
export function elementsBySet(snap: Snapshot, lenient = false): Map<SetName, Element[]> {
  const out = new Map<SetName, Element[]>();
  for (const name of Object.values(SET)) {
    const s = setOf(snap, name);
    if (s) out.set(name, s.elements);
    else if (!lenient) throw firewallMissing();
  }
  return out;
}

/**
 * Answers from elements held in memory: a snapshot's, or (for rebuild) those planned so far —
 * {@link record} adds to them.
 */
export class SnapshotLookup implements Lookup {
  private readonly index = new Map<string, Element>();
  private readonly sets_ = new Map<SetName, Element[]>();

  constructor(sets: Map<SetName, Element[]> = new Map()) {
    for (const name of Object.values(SET)) this.sets_.set(name, []);
    for (const [name, els] of sets) this.record(name, els);
  }

  static fromSnapshot(snap: Snapshot): SnapshotLookup {
    return new SnapshotLookup(elementsBySet(snap));
  }

  /** Adds elements (as planned) to what the lookup answers from. */
  record(set: SetName, elements: Element[]): void {
    for (const el of elements) {
      this.index.set(keyId(set, el.key), el);
      this.sets_.get(set)!.push(el);
    }
  }

  async get(set: SetName, key: Key): Promise<Element | undefined> {
    return this.index.get(keyId(set, key));
  }

  /** Whether a key is present (synchronous). */
  has(set: SetName, key: unknown): boolean {
    return this.index.has(keyId(set, key));
  }

  /** The elements held, by set. */
  sets(): Map<SetName, Element[]> {
    return this.sets_;
  }

  async internalSubnetOf(ip: string): Promise<Element | undefined> {
    return this.sets_.get(internalSet(ip))!.find((el) => inSubnet(ip, el.key));
  }

  async hostipHolders(family: IpFamily, protocol: Protocol, port: number): Promise<Element[]> {
    return this.sets_.get(portSets(family).hostip)!.filter(holds(family, protocol, port));
  }
}
