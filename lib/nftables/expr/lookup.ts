/** lookup: match a register against a set, or map it through a map (verdict maps included). */
import { attrs, fail, fields, flag, int, name, needReg, needString, opt, optReg, reg, type ExprCodec, type Register } from './kit';

/**
 * Look `sreg` up in `set`. With `dreg` the set is a map and the element's value is loaded into
 * `dreg` (0, the verdict register, for a verdict map). `invert` (NFT_LOOKUP_F_INV) matches when
 * the key is absent; not with `dreg`.
 */
export interface LookupExpr {
  type: 'lookup';
  set: string;
  sreg: Register;
  dreg?: Register;
  invert?: boolean;
  /** NFTA_LOOKUP_SET_ID: a set added earlier in the same transaction (anonymous sets). */
  setId?: number;
}

const F_INV = 1;

/** The `lookup` expression's codec (registered in ./registry). */
export const lookup: ExprCodec<LookupExpr> = {
  type: 'lookup',
  kernelName: 'lookup',
  encode(e) {
    const f = fields(e, 'lookup', ['set', 'sreg', 'dreg', 'invert', 'setId']);
    const invert = flag(f.invert, 'lookup.invert');
    if (invert && f.dreg !== undefined) throw fail('lookup', 'invert is not possible with dreg (a map)');
    return attrs({
      set: name(f.set, 'lookup.set'),
      sreg: reg(f.sreg, 'lookup.sreg'),
      dreg: f.dreg === undefined ? undefined : reg(f.dreg, 'lookup.dreg', true),
      setId: f.setId === undefined ? undefined : int(f.setId, 'lookup.setId'),
      flags: invert ? F_INV : undefined,
    });
  },
  decode(d) {
    const out: LookupExpr = { type: 'lookup', set: needString(d, 'set', 'lookup'), sreg: needReg(d, 'sreg', 'lookup') };
    const dreg = optReg(d, 'dreg');
    if (dreg !== undefined) out.dreg = dreg;
    const flags = opt(d, 'flags');
    if (flags & ~F_INV) throw fail('lookup.flags', 'unknown bits', flags);
    if (flags & F_INV) out.invert = true;
    if (typeof d.setId === 'number') out.setId = d.setId;
    return out;
  },
};
