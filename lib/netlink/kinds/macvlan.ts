/**
 * macvlan (and macvtap, which reads the same): a child of a parent device with a MAC of its
 * own. IFLA_LINK names the parent; IFLA_INFO_DATA holds IFLA_MACVLAN_MODE, a MACVLAN_MODE_*
 * value (linux/if_link.h).
 */
import { invalid } from '../../errors';
import type { LinkBase, LinkSpecBase } from '../link-base';
import { KernelEnum, type LinkKindCodec } from './kit';

export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

export interface MacvlanLink extends LinkBase {
  kind: 'macvlan';
  macvlan: { mode: MacvlanMode | 'unknown' };
}

export interface MacvlanSpec extends LinkSpecBase {
  kind: 'macvlan';
  /** Parent device (name or index). */
  parent: string | number;
  mode?: MacvlanMode;
}

/** MACVLAN_MODE_PRIVATE .. MACVLAN_MODE_SOURCE. */
const MODES = new KernelEnum<MacvlanMode>({ private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 });

export const macvlan: LinkKindCodec<MacvlanSpec, MacvlanLink> = {
  kind: 'macvlan',
  kernelKinds: ['macvlan', 'macvtap'],
  parentOf: (s) => s.parent,
  encode(s, ctx) {
    if (s.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'macvlan needs a parent device');
    const mode = s.mode ?? 'bridge';
    if (!MODES.has(mode)) throw invalid('ERR_INVALID_ARGUMENT', `macvlan mode ${JSON.stringify(mode)} is not one of ${MODES.names.join(', ')}`);
    return { link: ctx.indexOf(s.parent), data: { mode: MODES.values[mode] } };
  },
  decode(data, base) {
    return Object.assign(base, { kind: 'macvlan' as const, macvlan: { mode: MODES.name(Number(data.mode)) } });
  },
};
