/** nat: source or destination NAT to the address and port held in registers. */
import { attrs, Enum, fail, fields, Flags, need, opt, optReg, reg, type ExprCodec, type Register } from './kit';

/** NF_NAT_RANGE_* flags by name (shared with masq and redir). */
export type NatFlag = 'map_ips' | 'proto_specified' | 'proto_random' | 'persistent' | 'proto_random_fully' | 'proto_offset' | 'netmap';

/** @internal */
export const NAT_FLAGS = new Flags<NatFlag>({
  map_ips: 1,
  proto_specified: 2,
  proto_random: 4,
  persistent: 8,
  proto_random_fully: 16,
  proto_offset: 32,
  netmap: 64,
});

/** The address family translated (NFPROTO_IPV4, NFPROTO_IPV6; NFPROTO_INET for a port-only nat). */
export type NatFamily = 'ip' | 'ip6' | 'inet';

/**
 * `dnat ip to <regAddrMin>-<regAddrMax>:<regProtoMin>-<regProtoMax>`: at least one of the
 * address and port registers. Canonical form: a max register equal to its min is absent, and
 * `map_ips` / `proto_specified` are absent from `flags` when the address / port registers imply
 * them (the kernel adds both).
 */
export interface NatExpr {
  type: 'nat';
  kind: 'snat' | 'dnat';
  family: NatFamily;
  regAddrMin?: Register;
  regAddrMax?: Register;
  regProtoMin?: Register;
  regProtoMax?: Register;
  flags?: NatFlag[];
}

const KIND = new Enum<NatExpr['kind']>({ snat: 0, dnat: 1 });
const FAMILY = new Enum<NatFamily>({ inet: 1, ip: 2, ip6: 10 });

/** Register pair `min`/`max` of a range, checked; max defaults to min (as in the kernel). @internal */
export function regRange(f: Record<string, unknown>, min: string, max: string, what: string): { min?: Register; max?: Register } {
  if (f[min] === undefined) {
    if (f[max] !== undefined) throw fail(`${what}.${max}`, `needs ${min}`);
    return {};
  }
  const lo = reg(f[min], `${what}.${min}`);
  return { min: lo, max: f[max] === undefined ? lo : reg(f[max], `${what}.${max}`) };
}

/** Flags of a decoded nat/masq/redir, less those implied by its registers. @internal */
export function decodeNatFlags(d: Record<string, unknown>, implied: number, what: string): NatFlag[] | undefined {
  const flags = NAT_FLAGS.decode(opt(d, 'flags') & ~implied, `${what}.flags`);
  return flags.length ? flags : undefined;
}

/** The `nat` expression's codec (registered in ./registry). */
export const nat: ExprCodec<NatExpr> = {
  type: 'nat',
  kernelName: 'nat',
  encode(e) {
    const f = fields(e, 'nat', ['kind', 'family', 'regAddrMin', 'regAddrMax', 'regProtoMin', 'regProtoMax', 'flags']);
    const addr = regRange(f, 'regAddrMin', 'regAddrMax', 'nat');
    const proto = regRange(f, 'regProtoMin', 'regProtoMax', 'nat');
    if (addr.min === undefined && proto.min === undefined) throw fail('nat', 'needs an address (regAddrMin) or a port (regProtoMin) register');
    const flags = NAT_FLAGS.encode(f.flags, 'nat.flags') | (addr.min ? 1 : 0) | (proto.min ? 2 : 0);
    return attrs({
      type: KIND.encode(f.kind, 'nat.kind'),
      family: FAMILY.encode(f.family, 'nat.family'),
      regAddrMin: addr.min,
      regAddrMax: addr.max,
      regProtoMin: proto.min,
      regProtoMax: proto.max,
      flags,
    });
  },
  decode(d) {
    const out: NatExpr = { type: 'nat', kind: KIND.decode(need(d, 'type', 'nat'), 'nat.kind'), family: FAMILY.decode(need(d, 'family', 'nat'), 'nat.family') };
    const a = optReg(d, 'regAddrMin', true),
      p = optReg(d, 'regProtoMin', true);
    const amax = optReg(d, 'regAddrMax', true) ?? a,
      pmax = optReg(d, 'regProtoMax', true) ?? p;
    if (a) out.regAddrMin = a;
    if (a && amax !== a) out.regAddrMax = amax;
    if (p) out.regProtoMin = p;
    if (p && pmax !== p) out.regProtoMax = pmax;
    const flags = decodeNatFlags(d, (a ? 1 : 0) | (p ? 2 : 0), 'nat');
    if (flags) out.flags = flags;
    return out;
  },
};
