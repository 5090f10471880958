/**
 * A network's DNS as the records say: whether the resolver serves it, on which addresses, which
 * upstreams it forwards to, and what a container of it gets in its resolv.conf.
 */
import type { NetworkRecord } from '../host-types';
import { parseUpstream, type Upstream } from './names';
import { readResolvConf, type ResolvConf } from './resolvconf';
import type { DnsConfig, NetworkDns } from './types';

/** A network record as the resolver reads it: any driver's, with the optional `dns` field. */
export type DnsNetworkRecord = NetworkRecord & { dns?: NetworkDns };

/**
 * The predefined default network (lib/host.ts DEFAULT_NETWORK). Like Docker's `bridge`, it has
 * no embedded DNS unless its record says otherwise: containers on it were never promised names.
 */
const PREDEFINED_BRIDGE = 'bridge';

/**
 * Whether the resolver serves `net`: bridge and overlay networks with a gateway on this host,
 * unless `dns: false` (or, for the predefined `bridge`, unless `dns` turns it on). Never macvlan
 * (its gateway is a router outside the host, and its containers cannot reach the host through
 * their parent) nor host/none/container (no network of their own).
 */
export function dnsEnabled(net: DnsNetworkRecord): boolean {
  if (net.driver !== 'bridge' && net.driver !== 'overlay') return false;
  if (net.dns === false) return false;
  if (net.name === PREDEFINED_BRIDGE && net.driver === 'bridge') return net.dns !== undefined;
  return true;
}

/** The addresses the resolver listens on for `net`: its gateway(s) on this host. */
export function listenAddresses(net: DnsNetworkRecord): string[] {
  if (!dnsEnabled(net)) return [];
  const out: string[] = [];
  if ('gateway' in net && net.gateway) out.push(net.gateway);
  if (net.driver === 'bridge' && net.subnet6 && net.gateway6) out.push(net.gateway6);
  return out;
}

/** Whether `net` may forward names that are not its own (internal networks never do). */
export function forwards(net: DnsNetworkRecord): boolean {
  return !(net.driver === 'bridge' && net.internal);
}

/** The network's own upstreams, or undefined: the host's (resolv.conf). Invalid entries are skipped. */
export function networkUpstreams(net: DnsNetworkRecord): Upstream[] | undefined {
  if (!net.dns || net.dns.upstream === undefined) return undefined;
  const out: Upstream[] = [];
  for (const u of net.dns.upstream) {
    try {
      out.push(parseUpstream(u));
    } catch {
      /* checked at createNetwork; a hand-edited record's bad entry is left out */
    }
  }
  return out;
}

/**
 * What a container connected to `net` with the addresses of `ep` gets for its resolv.conf, or
 * undefined when the network has no DNS. Nameservers: the gateway of each address family the
 * endpoint has (IPv4 first). Search: the host's (from `resolv`, default /etc/resolv.conf now).
 */
export function dnsConfig(net: DnsNetworkRecord, ep: { ipv4?: string; ipv6?: string }, resolv?: ResolvConf): DnsConfig | undefined {
  if (!dnsEnabled(net)) return undefined;
  const nameservers: string[] = [];
  if (ep.ipv4 !== undefined && 'gateway' in net && net.gateway) nameservers.push(net.gateway);
  if (ep.ipv6 && net.driver === 'bridge' && net.subnet6 && net.gateway6) nameservers.push(net.gateway6);
  if (nameservers.length === 0) return undefined;
  return { nameservers, search: [...(resolv ?? readResolvConf()).search], options: ['ndots:0'] };
}
