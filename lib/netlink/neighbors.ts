/**
 * Neighbour (ARP / NDP) entries and bridge forwarding-database (FDB) entries over rtnetlink:
 * the same RTM_*NEIGH messages, the FDB with family AF_BRIDGE.
 */
import { invalid } from '../errors';
import type { NativeMessage } from '../native';
import * as v from '../validate';
import { AF, NLM_F, NTF, NUD, RTM } from './constants';
import type { Conn } from './conn';
import type { Links } from './links';

export type NeighborState = 'permanent' | 'noarp' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'incomplete';

export interface Neighbor {
  /** Link index. */
  index: number;
  family: 4 | 6;
  ip: string;
  mac?: string;
  /** NUD_* state names. */
  state: string[];
  router: boolean;
  proxy: boolean;
}

export interface NeighborSpec {
  dev: string | number;
  ip: string;
  mac: string;
  /** Default 'permanent'. */
  state?: NeighborState;
  router?: boolean;
}

export interface FdbEntry {
  /** Link index (the bridge port or the vxlan device). */
  index: number;
  mac: string;
  /** VXLAN remote (underlay) address. */
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  /** Index of the bridge when the entry is in the bridge's table. */
  master?: number;
  /** In the device's own table (NTF_SELF). */
  self: boolean;
  /** Never ages out (NUD_PERMANENT or, in a bridge's table, NUD_NOARP "static"). */
  permanent: boolean;
  /** NUD_* state names. */
  state: string[];
  /** NTF_* flag names. */
  flags: string[];
}

export interface FdbSpec {
  dev: string | number;
  mac: string;
  /** VXLAN: remote VTEP underlay address. */
  dst?: string;
  vni?: number;
  /** VXLAN: remote UDP port. */
  port?: number;
  vlan?: number;
  /** Put the entry in the device's own table (vxlan). Default: true unless `master`. */
  self?: boolean;
  /** Put the entry in the bridge's table. */
  master?: boolean;
  /**
   * Default true: a static entry that never ages out. In a device's own table (vxlan, `self`)
   * that is NUD_PERMANENT; in a bridge's table (`master`) it is NUD_NOARP, `bridge fdb`'s
   * "static": NUD_PERMANENT there would make the MAC local to the bridge and stop forwarding.
   * false: NUD_REACHABLE (ages out).
   */
  permanent?: boolean;
}

const NUD_NAMES = Object.entries(NUD);
const NTF_NAMES = Object.entries(NTF).map(([k, n]) => [n, k.toLowerCase()] as const);

function states(s: number): string[] {
  return NUD_NAMES.filter(([, bit]) => s & bit).map(([n]) => n);
}

/** @internal */
export function decodeNeighbor(m: NativeMessage): Neighbor {
  const h = m.header;
  const a = m.attrs;
  const out: Neighbor = {
    index: h.ifindex ?? 0,
    family: h.family === AF.INET6 ? 6 : 4,
    ip: String(a.dst ?? ''),
    state: states(h.state ?? 0),
    router: ((h.flags ?? 0) & NTF.ROUTER) !== 0,
    proxy: ((h.flags ?? 0) & NTF.PROXY) !== 0,
  };
  if (typeof a.lladdr === 'string') out.mac = a.lladdr;
  return out;
}

/** @internal */
export function decodeFdb(m: NativeMessage): FdbEntry {
  const h = m.header;
  const a = m.attrs;
  const flags = h.flags ?? 0;
  const out: FdbEntry = {
    index: h.ifindex ?? 0,
    mac: String(a.lladdr ?? ''),
    self: (flags & NTF.SELF) !== 0,
    permanent: ((h.state ?? 0) & (NUD.permanent! | NUD.noarp!)) !== 0,
    state: states(h.state ?? 0),
    flags: NTF_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n),
  };
  if (typeof a.dst === 'string') out.dst = a.dst;
  if (typeof a.vni === 'number') out.vni = a.vni;
  if (typeof a.port === 'number') out.port = a.port;
  if (typeof a.vlan === 'number') out.vlan = a.vlan;
  if (typeof a.master === 'number') out.master = a.master;
  return out;
}

/** The neighbour-table operations of a {@link Netlink} handle. */
export class Neighbors {
  /** @internal */
  constructor(
    private readonly conn: Conn,
    private readonly links: Links,
  ) {}

  /** Neighbour entries (ARP and NDP), optionally of one link / family. */
  async list(filter: { dev?: string | number; family?: 4 | 6 } = {}): Promise<Neighbor[]> {
    v.knownKeys(filter, ['dev', 'family'], 'neighbors.list filter');
    const index = filter.dev === undefined ? 0 : await this.links.index(filter.dev);
    const family = filter.family === 4 ? AF.INET : filter.family === 6 ? AF.INET6 : AF.UNSPEC;
    // Strict dumps take the link filter as NDA_IFINDEX, not in the header.
    const msgs = await this.conn.dump({ type: RTM.GETNEIGH, header: { family }, attrs: index ? { ifindex: index } : {} }, 'list neighbors');
    return msgs
      .filter((m) => m.type === RTM.NEWNEIGH && (m.header.family === AF.INET || m.header.family === AF.INET6))
      .map(decodeNeighbor)
      .filter((n) => !index || n.index === index);
  }

  /** Adds an entry. @throws NetlinkError EEXIST if there is one for this IP on the link. */
  async add(spec: NeighborSpec): Promise<void> {
    await this.send(spec, NLM_F.CREATE | NLM_F.EXCL, 'add');
  }

  /** Adds or replaces an entry. */
  async replace(spec: NeighborSpec): Promise<void> {
    await this.send(spec, NLM_F.CREATE | NLM_F.REPLACE, 'replace');
  }

  /** Removes the entry for `ip` on a link. @throws NetlinkError ENOENT if there is none. */
  async remove(spec: { dev: string | number; ip: string }): Promise<void> {
    v.knownKeys(spec, ['dev', 'ip', 'mac', 'state', 'router'], 'neighbor');
    const a = v.ip(spec.ip, undefined, 'neighbor IP');
    const ifindex = await this.links.index(spec.dev);
    await this.conn.request(
      { type: RTM.DELNEIGH, header: { family: a.family === 4 ? AF.INET : AF.INET6, ifindex }, attrs: { dst: a.address } },
      `remove neighbor ${spec.ip}`,
      { spec },
    );
  }

  private async send(spec: NeighborSpec, flags: number, verb: string): Promise<void> {
    v.knownKeys(spec, ['dev', 'ip', 'mac', 'state', 'router'], 'neighbor');
    const a = v.ip(spec.ip, undefined, 'neighbor IP');
    const mac = v.mac(spec.mac);
    const state = NUD[spec.state ?? 'permanent'];
    if (state === undefined) throw invalid('ERR_INVALID_ARGUMENT', `neighbor state ${JSON.stringify(spec.state)} is not one of ${Object.keys(NUD).join(', ')}`);
    const ifindex = await this.links.index(spec.dev);
    await this.conn.request(
      {
        type: RTM.NEWNEIGH,
        flags,
        header: { family: a.family === 4 ? AF.INET : AF.INET6, ifindex, state, flags: spec.router ? NTF.ROUTER : 0 },
        attrs: { dst: a.address, lladdr: mac },
      },
      `${verb} neighbor ${spec.ip}`,
      { spec },
    );
  }
}

/** The bridge forwarding-database operations of a {@link Netlink} handle. */
export class Fdb {
  /** @internal */
  constructor(
    private readonly conn: Conn,
    private readonly links: Links,
  ) {}

  /** FDB entries, optionally of one device (a bridge port or a vxlan device). */
  async list(filter: { dev?: string | number } = {}): Promise<FdbEntry[]> {
    v.knownKeys(filter, ['dev'], 'fdb.list filter');
    const index = filter.dev === undefined ? 0 : await this.links.index(filter.dev);
    const msgs = await this.conn.dump({ type: RTM.GETNEIGH, header: { family: AF.BRIDGE, ifindex: index } }, 'list fdb');
    return msgs
      .filter((m) => m.type === RTM.NEWNEIGH)
      .map(decodeFdb)
      .filter((e) => !index || e.index === index);
  }

  /** Adds an entry. @throws NetlinkError EEXIST if the device has one for this MAC. */
  async add(spec: FdbSpec): Promise<void> {
    await this.send(spec, NLM_F.CREATE | NLM_F.EXCL, 'add');
  }

  /** Adds or replaces an entry. */
  async replace(spec: FdbSpec): Promise<void> {
    await this.send(spec, NLM_F.CREATE | NLM_F.REPLACE, 'replace');
  }

  /**
   * Adds one more destination for a MAC (vxlan: flooding to several VTEPs with the all-zero
   * MAC), like `bridge fdb append`.
   */
  async append(spec: FdbSpec): Promise<void> {
    await this.send(spec, NLM_F.CREATE | NLM_F.APPEND, 'append');
  }

  /** Removes an entry (with `dst`, just that destination). @throws NetlinkError ENOENT if absent. */
  async remove(spec: FdbSpec): Promise<void> {
    const { header, attrs } = await this.encode(spec);
    await this.conn.request({ type: RTM.DELNEIGH, header, attrs }, `remove fdb ${spec.mac}`, { spec });
  }

  private async send(spec: FdbSpec, flags: number, verb: string): Promise<void> {
    const { header, attrs } = await this.encode(spec);
    await this.conn.request({ type: RTM.NEWNEIGH, flags, header, attrs }, `${verb} fdb ${spec.mac}`, { spec });
  }

  private async encode(spec: FdbSpec): Promise<{ header: Record<string, number>; attrs: Record<string, unknown> }> {
    v.knownKeys(spec, ['dev', 'mac', 'dst', 'vni', 'port', 'vlan', 'self', 'master', 'permanent'], 'fdb entry');
    const attrs: Record<string, unknown> = { lladdr: v.mac(spec.mac) };
    if (spec.dst !== undefined) attrs.dst = v.ip(spec.dst, undefined, 'fdb dst').address;
    if (spec.vni !== undefined) attrs.vni = v.int(spec.vni, 0, 0xffffff, 'VNI');
    if (spec.port !== undefined) attrs.port = v.int(spec.port, 1, 65535, 'port');
    if (spec.vlan !== undefined) attrs.vlan = v.int(spec.vlan, 1, 4094, 'vlan');
    const master = spec.master === undefined ? false : v.bool(spec.master, 'master');
    const self = spec.self === undefined ? !master : v.bool(spec.self, 'self');
    const permanent = spec.permanent === undefined ? true : v.bool(spec.permanent, 'permanent');
    const ifindex = await this.links.index(spec.dev);
    return {
      header: {
        family: AF.BRIDGE,
        ifindex,
        state: !permanent ? NUD.reachable! : master ? NUD.noarp! : NUD.permanent!,
        flags: (self ? NTF.SELF : 0) | (master ? NTF.MASTER : 0),
      },
      attrs,
    };
  }
}
