/**
 * Published ports: validation of what a caller asks for, its expansion into one entry per
 * address family and host port, and the map elements those entries are.
 *
 * Published port ranges: `hostPort..hostPortEnd` maps port by port onto
 * `containerPort..containerPort + (hostPortEnd - hostPort)`, one map element per port. A range
 * cannot be one interval element: the map value would have to be a port range, which the kernel
 * translates into the same range only through NF_NAT_RANGE_PROTO_OFFSET with a base port — and
 * nf_tables' nat expression has no base-port attribute, so with `proto_offset` the kernel maps
 * port p to `min + p mod n` (a rotation, verified on this kernel), not a shift. Per-port
 * elements keep lookups O(1) and exact; a range of n ports costs n elements.
 */
import * as ipaddr from 'ipaddr.js';
import { invalid } from '../errors';
import * as v from '../validate';
import type { IpFamily, Placed, Protocol } from './placed';
import { SET, type SetName } from './layout';

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];

/**
 * A published port. Compatible with lib/drivers' `PortMapping` plus the container addresses
 * (which `connectEndpoint` takes from the endpoint's `ipv4` / `ipv6` when absent).
 *
 * Which host addresses, by `hostIp`:
 * - omitted: every local address of each family the container has an address of — IPv4 (the
 *   loopback 127.0.0.0/8 included) and, when there is a container IPv6 address, IPv6 (but `::1`):
 *   two elements, one per family, both claimed or neither;
 * - `'0.0.0.0'`: every local IPv4 address only; `'::'`: every local IPv6 address only;
 * - one address of either family: that address only (the container address of the same family
 *   is the target). `::1`, IPv6 link-local, multicast and IPv4-mapped addresses are refused
 *   (ERR_INVALID_HOST_IP): the kernel cannot DNAT to or from `::1` (there is no
 *   `route_localnet` for IPv6).
 *
 * The two families' claims are independent: `'0.0.0.0'` and `'::'` may go to two different
 * containers; an omitted `hostIp` needs both free.
 */
export interface FirewallPort {
  protocol: Protocol;
  /** Host address, see above. */
  hostIp?: string;
  /** 1..65535 (resolve "any free port" before). */
  hostPort: number;
  /** Last host port of a range, inclusive; the container range has the same length. */
  hostPortEnd?: number;
  containerPort: number;
  /** The container's IPv4 address (target of the IPv4 element). */
  containerIp?: string;
  /** The container's IPv6 address (target of the IPv6 element). */
  containerIp6?: string;
}

/** One published host port of one family (ranges expanded), validated. */
export interface PortEntry {
  family: IpFamily;
  /** undefined: every local address of the family. */
  hostIp?: string;
  protocol: Protocol;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** The wildcard address of a family. */
export const anyAddress = (family: IpFamily): string => (family === 4 ? '0.0.0.0' : '::');

/**
 * A published port's host address: undefined (every address of every family the container
 * has), a family's wildcard, or one address.
 * @throws ERR_INVALID_IP (not an address), ERR_INVALID_HOST_IP (an address nothing can be published on)
 */
export function parseHostIp(value: unknown): { families: IpFamily[]; hostIp?: string } {
  if (value === undefined) return { families: [4, 6] };
  const a = v.ip(value, undefined, 'hostIp');
  if (a.address === '0.0.0.0') return { families: [4] };
  if (a.address === '::') return { families: [6] };
  if (a.family === 6) {
    const parsed = ipaddr.IPv6.parse(a.address);
    const range = parsed.range();
    const why =
      range === 'loopback'
        ? "the kernel cannot DNAT to or from ::1 (IPv6 has no route_localnet); publish on 127.0.0.1, on every address, or on one of the host's own IPv6 addresses"
        : range === 'linkLocal'
          ? 'link-local addresses need a zone, which a published port cannot carry'
          : range === 'multicast'
            ? 'it is a multicast address'
            : range === 'ipv4Mapped'
              ? `it is an IPv4-mapped address: publish on ${parsed.toIPv4Address().toString()}`
              : undefined;
    if (why) throw invalid('ERR_INVALID_HOST_IP', `hostIp ${a.address} cannot be published on: ${why}`, { hostIp: a.address, range });
  }
  return { families: [a.family], hostIp: a.address };
}

/**
 * Validates published ports and expands them into one entry per family and port. Two entries of
 * one call may not claim the same host port of one family (the same protocol and port on every
 * address, or on one address twice); exact repetitions are merged. The container addresses are
 * the port's `containerIp` / `containerIp6`, else `defaults`. For a removal the container side is
 * not looked at (every family's element of the host side is meant).
 */
export function expandPorts(ports: unknown, defaults: { ipv4?: string; ipv6?: string } = {}, forRemoval = false): PortEntry[] {
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'ports must be an array', { value: ports });
  const out: PortEntry[] = [];
  const claimed = new Map<string, PortEntry[]>();
  for (const p of ports) {
    const o = v.knownKeys(p, ['protocol', 'hostIp', 'hostPort', 'hostPortEnd', 'containerPort', 'containerIp', 'containerIp6'], 'published port');
    if (!PROTOCOLS.includes(o.protocol as Protocol))
      throw invalid('ERR_INVALID_ARGUMENT', `published port: protocol must be one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(o.protocol)}`, {
        value: o.protocol,
      });
    const protocol = o.protocol as Protocol;
    const hostPort = v.int(o.hostPort, 1, 65535, 'hostPort');
    const hostPortEnd = o.hostPortEnd === undefined ? hostPort : v.int(o.hostPortEnd, hostPort, 65535, 'hostPortEnd');
    const count = hostPortEnd - hostPort + 1;
    const containerPort = v.int(o.containerPort, 1, 65536 - count, count > 1 ? `containerPort (for a range of ${count})` : 'containerPort');
    const host = parseHostIp(o.hostIp);
    const targets: [IpFamily, string][] = [];
    if (forRemoval) {
      // Removal matches by host side only: the container side is whatever the element says.
      for (const f of host.families) targets.push([f, anyAddress(f)]);
    } else {
      const c4 = o.containerIp ?? defaults.ipv4;
      const c6 = o.containerIp6 ?? defaults.ipv6;
      if (c4 !== undefined && host.families.includes(4)) targets.push([4, v.ip(c4, 4, 'containerIp').address]);
      else if (o.containerIp !== undefined) v.ip(o.containerIp, 4, 'containerIp');
      if (c6 !== undefined && host.families.includes(6)) targets.push([6, v.ip(c6, 6, 'containerIp6').address]);
      else if (o.containerIp6 !== undefined) v.ip(o.containerIp6, 6, 'containerIp6');
      if (targets.length === 0) {
        const what =
          o.hostIp === undefined
            ? 'containerIp or containerIp6'
            : host.families[0] === 4
              ? 'containerIp (an IPv4 container address)'
              : 'containerIp6 (an IPv6 container address: the endpoint has none)';
        throw invalid(
          'ERR_INVALID_ARGUMENT',
          `published port ${protocol}/${hostPort}${o.hostIp === undefined ? '' : ` on ${String(o.hostIp)}`}: ${what} is required`,
          { protocol, hostPort },
        );
      }
    }
    for (const [family, containerIp] of targets) {
      for (let i = 0; i < count; i++) {
        const e: PortEntry = {
          family,
          ...(host.hostIp !== undefined ? { hostIp: host.hostIp } : {}),
          protocol,
          hostPort: hostPort + i,
          containerIp,
          containerPort: containerPort + i,
        };
        const id = `${family} ${protocol} ${e.hostPort}`;
        const same = claimed.get(id) ?? [];
        // One address, or every address, overlaps any other claim of the same address or every address (of its family).
        const prev = same.find((x) => x.hostIp === undefined || e.hostIp === undefined || x.hostIp === e.hostIp);
        if (prev) {
          if (prev.hostIp === e.hostIp && prev.containerIp === e.containerIp && prev.containerPort === e.containerPort) continue;
          throw invalid('ERR_INVALID_ARGUMENT', `${describePort(e)} is published twice in one request`, { protocol, hostPort: e.hostPort });
        }
        claimed.set(id, [...same, e]);
        out.push(e);
      }
    }
  }
  return out;
}

/** An address as written next to a port: IPv6 in brackets. */
export const showIp = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);

/** The host address of an entry as reported: its address, or its family's wildcard. */
export const hostIpOf = (e: { family: IpFamily; hostIp?: string }): string => e.hostIp ?? anyAddress(e.family);

/** "tcp port 8080 on 0.0.0.0", "udp port 53 on [::]" */
export function describePort(e: { family: IpFamily; hostIp?: string; protocol: string; hostPort: number }): string {
  return `${e.protocol} port ${e.hostPort} on ${showIp(hostIpOf(e))}`;
}

/** The published-ports maps and index of a family. */
export function portSets(family: IpFamily): { any: SetName; hostip: SetName; index: SetName } {
  return family === 4
    ? { any: SET.publishedAny, hostip: SET.publishedHostip, index: SET.hostipPorts }
    : { any: SET.publishedAny6, hostip: SET.publishedHostip6, index: SET.hostipPorts6 };
}

/** Where a published port's element goes and its key. */
export function portKey(e: { family: IpFamily; hostIp?: string; protocol: Protocol; hostPort: number }): { set: SetName; key: (string | number)[] } {
  const s = portSets(e.family);
  return e.hostIp === undefined ? { set: s.any, key: [e.protocol, e.hostPort] } : { set: s.hostip, key: [e.hostIp, e.protocol, e.hostPort] };
}

/** The map element of a published port. */
export function portElement(e: PortEntry, owner: string): Placed {
  const { set, key } = portKey(e);
  return { set, element: { key, value: [e.containerIp, e.containerPort], comment: owner } };
}

/** The derived index element saying "(proto, port) is published on some single address" of a family. */
export function indexElement(family: IpFamily, protocol: Protocol, port: number): Placed {
  return { set: portSets(family).index, element: { key: [protocol, port] } };
}

/** The published-ports maps, both families. */
export const PORT_MAPS: readonly SetName[] = [SET.publishedAny, SET.publishedHostip, SET.publishedAny6, SET.publishedHostip6];

/** A listed element of a published-ports map as a port entry (undefined if it does not decode). */
export function entryOf(set: string, el: { key: unknown; value?: unknown }): PortEntry | undefined {
  const k = el.key as unknown[];
  const val = el.value as unknown[] | undefined;
  if (!Array.isArray(k) || !Array.isArray(val)) return undefined;
  const base = { containerIp: String(val[0]), containerPort: Number(val[1]) };
  const family: IpFamily = set === SET.publishedAny6 || set === SET.publishedHostip6 ? 6 : 4;
  if ((set === SET.publishedAny || set === SET.publishedAny6) && k.length === 2) return { family, protocol: k[0] as Protocol, hostPort: Number(k[1]), ...base };
  if ((set === SET.publishedHostip || set === SET.publishedHostip6) && k.length === 3)
    return { family, hostIp: String(k[0]), protocol: k[1] as Protocol, hostPort: Number(k[2]), ...base };
  return undefined;
}
