/** range: check that a register lies (or does not lie) between two constants, inclusive. */
import { bytes, Enum, fail, fields, needReg, reg, wireValue, type ExprCodec, type Register } from './kit';

/** `sreg` in [`from`, `to`] (op 'eq') or outside it (op 'neq'); bounds compared as big-endian bytes. */
export interface RangeExpr {
  type: 'range';
  sreg: Register;
  op: 'eq' | 'neq';
  from: Buffer;
  to: Buffer;
}

const OP = new Enum<'eq' | 'neq'>({ eq: 0, neq: 1 });

/** The `range` expression's codec (registered in ./registry). */
export const range: ExprCodec<RangeExpr> = {
  type: 'range',
  kernelName: 'range',
  encode(e) {
    const f = fields(e, 'range', ['sreg', 'op', 'from', 'to']);
    const from = bytes(f.from, 'range.from');
    const to = bytes(f.to, 'range.to');
    if (from.length !== to.length) throw fail('range', 'from and to must have the same length');
    return { sreg: reg(f.sreg, 'range.sreg'), op: OP.encode(f.op, 'range.op'), fromData: { value: from }, toData: { value: to } };
  },
  decode(d) {
    return {
      type: 'range',
      sreg: needReg(d, 'sreg', 'range'),
      op: OP.decode(d.op, 'range.op'),
      from: wireValue(d, 'fromData', 'range'),
      to: wireValue(d, 'toData', 'range'),
    };
  },
};
