/** payload: load bytes of a packet header into a register, or write a register into the packet. */
import { attrs, Enum, fail, fields, flag, int, need, needReg, opt, reg, type ExprCodec, type Register } from './kit';

/** The header an offset counts from (NFT_PAYLOAD_*_HEADER). */
export type PayloadBase = 'll' | 'network' | 'transport' | 'inner';
/** Checksum to fix after a write (NFT_PAYLOAD_CSUM_*); absent: none. */
export type PayloadCsumType = 'inet' | 'sctp';

interface PayloadCommon {
  type: 'payload';
  base: PayloadBase;
  /** Byte offset from the start of `base`. */
  offset: number;
  /** Number of bytes, 1..255. */
  len: number;
}

/** Load `len` bytes at `base` + `offset` into `dreg` (`ip daddr`: network, 16, 4). */
export interface PayloadLoadExpr extends PayloadCommon {
  dreg: Register;
}

/** Write `len` bytes from `sreg` at `base` + `offset`, optionally fixing a checksum. */
export interface PayloadWriteExpr extends PayloadCommon {
  sreg: Register;
  csumType?: PayloadCsumType;
  /** Offset of the checksum field from `base`. */
  csumOffset?: number;
  /** NFT_PAYLOAD_L4CSUM_PSEUDOHDR: also update the layer-4 checksum over the pseudo-header. */
  l4csum?: boolean;
}

/** A payload load or write. */
export type PayloadExpr = PayloadLoadExpr | PayloadWriteExpr;

const BASE = new Enum<PayloadBase>({ ll: 0, network: 1, transport: 2, inner: 3 });
const CSUM = new Enum<PayloadCsumType | 'none'>({ none: 0, inet: 1, sctp: 2 });
const KEYS = ['base', 'offset', 'len', 'dreg', 'sreg', 'csumType', 'csumOffset', 'l4csum'] as const;

/** The `payload` expression's codec (registered in ./registry). */
export const payload: ExprCodec<PayloadExpr> = {
  type: 'payload',
  kernelName: 'payload',
  encode(e) {
    const f = fields(e, 'payload', KEYS);
    const common = { base: BASE.encode(f.base, 'payload.base'), offset: int(f.offset, 'payload.offset'), len: int(f.len, 'payload.len', 1, 255) };
    if ((f.dreg === undefined) === (f.sreg === undefined)) throw fail('payload', 'needs exactly one of dreg (a load) and sreg (a write)');
    if (f.dreg !== undefined) {
      if (f.csumType !== undefined || f.csumOffset !== undefined || f.l4csum !== undefined) throw fail('payload', 'checksum fields need sreg (a write)');
      return { dreg: reg(f.dreg, 'payload.dreg'), ...common };
    }
    return attrs({
      sreg: reg(f.sreg, 'payload.sreg'),
      ...common,
      csumType: f.csumType === undefined ? undefined : CSUM.encode(f.csumType, 'payload.csumType'),
      csumOffset: f.csumOffset === undefined ? undefined : int(f.csumOffset, 'payload.csumOffset'),
      csumFlags: flag(f.l4csum, 'payload.l4csum') ? 1 : undefined,
    });
  },
  decode(d) {
    const common = {
      type: 'payload',
      base: BASE.decode(d.base, 'payload.base'),
      offset: need(d, 'offset', 'payload'),
      len: need(d, 'len', 'payload'),
    } as const;
    if (typeof d.dreg === 'number') return { ...common, dreg: needReg(d, 'dreg', 'payload') };
    const out: PayloadWriteExpr = { ...common, sreg: needReg(d, 'sreg', 'payload') };
    const csum = CSUM.decode(opt(d, 'csumType'), 'payload.csumType');
    if (csum !== 'none') out.csumType = csum;
    if (opt(d, 'csumOffset')) out.csumOffset = opt(d, 'csumOffset');
    if (opt(d, 'csumFlags') & 1) out.l4csum = true;
    if (opt(d, 'csumFlags') & ~1) throw fail('payload.csumFlags', 'unknown bits', d.csumFlags);
    return out;
  },
};
