/** dynset: add or update an element of a set from the packet path (`add @seen { ip saddr }`). */
import { attrs, Enum, fail, fields, flag, int, name, needReg, needString, opt, optReg, reg, u64, wireU64, type ExprCodec, type Register } from './kit';

/** NFT_DYNSET_OP_*. */
export type DynsetOp = 'add' | 'update' | 'delete';

/**
 * `op` the key in `sregKey` (and, for a map, the value in `sregData`) on `set`. Expressions
 * attached to the element (NFT_DYNSET_F_EXPR) have no typed form: such a dynset decodes as an
 * unknown expression.
 */
export interface DynsetExpr {
  type: 'dynset';
  set: string;
  op: DynsetOp;
  sregKey: Register;
  sregData?: Register;
  /** Element timeout in milliseconds; absent: the set's default. */
  timeout?: number | bigint;
  /** NFT_DYNSET_F_INV: match when the operation did not happen (the element existed). */
  invert?: boolean;
  /** NFTA_DYNSET_SET_ID: a set added earlier in the same transaction. */
  setId?: number;
}

const OP = new Enum<DynsetOp>({ add: 0, update: 1, delete: 2 });
const F_INV = 1;

/** The `dynset` expression's codec (registered in ./registry). */
export const dynset: ExprCodec<DynsetExpr> = {
  type: 'dynset',
  kernelName: 'dynset',
  encode(e) {
    const f = fields(e, 'dynset', ['set', 'op', 'sregKey', 'sregData', 'timeout', 'invert', 'setId']);
    return attrs({
      setName: name(f.set, 'dynset.set'),
      setId: f.setId === undefined ? undefined : int(f.setId, 'dynset.setId'),
      op: OP.encode(f.op, 'dynset.op'),
      sregKey: reg(f.sregKey, 'dynset.sregKey'),
      sregData: f.sregData === undefined ? undefined : reg(f.sregData, 'dynset.sregData'),
      timeout: f.timeout === undefined ? undefined : u64(f.timeout, 'dynset.timeout'),
      flags: flag(f.invert, 'dynset.invert') ? F_INV : undefined,
    });
  },
  decode(d) {
    const out: DynsetExpr = {
      type: 'dynset',
      set: needString(d, 'setName', 'dynset'),
      op: OP.decode(d.op, 'dynset.op'),
      sregKey: needReg(d, 'sregKey', 'dynset'),
    };
    const data = optReg(d, 'sregData');
    if (data !== undefined) out.sregData = data;
    const timeout = wireU64(d.timeout);
    if (timeout) out.timeout = timeout;
    const flags = opt(d, 'flags');
    if (flags & ~F_INV) throw fail('dynset.flags', 'flags without a typed form', flags);
    if (flags & F_INV) out.invert = true;
    if (typeof d.setId === 'number') out.setId = d.setId;
    return out;
  },
};
