/**
 * EtcdControlPlane: the overlay control plane in etcd v3 (the `etcd3` client), for real clusters.
 *
 * Keys, under a prefix (default `/nsnet/`):
 * - `overlay/networks/<name>`: a network's configuration (no lease);
 * - `overlay/guard`: rewritten by every configuration change; a change compares its revision,
 *   so two hosts defining overlapping networks at once cannot both succeed;
 * - `overlay/subnets/<network>/<10.88.3.0-24>`: a host record = the block's claim, created only
 *   by a transaction that finds the key absent, attached to the host's lease.
 *
 * The lease is granted at the first join and renewed every TTL/3 (one keep-alive each); when
 * etcd says it expired, a new one is granted and the held blocks are claimed again (see
 * ControlPlaneBase). `close()` revokes it: every record of the host goes at once.
 * Watches start at snapshot revision + 1; a compacted history, a lost connection or an error
 * ends the watch with a `resync` event (the caller lists again), so nothing is ever missed.
 *
 * The client is set up for a control loop rather than for one-shot calls: every unary call has
 * a deadline, there is no circuit breaker (an etcd back after a restart is used at once) and
 * no hidden retries (the agent retries, with its own backoff).
 */
import type { Etcd3, IOptions } from 'etcd3';
import { NsnetError } from '../errors';
import * as v from '../validate';
import {
  ControlPlaneBase,
  blockKey,
  blockOfKey,
  checkBlock,
  checkConflicts,
  checkName,
  checkVtep,
  normalizeSpec,
  parseRecord,
  pickBlock,
  recordValue,
  sameConfig,
  type ControlPlane,
  type ControlPlaneEvent,
  type ControlPlaneOptions,
  type ControlPlaneSnapshot,
  type ControlPlaneWatch,
  type HostRecord,
  type JoinOptions,
  type OverlayNetworkConfig,
  type OverlayNetworkSpec,
  type Vtep,
} from './controlplane';

/** Options of {@link EtcdControlPlane.open}. */
export interface EtcdControlPlaneOptions extends ControlPlaneOptions {
  /** Client URLs: ['http://10.0.0.1:2379', ...]. */
  endpoints: string[] | string;
  /** Key prefix (default '/nsnet/'). */
  prefix?: string;
  /** Deadline of each request, ms (default 5000). */
  requestTimeout?: number;
  /** TLS and authentication, passed to the etcd3 client as they are. */
  credentials?: IOptions['credentials'];
  auth?: IOptions['auth'];
}

/** Bounded optimistic retries of a transaction that lost a race. */
const MAX_TRIES = 64;

/** The etcd3 policy shape without the cockatiel dependency: run the call once, as it is. */
const once = { execute: async <T>(fn: (ctx: unknown) => T | Promise<T>): Promise<T> => fn({ signal: new AbortController().signal, attempt: 0 }) };

/** Reconnect delays of etcd3's watch stream: 100 ms doubling to 2 s (its default caps at 30 s). */
class WatchBackoff {
  constructor(readonly duration = 100) {}
  next(): WatchBackoff {
    return new WatchBackoff(Math.min(this.duration * 2, 2000));
  }
}

/** The end of the key range of everything under `prefix`. */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Turns a client error into ERR_CONTROL_PLANE_UNAVAILABLE (NsnetErrors pass). */
function unavailable(e: unknown, what: string): NsnetError {
  if (e instanceof NsnetError) return e;
  const msg = (e as Error)?.message ?? String(e);
  return new NsnetError('ERR_CONTROL_PLANE_UNAVAILABLE', `etcd: ${what}: ${msg}`, { cause: (e as Error)?.name });
}

const leaseGone = (e: unknown): boolean => /lease not found|is expired or revoked/iu.test((e as Error)?.message ?? '');

/** The etcd-backed {@link ControlPlane}. */
export class EtcdControlPlane extends ControlPlaneBase implements ControlPlane {
  private lease: string | undefined;
  private granting: Promise<string> | undefined;
  private readonly watches = new Set<() => Promise<void>>();
  private readonly root: string;

  private constructor(
    private readonly client: Etcd3,
    opts: EtcdControlPlaneOptions,
    private readonly timeout: number,
  ) {
    super(opts);
    const prefix = opts.prefix ?? '/nsnet/';
    this.root = `${prefix}overlay/`;
  }

  /** Opens a client (connections are made on first use: an etcd that is down is not an error yet). */
  static async open(opts: EtcdControlPlaneOptions): Promise<EtcdControlPlane> {
    v.knownKeys(opts, ['endpoints', 'prefix', 'hostId', 'ttl', 'requestTimeout', 'credentials', 'auth'], 'EtcdControlPlane options');
    const hosts = typeof opts.endpoints === 'string' ? [opts.endpoints] : opts.endpoints;
    if (!Array.isArray(hosts) || hosts.length === 0 || hosts.some((h) => typeof h !== 'string' || !/^https?:\/\/[^\s/]+\/?$/u.test(h)))
      throw new NsnetError('ERR_INVALID_ARGUMENT', `etcd endpoints must be URLs like http://10.0.0.1:2379, got ${JSON.stringify(opts.endpoints)}`, {
        value: opts.endpoints,
      });
    if (opts.prefix !== undefined && (typeof opts.prefix !== 'string' || !opts.prefix.startsWith('/') || !opts.prefix.endsWith('/')))
      throw new NsnetError('ERR_INVALID_ARGUMENT', `etcd prefix must start and end with "/", got ${JSON.stringify(opts.prefix)}`, { value: opts.prefix });
    checkName(opts.hostId, 'host id');
    const timeout = opts.requestTimeout === undefined ? 5000 : v.int(opts.requestTimeout, 100, 600000, 'requestTimeout');
    // Loaded on first use: the etcd3 client (gRPC, protobuf) costs ~100 ms to load, and most
    // users of nsnet never talk to etcd.
    const { Etcd3: Client } = require('etcd3') as typeof import('etcd3');
    const client = new Client({
      hosts,
      dialTimeout: timeout,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      // A dead connection (a host cut off without a reset) is noticed within ~15 s.
      grpcOptions: { 'grpc.keepalive_time_ms': 10000, 'grpc.keepalive_timeout_ms': 5000 },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: { host: () => once, global: once, watchBackoff: new WatchBackoff() } as unknown as IOptions['faultHandling'],
    });
    return new EtcdControlPlane(client, opts, timeout);
  }

  private key(...parts: string[]): Buffer {
    return Buffer.from(this.root + parts.join('/'));
  }

  private netKey = (name: string): Buffer => this.key('networks', name);
  private subnetsPrefix = (network: string): Buffer => this.key('subnets', `${network}/`);

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    try {
      return await fn();
    } catch (e) {
      throw unavailable(e, what);
    }
  }

  private ensureLease(): Promise<string> {
    if (this.lease !== undefined) return Promise.resolve(this.lease);
    this.granting ??= this.call('grant lease', () => this.client.leaseClient.leaseGrant({ TTL: this.ttl }))
      .then((r) => {
        this.lease = String(r.ID);
        this.startKeepAlive();
        return this.lease;
      })
      .finally(() => {
        this.granting = undefined;
      });
    return this.granting;
  }

  async defineNetwork(spec: OverlayNetworkSpec): Promise<OverlayNetworkConfig> {
    const cfg = normalizeSpec(spec);
    const guard = this.key('guard');
    for (let i = 0; i < MAX_TRIES; i++) {
      const r = await this.call('define network', () =>
        this.client.kv.txn({
          success: [{ request_range: { key: guard } }, { request_range: { key: this.key('networks', ''), range_end: rangeEnd(this.key('networks', '')) } }],
        }),
      );
      const guardRev = r.responses[0]!.response_range.kvs[0]?.mod_revision ?? '0';
      const others = r.responses[1]!.response_range.kvs.map((kv) => JSON.parse(kv.value.toString()) as OverlayNetworkConfig);
      const have = others.find((o) => o.name === cfg.name);
      if (have && sameConfig(have, cfg)) return have;
      checkConflicts(cfg, others);
      const t = await this.call('define network', () =>
        this.client.kv.txn({
          compare: [{ key: guard, target: 'Mod', result: 'Equal', mod_revision: guardRev }],
          success: [
            { request_put: { key: this.netKey(cfg.name), value: Buffer.from(JSON.stringify(cfg)) } },
            { request_put: { key: guard, value: Buffer.from(cfg.name) } },
          ],
        }),
      );
      if (t.succeeded) return cfg;
    }
    throw new NsnetError('ERR_CONTROL_PLANE_CONTENDED', `define network ${cfg.name}: lost ${MAX_TRIES} races in a row`, { network: cfg.name });
  }

  async getNetwork(name: string): Promise<OverlayNetworkConfig | undefined> {
    checkName(name, 'network name');
    const r = await this.call('get network', () => this.client.kv.range({ key: this.netKey(name) }));
    return r.kvs[0] ? (JSON.parse(r.kvs[0].value.toString()) as OverlayNetworkConfig) : undefined;
  }

  async removeNetwork(name: string): Promise<void> {
    checkName(name, 'network name');
    const sp = this.subnetsPrefix(name);
    // One transaction: the network exists and no block of it is held (a range compare of
    // create_revision 0 holds only for an empty range). A join racing with it compares the
    // network key's revision, so it fails and finds the network gone.
    const t = await this.call('remove network', () =>
      this.client.kv.txn({
        compare: [
          { key: this.netKey(name), target: 'Version', result: 'Greater', version: 0 },
          { key: sp, range_end: rangeEnd(sp), target: 'Create', result: 'Equal', create_revision: 0 },
        ],
        success: [{ request_delete_range: { key: this.netKey(name) } }, { request_put: { key: this.key('guard'), value: Buffer.from(name) } }],
        failure: [{ request_range: { key: this.netKey(name) } }, { request_range: { key: sp, range_end: rangeEnd(sp), count_only: true } }],
      }),
    );
    if (t.succeeded) return;
    if (!t.responses[0]!.response_range.kvs.length) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${name} does not exist`, { network: name });
    throw new NsnetError('ERR_NETWORK_IN_USE', `overlay network ${name} has ${t.responses[1]!.response_range.count} host(s)`, { network: name });
  }

  async join(network: string, vtep: Vtep, opts: JoinOptions = {}): Promise<HostRecord> {
    checkName(network, 'network name');
    const pub = checkVtep({ underlay: vtep.underlay, vtepMac: vtep.vtepMac });
    const sp = this.subnetsPrefix(network);
    for (let i = 0; i < MAX_TRIES; i++) {
      const lease = await this.ensureLease();
      const r = await this.call('join', () =>
        this.client.kv.txn({
          success: [{ request_range: { key: this.netKey(network) } }, { request_range: { key: sp, range_end: rangeEnd(sp) } }],
        }),
      );
      const netKv = r.responses[0]!.response_range.kvs[0];
      if (!netKv) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${network} does not exist`, { network });
      const cfg = JSON.parse(netKv.value.toString()) as OverlayNetworkConfig;
      if (opts.subnet !== undefined) checkBlock(cfg, opts.subnet);
      const held = r.responses[1]!.response_range.kvs.flatMap((kv) => {
        const subnet = blockOfKey(kv.key.subarray(sp.length).toString());
        const rec = parseRecord(kv.value, network, subnet);
        return rec ? [{ rec, kv }] : [];
      });
      const own = held.find((h) => h.rec.hostId === this.hostId);
      let subnet: string;
      const drop: Buffer[] = [];
      if (own && (opts.subnet === undefined || !opts.exact || own.rec.subnet === opts.subnet)) subnet = own.rec.subnet;
      else {
        if (own) drop.push(own.kv.key);
        subnet = pickBlock(cfg, new Map(held.filter((h) => h !== own).map((h) => [h.rec.subnet, h.rec.hostId])), opts);
      }
      const rec: HostRecord = { network, hostId: this.hostId, subnet, ...pub };
      const key = Buffer.concat([sp, Buffer.from(blockKey(subnet))]);
      const mine = own && own.rec.subnet === subnet ? own.kv : undefined;
      if (mine && mine.value.toString() === recordValue(rec) && String(mine.lease) === lease) {
        this.held.set(network, rec);
        return rec;
      }
      try {
        const t = await this.call('join', () =>
          this.client.kv.txn({
            compare: [
              { key: this.netKey(network), target: 'Mod', result: 'Equal', mod_revision: netKv.mod_revision },
              mine ? { key, target: 'Mod', result: 'Equal', mod_revision: mine.mod_revision } : { key, target: 'Create', result: 'Equal', create_revision: 0 },
              ...(own && !mine ? [{ key: own.kv.key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: own.kv.mod_revision }] : []),
            ],
            success: [...drop.map((k) => ({ request_delete_range: { key: k } })), { request_put: { key, value: Buffer.from(recordValue(rec)), lease } }],
          }),
        );
        if (t.succeeded) {
          this.held.set(network, rec);
          return rec;
        }
      } catch (e) {
        if (!leaseGone(e)) throw e;
        if (this.lease === lease) this.lease = undefined; // expired: a new one next round
      }
      await new Promise((res) => setTimeout(res, Math.random() * 20));
    }
    throw new NsnetError('ERR_CONTROL_PLANE_CONTENDED', `join ${network}: lost ${MAX_TRIES} races in a row`, { network });
  }

  async leave(network: string): Promise<void> {
    checkName(network, 'network name');
    await this.leaving(network);
    const sp = this.subnetsPrefix(network);
    const r = await this.call('leave', () => this.client.kv.range({ key: sp, range_end: rangeEnd(sp) }));
    for (const kv of r.kvs) {
      const rec = parseRecord(kv.value, network, '');
      if (rec?.hostId !== this.hostId) continue;
      await this.call('leave', () =>
        this.client.kv.txn({
          compare: [{ key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision }],
          success: [{ request_delete_range: { key: kv.key } }],
        }),
      );
    }
    this.held.delete(network);
  }

  async snapshot(): Promise<ControlPlaneSnapshot> {
    const root = Buffer.from(this.root);
    const r = await this.call('list', () => this.client.kv.range({ key: root, range_end: rangeEnd(root) }));
    const snap: ControlPlaneSnapshot = { revision: Number(r.header.revision), networks: [], hosts: [] };
    for (const kv of r.kvs) {
      const e = this.decode(kv.key, kv.value, Number(kv.mod_revision));
      if (e?.type === 'network-put') snap.networks.push(e.network);
      else if (e?.type === 'host-put') snap.hosts.push(e.record);
    }
    return snap;
  }

  /** A key and value as an event (undefined: not one of ours, or malformed). */
  private decode(key: Buffer, value: Buffer | undefined, revision: number): ControlPlaneEvent | undefined {
    const rel = key.toString().slice(this.root.length);
    const [kind, ...rest] = rel.split('/');
    if (kind === 'networks' && rest.length === 1) {
      if (value === undefined) return { type: 'network-delete', revision, name: rest[0]! };
      try {
        return { type: 'network-put', revision, network: JSON.parse(value.toString()) as OverlayNetworkConfig };
      } catch {
        return undefined;
      }
    }
    if (kind === 'subnets' && rest.length === 2) {
      const [network, bk] = rest as [string, string];
      const subnet = blockOfKey(bk);
      if (value === undefined) return { type: 'host-delete', revision, network, subnet };
      const record = parseRecord(value, network, subnet);
      return record ? { type: 'host-put', revision, record } : undefined;
    }
    return undefined;
  }

  watch(revision: number, listener: (e: ControlPlaneEvent) => void): ControlPlaneWatch {
    this.checkOpen();
    let over = false;
    const watcher = this.client
      .watch()
      .prefix(this.root)
      .startRevision(String(revision + 1))
      .watcher();
    const stop = async (detach: boolean): Promise<void> => {
      if (over) return;
      over = true;
      this.watches.delete(close);
      // (A watch etcd cancelled is already detached: cancelling it again would wait forever.)
      if (detach) await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    };
    const close = (): Promise<void> => stop(true);
    this.watches.add(close);
    const finish = (e: ControlPlaneEvent, detach: boolean): void => {
      if (over) return;
      void stop(detach);
      listener(e);
    };
    watcher.on('data', (res) => {
      for (const ev of res.events) {
        if (over) return;
        const e = this.decode(ev.kv.key, ev.type === 'Delete' ? undefined : ev.kv.value, Number(ev.kv.mod_revision));
        if (e) listener(e);
      }
    });
    // etcd3 resumes watches by itself, but can skip events across a reconnect: list again.
    watcher.on('disconnected', (err) => finish({ type: 'resync', reason: 'disconnected', error: err }, true));
    // etcd cancels a watch whose start revision was compacted (etcd 3.4 gives no reason text:
    // the client reports "Watcher canceled: "); any other cancellation is reported as an error.
    watcher.on('error', (err) => {
      const compacted = /compact|canceled: *$/iu.test(err?.message ?? '');
      finish({ type: 'resync', reason: compacted ? 'compacted' : 'error', error: err }, false);
    });
    return { close };
  }

  async renew(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    const ttl = await this.call('renew lease', async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.timeout });
      try {
        return await new Promise<string>((resolve, reject) => {
          stream.on('data', (res) => resolve(String(res.TTL)));
          stream.on('error', reject);
          stream.on('end', () => reject(new Error('keep-alive stream ended')));
          stream.write({ ID: lease });
        });
      } finally {
        stream.end();
      }
    });
    if (ttl === '0') {
      if (this.lease === lease) this.lease = undefined;
      throw new NsnetError('ERR_LEASE_LOST', `the lease of host ${this.hostId} expired; its records are gone`, { hostId: this.hostId });
    }
  }

  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    // Closed first: no renewal or lease recovery starts from here on (one on its way fails
    // quietly; a block it claimed under this lease goes with the revoke below).
    this.stopKeepAlive();
    try {
      await Promise.all([...this.watches].map((c) => c()));
      const lease = this.lease;
      if ((opts.revoke ?? true) && lease !== undefined) {
        await this.client.leaseClient.leaseRevoke({ ID: lease }).catch((e) => {
          if (!leaseGone(e)) throw unavailable(e, 'revoke lease');
        });
      }
    } finally {
      this.lease = undefined;
      this.client.close();
    }
  }
}
