/**
 * The typed nf_tables expression layer (lib/nftables/expr): every module round-trips through the
 * addon's rule schema (typed → encodeExpr → NFT_MSG_NEWRULE bytes → decode → decodeExpr), the
 * bytes are what the kernel ABI (linux/netfilter/nf_tables.h) requires, expressions the layer
 * does not know survive unchanged, rules the kernel listed (written by `nft -f`) decode to the
 * canonical form, and bad input is an ERR_INVALID_ARGUMENT.
 */
import * as assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { NsnetError } from '../../lib/errors';
import { native, NETLINK_NETFILTER } from '../../lib/native';
import { canonicalExpr, decodeExpr, decodeVerdict, encodeExpr, encodeVerdict, exprCodecs, REG, type Expr } from '../../lib/nftables/expr';

const NFT_MSG_NEWRULE = (10 << 8) | 6;
const NFPROTO_INET = 1;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** Typed examples, canonical, grouped by module: each must survive the addon unchanged. */
const EXAMPLES: Record<string, Expr[]> = {
  payload: [
    { type: 'payload', base: 'network', offset: 16, len: 4, dreg: REG.r1 },
    { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: REG.r32(1) },
    { type: 'payload', base: 'll', offset: 0, len: 6, dreg: 2 },
    { type: 'payload', base: 'inner', offset: 4, len: 1, dreg: 3 },
    { type: 'payload', base: 'network', offset: 8, len: 1, sreg: 1 },
    { type: 'payload', base: 'transport', offset: 0, len: 2, sreg: 1, csumType: 'inet', csumOffset: 16, l4csum: true },
  ],
  cmp: [
    { type: 'cmp', sreg: 1, op: 'eq', data: hex('0a000001') },
    { type: 'cmp', sreg: 9, op: 'neq', data: hex('00') },
    { type: 'cmp', sreg: 1, op: 'lt', data: hex('0050') },
    { type: 'cmp', sreg: 1, op: 'lte', data: hex('03e8') },
    { type: 'cmp', sreg: 1, op: 'gt', data: hex('ff') },
    { type: 'cmp', sreg: 23, op: 'gte', data: hex('ffffffff') },
    { type: 'cmp', sreg: 1, op: 'eq', data: Buffer.alloc(16, 0xab) }, // a whole NFT_REG_1
  ],
  bitwise: [
    { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: hex('ffff0000'), xor: hex('00000000') },
    { type: 'bitwise', op: 'lshift', sreg: 1, dreg: 2, len: 4, shift: 8 },
    { type: 'bitwise', op: 'rshift', sreg: 9, dreg: 10, len: 4, shift: 31 },
  ],
  range: [
    { type: 'range', sreg: 1, op: 'eq', from: hex('0400'), to: hex('04ff') },
    { type: 'range', sreg: 1, op: 'neq', from: hex('0a000000'), to: hex('0affffff') },
  ],
  meta: [
    { type: 'meta', key: 'l4proto', dreg: 1 },
    { type: 'meta', key: 'iifname', dreg: 2 },
    { type: 'meta', key: 'mark', sreg: 1 },
    { type: 'meta', key: 'nfproto', dreg: 11 },
    { type: 'meta', key: 'sdifname', dreg: 1 },
    { type: 'meta', key: 200, dreg: 1 }, // a key newer than the table stays a number
  ],
  ct: [
    { type: 'ct', key: 'state', dreg: 1 },
    { type: 'ct', key: 'status', dreg: 1 },
    { type: 'ct', key: 'src_ip', direction: 'original', dreg: 1 },
    { type: 'ct', key: 'proto_dst', direction: 'reply', dreg: 9 },
    { type: 'ct', key: 'mark', sreg: 1 },
    { type: 'ct', key: 99, dreg: 1 },
  ],
  fib: [
    { type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 },
    { type: 'fib', result: 'oif', flags: ['saddr', 'iif'], dreg: 1 },
    { type: 'fib', result: 'oifname', flags: ['daddr', 'mark', 'iif'], dreg: 2 },
    { type: 'fib', result: 'oif', flags: ['saddr', 'mark', 'iif', 'present'], dreg: 2 },
    { type: 'fib', result: 'addrtype', flags: ['daddr', 'oif'], dreg: 1 },
  ],
  immediate: [
    { type: 'immediate', verdict: 'accept' },
    { type: 'immediate', verdict: 'drop' },
    { type: 'immediate', verdict: 'continue' },
    { type: 'immediate', verdict: 'break' },
    { type: 'immediate', verdict: 'return' },
    { type: 'immediate', verdict: { jump: 'other' } },
    { type: 'immediate', verdict: { goto: 'other-chain.v2' } },
    { type: 'immediate', dreg: 1, data: hex('1f90') },
    { type: 'immediate', dreg: 10, data: hex('ac140002') },
  ],
  lookup: [
    { type: 'lookup', set: 's4', sreg: 1 },
    { type: 'lookup', set: 's4', sreg: 1, invert: true },
    { type: 'lookup', set: 'published', sreg: 1, dreg: 1 },
    { type: 'lookup', set: 'vmap', sreg: 1, dreg: REG.verdict },
    { type: 'lookup', set: '__set%d', sreg: 1, setId: 7 },
  ],
  dynset: [
    { type: 'dynset', set: 's4', op: 'add', sregKey: 1, timeout: 3_600_000 },
    { type: 'dynset', set: 'seen', op: 'update', sregKey: 1, sregData: 2, timeout: 10_000, invert: true, setId: 3 },
    { type: 'dynset', set: 's4', op: 'delete', sregKey: 9 },
  ],
  objref: [
    { type: 'objref', objType: 'counter', name: 'c1' },
    { type: 'objref', objType: 'limit', name: 'l' },
    { type: 'objref', objType: 42, name: 'future' },
    { type: 'objref', set: 'objmap', sreg: 1 },
    { type: 'objref', set: 'objmap', sreg: 1, setId: 2 },
  ],
  nat: [
    { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
    { type: 'nat', kind: 'snat', family: 'ip', regAddrMin: 1, regAddrMax: 2, regProtoMin: 3, regProtoMax: 4, flags: ['persistent'] },
    { type: 'nat', kind: 'dnat', family: 'ip6', regAddrMin: 1 },
    { type: 'nat', kind: 'dnat', family: 'inet', regProtoMin: 1, flags: ['proto_random', 'proto_random_fully', 'proto_offset', 'netmap'] },
  ],
  masq: [
    { type: 'masq' },
    { type: 'masq', flags: ['proto_random'] },
    { type: 'masq', regProtoMin: 1, regProtoMax: 2 },
    { type: 'masq', flags: ['persistent', 'proto_random_fully'], regProtoMin: 1 },
  ],
  redir: [{ type: 'redir' }, { type: 'redir', regProtoMin: 1 }, { type: 'redir', flags: ['proto_random'], regProtoMin: 1, regProtoMax: 2 }],
  counter: [{ type: 'counter' }, { type: 'counter', bytes: 1500, packets: 1 }, { type: 'counter', bytes: 2n ** 60n + 1n, packets: Number.MAX_SAFE_INTEGER }],
  log: [
    { type: 'log' },
    { type: 'log', prefix: 'nsnet drop: ' },
    { type: 'log', prefix: 'x', level: 'info', flags: ['tcpseq', 'tcpopt', 'ipopt', 'uid', 'macdecode'] },
    { type: 'log', level: 'audit' },
    { type: 'log', group: 3, snaplen: 64, qthreshold: 10 },
    { type: 'log', prefix: '', group: 0 },
  ],
  reject: [
    { type: 'reject', kind: 'tcp_rst' },
    { type: 'reject', kind: 'icmp_unreach', icmpCode: 3 },
    { type: 'reject', kind: 'icmpx_unreach', icmpCode: 3 },
  ],
  limit: [
    { type: 'limit', kind: 'pkts', rate: 10, unit: 1 },
    { type: 'limit', kind: 'pkts', rate: 100, unit: 60, burst: 20 },
    { type: 'limit', kind: 'bytes', rate: 1048576, unit: 60, burst: 102400, over: true },
    { type: 'limit', kind: 'bytes', rate: 2n ** 62n, unit: 604800 },
  ],
};

/** One NFT_MSG_NEWRULE carrying `exprs`, as bytes. */
function ruleBytes(items: unknown[]): Buffer {
  return native.encode(NETLINK_NETFILTER, {
    type: NFT_MSG_NEWRULE,
    flags: 0,
    header: { family: NFPROTO_INET },
    attrs: { table: 't', chain: 'c', expressions: items },
  });
}

/** Typed → encodeExpr → bytes → native.decode → the decoded `expressions` items. */
function throughAddon(exprs: Expr[]): { name?: string; data?: unknown }[] {
  const msgs = native.decode(NETLINK_NETFILTER, ruleBytes(exprs.map(encodeExpr)));
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.name, 'NFT_MSG_NEWRULE');
  assert.equal(msgs[0]!.attrs.unknown, undefined, 'no attribute left undecoded');
  return msgs[0]!.attrs.expressions as { name?: string; data?: unknown }[];
}

/** A netlink attribute walker, independent of the addon: type (flags masked) → payload. */
function attrsOf(buf: Buffer): { type: number; nested: boolean; data: Buffer }[] {
  const out = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2);
    assert.ok(len >= 4 && off + len <= buf.length, 'attribute length in bounds');
    out.push({ type: type & 0x3fff, nested: (type & 0x8000) !== 0, data: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}
const attr = (buf: Buffer, type: number): Buffer => {
  const a = attrsOf(buf).filter((x) => x.type === type);
  assert.equal(a.length, 1, `exactly one attribute of type ${type}`);
  return a[0]!.data;
};

/** The NFTA_EXPR_DATA payload of the single expression of a NEWRULE message, checked by name. */
function exprData(msg: Buffer, kernelName: string): Buffer {
  assert.equal(msg.readUInt32LE(0), msg.length, 'nlmsg_len');
  assert.equal(msg.readUInt16LE(4), NFT_MSG_NEWRULE);
  assert.equal(msg[16], NFPROTO_INET, 'nfgenmsg.nfgen_family');
  const rule = msg.subarray(16 + 4);
  assert.equal(attr(rule, 1).toString(), 't\0', 'NFTA_RULE_TABLE');
  assert.equal(attr(rule, 2).toString(), 'c\0', 'NFTA_RULE_CHAIN');
  const list = attrsOf(rule).find((a) => a.type === 4)!; // NFTA_RULE_EXPRESSIONS
  assert.ok(list.nested, 'NFTA_RULE_EXPRESSIONS is a nest');
  const elems = attrsOf(list.data);
  assert.equal(elems.length, 1);
  assert.equal(elems[0]!.type, 1, 'NFTA_LIST_ELEM');
  const expr = elems[0]!.data;
  assert.equal(attr(expr, 1).toString(), `${kernelName}\0`, 'NFTA_EXPR_NAME');
  const data = attrsOf(expr).find((a) => a.type === 2)!; // NFTA_EXPR_DATA
  assert.ok(data.nested, 'NFTA_EXPR_DATA is a nest');
  return data.data;
}

function expectInvalid(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NsnetError, `an NsnetError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
    if (re) assert.match(e.message, re);
    return true;
  });
}

describe('nft expressions: round trip through the addon', () => {
  it('has examples for every registered module', () => {
    assert.deepEqual(Object.keys(EXAMPLES).sort(), [...exprCodecs.keys()].sort());
  });

  for (const [mod, exprs] of Object.entries(EXAMPLES)) {
    it(`${mod}: typed → encodeExpr → NEWRULE bytes → decode → decodeExpr is the identity`, () => {
      for (const e of exprs) assert.equal(e.type, mod);
      const items = throughAddon(exprs);
      assert.equal(items.length, exprs.length);
      items.forEach((item, i) => {
        assert.equal(item.name, mod);
        assert.deepEqual(decodeExpr(item), exprs[i], `example ${i}`);
      });
      // And the decoded form encodes to the same bytes again.
      assert.deepEqual(ruleBytes(items.map((it) => encodeExpr(decodeExpr(it)))), ruleBytes(exprs.map(encodeExpr)));
    });
  }

  it('a whole rule: fib daddr type local, dnat ip to meta l4proto . th dport map @ports', () => {
    const rule: Expr[] = [
      { type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 },
      { type: 'cmp', sreg: 1, op: 'eq', data: hex('02000000') },
      { type: 'meta', key: 'l4proto', dreg: 1 },
      { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: REG.r32(1) },
      { type: 'lookup', set: 'ports', sreg: 1, dreg: 1 },
      { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: REG.r32(1) },
      { type: 'counter' },
    ];
    assert.deepEqual(throughAddon(rule).map(decodeExpr), rule);
  });
});

describe('nft expressions: bytes on the wire (kernel ABI)', () => {
  it('payload `ip daddr`: base network (1), offset 16, len 4, register 1, all big-endian u32', () => {
    const d = exprData(ruleBytes([encodeExpr({ type: 'payload', base: 'network', offset: 16, len: 4, dreg: REG.r1 })]), 'payload');
    assert.deepEqual(attr(d, 1), hex('00000001'), 'NFTA_PAYLOAD_DREG');
    assert.deepEqual(attr(d, 2), hex('00000001'), 'NFTA_PAYLOAD_BASE = NFT_PAYLOAD_NETWORK_HEADER');
    assert.deepEqual(attr(d, 3), hex('00000010'), 'NFTA_PAYLOAD_OFFSET');
    assert.deepEqual(attr(d, 4), hex('00000004'), 'NFTA_PAYLOAD_LEN');
    assert.equal(attrsOf(d).length, 4, 'nothing else');
  });

  it('payload write with checksum: sreg, csum type inet (1), csum offset, NFT_PAYLOAD_L4CSUM_PSEUDOHDR', () => {
    const d = exprData(
      ruleBytes([encodeExpr({ type: 'payload', base: 'transport', offset: 0, len: 2, sreg: REG.r32(0), csumType: 'inet', csumOffset: 16, l4csum: true })]),
      'payload',
    );
    assert.deepEqual(attr(d, 5), hex('00000008'), 'NFTA_PAYLOAD_SREG = NFT_REG32_00');
    assert.deepEqual(attr(d, 2), hex('00000002'), 'NFT_PAYLOAD_TRANSPORT_HEADER');
    assert.deepEqual(attr(d, 6), hex('00000001'), 'NFTA_PAYLOAD_CSUM_TYPE = NFT_PAYLOAD_CSUM_INET');
    assert.deepEqual(attr(d, 7), hex('00000010'), 'NFTA_PAYLOAD_CSUM_OFFSET');
    assert.deepEqual(attr(d, 8), hex('00000001'), 'NFTA_PAYLOAD_CSUM_FLAGS');
  });

  it('cmp: sreg, op, and the value in an NFTA_DATA_VALUE nest, bytes as given', () => {
    const d = exprData(ruleBytes([encodeExpr({ type: 'cmp', sreg: 1, op: 'gte', data: hex('0a000001') })]), 'cmp');
    assert.deepEqual(attr(d, 1), hex('00000001'), 'NFTA_CMP_SREG');
    assert.deepEqual(attr(d, 2), hex('00000005'), 'NFTA_CMP_OP = NFT_CMP_GTE');
    assert.deepEqual(attr(attr(d, 3), 1), hex('0a000001'), 'NFTA_CMP_DATA > NFTA_DATA_VALUE');
  });

  it('immediate accept: verdict register 0, NFTA_DATA_VERDICT > NFTA_VERDICT_CODE = NF_ACCEPT (1)', () => {
    const d = exprData(ruleBytes([encodeExpr({ type: 'immediate', verdict: 'accept' })]), 'immediate');
    assert.deepEqual(attr(d, 1), hex('00000000'), 'NFTA_IMMEDIATE_DREG = NFT_REG_VERDICT');
    const verdict = attr(attr(d, 2), 2);
    assert.deepEqual(attr(verdict, 1), hex('00000001'), 'NFTA_VERDICT_CODE');
    assert.equal(attrsOf(verdict).length, 1, 'no chain');
  });

  it('immediate jump: code NFT_JUMP (-3, big-endian two’s complement) and NFTA_VERDICT_CHAIN', () => {
    const d = exprData(ruleBytes([encodeExpr({ type: 'immediate', verdict: { jump: 'other' } })]), 'immediate');
    const verdict = attr(attr(d, 2), 2);
    assert.deepEqual(attr(verdict, 1), hex('fffffffd'), 'NFTA_VERDICT_CODE = NFT_JUMP');
    assert.equal(attr(verdict, 2).toString(), 'other\0', 'NFTA_VERDICT_CHAIN, NUL-terminated');
    const gotoCode = attr(attr(attr(exprData(ruleBytes([encodeExpr({ type: 'immediate', verdict: { goto: 'x' } })]), 'immediate'), 2), 2), 1);
    assert.deepEqual(gotoCode, hex('fffffffc'), 'NFT_GOTO');
  });

  it('lookup inverted: NFTA_LOOKUP_FLAGS = NFT_LOOKUP_F_INV; nat: type, family, registers and implied flags', () => {
    const l = exprData(ruleBytes([encodeExpr({ type: 'lookup', set: 's', sreg: 1, invert: true })]), 'lookup');
    assert.equal(attr(l, 1).toString(), 's\0', 'NFTA_LOOKUP_SET');
    assert.deepEqual(attr(l, 5), hex('00000001'), 'NFTA_LOOKUP_FLAGS');
    const n = exprData(ruleBytes([encodeExpr({ type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 })]), 'nat');
    assert.deepEqual(attr(n, 1), hex('00000001'), 'NFTA_NAT_TYPE = NFT_NAT_DNAT');
    assert.deepEqual(attr(n, 2), hex('00000002'), 'NFTA_NAT_FAMILY = NFPROTO_IPV4');
    assert.deepEqual(attr(n, 3), hex('00000001'), 'NFTA_NAT_REG_ADDR_MIN');
    assert.deepEqual(attr(n, 4), hex('00000001'), 'NFTA_NAT_REG_ADDR_MAX defaults to min');
    assert.deepEqual(attr(n, 5), hex('00000009'), 'NFTA_NAT_REG_PROTO_MIN');
    assert.deepEqual(attr(n, 7), hex('00000003'), 'NFTA_NAT_FLAGS = MAP_IPS | PROTO_SPECIFIED');
  });

  it('counter and limit carry big-endian u64s; ct direction is a u8', () => {
    const c = exprData(ruleBytes([encodeExpr({ type: 'counter', bytes: 2n ** 60n + 1n, packets: 258 })]), 'counter');
    assert.deepEqual(attr(c, 1), hex('1000000000000001'), 'NFTA_COUNTER_BYTES');
    assert.deepEqual(attr(c, 2), hex('0000000000000102'), 'NFTA_COUNTER_PACKETS');
    const l = exprData(ruleBytes([encodeExpr({ type: 'limit', kind: 'bytes', rate: 1024, unit: 60, over: true })]), 'limit');
    assert.deepEqual(attr(l, 1), hex('0000000000000400'), 'NFTA_LIMIT_RATE');
    assert.deepEqual(attr(l, 2), hex('000000000000003c'), 'NFTA_LIMIT_UNIT');
    assert.deepEqual(attr(l, 4), hex('00000001'), 'NFTA_LIMIT_TYPE = NFT_LIMIT_PKT_BYTES');
    assert.deepEqual(attr(l, 5), hex('00000001'), 'NFTA_LIMIT_FLAGS = NFT_LIMIT_F_INV');
    const ct = exprData(ruleBytes([encodeExpr({ type: 'ct', key: 'proto_dst', direction: 'reply', dreg: 1 })]), 'ct');
    assert.deepEqual(attr(ct, 2), hex('0000000c'), 'NFTA_CT_KEY = NFT_CT_PROTO_DST');
    assert.deepEqual(attr(ct, 3), hex('01'), 'NFTA_CT_DIRECTION = IP_CT_DIR_REPLY');
  });
});

describe('nft expressions: unknown expressions and attributes are kept raw', () => {
  it('an expression name the addon has no table for decodes as unknown and re-encodes byte for byte', () => {
    // tproxy { NFTA_TPROXY_FAMILY = NFPROTO_IPV4, NFTA_TPROXY_REG_PORT = 1 }, built by hand.
    const raw = '0800010000000002' + '0800030000000001';
    const bytes = ruleBytes([{ name: 'tproxy', data: raw }]);
    const items = native.decode(NETLINK_NETFILTER, bytes)[0]!.attrs.expressions as { name: string; data: unknown }[];
    const e = decodeExpr(items[0]!);
    assert.deepEqual(e, { type: 'unknown', name: 'tproxy', data: raw });
    assert.deepEqual(ruleBytes([encodeExpr(e)]), bytes);
  });

  it('a known expression with an attribute this version does not know keeps it', () => {
    // payload with an extra attribute type 30 (a future NFTA_PAYLOAD_*).
    const bytes = ruleBytes([{ name: 'payload', data: { dreg: 1, base: 1, offset: 16, len: 4, unknown: [{ type: 30, nested: false, data: '00000007' }] } }]);
    const items = native.decode(NETLINK_NETFILTER, bytes)[0]!.attrs.expressions as { name: string; data: unknown }[];
    const e = decodeExpr(items[0]!);
    assert.equal(e.type, 'unknown');
    assert.deepEqual(ruleBytes([encodeExpr(e)]), bytes);
  });

  it('a known expression with a value it cannot name (payload base 7) keeps it', () => {
    const bytes = ruleBytes([{ name: 'payload', data: { dreg: 1, base: 7, offset: 0, len: 4 } }]);
    const items = native.decode(NETLINK_NETFILTER, bytes)[0]!.attrs.expressions as { name: string; data: unknown }[];
    const e = decodeExpr(items[0]!);
    assert.deepEqual(e, { type: 'unknown', name: 'payload', data: { dreg: 1, base: 7, offset: 0, len: 4 } });
    assert.deepEqual(ruleBytes([encodeExpr(e)]), bytes);
  });

  it('an item without a name is an error', () => {
    expectInvalid(() => decodeExpr({ unknown: [] }), /without a name/);
  });
});

describe('nft expressions: rules as the kernel lists them (written by nft -f)', () => {
  // NFT_MSG_GETRULE replies for rules loaded with `nft -f`, as the addon decoded them
  // (kernel 6.18, nft 1.x): the decoder yields the canonical typed form.
  const listed: [string, unknown, Expr][] = [
    [
      'nat',
      { type: 1, family: 2, regAddrMin: 1, regAddrMax: 1, regProtoMin: 9, regProtoMax: 9, flags: 3 },
      { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
    ],
    [
      'nat',
      { type: 0, family: 2, regAddrMin: 1, regAddrMax: 2, regProtoMin: 3, regProtoMax: 4, flags: 11 },
      { type: 'nat', kind: 'snat', family: 'ip', regAddrMin: 1, regAddrMax: 2, regProtoMin: 3, regProtoMax: 4, flags: ['persistent'] },
    ],
    ['redir', { regProtoMin: 1, regProtoMax: 1, flags: 2 }, { type: 'redir', regProtoMin: 1 }],
    ['masq', { flags: 2, regProtoMin: 1, regProtoMax: 2 }, { type: 'masq', regProtoMin: 1, regProtoMax: 2 }],
    ['masq', { flags: 4 }, { type: 'masq', flags: ['proto_random'] }],
    ['lookup', { set: 'vm', sreg: 1, dreg: 0, flags: 0 }, { type: 'lookup', set: 'vm', sreg: 1, dreg: 0 }],
    ['lookup', { set: 's4', sreg: 1, flags: 1 }, { type: 'lookup', set: 's4', sreg: 1, invert: true }],
    [
      'bitwise',
      { sreg: 1, dreg: 1, len: 4, op: 0, mask: { value: '06000000' }, xor: { value: '00000000' } },
      { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: hex('06000000'), xor: hex('00000000') },
    ],
    ['counter', { bytes: 0, packets: 0 }, { type: 'counter' }],
    ['limit', { rate: 10, unit: 1, burst: 5, type: 0, flags: 0 }, { type: 'limit', kind: 'pkts', rate: 10, unit: 1 }],
    [
      'limit',
      { rate: 1048576, unit: 60, burst: 102400, type: 1, flags: 1 },
      { type: 'limit', kind: 'bytes', rate: 1048576, unit: 60, burst: 102400, over: true },
    ],
    ['log', { prefix: 'hi ', level: 6, flags: 1 }, { type: 'log', prefix: 'hi ', level: 'info', flags: ['tcpseq'] }],
    ['log', { prefix: 'x', level: 4 }, { type: 'log', prefix: 'x' }],
    ['log', { group: 3, snaplen: 64 }, { type: 'log', group: 3, snaplen: 64 }],
    ['reject', { type: 1 }, { type: 'reject', kind: 'tcp_rst' }],
    ['reject', { type: 2, icmpCode: 3 }, { type: 'reject', kind: 'icmpx_unreach', icmpCode: 3 }],
    ['ct', { dreg: 1, key: 19, direction: 0 }, { type: 'ct', key: 'src_ip', direction: 'original', dreg: 1 }],
    ['dynset', { sregKey: 1, op: 0, setName: 's4', timeout: 10000, flags: 0 }, { type: 'dynset', set: 's4', op: 'add', sregKey: 1, timeout: 10000 }],
    ['immediate', { dreg: 0, data: { verdict: { code: -3, chain: 'other' } } }, { type: 'immediate', verdict: { jump: 'other' } }],
    ['immediate', { dreg: 0, data: { verdict: { code: -5 } } }, { type: 'immediate', verdict: 'return' }],
    ['fib', { dreg: 1, result: 3, flags: 2 }, { type: 'fib', result: 'addrtype', flags: ['daddr'], dreg: 1 }],
  ];
  for (const [name, data, want] of listed) {
    it(`${name} ${JSON.stringify(data)}`, () => assert.deepEqual(decodeExpr({ name, data }), want));
  }

  it('bitwise from a kernel before 5.6 (no NFTA_BITWISE_OP) is mask_xor', () => {
    const e = decodeExpr({ name: 'bitwise', data: { sreg: 1, dreg: 1, len: 1, mask: { value: 'f0' }, xor: { value: '00' } } });
    assert.deepEqual(e, { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 1, mask: hex('f0'), xor: hex('00') });
  });
});

describe('nft expressions: canonical form', () => {
  it('defaults and implied values are dropped', () => {
    const cases: [Expr, Expr][] = [
      [
        { type: 'lookup', set: 's', sreg: 1, invert: false },
        { type: 'lookup', set: 's', sreg: 1 },
      ],
      [
        { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regAddrMax: 1, flags: ['map_ips'] },
        { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1 },
      ],
      [{ type: 'masq', flags: [] }, { type: 'masq' }],
      [
        { type: 'limit', kind: 'pkts', rate: 1, unit: 1, burst: 5, over: false },
        { type: 'limit', kind: 'pkts', rate: 1, unit: 1 },
      ],
      [{ type: 'log', level: 'warning', flags: [] }, { type: 'log' }],
      [
        { type: 'counter', bytes: 0, packets: 5n },
        { type: 'counter', packets: 5 },
      ],
      [
        { type: 'fib', result: 'oif', flags: ['iif', 'saddr'], dreg: 1 },
        { type: 'fib', result: 'oif', flags: ['saddr', 'iif'], dreg: 1 },
      ],
      [
        { type: 'meta', key: 3, dreg: 1 },
        { type: 'meta', key: 'mark', dreg: 1 },
      ],
      [
        { type: 'bitwise', op: 'lshift', sreg: REG.r32(0), dreg: REG.r32(12), len: 4, shift: 1 },
        { type: 'bitwise', op: 'lshift', sreg: 1, dreg: 4, len: 4, shift: 1 },
      ],
      [
        { type: 'nat', kind: 'snat', family: 'ip', regAddrMin: 8, regAddrMax: 1, regProtoMin: 9, regProtoMax: 9 },
        { type: 'nat', kind: 'snat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
      ],
      [
        { type: 'dynset', set: 's', op: 'add', sregKey: 8, timeout: 2n ** 60n },
        { type: 'dynset', set: 's', op: 'add', sregKey: 1, timeout: 2n ** 60n },
      ],
      [
        { type: 'payload', base: 'network', offset: 0, len: 1, sreg: 1, csumOffset: 0, l4csum: false },
        { type: 'payload', base: 'network', offset: 0, len: 1, sreg: 1 },
      ],
    ];
    for (const [given, canonical] of cases) assert.deepEqual(canonicalExpr(given), canonical, inspect(given));
  });

  it('canonical examples are fixed points', () => {
    for (const e of Object.values(EXAMPLES).flat()) assert.deepEqual(canonicalExpr(e), e);
  });
});

describe('nft expressions: registers and verdict helpers', () => {
  it('REG names the register numbers', () => {
    assert.deepEqual([REG.verdict, REG.r1, REG.r2, REG.r3, REG.r4, REG.r32(0), REG.r32(15)], [0, 1, 2, 3, 4, 8, 23]);
    expectInvalid(() => REG.r32(16));
    expectInvalid(() => REG.r32(-1));
  });

  it('verdicts encode to NFTA_VERDICT_* and back (shared with verdict maps)', () => {
    assert.deepEqual(encodeVerdict('drop'), { code: 0 });
    assert.deepEqual(encodeVerdict({ goto: 'c' }), { code: -4, chain: 'c' });
    assert.deepEqual(decodeVerdict({ code: -1 }), 'continue');
    assert.deepEqual(decodeVerdict({ code: -3, chain: 'x' }), { jump: 'x' });
    expectInvalid(() => decodeVerdict({ code: 3 }));
    expectInvalid(() => decodeVerdict({ code: -3 }));
  });
});

describe('nft expressions: invalid input is ERR_INVALID_ARGUMENT', () => {
  const bad: [string, unknown][] = [
    ['an unknown type', { type: 'tproxy2' }],
    ['no type', { sreg: 1 }],
    ['not an object', 'accept'],
    ['an unknown field (typo)', { type: 'cmp', sreg: 1, op: 'eq', data: hex('00'), dreg: 1 }],
    ['an unknown payload base', { type: 'payload', base: 'ip', offset: 16, len: 4, dreg: 1 }],
    ['an unknown cmp op', { type: 'cmp', sreg: 1, op: 'equals', data: hex('00') }],
    ['an unknown meta key name', { type: 'meta', key: 'ifname', dreg: 1 }],
    ['an unknown ct key name', { type: 'ct', key: 'states', dreg: 1 }],
    ['an unknown ct direction', { type: 'ct', key: 'src', direction: 'orig', dreg: 1 }],
    ['an unknown fib flag', { type: 'fib', result: 'oif', flags: ['daddr', 'fwmark'], dreg: 1 }],
    ['fib with both saddr and daddr', { type: 'fib', result: 'oif', flags: ['saddr', 'daddr'], dreg: 1 }],
    ['fib without flags', { type: 'fib', result: 'oif', dreg: 1 }],
    ['an unknown nat flag', { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, flags: ['random'] }],
    ['an unknown nat kind', { type: 'nat', kind: 'masquerade', family: 'ip', regAddrMin: 1 }],
    ['an unknown nat family', { type: 'nat', kind: 'dnat', family: 'ipv4', regAddrMin: 1 }],
    ['an unknown log level', { type: 'log', level: 'warn' }],
    ['an unknown reject kind', { type: 'reject', kind: 'icmp' }],
    ['an unknown limit kind', { type: 'limit', kind: 'packets', rate: 1, unit: 1 }],
    ['an unknown verdict', { type: 'immediate', verdict: 'queue' }],
    ['an unknown dynset op', { type: 'dynset', set: 's', op: 'insert', sregKey: 1 }],
    ['an unknown object type', { type: 'objref', objType: 'quotas', name: 'q' }],
    ['register 5', { type: 'cmp', sreg: 5, op: 'eq', data: hex('00') }],
    ['register 24', { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 24 }],
    ['register -1', { type: 'meta', key: 'mark', sreg: -1 }],
    ['the verdict register as a data register', { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 0 }],
    ['a register given as a string', { type: 'cmp', sreg: '1', op: 'eq', data: hex('00') }],
    ['cmp without data', { type: 'cmp', sreg: 1, op: 'eq' }],
    ['cmp with data as a hex string', { type: 'cmp', sreg: 1, op: 'eq', data: '00' }],
    ['cmp with 17 bytes of data (struct nft_data is 16)', { type: 'cmp', sreg: 1, op: 'eq', data: Buffer.alloc(17) }],
    ['bitwise len 17', { type: 'bitwise', op: 'lshift', sreg: 1, dreg: 1, len: 17, shift: 1 }],
    ['fib with both iif and oif', { type: 'fib', result: 'addrtype', flags: ['daddr', 'iif', 'oif'], dreg: 1 }],
    ['fib oif result restricted to oif', { type: 'fib', result: 'oif', flags: ['daddr', 'oif'], dreg: 1 }],
    ['cmp with empty data', { type: 'cmp', sreg: 1, op: 'eq', data: Buffer.alloc(0) }],
    ['payload without len', { type: 'payload', base: 'network', offset: 16, dreg: 1 }],
    ['payload len 0', { type: 'payload', base: 'network', offset: 16, len: 0, dreg: 1 }],
    ['payload negative offset', { type: 'payload', base: 'network', offset: -1, len: 4, dreg: 1 }],
    ['payload with both dreg and sreg', { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1, sreg: 1 }],
    ['payload load with checksum fields', { type: 'payload', base: 'network', offset: 16, len: 4, dreg: 1, csumType: 'inet' }],
    ['meta with neither dreg nor sreg', { type: 'meta', key: 'mark' }],
    ['bitwise mask of the wrong length', { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: hex('ff'), xor: hex('00000000') }],
    ['bitwise shift of 32', { type: 'bitwise', op: 'lshift', sreg: 1, dreg: 1, len: 4, shift: 32 }],
    ['bitwise without op', { type: 'bitwise', sreg: 1, dreg: 1, len: 4, mask: hex('ffffffff'), xor: hex('00000000') }],
    ['range bounds of different lengths', { type: 'range', sreg: 1, op: 'eq', from: hex('00'), to: hex('0000') }],
    ['immediate data without dreg', { type: 'immediate', data: hex('00') }],
    ['immediate verdict with dreg', { type: 'immediate', verdict: 'accept', dreg: 1 }],
    ['jump without a chain', { type: 'immediate', verdict: { jump: '' } }],
    ['jump and goto at once', { type: 'immediate', verdict: { jump: 'a', goto: 'b' } }],
    ['lookup without a set', { type: 'lookup', sreg: 1 }],
    ['lookup inverted with dreg', { type: 'lookup', set: 's', sreg: 1, dreg: 1, invert: true }],
    ['lookup invert not a boolean', { type: 'lookup', set: 's', sreg: 1, invert: 1 }],
    ['nat without registers', { type: 'nat', kind: 'dnat', family: 'ip' }],
    ['nat max register without min', { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMax: 2 }],
    ['nat without family', { type: 'nat', kind: 'dnat', regAddrMin: 1 }],
    ['masq flags not an array', { type: 'masq', flags: 'proto_random' }],
    ['counter negative', { type: 'counter', bytes: -1 }],
    ['counter beyond 2^64', { type: 'counter', bytes: 2n ** 64n }],
    ['log level with an nflog group', { type: 'log', group: 1, level: 'info' }],
    ['log snaplen without a group', { type: 'log', snaplen: 64 }],
    ['log prefix of 128 bytes', { type: 'log', prefix: 'x'.repeat(128) }],
    ['reject tcp_rst with an icmp code', { type: 'reject', kind: 'tcp_rst', icmpCode: 1 }],
    ['reject icmp without a code', { type: 'reject', kind: 'icmp_unreach' }],
    ['limit without unit', { type: 'limit', kind: 'pkts', rate: 1 }],
    ['objref with name and set', { type: 'objref', objType: 'counter', name: 'c', set: 'm', sreg: 1 }],
    ['objref map with objType', { type: 'objref', objType: 'counter', set: 'm', sreg: 1 }],
    ['dynset without sregKey', { type: 'dynset', set: 's', op: 'add' }],
    ['unknown with non-hex data', { type: 'unknown', name: 'x', data: 'zz' }],
  ];
  for (const [what, e] of bad) {
    it(what, () => expectInvalid(() => encodeExpr(e as Expr)));
  }
});
