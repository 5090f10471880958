/** counter: count packets and bytes that reach it. */
import { attrs, fields, u64, wireU64, type ExprCodec } from './kit';

/** A counter; `bytes` / `packets` are its values (absent: 0), beyond 2^53 as bigints. */
export interface CounterExpr {
  type: 'counter';
  bytes?: number | bigint;
  packets?: number | bigint;
}

/** The `counter` expression's codec (registered in ./registry). */
export const counter: ExprCodec<CounterExpr> = {
  type: 'counter',
  kernelName: 'counter',
  encode(e) {
    const f = fields(e, 'counter', ['bytes', 'packets']);
    return attrs({
      bytes: f.bytes === undefined ? undefined : u64(f.bytes, 'counter.bytes'),
      packets: f.packets === undefined ? undefined : u64(f.packets, 'counter.packets'),
    });
  },
  decode(d) {
    const out: CounterExpr = { type: 'counter' };
    const bytes = wireU64(d.bytes),
      packets = wireU64(d.packets);
    if (bytes) out.bytes = bytes;
    if (packets) out.packets = packets;
    return out;
  },
};
