/** cmp: compare a register with a constant; the rule stops here when the comparison fails. */
import { bytes, Enum, fields, needReg, reg, wireValue, type ExprCodec, type Register } from './kit';

/** NFT_CMP_EQ .. NFT_CMP_GTE. */
export type CmpOp = 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte';

/** Compare `sreg` with `data` (bytes in the register's byte order, usually network order). */
export interface CmpExpr {
  type: 'cmp';
  sreg: Register;
  op: CmpOp;
  data: Buffer;
}

/** @internal */
export const CMP_OP = new Enum<CmpOp>({ eq: 0, neq: 1, lt: 2, lte: 3, gt: 4, gte: 5 });

/** The `cmp` expression's codec (registered in ./registry). */
export const cmp: ExprCodec<CmpExpr> = {
  type: 'cmp',
  kernelName: 'cmp',
  encode(e) {
    const f = fields(e, 'cmp', ['sreg', 'op', 'data']);
    return { sreg: reg(f.sreg, 'cmp.sreg'), op: CMP_OP.encode(f.op, 'cmp.op'), data: { value: bytes(f.data, 'cmp.data') } };
  },
  decode(d) {
    return { type: 'cmp', sreg: needReg(d, 'sreg', 'cmp'), op: CMP_OP.decode(d.op, 'cmp.op'), data: wireValue(d, 'data', 'cmp') };
  },
};
