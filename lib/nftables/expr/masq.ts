/** masq: source NAT to the address of the outgoing interface (`masquerade`). */
import { attrs, fields, optReg, type ExprCodec, type Register } from './kit';
import { decodeNatFlags, NAT_FLAGS, regRange, type NatFlag } from './nat';

/** Masquerade, optionally to the port range in `regProtoMin`..`regProtoMax` (canonical: max absent when equal to min). */
export interface MasqExpr {
  type: 'masq';
  flags?: NatFlag[];
  regProtoMin?: Register;
  regProtoMax?: Register;
}

/** The `masq` expression's codec (registered in ./registry). */
export const masq: ExprCodec<MasqExpr> = {
  type: 'masq',
  kernelName: 'masq',
  encode(e) {
    const f = fields(e, 'masq', ['flags', 'regProtoMin', 'regProtoMax']);
    const proto = regRange(f, 'regProtoMin', 'regProtoMax', 'masq');
    return attrs({ flags: NAT_FLAGS.encode(f.flags, 'masq.flags') || undefined, regProtoMin: proto.min, regProtoMax: proto.max });
  },
  decode(d) {
    const out: MasqExpr = { type: 'masq' };
    const p = optReg(d, 'regProtoMin', true);
    const flags = decodeNatFlags(d, p ? 2 : 0, 'masq'); // proto_specified is implied by the register
    if (flags) out.flags = flags;
    if (p) out.regProtoMin = p;
    const pmax = optReg(d, 'regProtoMax', true) ?? p;
    if (p && pmax !== p) out.regProtoMax = pmax;
    return out;
  },
};
