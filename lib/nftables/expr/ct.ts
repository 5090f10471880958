/** ct: load conntrack state of the packet's connection into a register, or set it from one. */
import { Enum, fail, fields, needReg, OpenEnum, reg, type ExprCodec, type Register } from './kit';

/** NFT_CT_* keys by name. */
export const CT_KEYS = {
  state: 0,
  direction: 1,
  status: 2,
  mark: 3,
  secmark: 4,
  expiration: 5,
  helper: 6,
  l3protocol: 7,
  src: 8,
  dst: 9,
  protocol: 10,
  proto_src: 11,
  proto_dst: 12,
  labels: 13,
  pkts: 14,
  bytes: 15,
  avgpkt: 16,
  zone: 17,
  eventmask: 18,
  src_ip: 19,
  dst_ip: 20,
  src_ip6: 21,
  dst_ip6: 22,
  id: 23,
} as const;

/** A ct key name; a number for keys newer than this table. */
export type CtKey = keyof typeof CT_KEYS;
/** IP_CT_DIR_ORIGINAL / IP_CT_DIR_REPLY. */
export type CtDirection = 'original' | 'reply';

/**
 * Load `key` into `dreg` (`ct state`, `ct original saddr`: key src, direction original) or set
 * it from `sreg` (`ct mark set ...`). `direction` is for the per-direction keys.
 */
export type CtExpr = { type: 'ct'; key: CtKey | number; direction?: CtDirection } & ({ dreg: Register } | { sreg: Register });

const KEY = new OpenEnum<CtKey>(CT_KEYS);
const DIR = new Enum<CtDirection>({ original: 0, reply: 1 });

/** The `ct` expression's codec (registered in ./registry). */
export const ct: ExprCodec<CtExpr> = {
  type: 'ct',
  kernelName: 'ct',
  encode(e) {
    const f = fields(e, 'ct', ['key', 'direction', 'dreg', 'sreg']);
    const key = KEY.encode(f.key, 'ct.key');
    const dir = f.direction === undefined ? {} : { direction: DIR.encode(f.direction, 'ct.direction') };
    if ((f.dreg === undefined) === (f.sreg === undefined)) throw fail('ct', 'needs exactly one of dreg (a load) and sreg (a set)');
    return f.dreg !== undefined ? { dreg: reg(f.dreg, 'ct.dreg'), key, ...dir } : { key, ...dir, sreg: reg(f.sreg, 'ct.sreg') };
  },
  decode(d) {
    const key = KEY.decode(d.key, 'ct.key');
    const dir = d.direction === undefined ? {} : { direction: DIR.decode(d.direction, 'ct.direction') };
    return typeof d.dreg === 'number'
      ? { type: 'ct', key, ...dir, dreg: needReg(d, 'dreg', 'ct') }
      : { type: 'ct', key, ...dir, sreg: needReg(d, 'sreg', 'ct') };
  },
};
