/** bitwise: `dreg = (sreg & mask) ^ xor`, or a shift of `sreg` by a constant. */
import * as os from 'node:os';
import { bytes, Enum, fail, fields, int, need, needReg, NFT_DATA_MAXLEN, reg, wireValue, type ExprCodec, type Register } from './kit';

interface BitwiseCommon {
  type: 'bitwise';
  sreg: Register;
  dreg: Register;
  /** Number of bytes operated on, 1..16. */
  len: number;
}

/** NFT_BITWISE_MASK_XOR: `dreg = (sreg & mask) ^ xor`; `mask` and `xor` are `len` bytes. */
export interface BitwiseMaskXorExpr extends BitwiseCommon {
  op: 'mask_xor';
  mask: Buffer;
  xor: Buffer;
}

/** NFT_BITWISE_LSHIFT / RSHIFT: shift each 32-bit word of `sreg` by `shift` bits (0..31). */
export interface BitwiseShiftExpr extends BitwiseCommon {
  op: 'lshift' | 'rshift';
  shift: number;
}

/** A bitwise operation. */
export type BitwiseExpr = BitwiseMaskXorExpr | BitwiseShiftExpr;

const OP = new Enum<BitwiseExpr['op']>({ mask_xor: 0, lshift: 1, rshift: 2 });
const LE = os.endianness() === 'LE';

/** The shift amount is a host-endian u32 nft_data value. */
function shiftData(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}

/** The `bitwise` expression's codec (registered in ./registry). */
export const bitwise: ExprCodec<BitwiseExpr> = {
  type: 'bitwise',
  kernelName: 'bitwise',
  encode(e) {
    const f = fields(e, 'bitwise', ['sreg', 'dreg', 'len', 'op', 'mask', 'xor', 'shift']);
    const len = int(f.len, 'bitwise.len', 1, NFT_DATA_MAXLEN);
    const common = { sreg: reg(f.sreg, 'bitwise.sreg'), dreg: reg(f.dreg, 'bitwise.dreg'), len, op: OP.encode(f.op, 'bitwise.op') };
    if (f.op !== 'mask_xor') {
      if (f.mask !== undefined || f.xor !== undefined) throw fail('bitwise', 'a shift takes no mask or xor');
      return { ...common, data: { value: shiftData(int(f.shift, 'bitwise.shift', 0, 31)) } };
    }
    if (f.shift !== undefined) throw fail('bitwise', "op 'mask_xor' takes no shift");
    const mask = bytes(f.mask, 'bitwise.mask');
    const xor = bytes(f.xor, 'bitwise.xor');
    if (mask.length !== len || xor.length !== len) throw fail('bitwise', 'mask and xor must be len bytes long');
    return { ...common, mask: { value: mask }, xor: { value: xor } };
  },
  decode(d) {
    const common = { type: 'bitwise', sreg: needReg(d, 'sreg', 'bitwise'), dreg: needReg(d, 'dreg', 'bitwise'), len: need(d, 'len', 'bitwise') } as const;
    const op = OP.decode(d.op ?? 0, 'bitwise.op'); // kernels before 5.6 send no op
    if (op === 'mask_xor') return { ...common, op, mask: wireValue(d, 'mask', 'bitwise'), xor: wireValue(d, 'xor', 'bitwise') };
    const data = wireValue(d, 'data', 'bitwise');
    if (data.length !== 4) throw fail('bitwise.data', 'a shift amount is 4 bytes', data);
    return { ...common, op, shift: LE ? data.readUInt32LE() : data.readUInt32BE() };
  },
};
