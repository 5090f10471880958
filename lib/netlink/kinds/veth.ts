/**
 * veth: a pair of virtual Ethernet devices, one end of which may be born in another namespace.
 * IFLA_INFO_DATA holds VETH_INFO_PEER (linux/veth.h): an ifinfomsg and the peer's IFLA_*
 * attributes.
 */
import type { NetnsSpec } from '../../netns';
import * as v from '../../validate';
import type { LinkBase, LinkSpecBase } from '../link-base';
import type { Attrs, LinkKindCodec } from './kit';

export interface VethLink extends LinkBase {
  kind: 'veth';
}

export interface VethSpec extends LinkSpecBase {
  kind: 'veth';
  /**
   * The other end. Default: a kernel-chosen name in this namespace. It starts down: the kernel
   * cannot bring up one end of a pair it is still creating, so raise it with a handle in its
   * namespace.
   */
  peer?: {
    name?: string;
    /** Create the peer directly in this namespace. */
    netns?: NetnsSpec;
    mac?: string;
    mtu?: number;
  };
}

export const veth: LinkKindCodec<VethSpec, VethLink> = {
  kind: 'veth',
  kernelKinds: ['veth'],
  encode(s, ctx) {
    if (s.peer === undefined) return {};
    const p = s.peer;
    // No `up` for the peer: the kernel cannot open a veth end before the pair is complete
    // (ENOTCONN); bring it up with a handle in its namespace afterwards.
    v.knownKeys(p, ['name', 'netns', 'mac', 'mtu'], 'veth peer');
    const pa: Attrs = {};
    if (p.name !== undefined) pa.ifname = v.ifname(p.name, 'peer name');
    if (p.mac !== undefined) pa.address = v.mac(p.mac, { unicast: true });
    if (p.mtu !== undefined) pa.mtu = v.mtu(p.mtu);
    if (p.netns !== undefined) pa.netNsFd = ctx.netnsFd(p.netns);
    return { data: { peer: { header: {}, attrs: pa } } };
  },
  decode(_data, base) {
    return Object.assign(base, { kind: 'veth' as const });
  },
};
