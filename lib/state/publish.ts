/**
 * What a connect asks of host ports, validated before anything changes: published ports
 * (`publish`, bridge and overlay) and the claims of host-mode containers (`ports`), and which
 * address families and host addresses each one covers.
 *
 * A mapping's `hostIp` says where it is published, as Docker does:
 * - absent: every host address of both families when the endpoint is dual-stack (an IPv6
 *   address on a network with `subnet6`), of IPv4 otherwise — two claims on a dual-stack
 *   endpoint, made together or not at all; a host-mode claim always covers both families;
 * - `'0.0.0.0'`: every IPv4 address only; `'::'`: every IPv6 address only;
 * - one address: that address only (of its family).
 * `::1`, link-local, multicast and IPv4-mapped addresses cannot be published on (the firewall's
 * ERR_INVALID_HOST_IP); IPv6 on an endpoint without an IPv6 address is ERR_NO_IPV6_SUBNET.
 */
import * as ipaddr from 'ipaddr.js';
import type { HostPort, PortMapping } from '../host-types';
import { invalid } from '../errors';
import { Firewall } from '../firewall/firewall';
import { anyAddress, parseHostIp } from '../firewall/published';
import * as v from '../validate';

const PROTOCOLS = ['tcp', 'udp', 'sctp'];

/** An address family. */
export type Family = 4 | 6;

/** One (family, host address) a mapping covers: `hostIp` absent is every address of the family. */
export interface Target {
  family: Family;
  hostIp?: string;
}

/** Host ports a mapping covers. */
export function span(p: PortMapping): [number, number] {
  return [p.hostPort, p.hostPortEnd ?? p.hostPort];
}

/**
 * The families and addresses a mapping covers (see the file comment); `dual`: the endpoint has
 * both families (a host-mode claim always has).
 */
export function targetsOf(p: Pick<PortMapping, 'hostIp'>, dual: boolean): Target[] {
  if (p.hostIp === undefined) return dual ? [{ family: 4 }, { family: 6 }] : [{ family: 4 }];
  if (p.hostIp === '0.0.0.0') return [{ family: 4 }];
  if (p.hostIp === '::') return [{ family: 6 }];
  return [{ family: p.hostIp.includes(':') ? 6 : 4, hostIp: p.hostIp }];
}

/** A target as a mapping's `hostIp`: its address, or its family's wildcard. */
export const hostIpOf = (t: Target): string => t.hostIp ?? anyAddress(t.family);

/** Normalizes and validates published ports (`publish`; hostPort 0 stays 0: resolved later). */
export function normalizePublish(ports: unknown): PortMapping[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'publish must be an array of port mappings');
  return ports.map((p, i) => {
    v.knownKeys(p, ['protocol', 'hostIp', 'hostPort', 'hostPortEnd', 'containerPort'], `publish[${i}]`);
    const m = p as PortMapping;
    const protocol = m.protocol ?? 'tcp';
    if (!PROTOCOLS.includes(protocol)) throw invalid('ERR_INVALID_ARGUMENT', `publish[${i}].protocol must be tcp, udp or sctp`);
    const out: PortMapping = {
      protocol,
      hostPort: v.int(m.hostPort, 0, 65535, `publish[${i}].hostPort`, 'ERR_INVALID_PORT'),
      containerPort: v.int(m.containerPort, 1, 65535, `publish[${i}].containerPort`, 'ERR_INVALID_PORT'),
    };
    if (m.hostIp !== undefined) {
      // The firewall's own check: ERR_INVALID_IP, ERR_INVALID_HOST_IP (::1, link-local, ...).
      v.ip(m.hostIp, undefined, `publish[${i}].hostIp`);
      const host = parseHostIp(m.hostIp);
      out.hostIp = host.hostIp ?? anyAddress(host.families[0]!);
    }
    if (m.hostPortEnd !== undefined) {
      out.hostPortEnd = v.int(m.hostPortEnd, 1, 65535, `publish[${i}].hostPortEnd`, 'ERR_INVALID_PORT');
      if (out.hostPort === 0) throw invalid('ERR_INVALID_PORT', `publish[${i}]: a range needs a fixed hostPort`);
      if (out.hostPortEnd < out.hostPort) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the range ${out.hostPort}-${out.hostPortEnd} is backwards`);
      if (out.containerPort + (out.hostPortEnd - out.hostPort) > 65535) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the container range passes 65535`);
    }
    return out;
  });
}

/**
 * Refuses IPv6 publishing on an endpoint that will have no IPv6 address: `network6` says whether
 * the network has an IPv6 subnet, `wants6` whether the endpoint takes an address of it
 * (`ipv6: false` does not).
 * @throws ERR_NO_IPV6_SUBNET, ERR_INVALID_ARGUMENT
 */
export function checkPublishFamilies(ports: PortMapping[], network: string, network6: boolean, wants6: boolean): void {
  for (const [i, p] of ports.entries()) {
    if (p.hostIp === undefined || targetsOf(p, true)[0]!.family !== 6) continue;
    const where = `publish[${i}] on ${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}`;
    if (!network6)
      throw invalid(
        'ERR_NO_IPV6_SUBNET',
        `${where}: network ${network} has no IPv6 subnet, so nothing can be published over IPv6 (publish on 0.0.0.0 or an IPv4 address, or create the network with subnet6)`,
        { network, hostIp: p.hostIp },
      );
    if (!wants6)
      throw invalid('ERR_INVALID_ARGUMENT', `${where}: the endpoint takes no IPv6 address (ipv6: false), so nothing can be published to it over IPv6`, {
        network,
        hostIp: p.hostIp,
      });
  }
}

/**
 * The firewall's validation of the ports an endpoint publishes, with its container addresses
 * (before any kernel change): a port it would refuse is refused here.
 * @throws ERR_INVALID_ARGUMENT, ERR_INVALID_IP, ERR_INVALID_HOST_IP, ERR_INVALID_PORT
 */
export function checkWithFirewall(ports: PortMapping[], ep: { ipv4?: string; ipv6?: string }): void {
  if (!ports.length || ep.ipv4 === undefined) return;
  Firewall.checkPorts(ports, { ipv4: ep.ipv4, ...(ep.ipv6 !== undefined ? { ipv6: ep.ipv6 } : {}) });
}

/**
 * Normalizes the ports a host-mode container claims (`ports`) into ledger mappings (hostPort =
 * containerPort). Any address of either family may be claimed (a host-mode process can listen
 * on `::1`); no `hostIp` is every address of both families.
 */
export function normalizeClaims(ports: unknown): PortMapping[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'ports must be an array of { protocol, port, portEnd?, hostIp? }');
  return ports.map((p: HostPort, i) => {
    v.knownKeys(p, ['protocol', 'port', 'portEnd', 'hostIp'], `ports[${i}]`);
    const protocol = p.protocol ?? 'tcp';
    if (!PROTOCOLS.includes(protocol)) throw invalid('ERR_INVALID_ARGUMENT', `ports[${i}].protocol must be tcp, udp or sctp`);
    const port = v.int(p.port, 1, 65535, `ports[${i}].port`, 'ERR_INVALID_PORT');
    const out: PortMapping = { protocol, hostPort: port, containerPort: port };
    if (p.portEnd !== undefined) {
      out.hostPortEnd = v.int(p.portEnd, 1, 65535, `ports[${i}].portEnd`, 'ERR_INVALID_PORT');
      if (out.hostPortEnd < port) throw invalid('ERR_INVALID_PORT', `ports[${i}]: the range ${port}-${out.hostPortEnd} is backwards`);
    }
    if (p.hostIp !== undefined) {
      const a = v.ip(p.hostIp, undefined, `ports[${i}].hostIp`);
      if (a.family === 6 && ipaddr.IPv6.parse(a.address).isIPv4MappedAddress())
        throw invalid(
          'ERR_INVALID_HOST_IP',
          `ports[${i}].hostIp ${a.address} is an IPv4-mapped address: claim ${ipaddr.IPv6.parse(a.address).toIPv4Address().toString()}`,
          { hostIp: a.address },
        );
      out.hostIp = a.address;
    }
    return out;
  });
}

/** The protocols sock_diag must be asked about for these ports (SCTP has no listener check). */
export function socketProtocols(ports: PortMapping[]): ('tcp' | 'udp')[] {
  return [...new Set(ports.map((p) => p.protocol))].filter((p): p is 'tcp' | 'udp' => p !== 'sctp');
}
