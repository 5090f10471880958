/**
 * What nsnet writes into its sets: the elements of a network and of a container's endpoint,
 * validated and built here as plain data, with their owner as comment (`net:<network>`,
 * `ep:<endpoint>`) so a leftover is found and attributed without the store.
 */
import * as ipaddr from 'ipaddr.js';
import { invalid } from '../errors';
import * as v from '../validate';
import { SET } from './layout';
import { expandPorts, type FirewallPort, type PortEntry } from './published';
import type { IpFamily, Placed, Protocol } from './placed';

export type { FirewallPort, IpFamily, Placed, PortEntry, Protocol };

/**
 * A network as the firewall needs it. A `NetworkRecord` of lib/drivers can be passed as is
 * (other fields are ignored).
 */
export interface FirewallNetwork {
  /** The network's name: owner of its elements (`net:<name>`). At most 200 bytes. */
  name: string;
  /** Its bridge device. */
  bridge: string;
  /** IPv4 subnet ("172.20.0.0/16"; host bits are ignored). */
  subnet: string;
  /**
   * IPv6 subnet of a dual-stack network ("fd00:25::/64"; host bits are ignored): its containers'
   * IPv6 traffic gets the same treatment as their IPv4 traffic (isolation, hairpin, published
   * ports, masquerade as {@link ipMasquerade6} says).
   */
  subnet6?: string;
  /** No traffic in or out except within the network; no published ports. Default false. */
  internal?: boolean;
  /** Containers of the network may talk to each other. Default true. */
  icc?: boolean;
  /** Masquerade egress to the host's address. Default true. `false` also turns IPv6 masquerade off unless {@link ipMasquerade6} says otherwise. */
  ipMasquerade?: boolean;
  /**
   * Masquerade IPv6 egress behind the host's IPv6 address. Default: on for a unique-local
   * subnet (fc00::/7, as Docker does) when {@link ipMasquerade} is not false; off for a global
   * subnet, which is routed: its containers' own addresses go out, and the upstream router must
   * route the subnet to this host (unsolicited traffic into the network is still dropped; only
   * replies and published ports get in). Only with `subnet6`.
   */
  ipMasquerade6?: boolean;
  /**
   * Overlay networks: the network's VXLAN device on this host. It joins `bridges` (so traffic
   * into the overlay is never masqueraded, and other networks cannot reach it) and `icc` both
   * ways with the bridge (containers and the other hosts' containers talk through it).
   */
  vxlan?: string;
}

/**
 * An endpoint as the firewall needs it. An `EndpointRecord` of lib/drivers plus the bridge of
 * its network can be passed as is (other fields are ignored).
 */
export interface FirewallEndpoint {
  /** The endpoint's id: owner of its elements (`ep:<id>`). At most 200 bytes. */
  id: string;
  /** The bridge of its network. */
  bridge: string;
  /** The host end of its veth (a port of `bridge`). */
  hostIfname: string;
  /** Its IPv4 address (no prefix): the default container address of its ports' IPv4 elements. */
  ipv4: string;
  /** Its IPv6 address (no prefix), on a dual-stack network: the target of its ports' IPv6 elements. */
  ipv6?: string;
  ports?: FirewallPort[];
}

/** A network, validated, with defaults applied. */
export interface Net {
  name: string;
  bridge: string;
  /** Normalized: the network address / prefix. */
  subnet: string;
  /** Normalized like `subnet`. */
  subnet6?: string;
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  masquerade6: boolean;
  vxlan?: string;
}

const NAME_MAX = 200;

/** A network name or endpoint id: 1..200 bytes, no control characters. */
export function ownerName(value: unknown, what: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it refuses
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > NAME_MAX || /[\u0000-\u001f\u007f]/u.test(value))
    throw invalid('ERR_INVALID_NAME', `${what} ${JSON.stringify(value)} must be 1 to ${NAME_MAX} bytes without control characters`, { value });
  return value;
}

export const netOwner = (name: string): string => `net:${name}`;
export const epOwner = (id: string): string => `ep:${id}`;

/** The owner an element comment names. */
export function parseOwner(comment: string | undefined): { kind: 'network' | 'endpoint'; name: string } | undefined {
  if (comment?.startsWith('net:')) return { kind: 'network', name: comment.slice(4) };
  if (comment?.startsWith('ep:')) return { kind: 'endpoint', name: comment.slice(3) };
  return undefined;
}

function optBool(value: unknown, dflt: boolean, what: string): boolean {
  return value === undefined ? dflt : v.bool(value, what);
}

/** Whether an IPv6 subnet is unique-local (fc00::/7). */
export function isUla(cidr: string): boolean {
  const [addr] = cidr.split('/');
  return ipaddr.IPv6.parse(addr!).match(ipaddr.IPv6.parse('fc00::'), 7);
}

/** Validates a network and applies the defaults. */
export function normalizeNetwork(n: unknown): Net {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) throw invalid('ERR_INVALID_ARGUMENT', 'a network must be an object', { value: n });
  const o = n as Record<string, unknown>;
  const name = ownerName(o.name, 'network name');
  const c = v.cidr(o.subnet, 4, `subnet of network ${name}`);
  const out: Net = {
    name,
    bridge: v.ifname(o.bridge, `bridge of network ${name}`),
    subnet: `${v.networkAddress(c.address, c.prefix)}/${c.prefix}`,
    internal: optBool(o.internal, false, 'internal'),
    icc: optBool(o.icc, true, 'icc'),
    masquerade: optBool(o.ipMasquerade, true, 'ipMasquerade'),
    masquerade6: false,
  };
  if (o.subnet6 !== undefined) {
    const c6 = v.cidr(o.subnet6, 6, `IPv6 subnet of network ${name}`);
    out.subnet6 = `${v.networkAddress(c6.address, c6.prefix)}/${c6.prefix}`;
    out.masquerade6 = optBool(o.ipMasquerade6, out.masquerade && isUla(out.subnet6), 'ipMasquerade6');
  } else if (o.ipMasquerade6 !== undefined) {
    throw invalid('ERR_INVALID_ARGUMENT', `ipMasquerade6 of network ${name} needs subnet6`, { network: name });
  }
  if (o.vxlan !== undefined) {
    out.vxlan = v.ifname(o.vxlan, `VXLAN device of network ${name}`);
    if (out.internal || !out.icc) throw invalid('ERR_INVALID_ARGUMENT', `overlay network ${name} cannot be internal or without ICC`, { network: name });
  }
  return out;
}

/** The elements a network owns. */
export function networkElements(n: Net): Placed[] {
  const comment = netOwner(n.name);
  const out: Placed[] = [{ set: SET.bridges, element: { key: n.bridge, comment } }];
  if (n.icc) out.push({ set: SET.icc, element: { key: [n.bridge, n.bridge], comment } });
  else out.push({ set: SET.noiccBridges, element: { key: n.bridge, comment } });
  if (n.vxlan) {
    out.push({ set: SET.bridges, element: { key: n.vxlan, comment } });
    out.push({ set: SET.icc, element: { key: [n.bridge, n.vxlan], comment } });
    out.push({ set: SET.icc, element: { key: [n.vxlan, n.bridge], comment } });
  }
  if (n.internal) {
    out.push({ set: SET.internal, element: { key: n.bridge, comment } });
    out.push({ set: SET.internalSubnets, element: { key: n.subnet, comment } });
    if (n.subnet6) out.push({ set: SET.internalSubnets6, element: { key: n.subnet6, comment } });
  } else {
    out.push({ set: SET.hairpin, element: { key: [n.subnet, n.bridge], comment } });
    if (n.masquerade) out.push({ set: SET.masqSubnets, element: { key: n.subnet, comment } });
    if (n.subnet6) {
      out.push({ set: SET.hairpin6, element: { key: [n.subnet6, n.bridge], comment } });
      if (n.masquerade6) out.push({ set: SET.masqSubnets6, element: { key: n.subnet6, comment } });
    }
  }
  return out;
}

/** An endpoint, validated. */
export interface Ep {
  id: string;
  bridge: string;
  hostIfname: string;
  ipv4: string;
  ipv6?: string;
  ports: PortEntry[];
}

/**
 * Validates an endpoint (ports included). For a removal (`forRemoval`) only the id, the host
 * interface and the ports' host side matter: the bridge and addresses may be absent or stale.
 */
export function normalizeEndpoint(e: unknown, forRemoval = false): Ep {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalid('ERR_INVALID_ARGUMENT', 'an endpoint must be an object', { value: e });
  const o = e as Record<string, unknown>;
  const id = ownerName(o.id, 'endpoint id');
  const ipv4 = forRemoval ? '0.0.0.0' : v.ip(o.ipv4, 4, `address of endpoint ${id}`).address;
  const ipv6 = forRemoval || o.ipv6 === undefined ? undefined : v.ip(o.ipv6, 6, `IPv6 address of endpoint ${id}`).address;
  return {
    id,
    bridge: forRemoval ? String(o.bridge ?? '') : v.ifname(o.bridge, `bridge of endpoint ${id}`),
    hostIfname: v.ifname(o.hostIfname, `host interface of endpoint ${id}`),
    ipv4,
    ...(ipv6 !== undefined ? { ipv6 } : {}),
    ports: expandPorts(o.ports ?? [], { ipv4, ...(ipv6 !== undefined ? { ipv6 } : {}) }, forRemoval),
  };
}

/** A stable string for a key (map keys of plans and listings). */
export function keyId(set: string, key: unknown): string {
  return `${set} ${JSON.stringify(key)}`;
}
