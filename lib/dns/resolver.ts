/**
 * The embedded DNS resolver: one per host, serving every network that has DNS on (see
 * config.ts) on its gateway addresses, port 53, UDP and TCP, in the host namespace. Names come
 * from the store (source.ts → records.ts), answers from answer.ts, the rest goes upstream
 * (forwarder.ts) — the network's own upstreams, or the host's resolv.conf.
 */
import { NsnetError } from '../errors';
import { openNetns, type NetnsHandle } from '../netns';
import { FileStore } from '../store/filestore';
import type { Store, StoreChanges } from '../store/index';
import { decide } from './answer';
import { Forwarder } from './forwarder';
import { RCODE, parseQuery, reply, udpLimit, type Query } from './message';
import { RecordIndex, type DnsEndpointRecord } from './records';
import type { DnsNetworkRecord } from './config';
import { DEFAULT_RESOLV_CONF, ResolvConfFile } from './resolvconf';
import { DnsServer, type QueryContext } from './server';
import { HostSockets } from './sockets';
import { StoreSource, type StoreSnapshot } from './source';
import type { DnsListener, DnsOptions, DnsStats } from './types';

/** Cached replies at most (then the cache starts over: random names cannot grow it without bound). */
const MAX_CACHED = 8192;

/** The counters a remembered reply counts under when a listener's socket answers it itself (DnsServer.hits()). */
const TAGS = { local: 0, nxdomain: 1, refused: 2 } as const;

function replyKey(msg: Buffer, ctx: QueryContext): string {
  return `${ctx.network}\0${ctx.src}\0${ctx.transport}\0${msg.toString('latin1', 2)}`;
}

/** Options of {@link runDns} only the library passes (NetworkHost hands its open store). @internal */
export interface InternalDnsOptions extends DnsOptions {
  store?: Store & StoreChanges;
  /** Listen on this port instead of 53 (tests of the library itself). */
  port?: number;
}

/**
 * Starts the resolver: reads the store, listens on every DNS network's gateway, and follows the
 * store from then on. Close it with {@link DnsResolver.close}.
 * @throws NsnetError ERR_NETNS_NOT_FOUND, ERR_STORE_* (the store cannot be read)
 */
export async function runDns(opts: DnsOptions = {}): Promise<DnsResolver> {
  const o = opts as InternalDnsOptions;
  const ns = openNetns(o.netns);
  let store = o.store;
  let owned: FileStore | undefined;
  try {
    if (!store) store = owned = await FileStore.open({ dir: o.stateDir ?? '/var/lib/nsnet' });
    const r = new DnsResolver(ns, store, owned, o);
    await r.start();
    return r;
  } catch (e) {
    ns.close();
    await owned?.close();
    throw e;
  }
}

/** A running resolver (see {@link runDns}). */
export class DnsResolver {
  private index = new RecordIndex();
  private readonly server: DnsServer;
  private readonly forwarder: Forwarder;
  private readonly source: StoreSource;
  private readonly resolv: ResolvConfFile;
  private readonly counters: DnsStats = { queries: 0, local: 0, nxdomain: 0, forwarded: 0, servfail: 0, refused: 0, formerr: 0, dropped: 0, remembered: 0 };
  private syncing: Promise<void> = Promise.resolve();
  /** The store's change generation the index was read under (-1: none; see source.ts). */
  private generation = -1;
  private closed: Promise<void> | undefined;
  /**
   * Replies to the network's own names by exact query (network, client, transport, the bytes
   * after the id): a repeated query costs a lookup and a copy. Emptied with every new index.
   */
  private replies = new Map<string, { response: Buffer; outcome: 'local' | 'nxdomain' | 'refused' }>();
  /** Addresses that could not be listened on, with why (retried at every change of the records). */
  private readonly failed = new Map<string, Error>();

  /** @internal */
  constructor(
    private readonly ns: NetnsHandle,
    store: Store & StoreChanges,
    private readonly ownedStore: FileStore | undefined,
    private readonly opts: InternalDnsOptions,
  ) {
    const sockets = new HostSockets(ns);
    this.source = new StoreSource(
      store,
      (s) => this.apply(s),
      (e) => this.report(e),
    );
    this.server = new DnsServer(sockets, (msg, ctx) => this.handle(msg, ctx), {
      tcpIdleTimeout: opts.tcpIdleTimeout,
      ...(opts.port ? { port: opts.port } : {}),
      ...(this.source.generations ? { generations: this.source.generations } : {}),
    });
    this.forwarder = new Forwarder(sockets, { timeout: opts.upstreamTimeout });
    this.resolv = new ResolvConfFile(opts.resolvConf ?? DEFAULT_RESOLV_CONF);
  }

  /** @internal */
  async start(): Promise<void> {
    await this.source.start();
    await this.syncing;
  }

  /** The resolver's counters since it started (a copy). */
  get stats(): DnsStats {
    const [local = 0, nxdomain = 0, refused = 0] = this.server.hits();
    const c = this.counters;
    const remembered = local + nxdomain + refused;
    return { ...c, queries: c.queries + remembered, local: c.local + local, nxdomain: c.nxdomain + nxdomain, refused: c.refused + refused, remembered };
  }

  /** The addresses it listens on now, by network. */
  listeners(): DnsListener[] {
    return this.server.addresses();
  }

  /**
   * The networks it serves, with how many endpoints each has in the records it last read (call
   * `sync()` first for the store's present view). The nsnet daemon stays up while one has any:
   * each of them was given this resolver as its nameserver.
   */
  served(): { network: string; endpoints: number }[] {
    return [...this.index.zones.values()].map((z) => ({ network: z.network, endpoints: z.endpoints }));
  }

  /** Addresses it should listen on but could not (another server holds port 53 there...), with the error. */
  problems(): { address: string; error: Error }[] {
    return [...this.failed].map(([address, error]) => ({ address, error }));
  }

  /**
   * Reads the store now and resolves once the resolver listens on every DNS network it records:
   * after `createNetwork()` in another process, this makes the new network's gateway answer
   * (names of endpoints never need it: they are checked against the store on every query).
   */
  async sync(): Promise<void> {
    await this.source.refresh();
    await this.syncing;
  }

  /** Stops listening and following the store (idempotent). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.source.close();
      await this.server.close();
      await this.forwarder.close();
      await this.ownedStore?.close();
      this.ns.close();
    })();
    return this.closed;
  }

  private report(e: Error): void {
    try {
      this.opts.onError?.(e);
    } catch {
      /* the callback's own failure is not the resolver's */
    }
  }

  /** New records: swap the index, then make the listeners match (serially). */
  private apply(s: StoreSnapshot): void {
    const index = RecordIndex.build(s.networks as DnsNetworkRecord[], s.endpoints as DnsEndpointRecord[]);
    this.index = index;
    this.generation = s.generation;
    this.replies = new Map();
    this.server.forget();
    this.syncing = this.syncing.then(() => this.relisten(index));
  }

  private async relisten(index: RecordIndex): Promise<void> {
    if (this.closed) return;
    const want = new Map(index.listeners().map((l) => [l.address, l.network]));
    for (const l of this.server.addresses()) if (want.get(l.address) !== l.network) await this.server.unlisten(l.address);
    await Promise.all(
      [...want].map(async ([address, network]) => {
        try {
          await this.server.listen(network, address);
          this.failed.delete(address);
        } catch (e) {
          const err = e instanceof NsnetError ? e : new NsnetError('ERR_DNS_LISTEN', String(e));
          if (!this.failed.has(address)) this.report(new NsnetError(err.code, `DNS for network ${network}: ${err.message}`, { network, address }));
          this.failed.set(address, err);
        }
      }),
    );
    for (const a of [...this.failed.keys()]) if (!want.has(a)) this.failed.delete(a);
  }

  /** One query: a reply, nothing (dropped), or a promise of either. */
  private handle(msg: Buffer, ctx: QueryContext): Buffer | null | Promise<Buffer | null> {
    this.counters.queries++;
    const wait = this.source.fresh();
    if (!wait && msg.length >= 12) {
      const hit = this.replies.get(replyKey(msg, ctx));
      if (hit) {
        this.counters[hit.outcome]++;
        const out = Buffer.from(hit.response);
        msg.copy(out, 0, 0, 2);
        return out;
      }
    }
    const parsed = parseQuery(msg);
    if (parsed.kind === 'drop') {
      this.counters.dropped++;
      return null;
    }
    if (parsed.kind === 'error') {
      this.counters.formerr++;
      return parsed.response;
    }
    return wait ? wait.then(() => this.answer(parsed.query, ctx)) : this.answer(parsed.query, ctx);
  }

  private answer(q: Query, ctx: QueryContext): Buffer | Promise<Buffer | null> {
    const limit = ctx.transport === 'udp' ? udpLimit(q) : 65535;
    const zone = this.index.zone(ctx.network);
    if (!zone) {
      this.counters.refused++;
      return reply(q, { rcode: RCODE.REFUSED }, limit);
    }
    const d = decide(q, zone, ctx);
    if (d.kind === 'reply') {
      this.counters[d.outcome]++;
      if (d.cacheable && q.raw.length <= 512) {
        if (this.replies.size >= MAX_CACHED) this.replies.clear();
        this.replies.set(replyKey(q.raw, ctx), { response: d.response, outcome: d.outcome });
        // The socket answers the repeats itself while the store has not changed (UDP).
        ctx.remember?.(d.response, TAGS[d.outcome], this.generation);
      }
      return d.response;
    }
    if (!zone.forwards) {
      this.counters.refused++;
      return reply(q, { rcode: RCODE.REFUSED, ra: false }, limit);
    }
    const upstreams = zone.upstream ?? this.resolv.current().nameservers;
    this.counters.forwarded++;
    return this.forwarder.forward(q, upstreams, ctx.transport).then(
      (r) => {
        if (r) return r;
        this.counters.servfail++;
        return reply(q, { rcode: RCODE.SERVFAIL, ra: true }, limit);
      },
      () => {
        this.counters.servfail++;
        return reply(q, { rcode: RCODE.SERVFAIL, ra: true }, limit);
      },
    );
  }
}
