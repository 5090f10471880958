/**
 * Conntrack over ctnetlink: list, count, delete and flush the connection tracking entries of a
 * network namespace. nsnet uses it to forget UDP flows to a published port that was removed or
 * re-pointed (`delete({ protocol: 'udp', origDstPort: 5353 })`), or the kernel keeps sending
 * that traffic to the old container.
 *
 * Listing is one dump (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`) filtered here; deleting removes each
 * match by its original tuple and id (`IPCTNL_MSG_CT_DELETE`), pipelined on the socket.
 * Reference: include/uapi/linux/netfilter/nfnetlink_conntrack.h, nf_conntrack_common.h.
 */
import * as ipaddr from 'ipaddr.js';
import { invalid, type NetlinkError } from './errors';
import { NETLINK_NETFILTER, type NativeAttrs, type NativeMessage } from './native';
import { Conn } from './netlink/conn';
import type { NetnsSpec } from './netns';
import * as v from './validate';

const NFNL_SUBSYS_CTNETLINK = 1;
const msg = (m: number): number => (NFNL_SUBSYS_CTNETLINK << 8) | m;
/** enum cntl_msg_types. */
const CT = { NEW: msg(0), GET: msg(1), DELETE: msg(2), GET_STATS: msg(5) } as const;
const AF = { UNSPEC: 0, INET: 2, INET6: 10 } as const;

/** L4 protocols known by name; any other is reported (and may be filtered) by number. */
export type ConntrackProtocol = 'icmp' | 'tcp' | 'udp' | 'dccp' | 'gre' | 'icmpv6' | 'sctp' | 'udplite';

const PROTOCOLS: Record<ConntrackProtocol, number> = { icmp: 1, tcp: 6, udp: 17, dccp: 33, gre: 47, icmpv6: 58, sctp: 132, udplite: 136 };
const PROTOCOL_NAMES = new Map<number, ConntrackProtocol>(Object.entries(PROTOCOLS).map(([k, n]) => [n, k as ConntrackProtocol]));

/** Status flags (the IPS_* bits, lower case without the prefix). */
export type ConntrackStatus =
  | 'expected'
  | 'seen_reply'
  | 'assured'
  | 'confirmed'
  | 'src_nat'
  | 'dst_nat'
  | 'seq_adjust'
  | 'src_nat_done'
  | 'dst_nat_done'
  | 'dying'
  | 'fixed_timeout'
  | 'template'
  | 'untracked'
  | 'helper'
  | 'offload'
  | 'hw_offload';

const STATUS_BITS: ConntrackStatus[] = [
  'expected',
  'seen_reply',
  'assured',
  'confirmed',
  'src_nat',
  'dst_nat',
  'seq_adjust',
  'src_nat_done',
  'dst_nat_done',
  'dying',
  'fixed_timeout',
  'template',
  'untracked',
  'helper',
  'offload',
  'hw_offload',
];

/** enum tcp_conntrack and enum sctp_conntrack, lower case. */
const TCP_STATES = ['none', 'syn_sent', 'syn_recv', 'established', 'fin_wait', 'close_wait', 'last_ack', 'time_wait', 'close', 'syn_sent2'];
const SCTP_STATES = [
  'none',
  'closed',
  'cookie_wait',
  'cookie_echoed',
  'established',
  'shutdown_sent',
  'shutdown_recd',
  'shutdown_ack_sent',
  'heartbeat_sent',
  'heartbeat_acked',
];

/** One direction of a connection. */
export interface ConntrackTuple {
  src: string;
  dst: string;
  /** TCP, UDP, SCTP, DCCP, UDP-Lite. */
  srcPort?: number;
  dstPort?: number;
  /** ICMP and ICMPv6. */
  icmp?: { type: number; code: number; id: number };
}

/** A packet and byte count (present when `net.netfilter.nf_conntrack_acct` is on). */
export interface ConntrackCounters {
  packets: number;
  bytes: number;
}

/** A connection tracking entry. */
export interface ConntrackEntry {
  /** The kernel's id of the entry (CTA_ID). */
  id: number;
  family: 4 | 6;
  /** The L4 protocol: a name when known, else its number. */
  protocol: ConntrackProtocol | number;
  /** The tuple of the first packet (before NAT). */
  orig: ConntrackTuple;
  /** The tuple replies are expected on (after NAT: a DNAT shows the new destination as `reply.src`). */
  reply: ConntrackTuple;
  status: ConntrackStatus[];
  /** TCP or SCTP state ('established', 'time_wait', ...). */
  state?: string;
  /** Seconds until the entry expires. */
  timeout: number;
  mark: number;
  /** Conntrack zone (0: the default zone). */
  zone: number;
  /** Connection tracking helper ('ftp', ...). */
  helper?: string;
  counters?: { orig: ConntrackCounters; reply: ConntrackCounters };
  /** Connection labels, hex. */
  labels?: string;
  /** Every attribute as decoded, for what the typed fields leave out. */
  raw: NativeAttrs;
}

/**
 * Which entries a call applies to; every given criterion must match. Addresses and ports refer
 * to the original direction (`orig*`) or the reply direction (`reply*`) of the entry.
 */
export interface ConntrackFilter {
  family?: 4 | 6;
  protocol?: ConntrackProtocol | number;
  origSrc?: string;
  origDst?: string;
  origSrcPort?: number;
  origDstPort?: number;
  replySrc?: string;
  replyDst?: string;
  replySrcPort?: number;
  replyDstPort?: number;
  mark?: number;
  zone?: number;
}

/** The namespace's conntrack table size. */
export interface ConntrackStats {
  /** Entries in the table (all families, including unconfirmed ones). */
  entries: number;
  /** The table's limit (`net.netfilter.nf_conntrack_max`). */
  maxEntries: number;
}

export interface ConntrackOptions {
  /** The namespace to bind to (name, path, pid or `{ fd }`); default: the caller's. */
  netns?: NetnsSpec;
}

const FILTER_KEYS = [
  'family',
  'protocol',
  'origSrc',
  'origDst',
  'origSrcPort',
  'origDstPort',
  'replySrc',
  'replyDst',
  'replySrcPort',
  'replyDstPort',
  'mark',
  'zone',
] as const;

/** A validated filter: addresses normalized, protocol as a number. */
type Match = Omit<ConntrackFilter, 'protocol'> & { protocol?: number };

/** A ctnetlink connection bound to a network namespace. */
export class Conntrack {
  /** Inode of the namespace the handle is bound to. */
  readonly netnsInode: number;

  private constructor(private readonly conn: Conn) {
    this.netnsInode = conn.netns.inode;
  }

  /**
   * Opens a NETLINK_NETFILTER handle in a namespace (created by a short-lived thread of the
   * addon that enters it; it stays bound there for its whole life).
   * @throws NsnetError ERR_NETNS_NOT_FOUND, ERR_NOT_A_NETNS, or EPERM without CAP_NET_ADMIN there.
   */
  static async open(opts: ConntrackOptions = {}): Promise<Conntrack> {
    v.knownKeys(opts, ['netns'], 'Conntrack.open options');
    // The probe: proves ctnetlink answers in that namespace.
    const conn = await Conn.open(NETLINK_NETFILTER, opts.netns, 'conntrack', (c) =>
      c.request({ type: CT.GET_STATS, header: { family: AF.UNSPEC } }, 'conntrack statistics'),
    );
    return new Conntrack(conn);
  }

  /**
   * The entries matching `filter` (all entries without one).
   * @throws NsnetError ERR_INVALID_ARGUMENT / ERR_INVALID_IP for a bad filter.
   */
  async list(filter: ConntrackFilter = {}): Promise<ConntrackEntry[]> {
    return this.dump(parseFilter(filter, 'Conntrack.list filter'));
  }

  /** How many entries match `filter`. */
  async count(filter: ConntrackFilter = {}): Promise<number> {
    return (await this.list(filter)).length;
  }

  /**
   * Deletes the entries matching `filter`, which must name at least one criterion (`flush()`
   * empties the table); given several filters, the entries matching any of them, found in one
   * listing (what nsnet's firewall does for the ports of one operation, IPv4 and IPv6 alike).
   * Each entry is deleted by its original tuple, zone and id, so an entry created again with the
   * same tuple since the listing is left alone. Returns how many were deleted; entries that
   * disappeared meanwhile are not counted and are not errors.
   * @throws NsnetError ERR_INVALID_ARGUMENT / ERR_INVALID_IP for a bad filter (nothing deleted);
   *   NetlinkError when the kernel refuses a deletion (the others still happen; `details.deleted`).
   */
  async delete(filter: ConntrackFilter | ConntrackFilter[]): Promise<number> {
    const list = Array.isArray(filter) ? filter : [filter];
    const ms = list.map((f, i) => parseFilter(f, list.length > 1 ? `Conntrack.delete filter ${i}` : 'Conntrack.delete filter'));
    if (ms.length === 0) return 0;
    if (ms.some((m) => Object.keys(m).length === 0))
      throw invalid('ERR_INVALID_ARGUMENT', 'Conntrack.delete needs at least one filter criterion; use flush() to delete every entry');
    const entries = ms.length === 1 ? await this.dump(ms[0]!) : anyOf(await this.dump(common(ms)), ms);
    if (entries.length === 0) return 0;
    const requests = entries.map((e) => ({
      type: CT.DELETE,
      header: { family: e.family === 4 ? AF.INET : AF.INET6 },
      attrs: {
        tupleOrig: e.raw.tupleOrig,
        id: e.id,
        ...(e.raw.zone !== undefined ? { zone: e.raw.zone } : {}),
      },
    }));
    const results = await this.conn.batch(requests, (i) => `delete conntrack entry ${describe(entries[i])}`);
    let deleted = 0;
    let failure: NetlinkError | undefined;
    for (const r of results) {
      if (!r.error) deleted++;
      else if (r.error.code !== 'ENOENT') failure ??= r.error;
    }
    if (failure) {
      failure.details.deleted = deleted;
      throw failure;
    }
    return deleted;
  }

  /**
   * Deletes every entry of the namespace, or of one family.
   * @throws NsnetError ERR_INVALID_ARGUMENT for a family other than 4 or 6.
   */
  async flush(family?: 4 | 6): Promise<void> {
    this.assertOpen();
    if (family !== undefined && family !== 4 && family !== 6)
      throw invalid('ERR_INVALID_ARGUMENT', `family must be 4 or 6, got ${JSON.stringify(family)}`, { value: family });
    // Without a tuple, IPCTNL_MSG_CT_DELETE flushes; the kernel honours nfgen_family only when
    // version is non-zero (version 0 flushes every family, for old conntrack-tools).
    const header: Record<string, number> = family === undefined ? { family: AF.UNSPEC } : { family: family === 4 ? AF.INET : AF.INET6, version: 1 };
    await this.conn.request({ type: CT.DELETE, header }, 'flush conntrack');
  }

  /** The table's size and limit. */
  async stats(): Promise<ConntrackStats> {
    this.assertOpen();
    const replies = await this.conn.request({ type: CT.GET_STATS, header: { family: AF.UNSPEC } }, 'conntrack statistics');
    const a = replies.find((r) => r.type === CT.GET_STATS)?.attrs ?? {};
    return { entries: num(a.entries), maxEntries: num(a.maxEntries) };
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /** Closes the handle; requests still queued or in flight reject with ERR_HANDLE_CLOSED. */
  close(): void {
    this.conn.close();
  }

  private assertOpen(): void {
    this.conn.assertOpen();
  }

  private async dump(m: Match): Promise<ConntrackEntry[]> {
    this.assertOpen();
    // The kernel filters by family and mark itself; everything is checked again here.
    const family = m.family === 4 ? AF.INET : m.family === 6 ? AF.INET6 : AF.UNSPEC;
    const attrs = m.mark !== undefined ? { mark: m.mark, markMask: 0xffffffff } : {};
    const replies = await this.conn.dump({ type: CT.GET, header: { family }, attrs }, 'list conntrack entries');
    const out: ConntrackEntry[] = [];
    for (const r of replies) {
      const e = r.type === CT.NEW ? toEntry(r) : undefined;
      if (e && matches(e, m)) out.push(e);
    }
    return out;
  }
}

function parseFilter(filter: unknown, what: string): Match {
  const f = v.knownKeys(filter, FILTER_KEYS, what) as ConntrackFilter;
  const m: Match = {};
  if (f.family !== undefined) {
    if (f.family !== 4 && f.family !== 6)
      throw invalid('ERR_INVALID_ARGUMENT', `${what}: family must be 4 or 6, got ${JSON.stringify(f.family)}`, { value: f.family });
    m.family = f.family;
  }
  if (f.protocol !== undefined) {
    const p = f.protocol as unknown;
    if (typeof p === 'string' && Object.prototype.hasOwnProperty.call(PROTOCOLS, p)) m.protocol = PROTOCOLS[p as ConntrackProtocol];
    else if (typeof p === 'number') m.protocol = v.int(p, 0, 255, `${what}: protocol`);
    else
      throw invalid(
        'ERR_INVALID_ARGUMENT',
        `${what}: protocol must be one of ${Object.keys(PROTOCOLS).join(', ')} or a number 0..255, got ${JSON.stringify(p)}`,
        { value: p },
      );
  }
  for (const k of ['origSrc', 'origDst', 'replySrc', 'replyDst'] as const) {
    if (f[k] === undefined) continue;
    const a = v.ip(f[k], m.family, `${what}: ${k}`);
    m.family = a.family; // an address implies its family
    m[k] = normalize(a.address);
  }
  for (const k of ['origSrcPort', 'origDstPort', 'replySrcPort', 'replyDstPort'] as const) {
    if (f[k] === undefined) continue;
    m[k] = v.int(f[k], 1, 65535, `${what}: ${k}`);
    if (m.protocol === PROTOCOLS.icmp || m.protocol === PROTOCOLS.icmpv6)
      throw invalid('ERR_INVALID_ARGUMENT', `${what}: ${k} given, but ICMP has no ports`, { key: k });
  }
  if (f.mark !== undefined) m.mark = v.int(f.mark, 0, 0xffffffff, `${what}: mark`);
  if (f.zone !== undefined) m.zone = v.int(f.zone, 0, 0xffff, `${what}: zone`);
  return m;
}

/** What every filter of a list asks the kernel for (its family, when they share one). */
function common(ms: Match[]): Match {
  const f = ms[0]!.family;
  return f !== undefined && ms.every((m) => m.family === f) ? { family: f } : {};
}

/** The entries matching any of the filters (indexed by original destination port when given). */
function anyOf(entries: ConntrackEntry[], ms: Match[]): ConntrackEntry[] {
  const byPort = new Map<number, Match[]>();
  const rest: Match[] = [];
  for (const m of ms) {
    if (m.origDstPort === undefined) rest.push(m);
    else byPort.set(m.origDstPort, [...(byPort.get(m.origDstPort) ?? []), m]);
  }
  return entries.filter((e) => (e.orig.dstPort !== undefined && byPort.get(e.orig.dstPort)?.some((m) => matches(e, m))) || rest.some((m) => matches(e, m)));
}

function matches(e: ConntrackEntry, m: Match): boolean {
  const proto = typeof e.protocol === 'number' ? e.protocol : PROTOCOLS[e.protocol];
  return (
    (m.family === undefined || e.family === m.family) &&
    (m.protocol === undefined || proto === m.protocol) &&
    (m.origSrc === undefined || normalize(e.orig.src) === m.origSrc) &&
    (m.origDst === undefined || normalize(e.orig.dst) === m.origDst) &&
    (m.origSrcPort === undefined || e.orig.srcPort === m.origSrcPort) &&
    (m.origDstPort === undefined || e.orig.dstPort === m.origDstPort) &&
    (m.replySrc === undefined || normalize(e.reply.src) === m.replySrc) &&
    (m.replyDst === undefined || normalize(e.reply.dst) === m.replyDst) &&
    (m.replySrcPort === undefined || e.reply.srcPort === m.replySrcPort) &&
    (m.replyDstPort === undefined || e.reply.dstPort === m.replyDstPort) &&
    (m.mark === undefined || e.mark === m.mark) &&
    (m.zone === undefined || e.zone === m.zone)
  );
}

/** One textual form per address (inet_ntop and ipaddr.js differ on some IPv6 forms). */
function normalize(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.parse(address).toNormalizedString() : address;
}

type Attrs = Record<string, unknown>;

function num(x: unknown): number {
  return typeof x === 'number' ? x : typeof x === 'string' ? Number(x) : 0;
}

function obj(x: unknown): Attrs {
  return x !== null && typeof x === 'object' ? (x as Attrs) : {};
}

/** A decoded IPCTNL_MSG_CT_NEW message as an entry; undefined for a family conntrack does not track. */
function toEntry(r: NativeMessage): ConntrackEntry | undefined {
  const family = r.header.family === AF.INET ? 4 : r.header.family === AF.INET6 ? 6 : undefined;
  if (family === undefined) return undefined;
  const a = r.attrs;
  const protoNum = num(obj(obj(a.tupleOrig).proto).num);
  const status = num(a.status);
  const entry: ConntrackEntry = {
    id: num(a.id),
    family,
    protocol: PROTOCOL_NAMES.get(protoNum) ?? protoNum,
    orig: toTuple(a.tupleOrig, family),
    reply: toTuple(a.tupleReply, family),
    status: statusNames(status),
    timeout: num(a.timeout),
    mark: num(a.mark),
    zone: num(a.zone),
    raw: a,
  };
  const info = obj(a.protoinfo);
  if (info.tcp) entry.state = stateName(TCP_STATES, obj(info.tcp).state);
  else if (info.sctp) entry.state = stateName(SCTP_STATES, obj(info.sctp).state);
  const help = obj(a.help);
  if (typeof help.name === 'string') entry.helper = help.name;
  if (a.countersOrig || a.countersReply) {
    const c = (x: unknown): ConntrackCounters => ({ packets: num(obj(x).packets ?? obj(x).packets32), bytes: num(obj(x).bytes ?? obj(x).bytes32) });
    entry.counters = { orig: c(a.countersOrig), reply: c(a.countersReply) };
  }
  if (typeof a.labels === 'string') entry.labels = a.labels;
  return entry;
}

function toTuple(x: unknown, family: 4 | 6): ConntrackTuple {
  const ip = obj(obj(x).ip);
  const p = obj(obj(x).proto);
  const src = family === 4 ? ip.v4Src : ip.v6Src;
  const dst = family === 4 ? ip.v4Dst : ip.v6Dst;
  const t: ConntrackTuple = { src: typeof src === 'string' ? src : '', dst: typeof dst === 'string' ? dst : '' };
  if (p.srcPort !== undefined) t.srcPort = num(p.srcPort);
  if (p.dstPort !== undefined) t.dstPort = num(p.dstPort);
  if (p.icmpType !== undefined) t.icmp = { type: num(p.icmpType), code: num(p.icmpCode), id: num(p.icmpId) };
  else if (p.icmpv6Type !== undefined) t.icmp = { type: num(p.icmpv6Type), code: num(p.icmpv6Code), id: num(p.icmpv6Id) };
  return t;
}

function statusNames(bits: number): ConntrackStatus[] {
  const out: ConntrackStatus[] = [];
  for (let i = 0; i < 32; i++) {
    if (((bits >>> i) & 1) === 0) continue;
    out.push(STATUS_BITS[i] ?? (`bit${i}` as ConntrackStatus));
  }
  return out;
}

function stateName(names: string[], state: unknown): string | undefined {
  if (state === undefined) return undefined;
  return names[num(state)] ?? String(state);
}

function describe(e: ConntrackEntry | undefined): string {
  if (!e) return '';
  const ep = (addr: string, port?: number): string => (port === undefined ? addr : e.family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`);
  return `${String(e.protocol)} ${ep(e.orig.src, e.orig.srcPort)} -> ${ep(e.orig.dst, e.orig.dstPort)} (id ${e.id})`;
}
