/**
 * The request plumbing shared by the rtnetlink object APIs: runs requests on a native handle
 * and turns kernel refusals into NetlinkErrors.
 * @internal
 */
import { NetlinkError, NsnetError, fromNative } from '../errors';
import { native, type NativeHandle, type NativeMessage, type NativeRequest, type NativeResult } from '../native';
import { openNetns, type NetnsHandle, type NetnsSpec } from '../netns';
import { NLM_F } from './constants';
import { count } from '../phases';

export class Conn {
  private closed = false;

  constructor(
    readonly handle: NativeHandle,
    /** The namespace the socket is bound to (kept open: monitors open sockets there too). */
    readonly netns: NetnsHandle,
    /** What the handle is, for errors: 'netlink', 'nftables', 'conntrack'. */
    readonly what = 'netlink',
  ) {}

  /**
   * Opens a socket of `protocol` in a namespace (by a short-lived thread of the addon that
   * enters it), then runs `probe` to prove it answers there; closes everything on failure.
   */
  static async open(protocol: number, netns: NetnsSpec | undefined, what: string, probe: (c: Conn) => Promise<unknown>): Promise<Conn> {
    const ns = openNetns(netns);
    let handle: NativeHandle;
    count('handles opened');
    try {
      handle = new native.Handle(protocol, ns.fd);
    } catch (e) {
      ns.close();
      throw fromNative(e, `open ${what} handle`);
    }
    const conn = new Conn(handle, ns, what);
    try {
      await probe(conn);
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the socket; requests still queued or in flight reject with ERR_HANDLE_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
    this.netns.close();
  }

  assertOpen(): void {
    if (this.closed) throw new NsnetError('ERR_HANDLE_CLOSED', `the ${this.what} handle is closed`);
  }

  /** Runs requests in order; per-message kernel errors are returned, not thrown. */
  async exec(requests: NativeRequest[], atomic = false): Promise<NativeResult[]> {
    count('netlink messages', requests.length);
    count('netlink round trips');
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
    details: { ...(details ?? {}), ...(r.extackOffset !== undefined ? { extackOffset: r.extackOffset } : {}) },
  });
}
