/** fib: a route lookup for the packet (`fib daddr type local`, `fib saddr . iif oif`). */
import { Enum, fail, fields, Flags, need, needReg, reg, type ExprCodec, type Register } from './kit';

/** What the lookup yields (NFT_FIB_RESULT_*). */
export type FibResult = 'oif' | 'oifname' | 'addrtype';
/** Which packet fields the lookup uses (NFTA_FIB_F_*). */
export type FibFlag = 'saddr' | 'daddr' | 'mark' | 'iif' | 'oif' | 'present';

/** Look up the route for `flags` (one of saddr, daddr) and load `result` into `dreg`. */
export interface FibExpr {
  type: 'fib';
  result: FibResult;
  /** Canonical order: saddr, daddr, mark, iif, oif, present. */
  flags: FibFlag[];
  dreg: Register;
}

const RESULT = new Enum<FibResult>({ oif: 1, oifname: 2, addrtype: 3 });
const FLAGS = new Flags<FibFlag>({ saddr: 1, daddr: 2, mark: 4, iif: 8, oif: 16, present: 32 });

/** The `fib` expression's codec (registered in ./registry). */
export const fib: ExprCodec<FibExpr> = {
  type: 'fib',
  kernelName: 'fib',
  encode(e) {
    const f = fields(e, 'fib', ['result', 'flags', 'dreg']);
    if (f.flags === undefined) throw fail('fib.flags', "is required (one of 'saddr', 'daddr')");
    const flags = FLAGS.encode(f.flags, 'fib.flags');
    if (!(flags & 1) === !(flags & 2)) throw fail('fib.flags', "needs exactly one of 'saddr' and 'daddr'", f.flags);
    if ((flags & 24) === 24) throw fail('fib.flags', "may not have both 'iif' and 'oif'", f.flags);
    if (flags & 16 && f.result !== 'addrtype') throw fail('fib.flags', "'oif' is only for result 'addrtype'", f.flags);
    return { dreg: reg(f.dreg, 'fib.dreg'), result: RESULT.encode(f.result, 'fib.result'), flags };
  },
  decode(d) {
    return {
      type: 'fib',
      result: RESULT.decode(d.result, 'fib.result'),
      flags: FLAGS.decode(need(d, 'flags', 'fib'), 'fib.flags'),
      dreg: needReg(d, 'dreg', 'fib'),
    };
  },
};
