/** limit: match while a token-bucket rate is not exceeded (or, with `over`, once it is). */
import { attrs, Enum, fail, fields, flag, int, opt, u64, wireU64, type ExprCodec } from './kit';

/**
 * `rate` packets (or bytes) per `unit` seconds (1 second, 60 minute, 3600 hour, 86400 day,
 * 604800 week), with a `burst` in packets (or bytes). `burst` is absent at the kernel's default:
 * 5 packets for a packet limit (NFT_LIMIT_PKT_BURST_DEFAULT), 0 for a byte limit. `over`
 * (NFT_LIMIT_F_INV) matches above the rate.
 */
export interface LimitExpr {
  type: 'limit';
  kind: 'pkts' | 'bytes';
  rate: number | bigint;
  unit: number;
  burst?: number;
  over?: boolean;
}

const KIND = new Enum<LimitExpr['kind']>({ pkts: 0, bytes: 1 });
const F_INV = 1;
const PKT_BURST_DEFAULT = 5;

/** The `limit` expression's codec (registered in ./registry). */
export const limit: ExprCodec<LimitExpr> = {
  type: 'limit',
  kernelName: 'limit',
  encode(e) {
    const f = fields(e, 'limit', ['kind', 'rate', 'unit', 'burst', 'over']);
    return attrs({
      rate: u64(f.rate, 'limit.rate'),
      unit: int(f.unit, 'limit.unit', 1, Number.MAX_SAFE_INTEGER),
      burst: f.burst === undefined ? undefined : int(f.burst, 'limit.burst'),
      type: KIND.encode(f.kind, 'limit.kind'),
      flags: flag(f.over, 'limit.over') ? F_INV : undefined,
    });
  },
  decode(d) {
    if (d.rate === undefined || d.unit === undefined) throw fail('limit', 'rate or unit missing', d);
    const flags = opt(d, 'flags');
    if (flags & ~F_INV) throw fail('limit.flags', 'unknown bits', flags);
    const out: LimitExpr = { type: 'limit', kind: KIND.decode(opt(d, 'type'), 'limit.kind'), rate: wireU64(d.rate), unit: Number(wireU64(d.unit)) };
    const burst = opt(d, 'burst');
    if (burst && !(out.kind === 'pkts' && burst === PKT_BURST_DEFAULT)) out.burst = burst;
    if (flags & F_INV) out.over = true;
    return out;
  },
};
