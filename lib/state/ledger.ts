/**
 * The host-wide port ledger: per protocol and host port (`tcp:8080`) the endpoints that claim
 * it (`network/id`), for bridge publishing and host-mode claims alike, so two of them cannot
 * take the same port. Kept in the caller's store transaction, beside the endpoint records.
 */
import type { PortMapping } from '../drivers/driver';
import type { StoreTx, StoreView } from '../store/types';
import { PORTS } from './collections';

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
