/** reject: drop the packet and answer with an ICMP error or a TCP reset. */
import { Enum, fail, fields, int, need, type ExprCodec } from './kit';

/** NFT_REJECT_*: an ICMP/ICMPv6 unreachable of the packet's family, a TCP reset, or an ICMPX (family-independent) code. */
export type RejectKind = 'icmp_unreach' | 'tcp_rst' | 'icmpx_unreach';

/**
 * Reject. `icmpCode` is required for the ICMP kinds (for icmpx: NFT_REJECT_ICMPX_NO_ROUTE 0,
 * PORT_UNREACH 1, HOST_UNREACH 2, ADMIN_PROHIBITED 3) and absent for tcp_rst.
 */
export type RejectExpr = { type: 'reject'; kind: 'tcp_rst' } | { type: 'reject'; kind: 'icmp_unreach' | 'icmpx_unreach'; icmpCode: number };

const KIND = new Enum<RejectKind>({ icmp_unreach: 0, tcp_rst: 1, icmpx_unreach: 2 });

/** The `reject` expression's codec (registered in ./registry). */
export const reject: ExprCodec<RejectExpr> = {
  type: 'reject',
  kernelName: 'reject',
  encode(e) {
    const f = fields(e, 'reject', ['kind', 'icmpCode']);
    const type = KIND.encode(f.kind, 'reject.kind');
    if (f.kind === 'tcp_rst') {
      if (f.icmpCode !== undefined) throw fail('reject', 'tcp_rst takes no icmpCode');
      return { type };
    }
    return { type, icmpCode: int(f.icmpCode, 'reject.icmpCode', 0, 255) };
  },
  decode(d) {
    const kind = KIND.decode(d.type, 'reject.kind');
    return kind === 'tcp_rst' ? { type: 'reject', kind } : { type: 'reject', kind, icmpCode: need(d, 'icmpCode', 'reject') };
  },
};
