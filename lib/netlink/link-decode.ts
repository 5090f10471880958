/**
 * RTM_NEWLINK / RTM_DELLINK messages as typed Links: the fields every link has, then the
 * kind's own view from its codec (./kinds/registry.ts). Used by links.list()/get() and by the
 * link watch alike.
 * @internal
 */
import type { NativeMessage } from '../native';
import { IFF_LOWER_UP, IFF_NAMES, IFF_UP, OPERSTATES } from './constants';
import type { Attrs } from './kinds/kit';
import { kindOfKernel } from './kinds/registry';
import type { BridgePortInfo, LinkBase } from './link-base';
import type { Link } from './link-types';

/** Decodes an RTM_NEWLINK message into a typed Link. */
export function decodeLink(m: NativeMessage): Link {
  const a = m.attrs;
  const info = (a.linkinfo ?? {}) as Attrs;
  const kernelKind = typeof info.kind === 'string' ? info.kind : '';
  const data = (info.data ?? {}) as Attrs;
  const flagsNum = m.header.flags ?? 0;
  const base: LinkBase = {
    index: m.header.index ?? 0,
    name: String(a.ifname ?? ''),
    kernelKind,
    mtu: Number(a.mtu ?? 0),
    up: (flagsNum & IFF_UP) !== 0,
    lowerUp: (flagsNum & IFF_LOWER_UP) !== 0,
    operstate: OPERSTATES[Number(a.operstate ?? 0)] ?? 'unknown',
    flags: IFF_NAMES.filter(([bit]) => flagsNum & bit).map(([, n]) => n),
    group: Number(a.group ?? 0),
    txqlen: Number(a.txqlen ?? 0),
    raw: a,
  };
  if (typeof a.minMtu === 'number') base.minMtu = a.minMtu;
  if (typeof a.maxMtu === 'number') base.maxMtu = a.maxMtu;
  if (typeof a.address === 'string') base.mac = a.address;
  if (typeof a.broadcast === 'string') base.broadcast = a.broadcast;
  if (typeof a.master === 'number') base.master = a.master;
  if (typeof a.link === 'number' && a.link !== base.index) base.parentIndex = a.link;
  if (typeof a.linkNetnsid === 'number') base.parentNetnsId = a.linkNetnsid;
  if (typeof a.ifalias === 'string') base.alias = a.ifalias;
  if (info.slaveKind === 'bridge' && info.slaveData && typeof info.slaveData === 'object') base.bridgePort = decodeBridgePort(info.slaveData as Attrs);
  // The kind's fields go onto `base` itself (Object.assign), not onto a copy: a dump of 2,000
  // links made 2,000 objects more to collect, and the scavenger's copying of what survives was a
  // fifth of links.list()'s time.
  if (kernelKind === '') return Object.assign(base, { kind: 'device' as const });
  const codec = kindOfKernel(kernelKind);
  // (A kind whose data the addon has no table for arrives as hex: the codec sees no attributes.)
  return codec ? (codec.decode(typeof data === 'object' ? data : {}, base) as Link) : Object.assign(base, { kind: 'other' as const });
}

function decodeBridgePort(d: Attrs): BridgePortInfo {
  const out: BridgePortInfo = {};
  if (typeof d.state === 'number') out.state = d.state;
  if (typeof d.priority === 'number') out.priority = d.priority;
  if (typeof d.cost === 'number') out.cost = d.cost;
  for (const k of ['hairpin', 'learning', 'unicastFlood', 'isolated', 'neighSuppress'] as const) if (typeof d[k] === 'number') out[k] = d[k] !== 0;
  return out;
}
