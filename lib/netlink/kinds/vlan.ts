/**
 * vlan: an 802.1Q (or 802.1ad) sub-interface of a parent device. IFLA_LINK names the parent;
 * IFLA_INFO_DATA holds (linux/if_link.h):
 *
 * - IFLA_VLAN_ID (1), u16: the VLAN id;
 * - IFLA_VLAN_PROTOCOL (5), be16: the tag's ethertype, ETH_P_8021Q (0x8100) or ETH_P_8021AD
 *   (0x88a8) (linux/if_ether.h);
 * - IFLA_VLAN_FLAGS (2), IFLA_VLAN_EGRESS_QOS (3), IFLA_VLAN_INGRESS_QOS (4): not offered here
 *   (the kernel's defaults: reorder_hdr on, no QoS maps), kept raw when decoded.
 *
 * Encoded like iproute2 (`ip link add link P name X type vlan id N [protocol 802.1Q|802.1ad]`):
 * the protocol only when given (the kernel's default is 802.1Q). Checked byte for byte against
 * iproute2 in test/unit/link-kinds.test.ts.
 */
import { invalid } from '../../errors';
import * as v from '../../validate';
import type { LinkBase, LinkSpecBase } from '../link-base';
import { KernelEnum, SPEC_BASE_KEYS, type LinkKindCodec } from './kit';

/** The tag: 802.1Q (a customer VLAN) or 802.1ad (a service VLAN, "QinQ"). */
export type VlanProtocol = '802.1Q' | '802.1ad';

/** A VLAN sub-interface; its parent is `parentIndex`. */
export interface VlanLink extends LinkBase {
  kind: 'vlan';
  vlan: { id: number; protocol: VlanProtocol | 'unknown' };
}

/** A new VLAN sub-interface of `parent`, tagging with `id`. */
export interface VlanSpec extends LinkSpecBase {
  kind: 'vlan';
  /** Parent device (name or index). */
  parent: string | number;
  /** VLAN id, 1..4094 (0 and 4095 are reserved by 802.1Q). */
  id: number;
  /** Default: the kernel's, 802.1Q. */
  protocol?: VlanProtocol;
}

const PROTOCOLS = new KernelEnum<VlanProtocol>({ '802.1Q': 0x8100, '802.1ad': 0x88a8 });

export const vlan: LinkKindCodec<VlanSpec, VlanLink> = {
  kind: 'vlan',
  kernelKinds: ['vlan'],
  parentOf: (s) => s.parent,
  encode(s, ctx) {
    v.knownKeys(s, [...SPEC_BASE_KEYS, 'parent', 'id', 'protocol'], 'vlan spec');
    if (s.parent === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'vlan needs a parent device');
    const id = v.int(s.id, 1, 4094, 'vlan id');
    if (s.protocol !== undefined && !PROTOCOLS.has(s.protocol))
      throw invalid('ERR_INVALID_ARGUMENT', `vlan protocol ${JSON.stringify(s.protocol)} is not one of ${PROTOCOLS.names.join(', ')}`, {
        protocol: s.protocol,
      });
    return { link: ctx.indexOf(s.parent), data: { id, ...(s.protocol !== undefined ? { protocol: PROTOCOLS.values[s.protocol] } : {}) } };
  },
  decode(data, base) {
    return Object.assign(base, { kind: 'vlan' as const, vlan: { id: Number(data.id ?? 0), protocol: PROTOCOLS.name(data.protocol ?? 0x8100) } });
  },
};
