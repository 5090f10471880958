/** bridge: a Linux bridge. IFLA_INFO_DATA holds IFLA_BR_* (linux/if_link.h); times in centiseconds. */
import * as v from '../../validate';
import type { LinkBase, LinkSpecBase } from '../link-base';
import type { Attrs, LinkKindCodec } from './kit';

export interface BridgeLink extends LinkBase {
  kind: 'bridge';
  bridge: {
    stp: boolean;
    vlanFiltering: boolean;
    /** Seconds. */
    ageingTime?: number;
    /** Seconds. */
    forwardDelay?: number;
    priority?: number;
  };
}

export interface BridgeSpec extends LinkSpecBase {
  kind: 'bridge';
  stp?: boolean;
  vlanFiltering?: boolean;
  /** Seconds an FDB entry lives (default 300). */
  ageingTime?: number;
  /** Seconds (STP forward delay). */
  forwardDelay?: number;
}

export const bridge: LinkKindCodec<BridgeSpec, BridgeLink> = {
  kind: 'bridge',
  kernelKinds: ['bridge'],
  encode(s) {
    const d: Attrs = {};
    if (s.stp !== undefined) d.stpState = v.bool(s.stp, 'stp') ? 1 : 0;
    if (s.vlanFiltering !== undefined) d.vlanFiltering = v.bool(s.vlanFiltering, 'vlanFiltering') ? 1 : 0;
    if (s.ageingTime !== undefined) d.ageingTime = Math.round(v.int(s.ageingTime, 0, 1000000, 'ageingTime (seconds)') * 100);
    if (s.forwardDelay !== undefined) d.forwardDelay = Math.round(v.int(s.forwardDelay, 2, 30, 'forwardDelay (seconds)') * 100);
    return Object.keys(d).length ? { data: d } : {};
  },
  decode(data, base) {
    return Object.assign(base, {
      kind: 'bridge' as const,
      bridge: {
        stp: Number(data.stpState ?? 0) !== 0,
        vlanFiltering: Number(data.vlanFiltering ?? 0) !== 0,
        ...(typeof data.ageingTime === 'number' ? { ageingTime: data.ageingTime / 100 } : {}),
        ...(typeof data.forwardDelay === 'number' ? { forwardDelay: data.forwardDelay / 100 } : {}),
        ...(typeof data.priority === 'number' ? { priority: data.priority } : {}),
      },
    });
  },
};
