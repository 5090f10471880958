/** IP addresses of links (IPv4 and IPv6) over rtnetlink. */
import { invalid } from '../errors';
import type { NativeMessage } from '../native';
import * as v from '../validate';
import { AF, IFA_F, RTM, RT_SCOPE } from './constants';
import type { Conn, NetlinkOp } from './conn';
import type { Links } from './links';

export interface Address {
  /** Index of the link that holds it. */
  index: number;
  family: 4 | 6;
  address: string;
  prefixLength: number;
  /** "address/prefixLength". */
  cidr: string;
  scope: string;
  label?: string;
  broadcast?: string;
  /** IFA_F_* names, lower case: 'permanent', 'nodad', 'tentative', ... */
  flags: string[];
}

export interface AddressOptions {
  /** IPv4 broadcast; default: derived from the prefix (as `ip addr add ... brd +`). */
  broadcast?: string | false;
  /** IPv4 label (default: the link name). */
  label?: string;
  /** Skip duplicate address detection (IPv6). */
  nodad?: boolean;
  /** Do not add the prefix route. */
  noPrefixRoute?: boolean;
}

const SCOPE_NAMES = Object.fromEntries(Object.entries(RT_SCOPE).map(([k, n]) => [n, k])) as Record<number, string>;
const IFA_FLAG_NAMES = Object.entries(IFA_F).map(([k, n]) => [n, k.toLowerCase()] as const);

/** @internal */
export function decodeAddress(m: NativeMessage): Address {
  const h = m.header;
  const a = m.attrs;
  const family: 4 | 6 = h.family === AF.INET6 ? 6 : 4;
  const address = String(a.local ?? a.address ?? '');
  const flags = typeof a.flags === 'number' ? a.flags : (h.flags ?? 0);
  const out: Address = {
    index: h.index ?? 0,
    family,
    address,
    prefixLength: h.prefixlen ?? 0,
    cidr: `${address}/${h.prefixlen ?? 0}`,
    scope: SCOPE_NAMES[h.scope ?? 0] ?? String(h.scope),
    flags: IFA_FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n),
  };
  if (typeof a.label === 'string') out.label = a.label;
  if (typeof a.broadcast === 'string') out.broadcast = a.broadcast;
  return out;
}

/** The address operations of a {@link Netlink} handle. */
export class Addresses {
  /** @internal */
  constructor(
    private readonly conn: Conn,
    private readonly links: Links,
  ) {}

  /** Addresses of the namespace, optionally of one link and/or one family. */
  async list(filter: { dev?: string | number; family?: 4 | 6 } = {}): Promise<Address[]> {
    v.knownKeys(filter, ['dev', 'family'], 'addresses.list filter');
    const index = filter.dev === undefined ? 0 : await this.links.index(filter.dev);
    const family = filter.family === undefined ? AF.UNSPEC : filter.family === 4 ? AF.INET : filter.family === 6 ? AF.INET6 : -1;
    if (family < 0) throw invalid('ERR_INVALID_ARGUMENT', 'family must be 4 or 6');
    // With strict checking the kernel filters by ifa_index itself.
    const msgs = await this.conn.dump({ type: RTM.GETADDR, header: { family, index } }, 'list addresses');
    return msgs
      .filter((m) => m.type === RTM.NEWADDR)
      .map(decodeAddress)
      .filter((a) => !index || a.index === index);
  }

  /**
   * Adds an address ("172.20.0.1/16", "fd00::1/64") to a link.
   * @throws NetlinkError EEXIST if the link has it already.
   */
  async add(dev: string | number, cidr: string, opts: AddressOptions = {}): Promise<void> {
    const op = this.addOp(await this.links.index(dev), cidr, opts);
    await this.conn.request(op.request, `add address ${cidr} to ${dev}`, { dev, cidr });
  }

  /**
   * add() to the link with this index, built for {@link Netlink.batch}.
   * @internal
   */
  addOp(index: number, cidr: string, opts: AddressOptions = {}): NetlinkOp {
    v.knownKeys(opts, ['broadcast', 'label', 'nodad', 'noPrefixRoute'], 'address options');
    const c = v.cidr(cidr, undefined, 'address');
    const attrs: Record<string, unknown> = { local: c.address, address: c.address };
    let flags = 0;
    if (c.family === 4) {
      if (opts.broadcast !== false && c.prefix < 31)
        attrs.broadcast = opts.broadcast ? v.ip(opts.broadcast, 4, 'broadcast').address : v.broadcastAddress(c.address, c.prefix);
      if (opts.label !== undefined) attrs.label = v.label(opts.label);
    }
    if (opts.nodad) flags |= IFA_F.NODAD;
    if (opts.noPrefixRoute) flags |= IFA_F.NOPREFIXROUTE;
    if (flags) attrs.flags = flags;
    return {
      request: { type: RTM.NEWADDR, flags: 0x400 | 0x200, header: { family: c.family === 4 ? AF.INET : AF.INET6, prefixlen: c.prefix, index }, attrs },
      what: `add address ${cidr} to ${index}`,
      details: { dev: index, cidr },
    };
  }

  /**
   * Removes an address from a link.
   * @throws NetlinkError EADDRNOTAVAIL if the link does not have it.
   */
  async remove(dev: string | number, cidr: string): Promise<void> {
    const c = v.cidr(cidr, undefined, 'address');
    const index = await this.links.index(dev);
    await this.conn.request(
      {
        type: RTM.DELADDR,
        header: { family: c.family === 4 ? AF.INET : AF.INET6, prefixlen: c.prefix, index },
        attrs: { local: c.address, address: c.address },
      },
      `remove address ${cidr} from ${dev}`,
      { dev, cidr },
    );
  }
}
