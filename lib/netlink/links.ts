/**
 * Links (network interfaces) over rtnetlink: list, get, add, set, remove, bulk add and remove,
 * and a watch of link events.
 */
import { NetlinkError, NsnetError, invalid } from '../errors';
import { NETLINK_ROUTE, native, type NativeMessage, type NativeRequest } from '../native';
import { openNetns, type NetnsHandle } from '../netns';
import * as v from '../validate';
import { AF, IFF_UP, NLM_F, RTEXT_FILTER_SKIP_STATS, RTM, RTNLGRP } from './constants';
import { Conn, type NetlinkOp } from './conn';
import { decodeLink } from './link-decode';
import { removeLinks } from './link-remove';
import { addrGenModeSpec, bridgePortInfo, newLinkRequest, parentOf } from './link-encode';
import type { Link, LinkChanges, LinkEvent, LinkSpec } from './link-types';
import { LinkWatcher } from './watch';

type Attrs = Record<string, unknown>;
type NativeRequestBody = Omit<NativeRequest, 'flags'>;

/**
 * What list() and get() decode unless `{ full: true }`: the attributes behind the typed fields
 * (linkinfo whole, so every kind's data is kept). The rest — counters, per-protocol settings
 * (IFLA_AF_SPEC, also readable as sysctls), offload limits — is most of each message and of
 * the decoding time, like `ip -s -d link` against `ip link`; `full: true` gives all of it.
 */
const LEAN = [
  'ifname',
  'mtu',
  'minMtu',
  'maxMtu',
  'address',
  'broadcast',
  'master',
  'link',
  'linkNetnsid',
  'ifalias',
  'group',
  'txqlen',
  'operstate',
  'linkinfo',
];

/** The link operations of a {@link Netlink} handle. */
export class Links {
  /** @internal */
  constructor(private readonly conn: Conn) {}

  /**
   * All links of the namespace, optionally filtered. `raw` holds the attributes behind the
   * typed fields unless `full` is set, then every attribute the kernel sent.
   */
  async list(filter: { kind?: Link['kind']; master?: string | number; group?: number; full?: boolean } = {}): Promise<Link[]> {
    v.knownKeys(filter, ['kind', 'master', 'group', 'full'], 'links.list filter');
    const master = filter.master === undefined ? undefined : await this.index(filter.master);
    const links = await this.conn.dumpMapped(
      { type: RTM.GETLINK, header: { family: AF.UNSPEC }, attrs: { extMask: RTEXT_FILTER_SKIP_STATS }, ...(filter.full ? {} : { only: LEAN }) },
      'list links',
      (m) => (m.type === RTM.NEWLINK ? decodeLink(m) : undefined),
    );
    return links.filter(
      (l) =>
        (filter.kind === undefined || l.kind === filter.kind) &&
        (master === undefined || l.master === master) &&
        (filter.group === undefined || l.group === filter.group),
    );
  }

  /**
   * One link by name or index (`full`: with counters and per-protocol settings in `raw`).
   * @throws NetlinkError ENODEV when there is none.
   */
  async get(link: string | number, opts: { full?: boolean } = {}): Promise<Link> {
    const omit = opts.full ? {} : { only: LEAN };
    const req: NativeRequestBody =
      typeof link === 'number'
        ? { type: RTM.GETLINK, header: { index: v.int(link, 1, 2 ** 31 - 1, 'link index') }, attrs: { extMask: RTEXT_FILTER_SKIP_STATS }, ...omit }
        : { type: RTM.GETLINK, header: {}, attrs: { ifname: v.ifname(link), extMask: RTEXT_FILTER_SKIP_STATS }, ...omit };
    const replies = await this.conn.request(req, `get link ${link}`, { link });
    const m = replies.find((r) => r.type === RTM.NEWLINK);
    if (!m) throw new NsnetError('ERR_NATIVE', `get link ${link}: the kernel sent no link`);
    return decodeLink(m);
  }

  /** Like get(), but undefined when the link does not exist. */
  async find(link: string | number): Promise<Link | undefined> {
    try {
      return await this.get(link);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }

  /** @internal Resolves a name or index to an index. */
  async index(link: string | number): Promise<number> {
    return typeof link === 'number' ? v.int(link, 1, 2 ** 31 - 1, 'link index') : (await this.get(link)).index;
  }

  /**
   * Creates a link and returns it as the kernel made it. A veth peer may be created directly in
   * another namespace (`peer: { name: 'eth0', netns: 'c1' }`), in the same atomic request.
   * @throws NetlinkError EEXIST if the name is taken; EOPNOTSUPP "Unknown device type" for a kind the kernel lacks.
   */
  async add(spec: LinkSpec): Promise<Link> {
    const [link] = await this.addMany([spec]);
    return link as Link;
  }

  /**
   * Creates many links, pipelined on the socket (the fast path for bulk work). All or nothing:
   * if one fails, those already made are removed and the error names the failing index.
   */
  async addMany(specs: LinkSpec[]): Promise<Link[]> {
    if (!Array.isArray(specs)) throw invalid('ERR_INVALID_ARGUMENT', 'addMany takes an array of link specs');
    const opened: NetnsHandle[] = [];
    try {
      const masters = new Map<string | number, number>();
      for (const s of specs) if (s && s.master !== undefined && !masters.has(s.master)) masters.set(s.master, await this.index(s.master));
      const parents = new Map<string | number, number>();
      for (const s of specs) {
        const p = parentOf(s);
        if (p !== undefined && !parents.has(p)) parents.set(p, await this.index(p));
      }
      const requests = specs.map((s) => ({ ...newLinkRequest(s, masters, parents, opened), only: LEAN }));
      const results = await this.conn.batch(requests, (i) => `add link ${specs[i]?.name}`);
      const failed = results.findIndex((r) => r.error);
      if (failed >= 0) {
        // (A link made in another namespace stays there: a batch that mixes namespaces is the caller's.)
        const made = specs.filter((x, i) => !results[i]?.error && x.netns === undefined).map((x) => x.name);
        if (made.length) await this.removeMany(made).catch(() => undefined);
        throw results[failed]!.error!;
      }
      // Links born in another namespace: the kernel's echo goes to that namespace, not to us,
      // so they are looked up and finished (alias, addrGenMode) with a handle there.
      if (specs.some((s) => s.netns !== undefined)) await this.finishElsewhere(specs, results);
      const links: Link[] = [];
      for (let i = 0; i < specs.length; i++) {
        const echo = results[i]!.replies.find((m) => m.type === RTM.NEWLINK);
        if (echo) links.push(decodeLink(echo));
        else if (specs[i]!.netns === undefined) links.push(await this.get(specs[i]!.name));
        else links.push(results[i]!.replies[0] ? decodeLink(results[i]!.replies[0]!) : await this.get(specs[i]!.name));
      }
      // The kernel ignores IFLA_IFALIAS and bridge-port settings when it creates a link: they
      // go in a second round, one message per link that has either.
      const later = links
        .map((l, i) => ({ l, alias: specs[i]!.alias, port: specs[i]!.bridgePort, gen: specs[i]!.addrGenMode, away: specs[i]!.netns !== undefined }))
        .filter((x) => !x.away && (x.alias !== undefined || x.port !== undefined || x.gen !== undefined));
      if (later.length) {
        const set = await this.conn.batch(
          later.map((x) => ({
            type: RTM.NEWLINK,
            header: { index: x.l.index },
            attrs: {
              ...(x.alias !== undefined ? { ifalias: x.alias } : {}),
              ...(x.port !== undefined ? { linkinfo: bridgePortInfo(x.port) } : {}),
              ...(x.gen !== undefined ? { afSpec: addrGenModeSpec(x.gen) } : {}),
            },
          })),
          (i) => `configure ${later[i]!.l.name}`,
        );
        const bad = set.find((r) => r.error);
        if (bad) {
          await this.removeMany(links.map((l) => l.index)).catch(() => undefined);
          throw bad.error!;
        }
        for (const x of later) if (x.alias !== undefined) x.l.alias = x.alias;
      }
      return links;
    } finally {
      for (const ns of opened) ns.close();
    }
  }

  /**
   * For each spec created in another namespace: reads the link back there (its reply stands in
   * for the echo) and applies alias and addrGenMode; on failure every link of the call is removed.
   */
  private async finishElsewhere(specs: LinkSpec[], results: { error?: NetlinkError; replies: NativeMessage[] }[]): Promise<void> {
    for (let i = 0; i < specs.length; i++) {
      const s = specs[i]!;
      if (s.netns === undefined) continue;
      const conn = await Conn.open(NETLINK_ROUTE, s.netns, 'rtnetlink', async () => undefined);
      const there = new Links(conn);
      try {
        if (s.addrGenMode !== undefined || s.alias !== undefined)
          await there.set(s.name, {
            ...(s.alias !== undefined ? { alias: s.alias } : {}),
            ...(s.addrGenMode !== undefined ? { addrGenMode: s.addrGenMode } : {}),
          });
        const got = await conn.request(
          { type: RTM.GETLINK, header: {}, attrs: { ifname: s.name, extMask: RTEXT_FILTER_SKIP_STATS }, only: LEAN },
          `get link ${s.name}`,
        );
        results[i] = { replies: got.filter((m) => m.type === RTM.NEWLINK) };
      } catch (e) {
        await there.remove(s.name).catch(() => undefined);
        const here = specs.filter((x, j) => x.netns === undefined && j !== i).map((x) => x.name);
        if (here.length) await this.removeMany(here).catch(() => undefined);
        throw e;
      } finally {
        conn.close();
      }
    }
  }

  /**
   * Changes a link. Several changes go to the kernel in one request; if it refuses, the
   * fields already applied are restored. With `netns`, the link moves (and is renamed to
   * `name` on arrival); the name is checked to be free there first.
   */
  async set(link: string | number, changes: LinkChanges): Promise<void> {
    v.knownKeys(changes, ['up', 'mtu', 'name', 'mac', 'master', 'netns', 'alias', 'group', 'txqlen', 'bridgePort', 'addrGenMode'], 'link changes');
    const given = Object.keys(changes).filter((k) => (changes as Record<string, unknown>)[k] !== undefined);
    if (given.length === 1 && given[0] !== 'name' && given[0] !== 'netns') {
      // One change is all or nothing in the kernel: no state to keep for a rollback, so no
      // lookup first either — the device is named in the request itself.
      await this.conn.request({ type: RTM.NEWLINK, ...(await this.setMessage(link, changes, undefined)) }, `set link ${link}`, { link });
      return;
    }
    const before = await this.get(link);
    const { header, attrs } = await this.setMessage(before.index, changes, before);
    let ns: NetnsHandle | undefined;
    try {
      if (changes.netns !== undefined) {
        ns = openNetns(changes.netns);
        attrs.netNsFd = ns.fd;
        await this.checkNameFree(ns, changes.name ?? before.name);
      }
      try {
        await this.conn.request({ type: RTM.NEWLINK, header, attrs }, `set link ${link}`, { link });
      } catch (e) {
        const fields = Object.keys(attrs).length + (header.change ? 1 : 0);
        if (fields > 1 && changes.netns === undefined) await this.restore(before).catch(() => undefined);
        throw e;
      }
    } finally {
      ns?.close();
    }
  }

  /**
   * set() of a link (by index, or by name in the request itself), built for
   * {@link Netlink.batch} (no lookup: a master by index only; no rename or move; no rollback of
   * what one request applied before the kernel refused the rest). Several changes in one op are applied by the kernel in its own
   * order (flags before IFLA_AF_SPEC): an addrGenMode that must precede `up` goes in an op of
   * its own before it.
   * @internal
   */
  setOp(link: number | string, changes: Omit<LinkChanges, 'name' | 'netns' | 'master'> & { master?: number | null }): NetlinkOp {
    v.knownKeys(changes, ['up', 'mtu', 'mac', 'master', 'alias', 'group', 'txqlen', 'bridgePort', 'addrGenMode'], 'link changes');
    const byName = typeof link === 'string';
    const { header, attrs } = changeAttrs(
      byName ? 0 : v.int(link, 1, 2 ** 31 - 1, 'link index'),
      changes,
      changes.master === undefined ? undefined : changes.master === null ? 0 : v.int(changes.master, 1, 2 ** 31 - 1, 'master index'),
    );
    return {
      request: { type: RTM.NEWLINK, header, attrs: byName ? { ifname: v.ifname(link), ...attrs } : attrs },
      what: `set link ${link}`,
      details: { link },
    };
  }

  /** The RTM_NEWLINK header and attributes of a set(); the device by index, or by name in the request. */
  private async setMessage(link: string | number, changes: LinkChanges, before: Link | undefined): Promise<{ header: Record<string, number>; attrs: Attrs }> {
    const attrs: Attrs = {};
    const header: Record<string, number> = { family: AF.UNSPEC };
    if (typeof link === 'number') header.index = v.int(link, 1, 2 ** 31 - 1, 'link index');
    else attrs.ifname = v.ifname(link);
    if (before) {
      header.index = before.index;
      delete attrs.ifname;
    }
    const master = changes.master === undefined ? undefined : changes.master === null ? 0 : await this.index(changes.master);
    const c = changeAttrs(header.index ?? 0, changes, master);
    Object.assign(attrs, c.attrs);
    if (c.header.change !== undefined) Object.assign(header, { flags: c.header.flags, change: c.header.change });
    return { header, attrs };
  }

  private async checkNameFree(ns: NetnsHandle, name: string): Promise<void> {
    const h = new native.Handle(NETLINK_ROUTE, ns.fd);
    try {
      const [r] = await h.exec([
        { type: RTM.GETLINK, flags: NLM_F.REQUEST | NLM_F.ACK, header: {}, attrs: { ifname: name, extMask: RTEXT_FILTER_SKIP_STATS } },
      ]);
      if (r && !r.errno)
        throw new NetlinkError({ errno: 17, code: 'EEXIST', operation: 'RTM_NEWLINK', what: `move link: ${name} already exists in the target namespace` });
    } finally {
      h.close();
    }
  }

  private async restore(before: Link): Promise<void> {
    const now = await this.get(before.index);
    const attrs: Attrs = {};
    const header: Record<string, number> = { index: before.index };
    if (now.name !== before.name) attrs.ifname = before.name;
    if (now.mtu !== before.mtu) attrs.mtu = before.mtu;
    if (now.mac !== before.mac && before.mac) attrs.address = before.mac;
    if (now.master !== before.master) attrs.master = before.master ?? 0;
    if (now.alias !== before.alias) attrs.ifalias = before.alias ?? '';
    if (now.group !== before.group) attrs.group = before.group;
    if (now.txqlen !== before.txqlen) attrs.txqlen = before.txqlen;
    if (now.up !== before.up) {
      header.flags = before.up ? IFF_UP : 0;
      header.change = IFF_UP;
    }
    if (Object.keys(attrs).length || header.change) await this.conn.request({ type: RTM.NEWLINK, header, attrs }, `restore link ${before.name}`);
  }

  /**
   * Removes a link (a veth's peer goes with it).
   * @throws NetlinkError ENODEV when there is none.
   */
  async remove(link: string | number): Promise<void> {
    const req: NativeRequestBody =
      typeof link === 'number'
        ? { type: RTM.DELLINK, header: { index: v.int(link, 1, 2 ** 31 - 1, 'link index') } }
        : { type: RTM.DELLINK, header: {}, attrs: { ifname: v.ifname(link) } };
    await this.conn.request(req, `remove link ${link}`, { link });
  }

  /**
   * Removes many links in one kernel operation. Deleting links one by one costs an RCU grace
   * period each (~16 ms); here they are put in a link group no other link has and the group is
   * deleted at once, which the kernel does with a single wait (./link-remove.ts). Links that do
   * not exist are ignored. If the kernel refuses (a target that cannot be deleted, such as lo
   * or a physical NIC), nothing is removed, the targets are back in group 0, and the kernel's
   * error is thrown.
   */
  async removeMany(links: (string | number)[]): Promise<void> {
    if (!Array.isArray(links)) throw invalid('ERR_INVALID_ARGUMENT', 'removeMany takes an array of names or indexes');
    if (links.length === 0) return;
    for (const l of links)
      if (typeof l === 'string') v.ifname(l);
      else v.int(l, 1, 2 ** 31 - 1, 'link index');
    if (new Set(links).size === 1) {
      await this.remove(links[0]!).catch((e) => {
        if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
      });
      return;
    }
    await removeLinks(this.conn, links);
  }

  /**
   * Removes every link of a group (`ip link del group N`). Group 0, the default group of
   * every link, is refused: it would remove loopback and the uplink.
   */
  async removeGroup(group: number): Promise<void> {
    v.int(group, 1, 2 ** 32 - 1, 'group (0, the default group, is refused)');
    await this.conn.request({ type: RTM.DELLINK, header: {}, attrs: { group } }, `remove link group ${group}`);
  }

  /**
   * Watches link events in this namespace: an async iterator of added / changed / removed
   * links. `close()` (or breaking out of `for await`) stops it.
   */
  async watch(): Promise<LinkWatcher> {
    const watcher = new LinkWatcher(this.conn.netns.fd, RTNLGRP.LINK);
    try {
      // Subscribe first, then list, so no event falls between the two.
      await watcher.subscribed;
      const initial = await this.list();
      watcher.seed(initial.map((l) => l.index));
      return watcher;
    } catch (e) {
      watcher.close();
      throw e;
    }
  }
}

/**
 * The header flags and attributes of link changes (everything but the move); `master` already
 * resolved to an index (0: release).
 */
function changeAttrs(index: number, changes: LinkChanges, master: number | undefined): { header: Record<string, number>; attrs: Attrs } {
  const attrs: Attrs = {};
  const header: Record<string, number> = { family: AF.UNSPEC, index };
  if (changes.up !== undefined) {
    header.flags = v.bool(changes.up, 'up') ? IFF_UP : 0;
    header.change = IFF_UP;
  }
  if (changes.mtu !== undefined) attrs.mtu = v.mtu(changes.mtu);
  if (changes.name !== undefined) attrs.ifname = v.ifname(changes.name);
  if (changes.mac !== undefined) attrs.address = v.mac(changes.mac, { unicast: true });
  if (master !== undefined) attrs.master = master;
  if (changes.alias !== undefined) attrs.ifalias = changes.alias === null ? '' : v.str(changes.alias, 'alias', 255);
  if (changes.group !== undefined) attrs.group = v.int(changes.group, 0, 2 ** 32 - 1, 'group');
  if (changes.txqlen !== undefined) attrs.txqlen = v.int(changes.txqlen, 0, 2 ** 32 - 1, 'txqlen');
  if (changes.bridgePort !== undefined) attrs.linkinfo = bridgePortInfo(changes.bridgePort);
  if (changes.addrGenMode !== undefined) attrs.afSpec = addrGenModeSpec(changes.addrGenMode);
  return { header, attrs };
}

export type { LinkEvent };
