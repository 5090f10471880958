/**
 * Link events as an async iterator, from a netlink monitor socket joined to RTNLGRP_LINK in the
 * handle's namespace.
 */
import { fromNative } from '../errors';
import { NETLINK_ROUTE, native, type NativeMessage, type NativeMonitor } from '../native';
import { RTM } from './constants';
import type { LinkEvent } from './link-types';
import { decodeLink } from './link-decode';

/** Link events in one namespace. Iterate with `for await`; `close()` ends the iteration. */
export class LinkWatcher implements AsyncIterableIterator<LinkEvent> {
  private readonly monitor: NativeMonitor;
  private readonly queue: LinkEvent[] = [];
  private readonly waiting: ((r: IteratorResult<LinkEvent>) => void)[] = [];
  private readonly failures: ((e: Error) => void)[] = [];
  private readonly known = new Set<number>();
  private error: Error | undefined;
  private closed = false;
  private inflight: Promise<IteratorResult<LinkEvent>> | undefined;

  /** @internal Resolves once the socket has joined its group (or fails to). */
  readonly subscribed: Promise<void>;
  private onSubscribed: ((e?: Error) => void) | undefined;

  /** @internal */
  constructor(netnsFd: number, group: number) {
    this.subscribed = new Promise<void>((resolve, reject) => {
      this.onSubscribed = (e) => (e ? reject(e) : resolve());
    });
    this.monitor = new native.Monitor(NETLINK_ROUTE, netnsFd, [group], (err, msgs) => this.onMessages(err, msgs));
  }

  /** @internal Links present when watching started: their NEWLINK messages are 'changed'. */
  seed(indexes: number[]): void {
    for (const i of indexes) this.known.add(i);
  }

  private onMessages(err: (Error & { code?: string }) | null, msgs: NativeMessage[] | null): void {
    if (this.onSubscribed) {
      const settle = this.onSubscribed;
      this.onSubscribed = undefined;
      if (err || msgs === null) {
        settle(err ? fromNative(err, 'link watch') : undefined);
        if (err) this.close();
        return;
      }
    }
    if (this.closed) return;
    if (err) {
      if (err.code === 'ENOBUFS') this.push({ type: 'overrun' });
      else this.fail(fromNative(err, 'link watch'));
      return;
    }
    for (const m of msgs ?? []) {
      if (m.type !== RTM.NEWLINK && m.type !== RTM.DELLINK) continue;
      const link = decodeLink(m);
      if (m.type === RTM.DELLINK) {
        this.known.delete(link.index);
        this.push({ type: 'removed', link });
      } else if (this.known.has(link.index)) {
        this.push({ type: 'changed', link });
      } else {
        this.known.add(link.index);
        this.push({ type: 'added', link });
      }
    }
  }

  private push(ev: LinkEvent): void {
    const w = this.waiting.shift();
    this.failures.shift();
    if (w) w({ value: ev, done: false });
    else this.queue.push(ev);
  }

  private fail(e: Error): void {
    this.error = e;
    const fails = this.failures.splice(0);
    this.waiting.splice(0);
    for (const f of fails) f(e);
    this.close();
  }

  next(): Promise<IteratorResult<LinkEvent>> {
    const ev = this.queue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.failures.push(reject);
    });
  }

  /**
   * Waits for the next event matching `pred`, up to `timeoutMs`.
   * @throws NsnetError ERR_TIMEOUT when none comes in time.
   */
  async waitFor(pred: (ev: LinkEvent) => boolean, timeoutMs = 5000): Promise<LinkEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A next() that lost a race with the timer is kept for the following round, so no event is lost.
      this.inflight ??= this.next();
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.inflight,
        new Promise<'timeout'>((res) => {
          timer = setTimeout(() => res('timeout'), Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (r === 'timeout') throw fromNative({ code: 'ERR_TIMEOUT', message: `no matching link event within ${timeoutMs} ms` });
      this.inflight = undefined;
      if (r.done) throw fromNative({ code: 'ERR_HANDLE_CLOSED', message: 'the watch was closed' });
      if (pred(r.value)) return r.value;
    }
  }

  return(): Promise<IteratorResult<LinkEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<LinkEvent> {
    return this;
  }

  /** Stops watching; pending next() calls end. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.monitor.close();
    const waiting = this.waiting.splice(0);
    this.failures.splice(0);
    for (const w of waiting) w({ value: undefined, done: true });
  }
}
