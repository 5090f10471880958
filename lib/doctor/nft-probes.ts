/**
 * The nf_tables probes of `doctor()`: each one a small transaction in a table of its own, the
 * statements it stands for written above it in nft syntax.
 * @internal
 */
import { hostU32 } from '../nftables/datatypes';
import type { Expr } from '../nftables/expr/types';
import type { Transaction } from '../nftables/transaction';
import type { ChainSpec } from '../nftables/types';

/** nf_tables probes, each one transaction in a table of its own. */
export const NFT_FEATURES = [
  'nftables',
  'nft_nat',
  'nft_masquerade',
  'nft_dnat',
  'nft_nat_ipv6',
  'nft_redirect',
  'nft_ct',
  'nft_fib',
  'nft_concat_sets',
  'nft_interval_sets',
  'nft_concat_interval_sets',
  'nft_verdict_maps',
  'nft_bridge',
  'nsnet_firewall',
] as const;
/** An nf_tables feature `doctor()` probes. */
export type NftFeature = (typeof NFT_FEATURES)[number];

const accept: Expr = { type: 'immediate', verdict: 'accept' };
/** `meta nfproto ipv4` */
const ipv4Check: Expr = { type: 'meta', key: 'nfproto', dreg: 1 };
const ipv4Cmp: Expr = { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([2]) };
/** `meta nfproto ipv6` */
const ipv6Check: Expr = { type: 'meta', key: 'nfproto', dreg: 1 };
const ipv6Cmp: Expr = { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([10]) };
const T = (name: string) => ({ family: 'inet', table: `doctor_${name}` }) as const;

/** An nf_tables probe: adds its table and everything in it to a transaction. */
export type Probe = (tx: Transaction) => void;

function base(
  tx: Transaction,
  t: { family: 'inet' | 'bridge'; table: string },
  name: string,
  type: 'filter' | 'nat',
  hook: ChainSpec['hook'],
  priority: number,
): void {
  tx.addChain({ ...t, name, type, hook, priority, policy: 'accept' });
}
function table(tx: Transaction, t: { family: 'inet' | 'bridge'; table: string }): void {
  tx.addTable({ family: t.family, name: t.table });
}

/** Each nf_tables probe: the statements it writes, in nft syntax, then the expressions. @internal */
export const NFT_PROBES: Record<Exclude<NftFeature, 'nsnet_firewall'>, Probe> = {
  // set s { type ifname }; chain f { filter forward } iifname != @s ip saddr & 255.0.0.0 == 10.0.0.0 accept
  nftables: (tx) => {
    const t = T('nftables');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    tx.addSet({ ...t, name: 's', key: 'ifname' });
    tx.addElements({ ...t, set: 's', elements: [{ key: 'dbr0' }] });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [
        { type: 'meta', key: 'iifname', dreg: 1 },
        { type: 'lookup', set: 's', sreg: 1, invert: true },
        ipv4Check,
        ipv4Cmp,
        { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 },
        { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: Buffer.from([255, 0, 0, 0]), xor: Buffer.alloc(4) },
        { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([10, 0, 0, 0]) },
        accept,
      ],
    });
  },
  nft_nat: (tx) => {
    const t = T('nat');
    table(tx, t);
    base(tx, t, 'pre', 'nat', 'prerouting', -100);
    base(tx, t, 'out', 'nat', 'output', -100);
    base(tx, t, 'post', 'nat', 'postrouting', 100);
  },
  // oifname "dbr0" masquerade
  nft_masquerade: (tx) => {
    const t = T('masq');
    table(tx, t);
    base(tx, t, 'post', 'nat', 'postrouting', 100);
    tx.addRule({
      ...t,
      chain: 'post',
      expr: [{ type: 'meta', key: 'oifname', dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from('dbr0\0') }, { type: 'masq' }],
    });
  },
  // map m { type inet_proto . inet_service : ipv4_addr . inet_service }; dnat ip to meta l4proto . th dport map @m
  nft_dnat: (tx) => {
    const t = T('dnat');
    table(tx, t);
    base(tx, t, 'pre', 'nat', 'prerouting', -100);
    tx.addMap({ ...t, name: 'm', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
    tx.addElements({ ...t, set: 'm', elements: [{ key: ['tcp', 8080], value: ['172.20.0.2', 80] }] });
    tx.addRule({
      ...t,
      chain: 'pre',
      expr: [
        { type: 'meta', key: 'l4proto', dreg: 1 },
        { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
        { type: 'lookup', set: 'm', sreg: 1, dreg: 1 },
        { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
      ],
    });
  },
  // map h { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service }; map a { type inet_proto . inet_service : ipv6_addr . inet_service }
  // set s { type ipv6_addr; flags interval }
  // prerouting: fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @h
  //             meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @a
  // postrouting: ip6 saddr @s masquerade
  nft_nat_ipv6: (tx) => {
    const t = T('nat6');
    table(tx, t);
    base(tx, t, 'pre', 'nat', 'prerouting', -100);
    base(tx, t, 'post', 'nat', 'postrouting', 100);
    tx.addMap({ ...t, name: 'h', key: ['ipv6_addr', 'inet_proto', 'inet_service'], value: ['ipv6_addr', 'inet_service'] });
    tx.addMap({ ...t, name: 'a', key: ['inet_proto', 'inet_service'], value: ['ipv6_addr', 'inet_service'] });
    tx.addSet({ ...t, name: 's', key: 'ipv6_addr', interval: true });
    tx.addElements({ ...t, set: 'h', elements: [{ key: ['2001:db8::1', 'tcp', 8080], value: ['fd00:20::2', 80] }] });
    tx.addElements({ ...t, set: 'a', elements: [{ key: ['udp', 5353], value: ['fd00:20::2', 53] }] });
    tx.addElements({ ...t, set: 's', elements: [{ key: 'fd00:20::/64' }] });
    tx.addRule({
      ...t,
      chain: 'pre',
      expr: [
        { type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 },
        { type: 'cmp', op: 'eq', sreg: 1, data: hostU32(2) },
        ipv6Check,
        ipv6Cmp,
        { type: 'payload', base: 'network', offset: 24, len: 16, dreg: 1 },
        { type: 'meta', key: 'l4proto', dreg: 2 },
        { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 13 },
        { type: 'lookup', set: 'h', sreg: 1, dreg: 1 },
        { type: 'nat', kind: 'dnat', family: 'ip6', regAddrMin: 1, regProtoMin: 2 },
      ],
    });
    tx.addRule({
      ...t,
      chain: 'pre',
      expr: [
        ipv6Check,
        ipv6Cmp,
        { type: 'meta', key: 'l4proto', dreg: 1 },
        { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
        { type: 'lookup', set: 'a', sreg: 1, dreg: 1 },
        { type: 'nat', kind: 'dnat', family: 'ip6', regAddrMin: 1, regProtoMin: 2 },
      ],
    });
    tx.addRule({
      ...t,
      chain: 'post',
      expr: [ipv6Check, ipv6Cmp, { type: 'payload', base: 'network', offset: 8, len: 16, dreg: 1 }, { type: 'lookup', set: 's', sreg: 1 }, { type: 'masq' }],
    });
  },
  // meta l4proto tcp redirect
  nft_redirect: (tx) => {
    const t = T('redir');
    table(tx, t);
    base(tx, t, 'pre', 'nat', 'prerouting', -100);
    tx.addRule({
      ...t,
      chain: 'pre',
      expr: [{ type: 'meta', key: 'l4proto', dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([6]) }, { type: 'redir' }],
    });
  },
  // ct state established,related accept; ct status dnat accept
  nft_ct: (tx) => {
    const t = T('ct');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    for (const [key, bits] of [
      ['state', 2 | 4],
      ['status', 0x20],
    ] as const)
      tx.addRule({
        ...t,
        chain: 'f',
        expr: [
          { type: 'ct', key, dreg: 1 },
          { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: hostU32(bits), xor: hostU32(0) },
          { type: 'cmp', op: 'neq', sreg: 1, data: hostU32(0) },
          accept,
        ],
      });
  },
  // fib daddr type local accept
  nft_fib: (tx) => {
    const t = T('fib');
    table(tx, t);
    base(tx, t, 'pre', 'filter', 'prerouting', 0);
    tx.addRule({
      ...t,
      chain: 'pre',
      expr: [{ type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: hostU32(2) }, accept],
    });
  },
  // set s { type ifname . ifname }; iifname . oifname @s accept
  nft_concat_sets: (tx) => {
    const t = T('concat');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    tx.addSet({ ...t, name: 's', key: ['ifname', 'ifname'] });
    tx.addElements({ ...t, set: 's', elements: [{ key: ['dbr0', 'dbr0'] }] });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [{ type: 'meta', key: 'iifname', dreg: 1 }, { type: 'meta', key: 'oifname', dreg: 2 }, { type: 'lookup', set: 's', sreg: 1 }, accept],
    });
  },
  // set s { type ipv4_addr; flags interval }; ip saddr @s accept
  nft_interval_sets: (tx) => {
    const t = T('interval');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    tx.addSet({ ...t, name: 's', key: 'ipv4_addr', interval: true });
    tx.addElements({ ...t, set: 's', elements: [{ key: '172.20.0.0/16' }, { key: { from: '10.1.0.1', to: '10.1.0.9' } }] });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [ipv4Check, ipv4Cmp, { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 }, { type: 'lookup', set: 's', sreg: 1 }, accept],
    });
  },
  // set s { type ipv4_addr . ifname; flags interval }; ip saddr . oifname @s accept
  nft_concat_interval_sets: (tx) => {
    const t = T('pipapo');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    tx.addSet({ ...t, name: 's', key: ['ipv4_addr', 'ifname'], interval: true });
    tx.addElements({ ...t, set: 's', elements: [{ key: ['172.20.0.0/16', 'dbr0'] }] });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [
        ipv4Check,
        ipv4Cmp,
        { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 },
        { type: 'meta', key: 'oifname', dreg: 9 },
        { type: 'lookup', set: 's', sreg: 1 },
        accept,
      ],
    });
  },
  // map m { type ifname : verdict }; chain c {}; iifname vmap @m
  nft_verdict_maps: (tx) => {
    const t = T('vmap');
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', 0);
    tx.addChain({ ...t, name: 'c' });
    tx.addMap({ ...t, name: 'm', key: 'ifname', value: 'verdict' });
    tx.addElements({
      ...t,
      set: 'm',
      elements: [
        { key: 'dbr0', verdict: { jump: 'c' } },
        { key: 'dbr1', verdict: 'drop' },
      ],
    });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [
        { type: 'meta', key: 'iifname', dreg: 1 },
        { type: 'lookup', set: 'm', sreg: 1, dreg: 0 },
      ],
    });
  },
  // table bridge t { set s { type ifname }; chain f { filter forward -200 } iifname @s meta pkttype != host drop }
  nft_bridge: (tx) => {
    const t = { family: 'bridge', table: 'doctor_bridge' } as const;
    table(tx, t);
    base(tx, t, 'f', 'filter', 'forward', -200);
    tx.addSet({ ...t, name: 's', key: 'ifname' });
    tx.addElements({ ...t, set: 's', elements: [{ key: 'dv0' }] });
    tx.addRule({
      ...t,
      chain: 'f',
      expr: [
        { type: 'meta', key: 'iifname', dreg: 1 },
        { type: 'lookup', set: 's', sreg: 1 },
        { type: 'meta', key: 'pkttype', dreg: 1 },
        { type: 'cmp', op: 'neq', sreg: 1, data: Buffer.from([0]) },
        { type: 'immediate', verdict: 'drop' },
      ],
    });
  },
};
