/**
 * Link specs as RTM_NEWLINK requests: the settings every link may have, then the kind's part
 * from its codec (./kinds/registry.ts); and the two nests that links.set() and the second
 * round of links.add() write (bridge-port settings, IPv6 address generation mode).
 * @internal
 */
import { invalid } from '../errors';
import type { NativeRequest } from '../native';
import { openNetns, type NetnsHandle } from '../netns';
import * as v from '../validate';
import { AF, IFF_UP, NLM_F, RTM } from './constants';
import type { Attrs, KindEncodeContext, KindEncoding } from './kinds/kit';
import { kindOfSpec } from './kinds/registry';
import type { AddrGenMode, BridgePortSettings } from './link-base';
import type { LinkSpec } from './link-types';

/**
 * The device a spec is stacked on (its `parent`, vxlan's `dev`), to be resolved to an index
 * before {@link encodeLinkSpec}; undefined for kinds without one.
 */
export function parentOf(spec: LinkSpec): string | number | undefined {
  if (!spec || typeof spec !== 'object') return undefined;
  const codec = kindOfSpec(spec);
  return codec ? codec.parentOf?.(spec) : (spec as { parent?: string | number }).parent;
}

/**
 * The RTM_NEWLINK request that creates a link (without the REQUEST and ACK flags, which the
 * connection adds): exclusive create, echoed so the link comes back as the kernel made it.
 */
export function newLinkRequest(
  spec: LinkSpec,
  masters: Map<string | number, number>,
  parents: Map<string | number, number>,
  opened: NetnsHandle[],
): Omit<NativeRequest, 'flags'> & { flags: number } {
  return { type: RTM.NEWLINK, flags: NLM_F.CREATE | NLM_F.EXCL | NLM_F.ECHO, ...encodeLinkSpec(spec, masters, parents, opened) };
}

/**
 * Builds the RTM_NEWLINK header and attributes for a link spec. Masters and parents are
 * resolved beforehand; namespaces it opens are pushed on `opened` for the caller to close.
 * Attribute order is iproute2's (IFLA_LINK, IFLA_IFNAME, ..., IFLA_LINKINFO), so a request
 * compares byte for byte with what `ip link add` sends.
 */
export function encodeLinkSpec(
  spec: LinkSpec,
  masters: Map<string | number, number>,
  parents: Map<string | number, number>,
  opened: NetnsHandle[],
): { header: Record<string, number>; attrs: Attrs } {
  if (!spec || typeof spec !== 'object') throw invalid('ERR_INVALID_ARGUMENT', 'a link spec must be an object');
  if (typeof spec.kind !== 'string' || !/^[a-z0-9_-]{1,32}$/u.test(spec.kind))
    throw invalid('ERR_INVALID_ARGUMENT', `link kind ${JSON.stringify(spec.kind)} is not a kind name`, { kind: spec.kind });
  const codec = kindOfSpec(spec);
  const common: Attrs = { ifname: v.ifname(spec.name) };
  const header: Record<string, number> = { family: AF.UNSPEC };
  if (spec.up !== undefined && v.bool(spec.up, 'up')) {
    header.flags = IFF_UP;
    header.change = IFF_UP;
  }
  if (spec.mtu !== undefined) common.mtu = v.mtu(spec.mtu);
  if (spec.mac !== undefined) common.address = v.mac(spec.mac, { unicast: true });
  if (spec.alias !== undefined) v.str(spec.alias, 'alias', 255); // set after creation: the kernel ignores IFLA_IFALIAS there
  if (spec.master !== undefined) common.master = masters.get(spec.master);
  const ctx: KindEncodeContext = {
    indexOf: (dev) => parents.get(dev),
    netnsFd: (ns) => {
      const h = openNetns(ns);
      opened.push(h);
      return h.fd;
    },
  };
  if (spec.netns !== undefined) {
    if (spec.master !== undefined || spec.bridgePort !== undefined)
      throw invalid('ERR_INVALID_ARGUMENT', `link ${spec.name}: master and bridgePort cannot be set on a link created in another namespace`);
    common.netNsFd = ctx.netnsFd(spec.netns);
  }
  // (For a kind that owns `group` — vxlan's multicast group — the codec handles it.)
  if (!codec?.ownsGroup && spec.group !== undefined) common.group = v.int(spec.group, 0, 2 ** 32 - 1, 'group');
  if (spec.txqlen !== undefined) common.txqlen = v.int(spec.txqlen, 0, 2 ** 32 - 1, 'txqlen');
  const own: KindEncoding = codec ? codec.encode(spec, ctx) : generic(spec, ctx);
  const linkinfo: Attrs = { kind: spec.kind };
  if (own.data !== undefined) linkinfo.data = own.data;
  return { header, attrs: { ...(own.link !== undefined ? { link: own.link } : {}), ...common, linkinfo } };
}

/** A kind without a codec: its `parent` as IFLA_LINK, its raw `data` as IFLA_INFO_DATA. */
function generic(spec: LinkSpec, ctx: KindEncodeContext): KindEncoding {
  const out: KindEncoding = {};
  const parent = (spec as { parent?: string | number }).parent;
  if (parent !== undefined) out.link = ctx.indexOf(parent);
  const data = (spec as { data?: unknown }).data;
  if (data !== undefined) {
    if (!Buffer.isBuffer(data)) throw invalid('ERR_INVALID_ARGUMENT', 'data of a generic link kind must be a Buffer');
    out.data = data;
  }
  return out;
}

const ADDR_GEN_MODES: Record<AddrGenMode, number> = { eui64: 0, none: 1, stable_privacy: 2, random: 3 };

/**
 * IFLA_AF_SPEC holding { AF_INET6: { IFLA_INET6_ADDR_GEN_MODE: mode } } (linux/if_link.h),
 * written by hand as the raw bytes of that nest (the schema keeps IFLA_AF_SPEC opaque).
 */
export function addrGenModeSpec(mode: AddrGenMode): string {
  const n = ADDR_GEN_MODES[mode];
  if (n === undefined) throw invalid('ERR_INVALID_ARGUMENT', `addrGenMode must be one of ${Object.keys(ADDR_GEN_MODES).join(', ')}`);
  // nest AF_INET6 (len 12, type 10 | NLA_F_NESTED), then attr 8 (len 5) = u8 mode, padded.
  return `0c000a80050008000${n}000000`;
}

/** IFLA_LINKINFO carrying bridge-port settings (IFLA_INFO_SLAVE_DATA). */
export function bridgePortInfo(p: BridgePortSettings): Attrs {
  v.knownKeys(p, ['hairpin', 'learning', 'unicastFlood', 'isolated', 'neighSuppress'], 'bridgePort');
  const data: Attrs = {};
  for (const k of ['hairpin', 'learning', 'unicastFlood', 'isolated', 'neighSuppress'] as const)
    if (p[k] !== undefined) data[k] = v.bool(p[k], `bridgePort.${k}`) ? 1 : 0;
  return { slaveKind: 'bridge', slaveData: data };
}
