/** immediate: load a constant into a register, or set the verdict (`accept`, `jump chain`). */
import { bytes, fail, fields, needReg, reg, wireValue, type ExprCodec, type Register } from './kit';
import { decodeVerdict, encodeVerdict, type Verdict } from './verdict';

/** Set the verdict (NFT_REG_VERDICT). */
export interface ImmediateVerdictExpr {
  type: 'immediate';
  verdict: Verdict;
}

/** Load the constant `data` into `dreg`. */
export interface ImmediateDataExpr {
  type: 'immediate';
  dreg: Register;
  data: Buffer;
}

/** A verdict or a constant. */
export type ImmediateExpr = ImmediateVerdictExpr | ImmediateDataExpr;

/** The `immediate` expression's codec (registered in ./registry). */
export const immediate: ExprCodec<ImmediateExpr> = {
  type: 'immediate',
  kernelName: 'immediate',
  encode(e) {
    const f = fields(e, 'immediate', ['verdict', 'dreg', 'data']);
    if (f.verdict !== undefined) {
      if (f.dreg !== undefined || f.data !== undefined) throw fail('immediate', 'a verdict takes no dreg or data');
      return { dreg: 0, data: { verdict: encodeVerdict(f.verdict as Verdict, 'immediate.verdict') } };
    }
    return { dreg: reg(f.dreg, 'immediate.dreg'), data: { value: bytes(f.data, 'immediate.data') } };
  },
  decode(d) {
    const data = d.data as { verdict?: unknown } | undefined;
    if (data?.verdict !== undefined) return { type: 'immediate', verdict: decodeVerdict(data.verdict, 'immediate.verdict') };
    return { type: 'immediate', dreg: needReg(d, 'dreg', 'immediate'), data: wireValue(d, 'data', 'immediate') };
  },
};
