/**
 * ipvlan (and ipvtap, which reads the same): children of a parent device that share its MAC
 * and are told apart by IP address. IFLA_LINK names the parent; IFLA_INFO_DATA holds
 * (linux/if_link.h):
 *
 * - IFLA_IPVLAN_MODE (1), u16: IPVLAN_MODE_L2 (0), IPVLAN_MODE_L3 (1), IPVLAN_MODE_L3S (2);
 * - IFLA_IPVLAN_FLAGS (2), u16: IPVLAN_F_PRIVATE (0x01), IPVLAN_F_VEPA (0x02). The kernel
 *   refuses both at once, so the typed form is one value: 'private', 'vepa', or 'bridge' for
 *   neither (iproute2's name for it).
 *
 * Encoded like iproute2 (`ip link add link P name X type ipvlan mode M [F]`): without a mode
 * or flags, no IFLA_INFO_DATA at all (the kernel then makes an l3 bridge child); with either,
 * both attributes, the missing one at the kernel's default (mode l3, flags bridge). Checked
 * byte for byte against iproute2 in test/unit/link-kinds.test.ts.
 */
import { invalid } from '../../errors';
import * as v from '../../validate';
import type { LinkBase, LinkSpecBase } from '../link-base';
import { KernelEnum, SPEC_BASE_KEYS, type LinkKindCodec } from './kit';

/** l2: the parent switches frames to the children; l3 / l3s: it routes to them (l3s: with netfilter in the children's namespaces). */
export type IpvlanMode = 'l2' | 'l3' | 'l3s';
/** How children of one parent reach each other: 'bridge' (directly), 'private' (not at all), 'vepa' (through the external switch). */
export type IpvlanFlags = 'bridge' | 'private' | 'vepa';

/** An ipvlan (or ipvtap) child; its parent is `parentIndex`. */
export interface IpvlanLink extends LinkBase {
  kind: 'ipvlan';
  ipvlan: { mode: IpvlanMode | 'unknown'; flags: IpvlanFlags | 'unknown' };
}

/** A new ipvlan child of `parent` (it shares the parent's MAC). */
export interface IpvlanSpec extends LinkSpecBase {
  kind: 'ipvlan';
  /** Parent device (name or index). */
  parent: string | number;
  /** Default: the kernel's, l3. */
  mode?: IpvlanMode;
  /** Default: the kernel's, bridge. */
  flags?: IpvlanFlags;
}

const MODES = new KernelEnum<IpvlanMode>({ l2: 0, l3: 1, l3s: 2 });
const FLAGS = new KernelEnum<IpvlanFlags>({ bridge: 0, private: 0x01, vepa: 0x02 });

export const ipvlan: LinkKindCodec<IpvlanSpec, IpvlanLink> = {
  kind: 'ipvlan',
  kernelKinds: ['ipvlan', 'ipvtap'],
  parentOf: (s) => s.parent,
  encode(s, ctx) {
    v.knownKeys(s, [...SPEC_BASE_KEYS, 'parent', 'mode', 'flags'], 'ipvlan spec');
    if (s.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'ipvlan needs a parent device');
    if (s.mode !== undefined && !MODES.has(s.mode))
      throw invalid('ERR_INVALID_ARGUMENT', `ipvlan mode ${JSON.stringify(s.mode)} is not one of ${MODES.names.join(', ')}`, { mode: s.mode });
    if (s.flags !== undefined && !FLAGS.has(s.flags))
      throw invalid('ERR_INVALID_ARGUMENT', `ipvlan flags ${JSON.stringify(s.flags)} is not one of ${FLAGS.names.join(', ')}`, { flags: s.flags });
    const link = ctx.indexOf(s.parent);
    if (s.mode === undefined && s.flags === undefined) return { link };
    return { link, data: { mode: MODES.values[s.mode ?? 'l3'], flags: FLAGS.values[s.flags ?? 'bridge'] } };
  },
  decode(data, base) {
    return Object.assign(base, { kind: 'ipvlan' as const, ipvlan: { mode: MODES.name(data.mode), flags: FLAGS.name(data.flags ?? 0) } });
  },
};
