/**
 * The host-wide port ledger: per protocol and host port (`tcp:8080`) the endpoints that claim
 * it (`network/id`), for bridge publishing and host-mode claims alike, so two of them cannot
 * take the same port. Kept in the caller's store transaction, beside the endpoint records.
 * Checked with one point lookup per port however many are held, and against the sockets
 * processes on the host have bound (sock_diag): their traffic would silently go to the
 * container instead.
 */
import type { HostPort, PortMapping } from '../host-types';
import { NsnetError, invalid } from '../errors';
import type { BoundSocket } from '../netlink/sockets';
import type { StoreTx, StoreView } from '../store/types';
import * as v from '../validate';
import { PORTS } from './collections';

const PROTOCOLS = ['tcp', 'udp', 'sctp'];
/** Where `hostPort: 0` looks for a free port (the kernel's default ephemeral range). */
const EPHEMERAL = [32768, 60999] as const;

/** One claim of a host port. */
export interface PortClaim {
  hostIp?: string;
  /** `network/endpoint`. */
  holder: string;
}

/** Host ports a mapping covers. */
export function span(p: PortMapping): [number, number] {
  return [p.hostPort, p.hostPortEnd ?? p.hostPort];
}

/** How a ledger holder (`network/endpoint`) reads in an error. */
function holderName(holder: string): string {
  const i = holder.indexOf('/');
  return `endpoint ${holder.slice(i + 1)} (network ${holder.slice(0, i)})`;
}

/** Normalizes and validates published ports (`publish`; hostPort 0 stays 0: resolved later). */
export function normalizePublish(ports: unknown): PortMapping[] {
  if (ports === undefined) return [];
  if (!Array.isArray(ports)) throw invalid('ERR_INVALID_ARGUMENT', 'publish must be an array of port mappings');
  return ports.map((p, i) => {
    v.knownKeys(p, ['protocol', 'hostIp', 'hostPort', 'hostPortEnd', 'containerPort'], `publish[${i}]`);
    const m = p as PortMapping;
    const protocol = m.protocol ?? 'tcp';
    if (!PROTOCOLS.includes(protocol)) throw invalid('ERR_INVALID_ARGUMENT', `publish[${i}].protocol must be tcp, udp or sctp`);
    const out: PortMapping = { protocol, hostPort: v.int(m.hostPort, 0, 65535, `publish[${i}].hostPort`, 'ERR_INVALID_PORT'), containerPort: v.int(m.containerPort, 1, 65535, `publish[${i}].containerPort`, 'ERR_INVALID_PORT') };
    if (m.hostIp !== undefined && m.hostIp !== '0.0.0.0') out.hostIp = v.ip(m.hostIp, 4, `publish[${i}].hostIp`).address;
    if (m.hostPortEnd !== undefined) {
      out.hostPortEnd = v.int(m.hostPortEnd, 1, 65535, `publish[${i}].hostPortEnd`, 'ERR_INVALID_PORT');
      if (out.hostPort === 0) throw invalid('ERR_INVALID_PORT', `publish[${i}]: a range needs a fixed hostPort`);
      if (out.hostPortEnd < out.hostPort) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the range ${out.hostPort}-${out.hostPortEnd} is backwards`);
      if (out.containerPort + (out.hostPortEnd - out.hostPort) > 65535) throw invalid('ERR_INVALID_PORT', `publish[${i}]: the container range passes 65535`);
    }
    return out;
  });
}

/** Normalizes the ports a host-mode container claims (`ports`) into ledger mappings (hostPort = containerPort). */
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
    if (p.hostIp !== undefined && p.hostIp !== '0.0.0.0') out.hostIp = v.ip(p.hostIp, 4, `ports[${i}].hostIp`).address;
    return out;
  });
}

/** Two mappings claim the same host port (same protocol, overlapping addresses and ports). */
function clash(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol) return false;
  if (a.hostIp !== undefined && b.hostIp !== undefined && a.hostIp !== b.hostIp) return false;
  const [a0, a1] = span(a);
  const [b0, b1] = span(b);
  return a0 <= b1 && b0 <= a1;
}

/** The protocols sock_diag must be asked about for these ports (SCTP has no listener check). */
export function socketProtocols(ports: PortMapping[]): ('tcp' | 'udp')[] {
  return [...new Set(ports.map((p) => p.protocol))].filter((p): p is 'tcp' | 'udp' => p !== 'sctp');
}

/**
 * Fills in `hostPort: 0` and refuses ports another endpoint holds (one point lookup per port) or
 * a process on the host has bound.
 * @throws ERR_PORT_IN_USE naming the holder
 */
export function resolvePorts(view: StoreView, ports: PortMapping[], sockets: BoundSocket[]): PortMapping[] {
  const out: PortMapping[] = [];
  const holderOf = (p: PortMapping): string | undefined => {
    const [lo, hi] = span(p);
    for (let port = lo; port <= hi; port++) {
      for (const c of view.get<PortClaim[]>(PORTS, `${p.protocol}:${port}`) ?? [])
        if (c.hostIp === undefined || p.hostIp === undefined || c.hostIp === p.hostIp) return holderName(c.holder);
    }
    for (const s of sockets) {
      if (s.protocol !== p.protocol || (s.family !== 4 && s.address !== '::')) continue;
      const wildcard = s.address === '0.0.0.0' || s.address === '::';
      if (clash(p, { protocol: s.protocol, hostPort: s.port, containerPort: 1, ...(wildcard ? {} : { hostIp: s.address }) }))
        return `a listening socket on the host (${s.address}:${s.port})`;
    }
    return out.some((q) => clash(q, p)) ? 'this request (twice)' : undefined;
  };
  for (const want of ports) {
    let p = want;
    if (p.hostPort === 0) {
      let port = EPHEMERAL[0];
      while (port <= EPHEMERAL[1] && holderOf({ ...p, hostPort: port }) !== undefined) port++;
      if (port > EPHEMERAL[1]) throw new NsnetError('ERR_PORT_IN_USE', `no free ${p.protocol} port in ${EPHEMERAL[0]}-${EPHEMERAL[1]}`);
      p = { ...p, hostPort: port };
    }
    const holder = holderOf(p);
    if (holder) throw new NsnetError('ERR_PORT_IN_USE', `${p.protocol} port ${p.hostIp ?? '*'}:${p.hostPort}${p.hostPortEnd ? `-${p.hostPortEnd}` : ''} is held by ${holder}`, { holder, port: p });
    out.push(p);
  }
  return out;
}

/** Records (or, with `release`, forgets) the claims of `holder` on `ports`. */
export function recordClaims(tx: StoreTx, holder: string, ports: PortMapping[], release = false): void {
  for (const p of ports) {
    const [lo, hi] = span(p);
    for (let port = lo; port <= hi; port++) {
      const key = `${p.protocol}:${port}`;
      const claims = (tx.get<PortClaim[]>(PORTS, key) ?? []).filter((c) => c.holder !== holder);
      if (!release) claims.push({ holder, ...(p.hostIp ? { hostIp: p.hostIp } : {}) });
      if (claims.length) tx.put(PORTS, key, claims);
      else tx.delete(PORTS, key);
    }
  }
}

/**
 * Every claim of `holder`, as mappings whose container port is the host port (host mode), runs
 * of neighbouring ports merged into ranges. Damaged ledger documents are passed over.
 */
export function claimsOf(view: StoreView, holder: string): PortMapping[] {
  const ports: PortMapping[] = [];
  for (const { key, value } of view.scan<PortClaim[]>(PORTS).entries) {
    const [protocol, port] = key.split(':');
    for (const c of Array.isArray(value) ? value : []) {
      if (c?.holder !== holder) continue;
      ports.push({ protocol: protocol as PortMapping['protocol'], hostPort: Number(port), containerPort: Number(port), ...(c.hostIp ? { hostIp: c.hostIp } : {}) });
    }
  }
  return coalesce(ports);
}

/** Forgets every claim of `holder` (damaged ledger documents are passed over). Returns the ports it held ('tcp:8080'). */
export function releaseHolder(tx: StoreTx, holder: string): string[] {
  const out: string[] = [];
  for (const { key, value } of tx.scan<PortClaim[]>(PORTS).entries) {
    if (!Array.isArray(value) || !value.some((c) => c?.holder === holder)) continue;
    const rest = value.filter((c) => c?.holder !== holder);
    if (rest.length) tx.put(PORTS, key, rest);
    else tx.delete(PORTS, key);
    out.push(key);
  }
  return out;
}

/**
 * One mapping per port merged into ranges where host and container ports both run on (same
 * protocol and host address), sorted by protocol, host address and port.
 */
export function coalesce(ports: PortMapping[]): PortMapping[] {
  const sorted = [...ports].sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) ||
    (a.hostIp ?? '').localeCompare(b.hostIp ?? '') || a.hostPort - b.hostPort);
  const out: PortMapping[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    const end = last ? (last.hostPortEnd ?? last.hostPort) : 0;
    if (last && last.protocol === p.protocol && last.hostIp === p.hostIp && p.hostPort === end + 1 && p.containerPort === last.containerPort + (end + 1 - last.hostPort)) {
      last.hostPortEnd = p.hostPort;
    } else if (!(last && last.protocol === p.protocol && last.hostIp === p.hostIp && p.hostPort <= end)) {
      out.push({ ...p });
    }
  }
  return out;
}
