/**
 * vxlan: a VXLAN tunnel endpoint. IFLA_INFO_DATA holds IFLA_VXLAN_* (linux/if_link.h); the
 * underlay device is IFLA_VXLAN_LINK inside it, not IFLA_LINK.
 */
import { invalid } from '../../errors';
import * as v from '../../validate';
import type { LinkBase, LinkSpecBase } from '../link-base';
import type { Attrs, LinkKindCodec } from './kit';

export interface VxlanLink extends LinkBase {
  kind: 'vxlan';
  vxlan: {
    vni: number;
    local?: string;
    /** Multicast group (when the destination is multicast). */
    group?: string;
    /** Unicast remote (when the destination is unicast). */
    remote?: string;
    port: number;
    /** Underlay device index. */
    dev?: number;
    ttl?: number;
    learning: boolean;
    proxy: boolean;
    udpChecksum: boolean;
    ageing?: number;
    srcPortRange?: [number, number];
  };
}

/** (The link-group setting is not offered for vxlan: `group` is the multicast group here.) */
export interface VxlanSpec extends Omit<LinkSpecBase, 'group'> {
  kind: 'vxlan';
  /** VXLAN network identifier, 1..16777215. */
  vni: number;
  /** Local underlay address. */
  local?: string;
  /** Multicast group for BUM traffic. */
  group?: string;
  /** Unicast remote VTEP (instead of a group). */
  remote?: string;
  /** UDP destination port (default 4789, the IANA port). */
  port?: number;
  /** Underlay device (name or index). */
  dev?: string | number;
  ttl?: number;
  /** Learn remote MACs from traffic (default false: nsnet programs the FDB). */
  learning?: boolean;
  /** Answer ARP from the neighbour table (proxy ARP). */
  proxy?: boolean;
  /** UDP checksums on transmit (IPv4 underlay). */
  udpChecksum?: boolean;
  ageing?: number;
  srcPortRange?: [number, number];
}

function isMulticast(ip: string): boolean {
  if (ip.includes(':')) return ip.toLowerCase().startsWith('ff');
  const first = Number(ip.split('.')[0]);
  return first >= 224 && first <= 239;
}

export const vxlan: LinkKindCodec<VxlanSpec, VxlanLink> = {
  kind: 'vxlan',
  kernelKinds: ['vxlan'],
  ownsGroup: true,
  parentOf: (s) => s.dev,
  encode(s, ctx) {
    const d: Attrs = { id: v.int(s.vni, 1, 0xffffff, 'VNI') };
    if (s.local !== undefined) {
      const l = v.ip(s.local, undefined, 'local');
      d[l.family === 4 ? 'local' : 'local6'] = l.address;
    }
    if (s.group !== undefined && s.remote !== undefined) throw invalid('ERR_INVALID_ARGUMENT', 'vxlan: give either group or remote, not both');
    const dst = s.group ?? s.remote;
    if (dst !== undefined) {
      const g = v.ip(dst, undefined, s.group !== undefined ? 'group' : 'remote');
      if (s.group !== undefined && !isMulticast(g.address))
        throw invalid('ERR_INVALID_IP', `vxlan group ${g.address} is not a multicast address (use remote for unicast)`);
      if (s.remote !== undefined && isMulticast(g.address)) throw invalid('ERR_INVALID_IP', `vxlan remote ${g.address} is multicast (use group)`);
      d[g.family === 4 ? 'group' : 'group6'] = g.address;
    }
    d.port = s.port === undefined ? 4789 : v.int(s.port, 1, 65535, 'port');
    if (s.dev !== undefined) d.link = ctx.indexOf(s.dev);
    if (s.ttl !== undefined) d.ttl = v.int(s.ttl, 0, 255, 'ttl');
    d.learning = s.learning === undefined ? 0 : v.bool(s.learning, 'learning') ? 1 : 0;
    if (s.proxy !== undefined) d.proxy = v.bool(s.proxy, 'proxy') ? 1 : 0;
    if (s.udpChecksum !== undefined) d.udpCsum = v.bool(s.udpChecksum, 'udpChecksum') ? 1 : 0;
    if (s.ageing !== undefined) d.ageing = v.int(s.ageing, 0, 2 ** 32 - 1, 'ageing');
    if (s.srcPortRange !== undefined) {
      const [lo, hi] = s.srcPortRange;
      v.int(lo, 1, 65535, 'srcPortRange low');
      v.int(hi, 1, 65535, 'srcPortRange high');
      if (lo > hi) throw invalid('ERR_INVALID_ARGUMENT', 'srcPortRange is backwards');
      const b = Buffer.alloc(4);
      b.writeUInt16BE(lo, 0);
      b.writeUInt16BE(hi, 2);
      d.portRange = b;
    }
    return { data: d };
  },
  decode(d, base) {
    const out: VxlanLink['vxlan'] = {
      vni: Number(d.id ?? 0),
      port: Number(d.port ?? 8472),
      learning: Number(d.learning ?? 1) !== 0,
      proxy: Number(d.proxy ?? 0) !== 0,
      udpChecksum: Number(d.udpCsum ?? 0) !== 0,
    };
    const local = d.local ?? d.local6;
    if (typeof local === 'string') out.local = local;
    const dst = d.group ?? d.group6;
    if (typeof dst === 'string') {
      if (isMulticast(dst)) out.group = dst;
      else out.remote = dst;
    }
    if (typeof d.link === 'number' && d.link) out.dev = d.link;
    if (typeof d.ttl === 'number') out.ttl = d.ttl;
    if (typeof d.ageing === 'number') out.ageing = d.ageing;
    if (typeof d.portRange === 'string' && d.portRange.length === 8) {
      const b = Buffer.from(d.portRange, 'hex');
      if (b.readUInt16BE(2) !== 0) out.srcPortRange = [b.readUInt16BE(0), b.readUInt16BE(2)];
    }
    return Object.assign(base, { kind: 'vxlan' as const, vxlan: out });
  },
};
