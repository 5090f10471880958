/**
 * What nsnet writes into its sets: the elements of a network and of a container's endpoint,
 * validated and built here as plain data, with their owner as comment (`net:<network>`,
 * `ep:<endpoint>`) so a leftover is found and attributed without the store.
 *
 * Published port ranges: `hostPort..hostPortEnd` maps port by port onto
 * `containerPort..containerPort + (hostPortEnd - hostPort)`, one map element per port. A range
 * cannot be one interval element: the map value would have to be a port range, which the kernel
 * translates into the same range only through NF_NAT_RANGE_PROTO_OFFSET with a base port — and
 * nf_tables' nat expression has no base-port attribute, so with `proto_offset` the kernel maps
 * port p to `min + p mod n` (a rotation, verified on this kernel), not a shift. Per-port
 * elements keep lookups O(1) and exact; a range of n ports costs n elements.
 */
import { invalid } from '../errors';
import type { ElementSpec } from '../nftables/types';
import * as v from '../validate';
import { SET, type SetName } from './layout';

/** Transport protocols a port can be published for. */
export type Protocol = 'tcp' | 'udp' | 'sctp';
const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];

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
  /** No traffic in or out except within the network; no published ports. Default false. */
  internal?: boolean;
  /** Containers of the network may talk to each other. Default true. */
  icc?: boolean;
  /** Masquerade egress to the host's address. Default true. */
  ipMasquerade?: boolean;
  /**
   * Overlay networks: the network's VXLAN device on this host. It joins `bridges` (so traffic
   * into the overlay is never masqueraded, and other networks cannot reach it) and `icc` both
   * ways with the bridge (containers and the other hosts' containers talk through it).
   */
  vxlan?: string;
}

/**
 * A published port. Compatible with lib/drivers' `PortMapping` plus the container address
 * (which `connectEndpoint` takes from the endpoint's `ipv4` when absent).
 */
export interface FirewallPort {
  protocol: Protocol;
  /** IPv4 host address; omitted or '0.0.0.0': every local address (127.0.0.0/8 excepted). */
  hostIp?: string;
  /** 1..65535 (resolve "any free port" before). */
  hostPort: number;
  /** Last host port of a range, inclusive; the container range has the same length. */
  hostPortEnd?: number;
  containerPort: number;
  containerIp?: string;
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
  /** Its IPv4 address (no prefix): the default container address of its ports. */
  ipv4: string;
  ports?: FirewallPort[];
}

/** One element of one of nsnet's sets or maps. */
export interface Placed {
  set: SetName;
  element: ElementSpec;
}

/** A network, validated, with defaults applied. */
export interface Net {
  name: string;
  bridge: string;
  /** Normalized: the network address / prefix. */
  subnet: string;
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  vxlan?: string;
}

/** One published host port (ranges expanded), validated. */
export interface PortEntry {
  /** undefined: every local address. */
  hostIp?: string;
  protocol: Protocol;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

const NAME_MAX = 200;

/** A network name or endpoint id: 1..200 bytes, no control characters. */
export function ownerName(value: unknown, what: string): string {
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
  };
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
  } else {
    out.push({ set: SET.hairpin, element: { key: [n.subnet, n.bridge], comment } });
    if (n.masquerade) out.push({ set: SET.masqSubnets, element: { key: n.subnet, comment } });
  }
  return out;
}

/**
 * Validates an endpoint (ports included). For a removal (`forRemoval`) only the id, the host
 * interface and the ports' host side matter: the bridge and address may be absent or stale.
 */
export function normalizeEndpoint(e: unknown, forRemoval = false): { id: string; bridge: string; hostIfname: string; ipv4: string; ports: PortEntry[] } {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalid('ERR_INVALID_ARGUMENT', 'an endpoint must be an object', { value: e });
  const o = e as Record<string, unknown>;
  const id = ownerName(o.id, 'endpoint id');
  const ipv4 = forRemoval ? '0.0.0.0' : v.ip(o.ipv4, 4, `address of endpoint ${id}`).address;
  return {
    id,
    bridge: forRemoval ? String(o.bridge ?? '') : v.ifname(o.bridge, `bridge of endpoint ${id}`),
    hostIfname: v.ifname(o.hostIfname, `host interface of endpoint ${id}`),
    ipv4,
    ports: expandPorts(o.ports ?? [], ipv4, forRemoval),
  };
}

/**
 * Validates published ports and expands ranges into one entry per port. Two entries of one
 * call may not claim the same host port (the same protocol and port on every address, or on
 * one address twice); exact repetitions are merged. For a removal the container side is not
 * looked at.
 */
export function expandPorts(ports: unknown, defaultContainerIp?: string, forRemoval = false): PortEntry[] {
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'ports must be an array', { value: ports });
  const out: PortEntry[] = [];
  const claimed = new Map<string, PortEntry[]>();
  for (const p of ports) {
    const o = v.knownKeys(p, ['protocol', 'hostIp', 'hostPort', 'hostPortEnd', 'containerPort', 'containerIp'], 'published port');
    if (!PROTOCOLS.includes(o.protocol as Protocol))
      throw invalid('ERR_INVALID_ARGUMENT', `published port: protocol must be one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(o.protocol)}`, { value: o.protocol });
    const protocol = o.protocol as Protocol;
    const hostPort = v.int(o.hostPort, 1, 65535, 'hostPort');
    const hostPortEnd = o.hostPortEnd === undefined ? hostPort : v.int(o.hostPortEnd, hostPort, 65535, 'hostPortEnd');
    const count = hostPortEnd - hostPort + 1;
    const containerPort = v.int(o.containerPort, 1, 65536 - count, count > 1 ? `containerPort (for a range of ${count})` : 'containerPort');
    let hostIp: string | undefined;
    if (o.hostIp !== undefined) {
      hostIp = v.ip(o.hostIp, 4, 'hostIp').address;
      if (hostIp === '0.0.0.0') hostIp = undefined;
    }
    // Removal matches by host side only: the container side is whatever the element says.
    const cip = forRemoval ? (defaultContainerIp ?? '0.0.0.0') : (o.containerIp ?? defaultContainerIp);
    if (cip === undefined) throw invalid('ERR_INVALID_ARGUMENT', `published port ${protocol}/${hostPort}: containerIp is required`);
    const containerIp = v.ip(cip, 4, 'containerIp').address;
    for (let i = 0; i < count; i++) {
      const e: PortEntry = { ...(hostIp !== undefined ? { hostIp } : {}), protocol, hostPort: hostPort + i, containerIp, containerPort: containerPort + i };
      const same = claimed.get(`${protocol} ${e.hostPort}`) ?? [];
      // One address, or every address, overlaps any other claim of the same address or every address.
      const prev = same.find((x) => x.hostIp === undefined || e.hostIp === undefined || x.hostIp === e.hostIp);
      if (prev) {
        if (prev.hostIp === e.hostIp && prev.containerIp === e.containerIp && prev.containerPort === e.containerPort) continue;
        throw invalid('ERR_INVALID_ARGUMENT', `${describePort(e)} is published twice in one request`, { protocol, hostPort: e.hostPort });
      }
      claimed.set(`${protocol} ${e.hostPort}`, [...same, e]);
      out.push(e);
    }
  }
  return out;
}

/** "tcp port 8080 on 0.0.0.0" */
export function describePort(e: { hostIp?: string; protocol: string; hostPort: number }): string {
  return `${e.protocol} port ${e.hostPort} on ${e.hostIp ?? '0.0.0.0'}`;
}

/** Where a published port's element goes and its key. */
export function portKey(e: { hostIp?: string; protocol: Protocol; hostPort: number }): { set: SetName; key: (string | number)[] } {
  return e.hostIp === undefined
    ? { set: SET.publishedAny, key: [e.protocol, e.hostPort] }
    : { set: SET.publishedHostip, key: [e.hostIp, e.protocol, e.hostPort] };
}

/** The map element of a published port. */
export function portElement(e: PortEntry, owner: string): Placed {
  const { set, key } = portKey(e);
  return { set, element: { key, value: [e.containerIp, e.containerPort], comment: owner } };
}

/** The derived index element saying "(proto, port) is published on some single address". */
export function indexElement(protocol: Protocol, port: number): Placed {
  return { set: SET.hostipPorts, element: { key: [protocol, port] } };
}

/** A listed element of a published-ports map as a port entry (undefined if it does not decode). */
export function entryOf(set: string, el: { key: unknown; value?: unknown }): PortEntry | undefined {
  const k = el.key as unknown[];
  const val = el.value as unknown[] | undefined;
  if (!Array.isArray(k) || !Array.isArray(val)) return undefined;
  const base = { containerIp: String(val[0]), containerPort: Number(val[1]) };
  if (set === SET.publishedAny && k.length === 2) return { protocol: k[0] as Protocol, hostPort: Number(k[1]), ...base };
  if (set === SET.publishedHostip && k.length === 3) return { hostIp: String(k[0]), protocol: k[1] as Protocol, hostPort: Number(k[2]), ...base };
  return undefined;
}

/** A stable string for a key (map keys of plans and listings). */
export function keyId(set: string, key: unknown): string {
  return `${set} ${JSON.stringify(key)}`;
}
