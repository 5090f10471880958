/** meta: load packet metadata (interface, mark, protocol, ...) into a register, or set it from one. */
import { fail, fields, needReg, OpenEnum, reg, type ExprCodec, type Register } from './kit';

/** NFT_META_* keys by name (iiftype is NFT_META_IFTYPE). */
export const META_KEYS = {
  len: 0,
  protocol: 1,
  priority: 2,
  mark: 3,
  iif: 4,
  oif: 5,
  iifname: 6,
  oifname: 7,
  iiftype: 8,
  oiftype: 9,
  skuid: 10,
  skgid: 11,
  nftrace: 12,
  rtclassid: 13,
  secmark: 14,
  nfproto: 15,
  l4proto: 16,
  bri_iifname: 17,
  bri_oifname: 18,
  pkttype: 19,
  cpu: 20,
  iifgroup: 21,
  oifgroup: 22,
  cgroup: 23,
  prandom: 24,
  secpath: 25,
  iifkind: 26,
  oifkind: 27,
  bri_iifpvid: 28,
  bri_iifvproto: 29,
  time_ns: 30,
  time_day: 31,
  time_hour: 32,
  sdif: 33,
  sdifname: 34,
} as const;

/** A meta key name; a number for keys newer than this table. */
export type MetaKey = keyof typeof META_KEYS;

/** Load `key` into `dreg` (`meta l4proto`), or set `key` from `sreg` (`meta mark set ...`). */
export type MetaExpr = { type: 'meta'; key: MetaKey | number } & ({ dreg: Register } | { sreg: Register });

const KEY = new OpenEnum<MetaKey>(META_KEYS);

/** The `meta` expression's codec (registered in ./registry). */
export const meta: ExprCodec<MetaExpr> = {
  type: 'meta',
  kernelName: 'meta',
  encode(e) {
    const f = fields(e, 'meta', ['key', 'dreg', 'sreg']);
    const key = KEY.encode(f.key, 'meta.key');
    if ((f.dreg === undefined) === (f.sreg === undefined)) throw fail('meta', 'needs exactly one of dreg (a load) and sreg (a set)');
    return f.dreg !== undefined ? { dreg: reg(f.dreg, 'meta.dreg'), key } : { key, sreg: reg(f.sreg, 'meta.sreg') };
  },
  decode(d) {
    const key = KEY.decode(d.key, 'meta.key');
    return typeof d.dreg === 'number' ? { type: 'meta', key, dreg: needReg(d, 'dreg', 'meta') } : { type: 'meta', key, sreg: needReg(d, 'sreg', 'meta') };
  },
};
