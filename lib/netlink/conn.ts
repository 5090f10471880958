/**
 * The request plumbing shared by the rtnetlink object APIs: runs requests on a native handle
 * and turns kernel refusals into NetlinkErrors.
 * @internal
 */
import { NetlinkError, NsnetError, fromNative } from '../errors';
import type { NativeHandle, NativeMessage, NativeRequest, NativeResult } from '../native';
import type { NetnsHandle } from '../netns';
import { NLM_F } from './constants';

export class Conn {
  constructor(
    readonly handle: NativeHandle,
    /** The namespace the socket is bound to (kept open: monitors open sockets there too). */
    readonly netns: NetnsHandle,
  ) {}

  /** Runs requests in order; per-message kernel errors are returned, not thrown. */
  async exec(requests: NativeRequest[], atomic = false): Promise<NativeResult[]> {
    try {
      return await this.handle.exec(requests, atomic);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** One request that must succeed; returns its replies (echoes, GET results). */
  async request(req: Omit<NativeRequest, 'flags'> & { flags?: number }, what: string, details?: Record<string, unknown>): Promise<NativeMessage[]> {
    const [r] = await this.exec([{ ...req, flags: NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0) }]);
    if (r === undefined) throw new NsnetError('ERR_NATIVE', `${what}: no result`);
    if (r.errno) throw toError(r, what, undefined, details);
    return r.replies;
  }

  /** A dump request; returns every message of the dump. */
  async dump(req: Omit<NativeRequest, 'flags'>, what: string): Promise<NativeMessage[]> {
    const [r] = await this.exec([{ ...req, flags: NLM_F.REQUEST | NLM_F.DUMP }]);
    if (r === undefined) throw new NsnetError('ERR_NATIVE', `${what}: no result`);
    if (r.errno) throw toError(r, what);
    return r.replies;
  }

  /**
   * Many independent requests pipelined on the socket (each acknowledged on its own). Returns
   * one outcome per request, in order.
   */
  async batch(requests: (Omit<NativeRequest, 'flags'> & { flags?: number })[], what: (i: number) => string): Promise<{ error?: NetlinkError; replies: NativeMessage[] }[]> {
    const results = await this.exec(requests.map((r) => ({ ...r, flags: NLM_F.REQUEST | NLM_F.ACK | (r.flags ?? 0) })));
    return results.map((r, i) => (r.errno ? { error: toError(r, what(i), i), replies: r.replies } : { replies: r.replies }));
  }
}

export function toError(r: NativeResult, what: string, index?: number, details?: Record<string, unknown>): NetlinkError {
  return new NetlinkError({
    errno: r.errno ?? 0,
    code: r.code ?? 'EIO',
    operation: r.operation,
    ...(r.extack !== undefined ? { extack: r.extack } : {}),
    what,
    ...(index !== undefined ? { index } : {}),
    ...(details ? { details } : {}),
  });
}
