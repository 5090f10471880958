/**
 * The records index: for each network the resolver serves, its names (endpoint id, `name`,
 * `aliases`) with their A and AAAA addresses, the PTR name of each address, who may ask (the
 * network's subnets) and where the rest goes. Built whole from the store's network and endpoint
 * records; swapped in one assignment, so a query sees one version or the next, never a mix.
 */
import * as ipaddr from 'ipaddr.js';
import type { EndpointRecord } from '../host-types';
import { dnsEnabled, forwards, listenAddresses, networkUpstreams, type DnsNetworkRecord } from './config';
import { dnsKey, type Upstream } from './names';
import type { EndpointDnsNames } from './types';

/** An endpoint record as the resolver reads it. */
export type DnsEndpointRecord = EndpointRecord & EndpointDnsNames;

/** The addresses a name has in one network. */
export interface HostAddresses {
  v4: string[];
  v6: string[];
}

/** A CIDR as bytes, for membership tests. */
interface Block {
  bytes: number[];
  prefix: number;
}

/** One served network. */
export class Zone {
  /** lowercase name → addresses. */
  readonly names = new Map<string, HostAddresses>();
  /** canonical address → the name PTR answers with. */
  readonly ptr = new Map<string, string>();
  /** How many endpoints the network has (with a name or not): who may be using the resolver. */
  endpoints = 0;
  private readonly blocks: Block[] = [];

  constructor(
    readonly network: string,
    /** Gateway addresses the resolver listens on. */
    readonly listen: string[],
    /** False for internal networks: names of the outside are refused. */
    readonly forwards: boolean,
    /** The network's own upstreams; undefined: the host's. */
    readonly upstream: Upstream[] | undefined,
    subnets: string[],
  ) {
    for (const s of subnets) {
      try {
        const [addr, prefix] = ipaddr.parseCIDR(s);
        this.blocks.push({ bytes: addr.toByteArray(), prefix });
      } catch {
        /* a corrupt record: no one from it is served */
      }
    }
  }

  /** Whether `address` (a client's, or one a PTR query names) is inside the network. */
  contains(address: string): boolean {
    let bytes: number[];
    try {
      bytes = ipaddr.parse(address).toByteArray();
    } catch {
      return false;
    }
    return this.blocks.some((b) => b.bytes.length === bytes.length && samePrefix(b.bytes, bytes, b.prefix));
  }

  add(name: string, family: 4 | 6, address: string): void {
    let h = this.names.get(name);
    if (!h) this.names.set(name, (h = { v4: [], v6: [] }));
    const list = family === 4 ? h.v4 : h.v6;
    if (!list.includes(address)) list.push(address);
  }
}

function samePrefix(a: number[], b: number[], prefix: number): boolean {
  let bits = prefix;
  for (let i = 0; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

/** The subnets a network's clients come from. */
function subnetsOf(net: DnsNetworkRecord): string[] {
  const out: string[] = [];
  if ('subnet' in net && net.subnet) out.push(net.subnet);
  if (net.driver === 'bridge' && net.subnet6) out.push(net.subnet6);
  return out;
}

/** Canonical text of an address (ipaddr.js form: IPv6 compressed, lowercase). */
function canonical(address: string): string | undefined {
  try {
    return ipaddr.parse(address).toString();
  } catch {
    return undefined;
  }
}

/** Every served network's zone, by network name. */
export class RecordIndex {
  readonly zones = new Map<string, Zone>();

  /** Builds the index from the store's records (anything malformed is left out, never fatal). */
  static build(networks: readonly DnsNetworkRecord[], endpoints: readonly DnsEndpointRecord[]): RecordIndex {
    const index = new RecordIndex();
    for (const net of networks) {
      if (!net || typeof net !== 'object' || typeof net.name !== 'string' || !dnsEnabled(net)) continue;
      index.zones.set(net.name, new Zone(net.name, listenAddresses(net), forwards(net), networkUpstreams(net), subnetsOf(net)));
    }
    for (const ep of endpoints) {
      const zone = ep && typeof ep === 'object' ? index.zones.get(ep.network) : undefined;
      if (!zone) continue;
      zone.endpoints++;
      const names = [ep.id, ep.name, ...(Array.isArray(ep.aliases) ? ep.aliases : [])]
        .map((n) => (typeof n === 'string' ? dnsKey(n) : undefined))
        .filter((n): n is string => n !== undefined);
      const v4 = typeof ep.ipv4 === 'string' ? canonical(ep.ipv4) : undefined;
      const v6 = typeof ep.ipv6 === 'string' ? canonical(ep.ipv6) : undefined;
      for (const n of names) {
        if (v4) zone.add(n, 4, v4);
        if (v6) zone.add(n, 6, v6);
      }
      // PTR names the endpoint's name (else its id), as the name that resolves back to it.
      const primary = (typeof ep.name === 'string' ? dnsKey(ep.name) : undefined) ?? dnsKey(ep.id);
      if (primary !== undefined) {
        if (v4 && !zone.ptr.has(v4)) zone.ptr.set(v4, primary);
        if (v6 && !zone.ptr.has(v6)) zone.ptr.set(v6, primary);
      }
    }
    return index;
  }

  zone(network: string): Zone | undefined {
    return this.zones.get(network);
  }

  /** Every (network, address) the resolver should listen on. */
  listeners(): { network: string; address: string }[] {
    return [...this.zones.values()].flatMap((z) => z.listen.map((address) => ({ network: z.network, address })));
  }
}

/**
 * The address a reverse name stands for: `4.3.2.1.in-addr.arpa` → 1.2.3.4, 32 nibbles under
 * `ip6.arpa` → an IPv6 address. Undefined for anything else (a partial name, a zone apex).
 * `name` is an index key (lowercase, no trailing dot).
 */
export function reverseAddress(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/u.test(p) && Number(p) <= 255)) return undefined;
    return parts.reverse().join('.');
  }
  if (name.endsWith('.ip6.arpa')) {
    const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/u.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    return canonical(hex.match(/.{4}/gu)!.join(':'));
  }
  return undefined;
}
