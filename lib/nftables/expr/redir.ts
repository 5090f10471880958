/** redir: destination NAT to the local machine (`redirect to :8080`). */
import { attrs, fields, optReg, type ExprCodec, type Register } from './kit';
import { decodeNatFlags, NAT_FLAGS, regRange, type NatFlag } from './nat';

/** Redirect to this host, optionally to the port range in `regProtoMin`..`regProtoMax` (canonical: max absent when equal to min). */
export interface RedirExpr {
  type: 'redir';
  flags?: NatFlag[];
  regProtoMin?: Register;
  regProtoMax?: Register;
}

/** The `redir` expression's codec (registered in ./registry). */
export const redir: ExprCodec<RedirExpr> = {
  type: 'redir',
  kernelName: 'redir',
  encode(e) {
    const f = fields(e, 'redir', ['flags', 'regProtoMin', 'regProtoMax']);
    const proto = regRange(f, 'regProtoMin', 'regProtoMax', 'redir');
    return attrs({ flags: NAT_FLAGS.encode(f.flags, 'redir.flags') || undefined, regProtoMin: proto.min, regProtoMax: proto.max });
  },
  decode(d) {
    const out: RedirExpr = { type: 'redir' };
    const p = optReg(d, 'regProtoMin', true);
    const flags = decodeNatFlags(d, p ? 2 : 0, 'redir'); // proto_specified is implied by the register
    if (flags) out.flags = flags;
    if (p) out.regProtoMin = p;
    const pmax = optReg(d, 'regProtoMax', true) ?? p;
    if (p && pmax !== p) out.regProtoMax = pmax;
    return out;
  },
};
