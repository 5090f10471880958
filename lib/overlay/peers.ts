/**
 * The kernel side of the overlay's peers (Flannel's "vxlan" backend, L3 mode): per remote host of
 * a network, on this host's VXLAN device of that network, always with replace semantics —
 *
 *   route  10.88.5.0/24 via 10.88.5.0 dev <vx> onlink proto 110   (the host's block, via its VTEP)
 *   neigh  10.88.5.0 lladdr <its VTEP MAC> dev <vx> nud permanent  (no ARP across the overlay)
 *   fdb    <its VTEP MAC> dst <its underlay address> dev <vx> self permanent
 *
 * so the kernel state grows with hosts, not containers. nsnet's routes carry the protocol
 * {@link RTPROT_NSNET}, so they can be told from anyone else's; neighbour and FDB entries on the
 * VXLAN device are all nsnet's (it is nsnet's device, learning is off).
 */
import { NetlinkError } from '../errors';
import type { Netlink } from '../netlink/netlink';
import type { FdbEntry } from '../netlink/neighbors';
import type { Route } from '../netlink/routes';
import { vtepAddress, type HostRecord } from './controlplane';

/**
 * The route protocol of nsnet's overlay routes (rtm_protocol). The kernel interprets values up
 * to RTPROT_STATIC (4) only; 110 is unassigned in linux/rtnetlink.h and iproute2's rt_protos.
 */
export const RTPROT_NSNET = 110;

/** A peer as programmed: its block and how to reach its VTEP. */
export type Peer = Pick<HostRecord, 'subnet' | 'underlay' | 'vtepMac'>;

/** What a sync changed, by peer block. */
export interface PeerSyncReport {
  added: string[];
  updated: string[];
  removed: string[];
}

const gone =
  (...codes: string[]) =>
  (e: unknown): void => {
    if (!(e instanceof NetlinkError && codes.includes(e.code))) throw e;
  };

/** Programs one peer (FDB, neighbour, then route: traffic flows only once L2 is ready). */
export async function programPeer(nl: Netlink, dev: string, p: Peer): Promise<void> {
  const vtep = vtepAddress(p.subnet);
  await nl.fdb.replace({ dev, mac: p.vtepMac, dst: p.underlay, self: true, permanent: true });
  await nl.neighbors.replace({ dev, ip: vtep, mac: p.vtepMac, state: 'permanent' });
  await nl.routes.replace({ dst: p.subnet, gateway: vtep, dev, onlink: true, protocol: RTPROT_NSNET });
}

/**
 * Withdraws one peer (route, neighbour, then FDB entry; any already gone is fine). Without the
 * MAC, the FDB entry is left to the next full sync.
 */
export async function withdrawPeer(nl: Netlink, dev: string, p: Pick<Peer, 'subnet'> & Partial<Peer>): Promise<void> {
  await nl.routes.remove({ dst: p.subnet, dev, protocol: RTPROT_NSNET }).catch(gone('ESRCH', 'ENOENT'));
  await nl.neighbors.remove({ dev, ip: vtepAddress(p.subnet) }).catch(gone('ENOENT', 'ESRCH'));
  if (p.vtepMac) await nl.fdb.remove({ dev, mac: p.vtepMac, ...(p.underlay ? { dst: p.underlay } : {}), self: true }).catch(gone('ENOENT', 'ESRCH'));
}

function routeMatches(r: Route, p: Peer): boolean {
  return r.gateway === vtepAddress(p.subnet) && r.onlink && r.type === 'unicast';
}

function fdbMatches(entries: FdbEntry[], p: Peer): boolean {
  const mine = entries.filter((e) => e.mac === p.vtepMac);
  return mine.length === 1 && mine[0]!.dst === p.underlay && mine[0]!.permanent && mine[0]!.self && mine[0]!.port === undefined && mine[0]!.vni === undefined;
}

/** A unicast MAC (multicast entries of the device's own address lists are the kernel's). */
const unicast = (mac: string): boolean => (parseInt(mac.slice(0, 2), 16) & 1) === 0;

/**
 * Makes the VXLAN device's routes, neighbours and FDB entries exactly the given peers: what is
 * missing or different is replaced, what belongs to no peer is removed. Reads the kernel's state
 * first (three dumps), so it repairs anything (a deleted route, a flushed neighbour table).
 */
export async function syncPeers(nl: Netlink, dev: string, peers: Peer[]): Promise<PeerSyncReport> {
  const report: PeerSyncReport = { added: [], updated: [], removed: [] };
  const [routes, neighs, fdb] = await Promise.all([nl.routes.list({ family: 4, dev }), nl.neighbors.list({ family: 4, dev }), nl.fdb.list({ dev })]);
  const ours = routes.filter((r) => r.protocol === String(RTPROT_NSNET));
  const want = new Map(peers.map((p) => [p.subnet, p]));
  // Withdraw first (routes, then neighbours, then FDB): a block that moved to another host must
  // not be reachable through both on the way.
  for (const r of ours) {
    if (want.has(r.dst)) continue;
    await nl.routes.remove({ dst: r.dst, dev, protocol: RTPROT_NSNET, table: r.table }).catch(gone('ESRCH', 'ENOENT'));
    report.removed.push(r.dst);
  }
  const vteps = new Map(peers.map((p) => [vtepAddress(p.subnet), p]));
  for (const n of neighs) {
    if (vteps.get(n.ip)?.vtepMac === n.mac && n.state.includes('permanent')) continue;
    if (vteps.has(n.ip)) continue; // replaced below
    await nl.neighbors.remove({ dev, ip: n.ip }).catch(gone('ENOENT', 'ESRCH'));
  }
  const macs = new Set(peers.map((p) => p.vtepMac));
  for (const e of fdb) {
    if (!e.self || !unicast(e.mac) || macs.has(e.mac)) continue;
    await nl.fdb.remove({ dev, mac: e.mac, ...(e.dst ? { dst: e.dst } : {}), self: true }).catch(gone('ENOENT', 'ESRCH'));
  }
  for (const p of peers) {
    const route = ours.find((r) => r.dst === p.subnet);
    const neigh = neighs.find((n) => n.ip === vtepAddress(p.subnet));
    const fresh = route === undefined;
    const ok = route !== undefined && routeMatches(route, p) && neigh?.mac === p.vtepMac && neigh.state.includes('permanent') && fdbMatches(fdb, p);
    if (ok) continue;
    // A MAC with several destinations (appended by someone) is reset to the one it needs.
    if (fdb.filter((e) => e.mac === p.vtepMac).length > 1) await nl.fdb.remove({ dev, mac: p.vtepMac, self: true }).catch(gone('ENOENT', 'ESRCH'));
    await programPeer(nl, dev, p);
    (fresh ? report.added : report.updated).push(p.subnet);
  }
  return report;
}

/**
 * Applies a change incrementally: `have` (the peers programmed, updated in place) becomes `want`
 * — withdrawn first, then programmed — without reading the kernel's state (a full sync does).
 */
export async function applyPeers(nl: Netlink, dev: string, have: Map<string, Peer>, want: Map<string, Peer>): Promise<PeerSyncReport> {
  const report: PeerSyncReport = { added: [], updated: [], removed: [] };
  for (const [subnet, p] of have) {
    if (want.has(subnet)) continue;
    await withdrawPeer(nl, dev, p);
    have.delete(subnet);
    report.removed.push(subnet);
  }
  for (const [subnet, p] of want) {
    const old = have.get(subnet);
    if (old && old.underlay === p.underlay && old.vtepMac === p.vtepMac) continue;
    if (old && old.vtepMac !== p.vtepMac) await withdrawPeer(nl, dev, old);
    await programPeer(nl, dev, p);
    have.set(subnet, p);
    (old ? report.updated : report.added).push(subnet);
  }
  return report;
}
