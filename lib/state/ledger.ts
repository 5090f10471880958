/**
 * The host-wide port ledger: which endpoints (`network/id`) claim each host port, for bridge
 * publishing and host-mode claims alike, so two containers cannot take one port. Kept in the
 * caller's store transaction, beside the endpoint records.
 *
 * One document per (family, protocol, host port) — `tcp:8080` for IPv4, `tcp6:8080` for IPv6 —
 * holding its claims in the order they were made. A claim names its holder, its host address
 * (absent: every address of the family), the container it is an attachment of and, for a
 * published port, the container port. Checking a port is one point lookup per family, however
 * many ports are held.
 *
 * Who excludes whom, within one family only (`0.0.0.0:8080` and `[::]:8080` are two claims,
 * which may go to two containers; a mapping without `hostIp` on a dual-stack endpoint claims
 * both and needs both free): a claim on every address excludes any claim of one address and the
 * other way round; claims of two addresses exclude each other when the addresses are equal.
 *
 * One container, several attachments (`podman run --network a,b -p 8083:80`, Docker's
 * `docker network connect` of a container with published ports): claims of attachments of the
 * same container (ConnectOptions.container) on the same family, protocol, address and host port,
 * with the same container port, are shared rather than refused. The first of them, in connect
 * order, receives the traffic (holds the firewall's elements); the others wait behind it in
 * order, recorded without elements; when the receiving attachment leaves, the next one takes its
 * place in the same operation (see {@link releaseClaims}). Another container asking for the port
 * gets ERR_PORT_IN_USE. `hostPort: 0` picks a port no one claims at all.
 *
 * Processes on the host: a port a socket on the host is bound to is refused (its traffic would
 * silently go to the container instead), as sock_diag reports them: a socket on `0.0.0.0`
 * excludes the IPv4 port, one on `::` both families unless it is IPv6-only (IPV6_V6ONLY, which
 * sock_diag reports), one on an address that address. A runtime that holds its published ports
 * open itself skips this check (ConnectOptions.hostPortsHeldByCaller).
 *
 * Documents written before the ledger knew families (`tcp:8080` holding `{ holder, hostIp? }`)
 * are read as they are, migrated on read: their key is the IPv4 key, a claim without `container`
 * belongs to the container named by its holder's endpoint id, and one without `containerPort` is
 * never shared. A dual-stack endpoint published before then has no IPv6 claims; the firewall
 * still refuses a clash with its IPv6 elements (ERR_PORT_IN_USE naming it).
 */
import type { EndpointRecord, PortMapping } from '../host-types';
import { NsnetError } from '../errors';
import * as ipaddr from 'ipaddr.js';
import type { BoundSocket } from '../netlink/sockets';
import type { StoreTx, StoreView } from '../store/types';
import { PORTS } from './collections';
import { hostIpOf, span, targetsOf, type Family, type Target } from './publish';

export { span } from './publish';

/** Where `hostPort: 0` looks for a free port (the kernel's default ephemeral range). */
const EPHEMERAL = [32768, 60999] as const;

/** One claim of a host port of one family. */
export interface PortClaim {
  /** `network/endpoint`. */
  holder: string;
  /** One host address; absent: every address of the family. */
  hostIp?: string;
  /** The container the holder is an attachment of (absent in older documents: the endpoint id). */
  container?: string;
  /** A published port's container port (absent: a host-mode claim, or an older document). */
  containerPort?: number;
}

/** Who claims: an endpoint, as the ledger needs it. */
export interface Claimant {
  /** `network/endpoint`. */
  holder: string;
  /** The container it is an attachment of. */
  container: string;
  /** Its ports are published (DNAT to the container: shared between attachments of one container), not host-mode claims. */
  published: boolean;
  /** It has both families: a mapping without `hostIp` claims IPv4 and IPv6. */
  dual: boolean;
}

/** What a disconnect hands over: a port the leaving attachment received, now the next claimant's. */
export interface Handover {
  /** The next claimant (`network/endpoint`), of the same container. */
  to: string;
  family: Family;
  protocol: PortMapping['protocol'];
  hostPort: number;
  hostIp?: string;
  containerPort: number;
}

/** The claimant an endpoint record is (`portsFrom`: how its driver takes ports). */
export function claimantOf(rec: EndpointRecord, portsFrom: 'publish' | 'ports' | undefined): Claimant {
  return {
    holder: `${rec.network}/${rec.id}`,
    container: rec.container ?? rec.id,
    published: portsFrom === 'publish',
    dual: portsFrom === 'ports' || rec.ipv6 !== undefined,
  };
}

/** The ledger document of a (family, protocol, port). */
export const ledgerKey = (family: Family, protocol: string, port: number): string => `${protocol}${family === 6 ? '6' : ''}:${port}`;

/** What a ledger document's key names (undefined: no ledger key). */
export function parseLedgerKey(key: string): { family: Family; protocol: PortMapping['protocol']; port: number } | undefined {
  const m = /^(tcp|udp|sctp)(6?):(\d{1,5})$/u.exec(key);
  return m ? { family: m[2] ? 6 : 4, protocol: m[1] as PortMapping['protocol'], port: Number(m[3]) } : undefined;
}

/** How a ledger holder (`network/endpoint`) reads in an error. */
function holderName(holder: string): string {
  const i = holder.indexOf('/');
  return `endpoint ${holder.slice(i + 1)} (network ${holder.slice(0, i)})`;
}

const containerOf = (c: PortClaim): string => c.container ?? c.holder.slice(c.holder.indexOf('/') + 1);
const claimsAt = (view: StoreView, key: string): PortClaim[] => {
  const v = view.get<PortClaim[]>(PORTS, key);
  return Array.isArray(v) ? v : [];
};

/** One host port of one family a mapping claims. */
interface Want extends Target {
  key: string;
  protocol: PortMapping['protocol'];
  port: number;
  /** Published: the container port it maps to. */
  containerPort?: number;
}

function wantsOf(p: PortMapping, who: Claimant, hostPort = p.hostPort): Want[] {
  const out: Want[] = [];
  const [lo, hi] = [hostPort, hostPort + (span(p)[1] - p.hostPort)];
  for (const t of targetsOf(p, who.dual)) {
    for (let port = lo; port <= hi; port++) {
      out.push({
        ...t,
        key: ledgerKey(t.family, p.protocol, port),
        protocol: p.protocol,
        port,
        ...(who.published ? { containerPort: p.containerPort + (port - hostPort) } : {}),
      });
    }
  }
  return out;
}

const overlap = (a: string | undefined, b: string | undefined): boolean => a === undefined || b === undefined || a === b;

/** Claims `c` and the want `w` of `who` are the same container's, on the same address, port and container port. */
function shares(c: PortClaim, who: Claimant, w: Want): boolean {
  return (
    who.published &&
    w.containerPort !== undefined &&
    c.containerPort === w.containerPort &&
    c.hostIp === w.hostIp &&
    containerOf(c) === who.container &&
    c.holder !== who.holder
  );
}

/** Two claims share the port: attachments of one container, same address and container port. */
const sameGroup = (a: PortClaim, b: PortClaim): boolean =>
  a.containerPort !== undefined && a.containerPort === b.containerPort && a.hostIp === b.hostIp && containerOf(a) === containerOf(b);

/** The first claim of `mine`'s sharing group in a document: the one receiving the traffic. */
function receiverOf(claims: PortClaim[], mine: PortClaim): PortClaim {
  return claims.find((c) => c === mine || sameGroup(c, mine)) ?? mine;
}

/** An IPv6 socket address that is an IPv4-mapped one, as its IPv4 address. */
function mapped4(address: string): string | undefined {
  try {
    const a = ipaddr.IPv6.parse(address);
    return a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a bound socket takes traffic of the want (see the file comment). */
function socketTakes(s: BoundSocket, w: Want): boolean {
  if (s.family === 4) return w.family === 4 && (w.hostIp === undefined || s.address === '0.0.0.0' || s.address === w.hostIp);
  const v4 = mapped4(s.address);
  if (v4 !== undefined) return w.family === 4 && (w.hostIp === undefined || v4 === w.hostIp);
  if (w.family === 6) return w.hostIp === undefined || s.address === '::' || s.address === w.hostIp;
  return s.address === '::' && !s.v6only;
}

/** The resolved ports of a connect, and those of them whose traffic this attachment receives. */
export interface Resolved {
  ports: PortMapping[];
  /** The ports to publish in the firewall for this attachment: all but those another attachment of its container receives. */
  receiving: PortMapping[];
}

/**
 * Fills in `hostPort: 0` and refuses ports another endpoint holds (one point lookup per port and
 * family) or, when `sockets` is given, a socket on the host is bound to.
 * @throws ERR_PORT_IN_USE naming the holder
 */
export function resolvePorts(view: StoreView, who: Claimant, ports: PortMapping[], sockets: BoundSocket[] | undefined): Resolved {
  const bySocket = new Map<string, BoundSocket[]>();
  for (const s of sockets ?? []) {
    const k = `${s.protocol}:${s.port}`;
    const list = bySocket.get(k);
    if (list) list.push(s);
    else bySocket.set(k, [s]);
  }
  const mine = new Map<string, Want[]>();
  /** Who holds the want; `strict`: a claim of the same container counts too (hostPort 0). */
  const holderOf = (w: Want, strict: boolean): { holder: string; shared?: boolean } | undefined => {
    let shared = false;
    for (const c of claimsAt(view, w.key)) {
      if (!overlap(c.hostIp, w.hostIp)) continue;
      if (!strict && shares(c, who, w)) {
        shared = true;
        continue;
      }
      return { holder: holderName(c.holder) };
    }
    for (const s of bySocket.get(`${w.protocol}:${w.port}`) ?? [])
      if (socketTakes(s, w)) return { holder: `a listening socket on the host (${s.family === 6 ? `[${s.address}]` : s.address}:${s.port})` };
    if ((mine.get(w.key) ?? []).some((x) => overlap(x.hostIp, w.hostIp))) return { holder: 'this request (twice)' };
    return shared ? { holder: '', shared } : undefined;
  };
  const out: PortMapping[] = [];
  const receiving: PortMapping[] = [];
  for (const want of ports) {
    let p = want;
    if (p.hostPort === 0) {
      let port = EPHEMERAL[0];
      while (port <= EPHEMERAL[1] && wantsOf(p, who, port).some((w) => holderOf(w, true) !== undefined)) port++;
      if (port > EPHEMERAL[1]) throw new NsnetError('ERR_PORT_IN_USE', `no free ${p.protocol} port in ${EPHEMERAL[0]}-${EPHEMERAL[1]}`);
      p = { ...p, hostPort: port };
    }
    const wants = wantsOf(p, who);
    const got: Want[] = [];
    for (const w of wants) {
      const h = holderOf(w, false);
      if (h && !h.shared) {
        const range = p.hostPortEnd ? ` (of ${p.hostPort}-${p.hostPortEnd})` : '';
        const at = hostIpOf(w);
        throw new NsnetError('ERR_PORT_IN_USE', `${p.protocol} port ${at.includes(':') ? `[${at}]` : at}:${w.port}${range} is held by ${h.holder}`, {
          holder: h.holder,
          port: p,
          family: w.family,
          hostIp: at,
          hostPort: w.port,
        });
      }
      if (!h) got.push(w);
    }
    for (const w of wants) mine.set(w.key, [...(mine.get(w.key) ?? []), w]);
    out.push(p);
    receiving.push(...asMappings(p, wants, got));
  }
  return { ports: out, receiving };
}

/** A mapping restricted to some of its wants: itself when all, else one mapping per port and target. */
function asMappings(p: PortMapping, wants: Want[], kept: Want[]): PortMapping[] {
  if (kept.length === wants.length) return [p];
  return kept.map((w) => ({ protocol: p.protocol, hostIp: hostIpOf(w), hostPort: w.port, containerPort: p.containerPort + (w.port - p.hostPort) }));
}

/** Records the claims of `who` on `ports` (after those already made: connect order). */
export function recordClaims(tx: StoreTx, who: Claimant, ports: PortMapping[]): void {
  const byKey = new Map<string, PortClaim[]>();
  for (const p of ports) {
    for (const w of wantsOf(p, who)) {
      const claim: PortClaim = {
        holder: who.holder,
        ...(w.hostIp !== undefined ? { hostIp: w.hostIp } : {}),
        container: who.container,
        ...(w.containerPort !== undefined ? { containerPort: w.containerPort } : {}),
      };
      byKey.set(w.key, [...(byKey.get(w.key) ?? []), claim]);
    }
  }
  for (const [key, claims] of byKey) tx.put(PORTS, key, [...claimsAt(tx, key).filter((c) => c.holder !== who.holder), ...claims]);
}

/**
 * Forgets the claims of `who` on `ports`. Returns the ports whose firewall elements it holds
 * (those it received and nobody takes over: the detach removes them) and the handovers: ports
 * it received that the next attachment of its container now receives (their elements are to be
 * re-pointed, not removed).
 */
export function releaseClaims(tx: StoreTx, who: Claimant, ports: PortMapping[]): { detach: PortMapping[]; handovers: Handover[] } {
  const detach: PortMapping[] = [];
  const handovers: Handover[] = [];
  const docs = new Map<string, PortClaim[]>();
  for (const p of ports) {
    const wants = wantsOf(p, who);
    const kept: Want[] = [];
    for (const w of wants) {
      if (!docs.has(w.key)) docs.set(w.key, claimsAt(tx, w.key));
      const claims = docs.get(w.key)!;
      const mine = claims.find((c) => c.holder === who.holder && c.hostIp === w.hostIp);
      // No claim of it (a damaged or older ledger): the record is the truth, it received.
      if (!mine) {
        kept.push(w);
        continue;
      }
      if (receiverOf(claims, mine) !== mine) continue;
      const next = claims.find((c) => c.holder !== who.holder && sameGroup(c, mine));
      if (next)
        handovers.push({
          to: next.holder,
          family: w.family,
          protocol: w.protocol,
          hostPort: w.port,
          ...(w.hostIp !== undefined ? { hostIp: w.hostIp } : {}),
          containerPort: mine.containerPort!,
        });
      else kept.push(w);
    }
    detach.push(...asMappings(p, wants, kept));
  }
  for (const [key, claims] of docs) {
    const rest = claims.filter((c) => c.holder !== who.holder);
    if (rest.length === claims.length) continue;
    if (rest.length) tx.put(PORTS, key, rest);
    else tx.delete(PORTS, key);
  }
  return { detach, handovers };
}

/**
 * The ports of a recorded endpoint whose firewall elements it holds: all of them but those
 * another attachment of its container receives (one point lookup per port and family).
 */
export function receivingPorts(view: StoreView, who: Claimant, ports: PortMapping[]): PortMapping[] {
  return ports.flatMap((p) => {
    const wants = wantsOf(p, who);
    const kept = wants.filter((w) => {
      const claims = claimsAt(view, w.key);
      const mine = claims.find((c) => c.holder === who.holder && c.hostIp === w.hostIp);
      return !mine || receiverOf(claims, mine) === mine;
    });
    return asMappings(p, wants, kept);
  });
}

/** The claims `who` makes on one ledger document (to rebuild a damaged one from the records). */
export function claimsOn(key: string, who: Claimant, ports: PortMapping[]): PortClaim[] {
  return ports.flatMap((p) =>
    wantsOf(p, who)
      .filter((w) => w.key === key)
      .map((w) => ({
        holder: who.holder,
        ...(w.hostIp !== undefined ? { hostIp: w.hostIp } : {}),
        container: who.container,
        ...(w.containerPort !== undefined ? { containerPort: w.containerPort } : {}),
      })),
  );
}

/**
 * Every claim of `holder`, as mappings whose container port is the host port (host mode), runs
 * of neighbouring ports merged into ranges: a port claimed on every address of both families
 * has no `hostIp`, of one family that family's wildcard. Damaged ledger documents are passed over.
 */
export function claimsOf(view: StoreView, holder: string): PortMapping[] {
  const found = new Map<string, { p: PortMapping; families: Set<Family> }>();
  for (const { key, value } of view.scan<PortClaim[]>(PORTS).entries) {
    const k = parseLedgerKey(key);
    if (!k) continue;
    for (const c of Array.isArray(value) ? value : []) {
      if (c?.holder !== holder) continue;
      const id = `${k.protocol} ${k.port} ${c.hostIp ?? ''}`;
      const f = found.get(id) ?? {
        p: { protocol: k.protocol, hostPort: k.port, containerPort: k.port, ...(c.hostIp ? { hostIp: c.hostIp } : {}) },
        families: new Set<Family>(),
      };
      f.families.add(k.family);
      found.set(id, f);
    }
  }
  return coalesce(
    [...found.values()].map(({ p, families }) => (p.hostIp !== undefined || families.size === 2 ? p : { ...p, hostIp: families.has(6) ? '::' : '0.0.0.0' })),
  );
}

/** Every published claim of `holder` (damaged ledger documents are passed over), one per family and port. */
export function publishedClaimsOf(
  view: StoreView,
  holder: string,
): { family: Family; protocol: PortMapping['protocol']; hostPort: number; hostIp?: string; containerPort: number; container?: string }[] {
  const out: ReturnType<typeof publishedClaimsOf> = [];
  for (const { key, value } of view.scan<PortClaim[]>(PORTS).entries) {
    const k = parseLedgerKey(key);
    if (!k || !Array.isArray(value)) continue;
    for (const c of value) {
      if (c?.holder !== holder || typeof c.containerPort !== 'number') continue;
      out.push({
        family: k.family,
        protocol: k.protocol,
        hostPort: k.port,
        containerPort: c.containerPort,
        ...(c.hostIp ? { hostIp: c.hostIp } : {}),
        ...(c.container ? { container: c.container } : {}),
      });
    }
  }
  return out;
}

/** Forgets every claim of `holder` (damaged ledger documents are passed over). Returns the documents it had claims in ('tcp:8080', 'tcp6:8080'). */
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
  const sorted = [...ports].sort(
    (a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) || (a.hostIp ?? '').localeCompare(b.hostIp ?? '') || a.hostPort - b.hostPort,
  );
  const out: PortMapping[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    const end = last ? (last.hostPortEnd ?? last.hostPort) : 0;
    if (
      last &&
      last.protocol === p.protocol &&
      last.hostIp === p.hostIp &&
      p.hostPort === end + 1 &&
      p.containerPort === last.containerPort + (end + 1 - last.hostPort)
    ) {
      last.hostPortEnd = p.hostPort;
    } else if (!(last && last.protocol === p.protocol && last.hostIp === p.hostIp && p.hostPort <= end)) {
      out.push({ ...p });
    }
  }
  return out;
}
