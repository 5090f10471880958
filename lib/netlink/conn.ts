/**
 * The request plumbing shared by the rtnetlink object APIs: runs requests on a native handle
 * and turns kernel refusals into NetlinkErrors.
 *
 * Requests made in one burst of promise activity travel together: each exec() is queued and
 * the queue goes to the native handle as one exec when the burst is over (process.nextTick
 * runs after the microtasks drain). So `Promise.all` over lookups costs one trip to the worker
 * thread and one sendmsg window, not one each (issue 18). Atomic requests (nf_tables batches)
 * go alone, after whatever was queued before them, in order. Each caller still gets its own
 * results; a request the addon refuses to encode fails on its own. (Main thread only: see
 * COALESCE.)
 * @internal
 */
import { NetlinkError, NsnetError, fromNative } from '../errors';
import { native, type NativeHandle, type NativeMessage, type NativeRequest, type NativeResult } from '../native';
import { openNetns, type NetnsHandle, type NetnsSpec } from '../netns';
import { NLM_F } from './constants';
import { isMainThread } from 'node:worker_threads';
import { count } from '../phases';

/**
 * A request built ahead without asking the kernel anything (devices named by index), to go
 * with others in one round trip ({@link Netlink.batch}). `tolerate`: error codes that count as
 * done (EEXIST for a route another network's attachment already added).
 * @internal
 */
export interface NetlinkOp {
  request: Omit<NativeRequest, 'flags'> & { flags?: number };
  what: string;
  details?: Record<string, unknown>;
  tolerate?: string[];
}

/**
 * Only on the main thread: a worker thread can be terminated at any moment, and a request
 * handed to the addon later (in the next tick) could then meet an environment that no longer
 * runs JavaScript half-way through its encoding, which node-addon-api cannot survive. In a
 * worker, requests go to the addon as they are made, as before.
 */
const COALESCE = isMainThread;

interface Queued {
  requests: NativeRequest[];
  resolve: (r: NativeResult[]) => void;
  reject: (e: unknown) => void;
}

export class Conn {
  private closed = false;
  private queue: Queued[] = [];

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

  /**
   * A connection with no socket of its own in `netns`: each exec is a one-shot exchange run by
   * a pooled thread of the addon that enters the namespace (native.execIn). No worker thread,
   * no probe: for a few requests in a container's namespace. Requests of one burst still go
   * together (in order); separate bursts are ordered only when each is awaited.
   */
  static transient(protocol: number, netns: NetnsSpec | undefined, what: string): Conn {
    const ns = openNetns(netns);
    let closed = false;
    const handle: NativeHandle = {
      exec: (requests, atomic) =>
        closed
          ? Promise.reject(Object.assign(new Error(`the ${what} handle is closed`), { code: 'ERR_HANDLE_CLOSED' }))
          : native.execIn(protocol, ns.fd, requests, atomic),
      close: () => void (closed = true),
      get pending() {
        return 0;
      },
      get closed() {
        return closed;
      },
    };
    return new Conn(handle, ns, what);
  }

  /** Requests queued or in flight. */
  get pending(): number {
    return this.handle.pending + this.queue.reduce((n, q) => n + q.requests.length, 0);
  }

  /** Runs requests in order; per-message kernel errors are returned, not thrown. */
  exec(requests: NativeRequest[], atomic = false): Promise<NativeResult[]> {
    count('netlink messages', requests.length);
    if (atomic || !COALESCE) {
      this.flush();
      return this.send(requests, atomic);
    }
    return new Promise((resolve, reject) => {
      if (this.queue.push({ requests, resolve, reject }) === 1) process.nextTick(() => this.flush());
    });
  }

  /** Sends what is queued as one exec (see the module comment). */
  private flush(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    if (batch.length === 1) {
      this.send(batch[0]!.requests).then(batch[0]!.resolve, batch[0]!.reject);
      return;
    }
    let sent: Promise<NativeResult[]>;
    try {
      count('netlink round trips');
      sent = this.run(
        batch.flatMap((q) => q.requests),
        false,
      );
    } catch {
      // One of them cannot be encoded: each goes on its own, so only that caller fails.
      for (const q of batch) this.send(q.requests).then(q.resolve, q.reject);
      return;
    }
    sent.then(
      (results) => {
        let at = 0;
        for (const q of batch) {
          q.resolve(results.slice(at, at + q.requests.length));
          at += q.requests.length;
        }
      },
      (e) => {
        const err = fromNative(e);
        for (const q of batch) q.reject(err);
      },
    );
  }

  private async send(requests: NativeRequest[], atomic = false): Promise<NativeResult[]> {
    count('netlink round trips');
    try {
      return await this.run(requests, atomic);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * handle.exec(), with the pieces of long dumps taken as they come (the addon parses each while
   * the kernel makes the rest) and put back in front of the rest of their replies, so callers
   * see whole results. Throws synchronously what the addon cannot encode.
   */
  private run(requests: NativeRequest[], atomic: boolean): Promise<NativeResult[]> {
    if (atomic || !requests.some((r) => (r.flags & NLM_F.DUMP) === NLM_F.DUMP)) return this.handle.exec(requests, atomic);
    const pieces = new Map<number, NativeMessage[][]>();
    const onPiece = (index: number, replies: NativeMessage[] | null): void => {
      const got = pieces.get(index);
      if (replies === null) pieces.delete(index);
      else if (got) got.push(replies);
      else pieces.set(index, [replies]);
    };
    return this.handle.exec(requests, false, onPiece).then((results) => {
      for (const [index, got] of pieces) {
        const r = results[index];
        if (r) r.replies = got.flat().concat(r.replies);
      }
      return results;
    });
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
   * A dump whose replies are mapped as they arrive (`map` returns undefined to leave one out).
   * A long dump comes from the addon in pieces while the kernel is still making the rest, so
   * parsing and mapping overlap the dump instead of following it: links.list() of 2,000 links
   * went from 0.8× to more than 1.0× the speed of `ip -json link show` (issue 18). It goes on
   * its own, after whatever was queued before it.
   */
  async dumpMapped<T>(req: Omit<NativeRequest, 'flags'>, what: string, map: (m: NativeMessage) => T | undefined): Promise<T[]> {
    count('netlink messages');
    this.flush();
    let out: T[] = [];
    let failure: { error: unknown } | undefined; // what `map` threw on a piece: the addon's callback must not throw
    const take = (replies: NativeMessage[]): void => {
      for (const m of replies) {
        const v = map(m);
        if (v !== undefined) out.push(v);
      }
    };
    const onPiece = (_index: number, replies: NativeMessage[] | null): void => {
      if (failure) return;
      try {
        if (replies === null) out = [];
        else take(replies);
      } catch (error) {
        failure = { error };
      }
    };
    count('netlink round trips');
    let r: NativeResult | undefined;
    try {
      [r] = await this.handle.exec([{ ...req, flags: NLM_F.REQUEST | NLM_F.DUMP }], false, onPiece);
    } catch (e) {
      throw fromNative(e);
    }
    if (failure) throw failure.error;
    if (r === undefined) throw new NsnetError('ERR_NATIVE', `${what}: no result`);
    if (r.errno) throw toError(r, what);
    take(r.replies);
    return out;
  }

  /**
   * Many independent requests pipelined on the socket (each acknowledged on its own). Returns
   * one outcome per request, in order.
   */
  async batch(
    requests: (Omit<NativeRequest, 'flags'> & { flags?: number })[],
    what: (i: number) => string,
  ): Promise<{ error?: NetlinkError; replies: NativeMessage[] }[]> {
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
