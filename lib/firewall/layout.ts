/**
 * nsnet's nftables layout: the fixed skeleton, written once by `Firewall.ensure()` and never
 * changed afterwards — every network and container operation only adds or removes elements of
 * the sets and maps declared here. This file is the single source of truth for the skeleton:
 * `ensure()` writes it, `check()` compares the kernel's ruleset with it.
 *
 * ```
 * table inet nsnet                                  table bridge nsnet_l2
 *   chain guard        filter prerouting  -300        chain forward  filter forward -200
 *   chain prerouting   nat    prerouting  -100          iifname @noicc_ports meta pkttype != host drop
 *   chain output       nat    output      -100
 *   chain postrouting  nat    postrouting  100
 *   chain forward      filter forward        0
 * ```
 *
 * br_netfilter: when it is active (`net.bridge.bridge-nf-call-iptables=1`, which Docker sets and
 * this kernel defaults to), traffic between two ports of one bridge also passes the inet hooks
 * with the bridge as both input and output interface, and a hairpin connection (a container to
 * a published port through a host address, DNATed back into its own bridge) is bridged rather
 * than routed. The rules hold in both cases: same-bridge traffic is accepted by `@icc` pairs or
 * dropped, DNATed traffic is accepted, and the masquerade rules see the bridge as output. A
 * container reaching its OWN published port then needs the bridge port's hairpin mode (the
 * frame leaves by the port it came in): the bridge driver sets it on every host veth end.
 *
 * IPv6: every IPv4 set above that holds addresses has an IPv6 twin (suffix `6`) read by rules of
 * its own (`ip6 ...`, `dnat ip6 to ...`) in the same chains; the forward chain's rules match
 * interfaces and conntrack state only, so isolation, `icc` and `internal` hold for both families
 * unchanged. The IPv4 and IPv6 claims of a port are independent elements: "every address" is
 * two elements (`published_any` and `published_any6`), each family's exclusivity is its own.
 * No IPv6 guard: the kernel itself drops `::1` arriving on any other interface than `lo`, and
 * cannot DNAT to or from `::1` (IPv6 has no `route_localnet`), so `::1` is never published.
 *
 * Loopback: a port published on every address is reachable from the host at 127.0.0.1 too (as
 * with Docker and the CNI portmap plugin): the output chain's every-address rule covers
 * 127.0.0.0/8, and the bridge's `route_localnet` plus the 127.0.0.1 masquerade rule let it
 * through. The prerouting rules skip 127.0.0.0/8 destinations: a packet arriving from another
 * machine addressed to 127.0.0.1 is never DNATed to a container (the kernel then drops it as a
 * martian, as it would without nsnet); only the host itself reaches loopback publishing.
 *
 * Every base chain has policy accept: nsnet never changes what happens to traffic that is not
 * its own, and an `accept` here only means "nsnet has no objection" (another table may still
 * drop). Expressions are exactly what `nft` generates for the statements in the comments, so
 * `nft list ruleset` prints them as written there.
 *
 * Sets and maps (elements carry their owner as comment: `net:<network>` or `ep:<endpoint>`):
 *
 * | set | key → value | elements |
 * |---|---|---|
 * | `bridges` | ifname | every network's bridge |
 * | `icc` | ifname . ifname | (bridge . bridge) of networks with icc (routed same-bridge traffic) |
 * | `internal` | ifname | bridges of internal networks |
 * | `internal_subnets` | ipv4_addr (interval) | subnets of internal networks (publishing refused) |
 * | `masq_subnets` | ipv4_addr (interval) | subnets masqueraded on egress |
 * | `hairpin` | ipv4_addr . ifname (interval) | (subnet . bridge) of non-internal networks |
 * | `published_hostip` | ipv4_addr . inet_proto . inet_service → ipv4_addr . inet_service | ports published on one host address |
 * | `published_any` | inet_proto . inet_service → ipv4_addr . inet_service | ports published on every host address |
 * | `hostip_ports` | inet_proto . inet_service | derived index: (proto . port) published on some single address |
 * | `internal_subnets6` … `hostip_ports6` | the same six with ipv6_addr | the IPv6 side of dual-stack networks |
 * | `nsnet_l2 noicc_bridges` | ifname | bridges of networks with icc off (catalog, no rule reads it) |
 * | `nsnet_l2 noicc_ports` | ifname | bridge ports (host veth ends) of containers on those networks |
 */
import { hostU32 } from '../nftables/datatypes';
import type { Expr } from '../nftables/expr/types';
import type { Transaction } from '../nftables/transaction';
import type { ChainSpec, DataType, Family, MapSpec, RuleSpec, SetSpec } from '../nftables/types';

/** The inet table: NAT, published ports, forward filtering. */
export const INET = { family: 'inet', table: 'nsnet' } as const satisfies { family: Family; table: string };
/** The bridge-family table: no-ICC filtering between ports of one bridge. */
export const L2 = { family: 'bridge', table: 'nsnet_l2' } as const satisfies { family: Family; table: string };

/** Where a set lives. */
export type TableRef = typeof INET | typeof L2;

/** Set and map names. */
export const SET = {
  bridges: 'bridges',
  icc: 'icc',
  internal: 'internal',
  internalSubnets: 'internal_subnets',
  masqSubnets: 'masq_subnets',
  hairpin: 'hairpin',
  publishedHostip: 'published_hostip',
  publishedAny: 'published_any',
  hostipPorts: 'hostip_ports',
  internalSubnets6: 'internal_subnets6',
  masqSubnets6: 'masq_subnets6',
  hairpin6: 'hairpin6',
  publishedHostip6: 'published_hostip6',
  publishedAny6: 'published_any6',
  hostipPorts6: 'hostip_ports6',
  noiccBridges: 'noicc_bridges',
  noiccPorts: 'noicc_ports',
} as const;

export type SetName = (typeof SET)[keyof typeof SET];

/** A set or map of the skeleton, with the table it lives in. */
export interface SkeletonSet {
  where: TableRef;
  spec: SetSpec | MapSpec;
}

const set = (where: TableRef, name: SetName, key: DataType | DataType[], extra: Partial<MapSpec> = {}): SkeletonSet => ({
  where,
  spec: { family: where.family, table: where.table, name, key, ...extra } as SetSpec | MapSpec,
});

/** Every set and map, in creation order. */
export const SETS: readonly SkeletonSet[] = [
  set(INET, SET.bridges, 'ifname'),
  set(INET, SET.icc, ['ifname', 'ifname']),
  set(INET, SET.internal, 'ifname'),
  set(INET, SET.internalSubnets, 'ipv4_addr', { interval: true }),
  set(INET, SET.masqSubnets, 'ipv4_addr', { interval: true }),
  set(INET, SET.hairpin, ['ipv4_addr', 'ifname'], { interval: true }),
  set(INET, SET.publishedHostip, ['ipv4_addr', 'inet_proto', 'inet_service'], { value: ['ipv4_addr', 'inet_service'] }),
  set(INET, SET.publishedAny, ['inet_proto', 'inet_service'], { value: ['ipv4_addr', 'inet_service'] }),
  set(INET, SET.hostipPorts, ['inet_proto', 'inet_service']),
  set(INET, SET.internalSubnets6, 'ipv6_addr', { interval: true }),
  set(INET, SET.masqSubnets6, 'ipv6_addr', { interval: true }),
  set(INET, SET.hairpin6, ['ipv6_addr', 'ifname'], { interval: true }),
  set(INET, SET.publishedHostip6, ['ipv6_addr', 'inet_proto', 'inet_service'], { value: ['ipv6_addr', 'inet_service'] }),
  set(INET, SET.publishedAny6, ['inet_proto', 'inet_service'], { value: ['ipv6_addr', 'inet_service'] }),
  set(INET, SET.hostipPorts6, ['inet_proto', 'inet_service']),
  set(L2, SET.noiccBridges, 'ifname'),
  set(L2, SET.noiccPorts, 'ifname'),
];

/** The table a set lives in. */
export function tableOf(name: string): TableRef {
  const s = SETS.find((x) => x.spec.name === name);
  if (!s) throw new Error(`nsnet firewall: no set ${name} in the layout`);
  return s.where;
}

const chain = (where: TableRef, name: string, type: 'filter' | 'nat', hook: ChainSpec['hook'], priority: number): ChainSpec => ({
  family: where.family,
  table: where.table,
  name,
  type,
  hook,
  priority,
  policy: 'accept',
});

/** Every chain: all base chains, all with policy accept. */
export const CHAINS: readonly ChainSpec[] = [
  chain(INET, 'guard', 'filter', 'prerouting', -300),
  chain(INET, 'prerouting', 'nat', 'prerouting', -100),
  chain(INET, 'output', 'nat', 'output', -100),
  chain(INET, 'postrouting', 'nat', 'postrouting', 100),
  chain(INET, 'forward', 'filter', 'forward', 0),
  chain(L2, 'forward', 'filter', 'forward', -200),
];

// ---------------------------------------------------------------- expression building blocks

const RTN_LOCAL = 2;
const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;
const CT_STATE_INVALID = 1;
const CT_STATE_ESTABLISHED = 2;
const CT_STATE_RELATED = 4;
const IPS_DST_NAT = 0x20;
const LOOPBACK_NET = 127;
const PACKET_HOST = 0;

const accept: Expr = { type: 'immediate', verdict: 'accept' };
const drop: Expr = { type: 'immediate', verdict: 'drop' };

/** `fib daddr type local` */
const fibDaddrLocal: Expr[] = [
  { type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 },
  { type: 'cmp', op: 'eq', sreg: 1, data: hostU32(RTN_LOCAL) },
];
/** `meta nfproto ipv4` (implicit before `ip ...` matches in an inet table) */
const ipv4: Expr[] = [
  { type: 'meta', key: 'nfproto', dreg: 1 },
  { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([NFPROTO_IPV4]) },
];
/** `meta nfproto ipv6` (implicit before `ip6 ...` matches) */
const ipv6: Expr[] = [
  { type: 'meta', key: 'nfproto', dreg: 1 },
  { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([NFPROTO_IPV6]) },
];
/** `ip6 daddr != ::1` */
const notLoopback6: Expr[] = [
  { type: 'payload', base: 'network', offset: 24, len: 16, dreg: 1 },
  { type: 'cmp', op: 'neq', sreg: 1, data: Buffer.from([...Array(15).fill(0), 1]) },
];
/** `ip saddr|daddr 127.0.0.0/8` (nft compares the first byte), or `!=` */
function loopback(field: 'saddr' | 'daddr', op: 'eq' | 'neq' = 'eq'): Expr[] {
  return [
    { type: 'payload', base: 'network', offset: field === 'saddr' ? 12 : 16, len: 1, dreg: 1 },
    { type: 'cmp', op, sreg: 1, data: Buffer.from([LOOPBACK_NET]) },
  ];
}
/** `ct <key> <bits>` (state or status): load, mask, non-zero */
function ctBits(key: 'state' | 'status', bits: number): Expr[] {
  return [
    { type: 'ct', key, dreg: 1 },
    { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: hostU32(bits), xor: hostU32(0) },
    { type: 'cmp', op: 'neq', sreg: 1, data: hostU32(0) },
  ];
}
/** `meta iifname|oifname [!=] @set` */
function ifIn(key: 'iifname' | 'oifname', setName: SetName, invert = false): Expr[] {
  return [
    { type: 'meta', key, dreg: 1 },
    { type: 'lookup', set: setName, sreg: 1, ...(invert ? { invert: true } : {}) },
  ];
}
/** `dnat ip to ip daddr . meta l4proto . th dport map @published_hostip`, after an IPv4 match */
const dnatHostipBody: Expr[] = [
  { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1 },
  { type: 'meta', key: 'l4proto', dreg: 9 },
  { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 10 },
  { type: 'lookup', set: SET.publishedHostip, sreg: 1, dreg: 1 },
  { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
];
/** The same with its IPv4 match (`meta nfproto ipv4`, implied by `ip daddr`). */
const dnatHostip: Expr[] = [...ipv4, ...dnatHostipBody];
/** `dnat ip to meta l4proto . th dport map @published_any` */
const dnatAny: Expr[] = [
  { type: 'meta', key: 'l4proto', dreg: 1 },
  { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
  { type: 'lookup', set: SET.publishedAny, sreg: 1, dreg: 1 },
  { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
];
/**
 * `dnat ip6 to ip6 daddr . meta l4proto . th dport map @published_hostip6`: the 16-byte address
 * fills NFT_REG_1, so the protocol goes to NFT_REG_2 (listed as 2) and the port after it; the
 * map's value is address (NFT_REG_1) . port (NFT_REG_2), as nft allocates them.
 */
const dnatHostip6: Expr[] = [
  ...ipv6,
  { type: 'payload', base: 'network', offset: 24, len: 16, dreg: 1 },
  { type: 'meta', key: 'l4proto', dreg: 2 },
  { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 13 },
  { type: 'lookup', set: SET.publishedHostip6, sreg: 1, dreg: 1 },
  { type: 'nat', kind: 'dnat', family: 'ip6', regAddrMin: 1, regProtoMin: 2 },
];
/** `dnat ip6 to meta l4proto . th dport map @published_any6` */
const dnatAny6: Expr[] = [
  { type: 'meta', key: 'l4proto', dreg: 1 },
  { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
  { type: 'lookup', set: SET.publishedAny6, sreg: 1, dreg: 1 },
  { type: 'nat', kind: 'dnat', family: 'ip6', regAddrMin: 1, regProtoMin: 2 },
];
/** `ip saddr` */
const ipSaddr: Expr = { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 };
/** `ip6 saddr` */
const ip6Saddr: Expr = { type: 'payload', base: 'network', offset: 8, len: 16, dreg: 1 };

const rule = (where: TableRef, chainName: string, comment: string, expr: Expr[]): RuleSpec => ({
  family: where.family,
  table: where.table,
  chain: chainName,
  comment: `nsnet: ${comment}`,
  expr,
});

/**
 * Every rule, in order within its chain. The statements each one is, as `nft` prints them:
 */
export const RULES: readonly RuleSpec[] = [
  // guard: loopback addresses never come from a bridge (its route_localnet is on for 127.0.0.1 publishing)
  // iifname @bridges ip saddr 127.0.0.0/8 drop
  rule(INET, 'guard', 'no loopback source from a bridge', [...ifIn('iifname', SET.bridges), ...ipv4, ...loopback('saddr'), drop]),
  // iifname @bridges ip daddr 127.0.0.0/8 drop
  rule(INET, 'guard', 'no loopback destination from a bridge', [...ifIn('iifname', SET.bridges), ...ipv4, ...loopback('daddr'), drop]),

  // prerouting: published ports, one host address first, then every address; never for a
  // loopback destination (only the host itself reaches loopback publishing, in output)
  // ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_hostip
  rule(INET, 'prerouting', 'published on one host address', [...ipv4, ...loopback('daddr', 'neq'), ...fibDaddrLocal, ...dnatHostipBody]),
  // ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to meta l4proto . th dport map @published_any
  rule(INET, 'prerouting', 'published on every host address', [...ipv4, ...loopback('daddr', 'neq'), ...fibDaddrLocal, ...dnatAny]),
  // fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @published_hostip6
  rule(INET, 'prerouting', 'published on one host IPv6 address', [...fibDaddrLocal, ...dnatHostip6]),
  // meta nfproto ipv6 fib daddr type local dnat ip6 to meta l4proto . th dport map @published_any6
  rule(INET, 'prerouting', 'published on every host IPv6 address', [...ipv6, ...fibDaddrLocal, ...dnatAny6]),

  // output: the same for connections the host itself opens; every address includes 127.0.0.0/8
  // (not ::1, which the kernel cannot DNAT)
  // fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_hostip
  rule(INET, 'output', 'published on one host address', [...fibDaddrLocal, ...dnatHostip]),
  // meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @published_any
  rule(INET, 'output', 'published on every host address', [...ipv4, ...fibDaddrLocal, ...dnatAny]),
  // fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @published_hostip6
  rule(INET, 'output', 'published on one host IPv6 address', [...fibDaddrLocal, ...dnatHostip6]),
  // ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @published_any6
  rule(INET, 'output', 'published on every host IPv6 address', [...ipv6, ...notLoopback6, ...fibDaddrLocal, ...dnatAny6]),

  // postrouting
  // ct status dnat ip saddr . oifname @hairpin masquerade
  rule(INET, 'postrouting', 'hairpin: a container reaching a published port of its own network', [
    ...ctBits('status', IPS_DST_NAT),
    ...ipv4,
    ipSaddr,
    { type: 'meta', key: 'oifname', dreg: 9 },
    { type: 'lookup', set: SET.hairpin, sreg: 1 },
    { type: 'masq' },
  ]),
  // ct status dnat ip6 saddr . oifname @hairpin6 masquerade
  rule(INET, 'postrouting', 'hairpin over IPv6', [
    ...ctBits('status', IPS_DST_NAT),
    ...ipv6,
    ip6Saddr,
    { type: 'meta', key: 'oifname', dreg: 2 },
    { type: 'lookup', set: SET.hairpin6, sreg: 1 },
    { type: 'masq' },
  ]),
  // ct status dnat ip saddr 127.0.0.0/8 oifname @bridges masquerade
  rule(INET, 'postrouting', 'published on 127.0.0.1', [
    ...ctBits('status', IPS_DST_NAT),
    ...ipv4,
    ...loopback('saddr'),
    ...ifIn('oifname', SET.bridges),
    { type: 'masq' },
  ]),
  // ip saddr @masq_subnets oifname != @bridges masquerade
  rule(INET, 'postrouting', 'egress', [
    ...ipv4,
    ipSaddr,
    { type: 'lookup', set: SET.masqSubnets, sreg: 1 },
    ...ifIn('oifname', SET.bridges, true),
    { type: 'masq' },
  ]),
  // ip6 saddr @masq_subnets6 oifname != @bridges masquerade
  rule(INET, 'postrouting', 'egress over IPv6', [
    ...ipv6,
    ip6Saddr,
    { type: 'lookup', set: SET.masqSubnets6, sreg: 1 },
    ...ifIn('oifname', SET.bridges, true),
    { type: 'masq' },
  ]),

  // forward
  // iifname != @bridges oifname != @bridges accept
  rule(INET, 'forward', 'not nsnet traffic', [...ifIn('iifname', SET.bridges, true), ...ifIn('oifname', SET.bridges, true), accept]),
  // ct state established,related accept
  rule(INET, 'forward', 'replies', [...ctBits('state', CT_STATE_ESTABLISHED | CT_STATE_RELATED), accept]),
  // ct state invalid drop
  rule(INET, 'forward', 'invalid', [...ctBits('state', CT_STATE_INVALID), drop]),
  // iifname . oifname @icc accept
  rule(INET, 'forward', 'within a network', [
    { type: 'meta', key: 'iifname', dreg: 1 },
    { type: 'meta', key: 'oifname', dreg: 2 },
    { type: 'lookup', set: SET.icc, sreg: 1 },
    accept,
  ]),
  // oifname @internal drop
  rule(INET, 'forward', 'into an internal network', [...ifIn('oifname', SET.internal), drop]),
  // iifname @internal drop
  rule(INET, 'forward', 'out of an internal network', [...ifIn('iifname', SET.internal), drop]),
  // ct status dnat accept
  rule(INET, 'forward', 'published ports', [...ctBits('status', IPS_DST_NAT), accept]),
  // oifname @bridges drop
  rule(INET, 'forward', 'isolation: nothing else enters a network', [...ifIn('oifname', SET.bridges), drop]),
  // iifname @bridges accept
  rule(INET, 'forward', 'egress', [...ifIn('iifname', SET.bridges), accept]),

  // bridge nsnet_l2 forward: frames between two ports of a no-ICC bridge. Frames to and from the
  // bridge itself (the gateway) go through the input and output hooks and are not affected.
  // `meta pkttype != host` spares one case: with br_netfilter active (bridge-nf-call-iptables=1),
  // a frame sent to the gateway's MAC and DNATed to a container of the same bridge (hairpin to
  // a published port) is bridged back with its packet type still PACKET_HOST; the inet forward
  // chain, which br_netfilter runs for it, decides (`ct status dnat accept`). A frame between
  // two containers is never PACKET_HOST (its destination MAC is not the bridge's), and
  // conntrack (`ct`) is not available in bridge-family tables without nf_conntrack_bridge.
  // iifname @noicc_ports meta pkttype != host drop
  rule(L2, 'forward', 'no ICC', [
    ...ifIn('iifname', SET.noiccPorts),
    { type: 'meta', key: 'pkttype', dreg: 1 },
    { type: 'cmp', op: 'neq', sreg: 1, data: Buffer.from([PACKET_HOST]) },
    drop,
  ]),
];

/** Adds the whole skeleton (both tables, chains, sets, rules) to a transaction. */
export function writeSkeleton(tx: Transaction): void {
  for (const t of [INET, L2]) tx.addTable({ family: t.family, name: t.table });
  for (const c of CHAINS) tx.addChain(c);
  for (const s of SETS) {
    if ('value' in s.spec) tx.addMap(s.spec);
    else tx.addSet(s.spec);
  }
  for (const r of RULES) tx.addRule(r);
}
