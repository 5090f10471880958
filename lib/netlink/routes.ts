/** Routes (IPv4 and IPv6) over rtnetlink. */
import { invalid } from '../errors';
import type { NativeMessage } from '../native';
import * as v from '../validate';
import { AF, NLM_F, RTM, RTNH_F_ONLINK, RTN_TYPES, RTPROT, RT_SCOPE, RT_TABLE } from './constants';
import type { Conn, NetlinkOp } from './conn';
import type { Links } from './links';

export type RouteScope = 'universe' | 'site' | 'link' | 'host' | 'nowhere';

export interface Route {
  family: 4 | 6;
  /** 'default' or a CIDR. */
  dst: string;
  gateway?: string;
  /** Output link index. */
  dev?: number;
  metric?: number;
  table: number;
  scope: string;
  protocol: string;
  type: string;
  /** Preferred source address. */
  src?: string;
  onlink: boolean;
}

export interface RouteSpec {
  /** 'default' or a CIDR ("10.9.0.0/16"); a bare address means a host route. */
  dst: string;
  gateway?: string;
  dev?: string | number;
  metric?: number;
  /** Table id or 'main' (default) / 'local'. */
  table?: number | 'main' | 'local';
  /** Default: 'link' for a route without gateway, 'universe' otherwise. */
  scope?: RouteScope;
  /** Treat the gateway as on-link even if no prefix covers it. */
  onlink?: boolean;
  /** Preferred source address. */
  src?: string;
  /** Default 'static' (like `ip route add`). */
  protocol?: 'static' | 'boot' | 'kernel' | number;
  /** Default 'unicast'. */
  type?: 'unicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'local';
}

/** The route types a caller may ask for (the others are kernel-internal or need multipath). */
const ROUTE_TYPES: readonly string[] = ['unicast', 'blackhole', 'unreachable', 'prohibit', 'local'];

const SCOPE_NAMES = Object.fromEntries(Object.entries(RT_SCOPE).map(([k, n]) => [n, k])) as Record<number, string>;
const PROTO_NAMES = Object.fromEntries(Object.entries(RTPROT).map(([k, n]) => [n, k])) as Record<number, string>;

/** @internal */
export function decodeRoute(m: NativeMessage): Route {
  const h = m.header;
  const a = m.attrs;
  const family: 4 | 6 = h.family === AF.INET6 ? 6 : 4;
  const dstLen = h.dstLen ?? 0;
  const r: Route = {
    family,
    dst: typeof a.dst === 'string' ? `${a.dst}/${dstLen}` : dstLen === 0 ? 'default' : `?/${dstLen}`,
    table: typeof a.table === 'number' ? a.table : (h.table ?? 0),
    scope: SCOPE_NAMES[h.scope ?? 0] ?? String(h.scope),
    protocol: PROTO_NAMES[h.protocol ?? 0] ?? String(h.protocol),
    type: RTN_TYPES[h.type ?? 0] ?? String(h.type),
    onlink: ((h.flags ?? 0) & RTNH_F_ONLINK) !== 0,
  };
  if (typeof a.gateway === 'string') r.gateway = a.gateway;
  if (typeof a.oif === 'number') r.dev = a.oif;
  if (typeof a.priority === 'number') r.metric = a.priority;
  if (typeof a.prefsrc === 'string') r.src = a.prefsrc;
  return r;
}

/** The route operations of a {@link Netlink} handle. */
export class Routes {
  /** @internal */
  constructor(
    private readonly conn: Conn,
    private readonly links: Links,
  ) {}

  /** Routes of one table (default: main; 'all' for every table), optionally of one family / link. */
  async list(filter: { family?: 4 | 6; table?: number | 'main' | 'local' | 'all'; dev?: string | number } = {}): Promise<Route[]> {
    v.knownKeys(filter, ['family', 'table', 'dev'], 'routes.list filter');
    const table = filter.table === 'all' ? undefined : tableId(filter.table ?? 'main');
    const dev = filter.dev === undefined ? undefined : await this.links.index(filter.dev);
    const families = filter.family === 4 ? [AF.INET] : filter.family === 6 ? [AF.INET6] : [AF.INET, AF.INET6];
    const out: Route[] = [];
    for (const family of families) {
      const msgs = await this.conn.dump({ type: RTM.GETROUTE, header: { family } }, 'list routes');
      for (const m of msgs) {
        if (m.type !== RTM.NEWROUTE) continue;
        const r = decodeRoute(m);
        if ((table === undefined || r.table === table) && (dev === undefined || r.dev === dev)) out.push(r);
      }
    }
    return out;
  }

  /** Adds a route. @throws NetlinkError EEXIST if an equal route exists. */
  async add(route: RouteSpec): Promise<void> {
    await this.send(route, NLM_F.CREATE | NLM_F.EXCL, 'add');
  }

  /** Adds a route or replaces the one with the same destination, table and metric. */
  async replace(route: RouteSpec): Promise<void> {
    await this.send(route, NLM_F.CREATE | NLM_F.REPLACE, 'replace');
  }

  /** Removes a route. @throws NetlinkError ESRCH if there is no such route. */
  async remove(route: RouteSpec): Promise<void> {
    const { header, attrs } = await this.encode(route, true);
    await this.conn.request({ type: RTM.DELROUTE, header, attrs }, `remove route ${route.dst}`, { route });
  }

  /**
   * add() of a route whose device, if any, is given by index, built for {@link Netlink.batch}.
   * @internal
   */
  addOp(route: RouteSpec & { dev?: number }): NetlinkOp {
    const { header, attrs } = this.encodeWith(route, false, route.dev === undefined ? undefined : v.int(route.dev, 1, 2 ** 31 - 1, 'link index'));
    return { request: { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.EXCL, header, attrs }, what: `add route ${route.dst}`, details: { route } };
  }

  private async send(route: RouteSpec, flags: number, verb: string): Promise<void> {
    const { header, attrs } = await this.encode(route, false);
    await this.conn.request({ type: RTM.NEWROUTE, flags, header, attrs }, `${verb} route ${route.dst}`, { route });
  }

  private async encode(route: RouteSpec, forDelete: boolean): Promise<{ header: Record<string, number>; attrs: Record<string, unknown> }> {
    return this.encodeWith(route, forDelete, route.dev === undefined ? undefined : await this.links.index(route.dev));
  }

  private encodeWith(route: RouteSpec, forDelete: boolean, oif: number | undefined): { header: Record<string, number>; attrs: Record<string, unknown> } {
    v.knownKeys(route, ['dst', 'gateway', 'dev', 'metric', 'table', 'scope', 'onlink', 'src', 'protocol', 'type'], 'route');
    let family: 4 | 6 | undefined;
    let dst: { address: string; prefix: number } | undefined;
    if (route.dst !== 'default') {
      if (typeof route.dst === 'string' && !route.dst.includes('/')) {
        const a = v.ip(route.dst, undefined, 'dst');
        dst = { address: a.address, prefix: a.family === 4 ? 32 : 128 };
        family = a.family;
      } else {
        const c = v.cidr(route.dst, undefined, 'dst');
        if (v.networkAddress(c.address, c.prefix) !== c.address)
          throw invalid(
            'ERR_INVALID_CIDR',
            `route destination ${route.dst} has host bits set (did you mean ${v.networkAddress(c.address, c.prefix)}/${c.prefix}?)`,
            { value: route.dst },
          );
        dst = c;
        family = c.family;
      }
    }
    const attrs: Record<string, unknown> = {};
    if (route.gateway !== undefined) {
      const g = v.ip(route.gateway, family, 'gateway');
      family ??= g.family;
      attrs.gateway = g.address;
    }
    if (route.src !== undefined) {
      const s = v.ip(route.src, family, 'src');
      family ??= s.family;
      attrs.prefsrc = s.address;
    }
    family ??= 4;
    if (dst) attrs.dst = dst.address;
    if (oif !== undefined) attrs.oif = oif;
    if (route.metric !== undefined) attrs.priority = v.int(route.metric, 0, 2 ** 32 - 1, 'metric');
    const table = tableId(route.table ?? 'main');
    attrs.table = table;
    if (!forDelete && attrs.gateway === undefined && attrs.oif === undefined && (route.type ?? 'unicast') === 'unicast')
      throw invalid('ERR_INVALID_ARGUMENT', `route ${route.dst} needs a gateway or a dev`);
    const scope = route.scope ?? (attrs.gateway === undefined && (route.type ?? 'unicast') === 'unicast' ? 'link' : 'universe');
    if (!(scope in RT_SCOPE)) throw invalid('ERR_INVALID_ARGUMENT', `scope ${JSON.stringify(scope)} is not one of ${Object.keys(RT_SCOPE).join(', ')}`);
    if (!ROUTE_TYPES.includes(route.type ?? 'unicast'))
      throw invalid('ERR_INVALID_ARGUMENT', `route type ${JSON.stringify(route.type)} is not one of ${ROUTE_TYPES.join(', ')}`);
    const type = RTN_TYPES.indexOf(route.type ?? 'unicast');
    const protocol = typeof route.protocol === 'number' ? v.int(route.protocol, 0, 255, 'protocol') : RTPROT[route.protocol ?? 'static'];
    if (protocol === undefined) throw invalid('ERR_INVALID_ARGUMENT', `protocol ${JSON.stringify(route.protocol)} is not known`);
    const header: Record<string, number> = {
      family: family === 4 ? AF.INET : AF.INET6,
      dstLen: dst?.prefix ?? 0,
      table: table < 256 ? table : RT_TABLE.UNSPEC,
      protocol: forDelete && route.protocol === undefined ? 0 : protocol,
      scope: forDelete && route.scope === undefined ? RT_SCOPE.nowhere! : RT_SCOPE[scope]!,
      type: forDelete && route.type === undefined ? 0 : type,
    };
    if (route.onlink) header.flags = RTNH_F_ONLINK;
    return { header, attrs };
  }
}

function tableId(t: number | string): number {
  if (t === 'main') return RT_TABLE.MAIN;
  if (t === 'local') return RT_TABLE.LOCAL;
  return v.int(t, 1, 2 ** 32 - 1, 'route table');
}
