/**
 * Checking what users give the resolver: endpoint names and aliases, and upstream servers.
 * `connect()` and `createNetwork()` call these so that bad input is a typed error before
 * anything is made; the resolver only indexes what passes them.
 */
import * as ipaddr from 'ipaddr.js';
import { invalid } from '../errors';
import type { EndpointDnsNames, NetworkDns } from './types';

/** One label: letters, digits, '-' and '_' (container names use it), not starting or ending with '-'. */
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/u;

/**
 * A DNS name as the index keys it: lowercase, no trailing dot. Undefined when it is not a name
 * the resolver can answer for (empty label, label over 63 bytes, over 253 bytes, other characters).
 */
export function dnsKey(name: string): string | undefined {
  let n = name.toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n.length === 0 || n.length > 253) return undefined;
  for (const label of n.split('.')) if (!LABEL.test(label)) return undefined;
  return n;
}

/**
 * Checks an endpoint's `name` and `aliases`: each a DNS name (labels of letters, digits, '-'
 * and '_'; at most 253 characters). Returns them trimmed of duplicates.
 * @throws NsnetError ERR_INVALID_NAME
 */
export function checkEndpointNames(o: EndpointDnsNames): EndpointDnsNames {
  const out: EndpointDnsNames = {};
  const one = (n: unknown, what: string): string => {
    if (typeof n !== 'string' || dnsKey(n) === undefined || n.endsWith('.'))
      throw invalid(
        'ERR_INVALID_NAME',
        `${what} ${JSON.stringify(n)} is not a DNS name: labels of letters, digits, "-" and "_" separated by dots, at most 253 characters`,
        { value: n },
      );
    return n;
  };
  if (o.name !== undefined) out.name = one(o.name, 'name');
  if (o.aliases !== undefined) {
    if (!Array.isArray(o.aliases) || o.aliases.length > 64)
      throw invalid('ERR_INVALID_ARGUMENT', 'aliases must be an array of at most 64 names', { value: o.aliases });
    out.aliases = [...new Set(o.aliases.map((a, i) => one(a, `aliases[${i}]`)))];
  }
  return out;
}

/** An upstream server: address and port. */
export interface Upstream {
  address: string;
  port: number;
  family: 4 | 6;
}

/**
 * Parses `'192.0.2.53'`, `'192.0.2.53:5353'`, `'2001:db8::53'` or `'[2001:db8::53]:5353'`.
 * A link-local IPv6 address may carry its zone (`fe80::1%eth0`) — it is dropped, and such an
 * upstream is refused: the resolver has no interface to scope it to.
 * @throws NsnetError ERR_INVALID_IP
 */
export function parseUpstream(spec: unknown): Upstream {
  const bad = (why: string): never => {
    throw invalid('ERR_INVALID_IP', `DNS upstream ${JSON.stringify(spec)} ${why}`, { value: spec });
  };
  if (typeof spec !== 'string' || spec.length > 64) return bad('is not an address');
  let host = spec;
  let port = 53;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/u.exec(spec) ?? /^([0-9.]+):(\d{1,5})$/u.exec(spec);
  if (m) {
    host = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (port < 1 || port > 65535) bad('has a port outside 1..65535');
  if (!ipaddr.isValid(host) || (!host.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(host))) bad('is not an IP address (with an optional :port)');
  const addr = ipaddr.parse(host);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).range() === 'linkLocal') bad('is link-local: give a routable address');
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return { address: (addr as ipaddr.IPv6).toIPv4Address().toString(), port, family: 4 };
  }
  return { address: addr.toString(), port, family: addr.kind() === 'ipv4' ? 4 : 6 };
}

/**
 * Checks a network's `dns` option (see {@link NetworkDns}); returns it normalized.
 * @throws NsnetError ERR_INVALID_ARGUMENT, ERR_INVALID_IP
 */
export function checkNetworkDns(dns: unknown): NetworkDns | undefined {
  if (dns === undefined || dns === false) return dns;
  if (dns === true) return {};
  if (dns === null || typeof dns !== 'object' || Array.isArray(dns))
    throw invalid('ERR_INVALID_ARGUMENT', 'dns must be false, true or { upstream: [addresses] }', { value: dns });
  const keys = Object.keys(dns);
  const extra = keys.find((k) => k !== 'upstream');
  if (extra !== undefined) throw invalid('ERR_INVALID_ARGUMENT', `dns.${extra} is not an option (dns takes { upstream })`, { option: extra });
  const up = (dns as { upstream?: unknown }).upstream;
  if (up === undefined) return {};
  if (!Array.isArray(up) || up.length > 16) throw invalid('ERR_INVALID_ARGUMENT', 'dns.upstream must be an array of at most 16 addresses', { value: up });
  return {
    upstream: up.map((u) => {
      parseUpstream(u);
      return u as string;
    }),
  };
}
