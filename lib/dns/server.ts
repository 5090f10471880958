/**
 * The resolver's sockets: on each served address, port 53 over UDP and TCP in the host
 * namespace. Every datagram or TCP message goes to the handler with the network it arrived for
 * and who sent it; what the handler returns goes back (nothing: no reply). Nothing a client
 * sends can throw out of here or hold the loop: a handler failure is a dropped query, a TCP
 * client is bounded in what it may buffer and how long it may idle, and the number of TCP
 * clients is capped.
 * @internal
 */
import * as net from 'node:net';
import type { NativeChangeWatch, NativeUdpResponder } from '../native';
import { DNS_PORT, type HostSockets } from './sockets';
import { FrameReader, frame } from './tcp';

export interface QueryContext {
  network: string;
  /** The client's address. */
  src: string;
  transport: 'udp' | 'tcp';
  /**
   * UDP only: lets the socket answer this same query (same bytes after the id, same client)
   * itself from now on, with `response`, while the store's change generation is `generation`
   * (the one the answer was computed under). `tag` says which counter a repeat counts under.
   */
  remember?: (response: Buffer, tag: number, generation: number) => void;
}

export type Handler = (msg: Buffer, ctx: QueryContext) => Buffer | null | Promise<Buffer | null>;

export interface ServerOptions {
  /** ms a TCP client may stay silent (default 10 000). */
  tcpIdleTimeout?: number;
  /** TCP clients at once per address (default 256). */
  maxTcpClients?: number;
  /** Queries in progress per TCP client (default 32; more are read only when some are answered). */
  maxTcpPipeline?: number;
  port?: number;
  /** The store's change counter, under which remembered replies are valid (none: nothing is remembered). */
  generations?: NativeChangeWatch;
}

interface Listener {
  network: string;
  address: string;
  udp: NativeUdpResponder;
  tcp: net.Server;
  clients: Set<net.Socket>;
}

export class DnsServer {
  private readonly listeners = new Map<string, Listener>();
  private readonly opening = new Map<string, Promise<void>>();
  private closed = false;
  /** Datagrams answered by closed listeners' sockets, by tag. */
  private readonly retiredHits: number[] = [0, 0, 0, 0];

  constructor(
    private readonly sockets: HostSockets,
    private readonly handler: Handler,
    private readonly opts: ServerOptions = {},
  ) {}

  /** The served addresses. */
  addresses(): { network: string; address: string }[] {
    return [...this.listeners.values()].map((l) => ({ network: l.network, address: l.address }));
  }

  /** Listens on `address` for `network` (a no-op when it already does for that network). */
  listen(network: string, address: string): Promise<void> {
    const cur = this.listeners.get(address);
    if (cur && cur.network === network) return Promise.resolve();
    const busy = this.opening.get(address);
    if (busy) return busy.then(() => this.listen(network, address));
    const p = (async () => {
      if (cur) await this.unlisten(address);
      await this.open(network, address);
    })().finally(() => this.opening.delete(address));
    this.opening.set(address, p);
    return p;
  }

  private async open(network: string, address: string): Promise<void> {
    if (this.closed) return;
    const port = this.opts.port ?? DNS_PORT;
    const server = net.createServer((c) => this.serveTcp(l!, c));
    server.maxConnections = this.opts.maxTcpClients ?? 256;
    server.on('error', () => undefined);
    // Datagrams are read from the moment the socket is served: `l` is set before any arrives.
    let l: Listener | undefined;
    const udp = await this.sockets.udpResponder(address, port, this.opts.generations ?? null, (msg, src, srcPort) => this.serveUdp(l!, msg, src, srcPort));
    l = { network, address, udp, tcp: server, clients: new Set() };
    try {
      await this.sockets.tcpListener(address, port, server);
    } catch (e) {
      udp.close();
      throw e;
    }
    if (this.closed) {
      udp.close();
      server.close();
      return;
    }
    this.listeners.set(address, l);
  }

  /** Stops listening on `address` and drops its TCP clients. */
  async unlisten(address: string): Promise<void> {
    const l = this.listeners.get(address);
    if (!l) return;
    this.listeners.delete(address);
    l.udp.hits().forEach((n, i) => (this.retiredHits[i]! += n));
    l.udp.close();
    for (const c of l.clients) c.destroy();
    await new Promise<void>((r) => l.tcp.close(() => r()));
  }

  /** Resolves when every listen() started so far has finished. */
  async settled(): Promise<void> {
    while (this.opening.size) await Promise.allSettled([...this.opening.values()]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
    await Promise.all([...this.listeners.keys()].map((a) => this.unlisten(a)));
  }

  /** Datagrams the listeners' sockets answered themselves (remembered replies), by tag, since the server started. */
  hits(): number[] {
    const sum = [...this.retiredHits];
    for (const l of this.listeners.values()) l.udp.hits().forEach((n, i) => (sum[i]! += n));
    return sum;
  }

  /** Drops every remembered reply (they would be dropped at the next change of generation anyway). */
  forget(): void {
    for (const l of this.listeners.values()) l.udp.forget();
  }

  private serveUdp(l: Listener, msg: Buffer, src: string, port: number): void {
    const send = (out: Buffer | null): void => {
      if (out && this.listeners.get(l.address) === l) l.udp.send(out, src, port);
    };
    const remember = (response: Buffer, tag: number, generation: number): void => {
      if (this.listeners.get(l.address) === l) l.udp.remember(msg, src, response, tag, generation);
    };
    let r: Buffer | null | Promise<Buffer | null>;
    try {
      r = this.handler(msg, { network: l.network, src, transport: 'udp', remember });
    } catch {
      return;
    }
    if (r instanceof Promise) r.then(send, () => undefined);
    else send(r);
  }

  private serveTcp(l: Listener, c: net.Socket): void {
    l.clients.add(c);
    const reader = new FrameReader();
    const maxPipeline = this.opts.maxTcpPipeline ?? 32;
    let inFlight = 0;
    let ended = false;
    const src = (c.remoteAddress ?? '').replace(/^::ffff:/u, '');
    const finish = (): void => {
      if (ended && inFlight === 0 && !c.destroyed) c.end();
    };
    const send = (out: Buffer | null): void => {
      inFlight--;
      if (c.destroyed) return;
      // A message that is not DNS at all: the stream cannot be trusted to be in step; close it.
      if (!out) c.destroy();
      else c.write(frame(out));
      if (inFlight < maxPipeline && c.isPaused()) c.resume();
      finish();
    };
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleTimeout ?? 10000, () => c.destroy());
    c.on('error', () => undefined);
    c.on('close', () => l.clients.delete(c));
    c.on('end', () => {
      ended = true;
      finish();
    });
    c.on('data', (chunk: Buffer) => {
      for (const msg of reader.push(chunk)) {
        inFlight++;
        let r: Buffer | null | Promise<Buffer | null>;
        try {
          r = this.handler(msg, { network: l.network, src, transport: 'tcp' });
        } catch {
          r = null;
        }
        if (r instanceof Promise) r.then(send, () => send(null));
        else send(r);
        if (c.destroyed) return;
      }
      if (inFlight >= maxPipeline) c.pause();
    });
  }
}
