/**
 * Forwarding to upstream servers, from the host namespace. Each query goes out with a fresh
 * random id from one of a small pool of UDP sockets on random ports; a reply is taken only from
 * the upstream it was sent to, with that id and the same question (anything else is ignored: a
 * spoofed or stale datagram cannot answer someone else's query). Upstreams are tried in order,
 * each for `timeout` ms; one that answers SERVFAIL, REFUSED or NOTIMP hands over to the next, as
 * the C library does. A UDP reply with TC is asked again over TCP, and the full answer is cut to
 * what the client's UDP takes (a client that cannot retry over TCP, such as older musl, still
 * gets the records that fit). A client that asked over TCP is forwarded over TCP.
 * @internal
 */
import { randomInt } from 'node:crypto';
import type * as dgram from 'node:dgram';
import type { Upstream } from './names';
import { RCODE, answers, bareError, fitUdp, rcodeOf, truncated, udpLimit, withId, type Query } from './message';
import type { HostSockets } from './sockets';
import { FrameReader, frame } from './tcp';

export interface ForwarderOptions {
  /** ms one upstream has to answer (default 1500). */
  timeout?: number;
  /** Queries waiting for upstreams at once; more get SERVFAIL at once (default 4096). */
  maxPending?: number;
  /** UDP sockets per address family (default 8). */
  poolSize?: number;
}

/** The whole budget for one query: under the 5 s a C library client waits for its first try. */
const DEADLINE_MS = 4000;
const HANDOVER = new Set<number>([RCODE.SERVFAIL, RCODE.REFUSED, RCODE.NOTIMP]);

interface Pending {
  up: Upstream;
  question: Query['question'];
  done: (reply: Buffer | undefined) => void;
  timer: NodeJS.Timeout;
}

class UdpPool {
  readonly pending = new Map<string, Pending>();
  private sockets: Promise<dgram.Socket[]> | undefined;

  constructor(
    private readonly hs: HostSockets,
    private readonly family: 4 | 6,
    private readonly size: number,
  ) {}

  private open(): Promise<dgram.Socket[]> {
    this.sockets ??= Promise.all(
      Array.from({ length: this.size }, async (_, i) => {
        const s = await this.hs.udpClient(this.family);
        s.on('message', (msg, rinfo) => this.receive(i, msg, rinfo));
        s.on('error', () => undefined);
        s.unref();
        return s;
      }),
    ).catch((e: unknown) => {
      this.sockets = undefined; // try again on the next query
      throw e;
    });
    return this.sockets;
  }

  async ask(up: Upstream, q: Query, timeout: number): Promise<Buffer | undefined> {
    const sockets = await this.open();
    const i = randomInt(sockets.length);
    let id = randomInt(65536);
    for (let n = 0; this.pending.has(`${i}:${id}`) && n < 16; n++) id = randomInt(65536);
    const key = `${i}:${id}`;
    if (this.pending.has(key)) return undefined;
    return new Promise((resolve) => {
      const done = (reply: Buffer | undefined): void => {
        clearTimeout(entry.timer);
        this.pending.delete(key);
        resolve(reply);
      };
      const entry: Pending = { up, question: q.question, done, timer: setTimeout(() => done(undefined), timeout) };
      this.pending.set(key, entry);
      sockets[i]!.send(withId(q.raw, id), up.port, up.address, (err) => {
        if (err) done(undefined);
      });
    });
  }

  private receive(i: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const entry = this.pending.get(`${i}:${msg.readUInt16BE(0)}`);
    if (!entry || rinfo.address !== entry.up.address || rinfo.port !== entry.up.port) return;
    // An error may come back without the question: taken too (from the right place, with the right id).
    if (!answers(msg, entry.question) && !bareError(msg)) return;
    entry.done(msg);
  }

  async close(): Promise<void> {
    for (const p of [...this.pending.values()]) p.done(undefined);
    const sockets = await this.sockets?.catch(() => []);
    for (const s of sockets ?? []) s.close();
  }
}

export class Forwarder {
  private readonly pools: Record<4 | 6, UdpPool>;
  private readonly timeout: number;
  private readonly maxPending: number;
  private tcpInFlight = 0;

  constructor(
    private readonly hs: HostSockets,
    opts: ForwarderOptions = {},
  ) {
    this.timeout = opts.timeout ?? 1500;
    this.maxPending = opts.maxPending ?? 4096;
    const size = opts.poolSize ?? 8;
    this.pools = { 4: new UdpPool(hs, 4, size), 6: new UdpPool(hs, 6, size) };
  }

  /** Queries waiting for an upstream now. */
  get pending(): number {
    return this.pools[4].pending.size + this.pools[6].pending.size + this.tcpInFlight;
  }

  /**
   * The upstreams' reply to `q`, with the client's id, cut to its UDP limit when it asked over
   * UDP; undefined when none answered in time (the caller says SERVFAIL).
   */
  async forward(q: Query, upstreams: readonly Upstream[], transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (this.pending >= this.maxPending) return undefined;
    const deadline = Date.now() + DEADLINE_MS;
    let fallback: Buffer | undefined;
    for (const up of upstreams) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const budget = Math.min(this.timeout, left);
      let r: Buffer | undefined;
      try {
        r = transport === 'tcp' ? await this.askTcp(up, q, budget) : await this.pools[up.family].ask(up, q, budget);
        if (r && transport === 'udp' && truncated(r)) {
          const full = await this.askTcp(up, q, Math.max(1, Math.min(this.timeout, deadline - Date.now())));
          if (full) r = fitUdp(withId(full, q.id), q, udpLimit(q));
        }
      } catch {
        r = undefined; // no socket in the host namespace, connection refused...
      }
      if (!r) continue;
      r = withId(r, q.id);
      if (HANDOVER.has(rcodeOf(r) ?? RCODE.SERVFAIL)) {
        fallback = r;
        continue;
      }
      return r;
    }
    return fallback;
  }

  /** One query over a fresh TCP connection to `up` (undefined: no answer in time). */
  private async askTcp(up: Upstream, q: Query, timeout: number): Promise<Buffer | undefined> {
    this.tcpInFlight++;
    const started = Date.now();
    try {
      const c = await this.hs.tcpConnect(up, timeout);
      const left = Math.max(1, timeout - (Date.now() - started));
      const id = randomInt(65536);
      return await new Promise<Buffer | undefined>((resolve) => {
        const reader = new FrameReader();
        const finish = (r: Buffer | undefined): void => {
          clearTimeout(timer);
          c.destroy();
          resolve(r);
        };
        const timer = setTimeout(() => finish(undefined), left);
        c.on('error', () => finish(undefined));
        c.on('close', () => finish(undefined));
        c.on('data', (chunk: Buffer) => {
          for (const msg of reader.push(chunk)) if (msg.length >= 12 && msg.readUInt16BE(0) === id && answers(msg, q.question)) return finish(msg);
        });
        c.write(frame(withId(q.raw, id)));
      });
    } finally {
      this.tcpInFlight--;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.pools[4].close(), this.pools[6].close()]);
  }
}
