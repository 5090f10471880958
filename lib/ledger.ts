/**
 * The host-wide port ledger: one store document per protocol and host port, naming its holders
 * (`network/endpoint`), whatever the mode — a bridge container's published port and a host-mode
 * container's claim are one kind of entry, so no two containers get one host port. Checked with
 * one point lookup per port however many are held, and against the sockets processes on the
 * host have bound (sock_diag): their traffic would silently go to the container instead.
 */
import { NsnetError, invalid } from './errors';
import type { PortMapping } from './drivers/records';
import type { HostPort } from './host-types';
import type { BoundSocket } from './netlink/sockets';
import type { StoreTx, StoreView } from './store/index';
import * as v from './validate';

const PORTS = 'ports';
const PROTOCOLS = ['tcp', 'udp', 'sctp'];
/** Where `hostPort: 0` looks for a free port (the kernel's default ephemeral range). */
const EPHEMERAL = [32768, 60999] as const;

interface PortClaim {
  hostIp?: string;
  /** `network/endpoint`. */
  holder: string;
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

/** Host ports a mapping covers. */
function span(p: PortMapping): [number, number] {
  return [p.hostPort, p.hostPortEnd ?? p.hostPort];
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

/** Records (or, with `release`, forgets) what `holder` (`network/endpoint`) holds in the ledger. */
export function recordPorts(tx: StoreTx, holder: string, ports: PortMapping[], release = false): void {
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
