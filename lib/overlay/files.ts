/**
 * FileControlPlane: the overlay control plane in a directory that every "host" can reach —
 * for hosts that share one machine (tests, demos, CI). Built on {@link FileStore}: each
 * operation is one store transaction under its flock, so claims are atomic across processes.
 *
 * Collections: `networks/<name>` (configurations), `subnets/<network>/<block>` (host records,
 * each naming its lease), `leases/<id>` ({hostId, expires}: wall-clock milliseconds, renewed by
 * a timer), `meta/revision` (bumped by every change a reader can see; lease renewals are not).
 * A record whose lease has expired is treated as absent at once and deleted by the next writer
 * (or by a watcher that notices), as etcd deletes the keys of an expired lease.
 * Watches poll (default every 250 ms): the revision, and the leases for expiry.
 */
import { randomBytes } from 'node:crypto';
import { NsnetError } from '../errors';
import { FileStore } from '../store/filestore';
import type { StoreTx, StoreView } from '../store/index';
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
  pickBlock,
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

const NETWORKS = 'networks';
const SUBNETS = 'subnets';
const LEASES = 'leases';
const META = 'meta';

interface StoredRecord extends Vtep {
  hostId: string;
  lease: string;
}
interface StoredLease {
  hostId: string;
  expires: number;
}

/** Options of {@link FileControlPlane.open}. */
export interface FileControlPlaneOptions extends ControlPlaneOptions {
  /** The shared directory (created when missing). */
  dir: string;
  /** How often watches look for changes, ms (default 250). */
  pollInterval?: number;
}

/** State as a watch compares it: key → canonical JSON. */
type State = Map<string, string>;

function stateOf(s: ControlPlaneSnapshot): State {
  const m: State = new Map();
  for (const n of s.networks) m.set(`n:${n.name}`, JSON.stringify(n));
  for (const h of s.hosts) m.set(`h:${h.network}/${h.subnet}`, JSON.stringify(h));
  return m;
}

/** The file-backed {@link ControlPlane}. */
export class FileControlPlane extends ControlPlaneBase implements ControlPlane {
  private lease: string | undefined;
  private last: { revision: number; state: State } | undefined;
  private readonly watches = new Set<{ stop: () => void }>();

  private constructor(
    private readonly store: FileStore,
    opts: FileControlPlaneOptions,
    private readonly pollInterval: number,
  ) {
    super(opts);
  }

  static async open(opts: FileControlPlaneOptions): Promise<FileControlPlane> {
    v.knownKeys(opts, ['dir', 'hostId', 'ttl', 'pollInterval'], 'FileControlPlane options');
    checkName(opts.hostId, 'host id');
    const poll = opts.pollInterval === undefined ? 250 : v.int(opts.pollInterval, 10, 60000, 'pollInterval');
    const store = await FileStore.open({ dir: opts.dir });
    return new FileControlPlane(store, opts, poll);
  }

  /** The store's directory. */
  get dir(): string {
    return this.store.dir;
  }

  private static revision(view: StoreView): number {
    return view.get<number>(META, 'revision') ?? 0;
  }

  private static bump(tx: StoreTx): number {
    const r = FileControlPlane.revision(tx) + 1;
    tx.put(META, 'revision', r);
    return r;
  }

  /** Deletes expired leases and their records; bumps the revision when a record went. */
  private static sweep(tx: StoreTx, now: number): void {
    const dead = new Set(
      tx
        .list<StoredLease>(LEASES)
        .filter((l) => l.value.expires <= now)
        .map((l) => l.key),
    );
    if (dead.size === 0) return;
    for (const id of dead) tx.delete(LEASES, id);
    let gone = false;
    for (const r of tx.list<StoredRecord>(SUBNETS)) {
      if (dead.has(r.value.lease)) {
        tx.delete(SUBNETS, r.key);
        gone = true;
      }
    }
    if (gone) FileControlPlane.bump(tx);
  }

  /** Live records (their lease exists and has not expired). */
  private static records(view: StoreView, now: number): (HostRecord & { lease: string })[] {
    const live = new Set(
      view
        .list<StoredLease>(LEASES)
        .filter((l) => l.value.expires > now)
        .map((l) => l.key),
    );
    const out: (HostRecord & { lease: string })[] = [];
    for (const { key, value } of view.list<StoredRecord>(SUBNETS)) {
      if (!live.has(value.lease)) continue;
      const i = key.lastIndexOf('/');
      out.push({
        network: key.slice(0, i),
        subnet: blockOfKey(key.slice(i + 1)),
        hostId: value.hostId,
        underlay: value.underlay,
        vtepMac: value.vtepMac,
        lease: value.lease,
      });
    }
    return out;
  }

  async defineNetwork(spec: OverlayNetworkSpec): Promise<OverlayNetworkConfig> {
    this.checkOpen();
    const cfg = normalizeSpec(spec);
    return this.store.update((tx) => {
      const have = tx.get<OverlayNetworkConfig>(NETWORKS, cfg.name);
      if (have && sameConfig(have, cfg)) return have;
      checkConflicts(
        cfg,
        tx.list<OverlayNetworkConfig>(NETWORKS).map((n) => n.value),
      );
      tx.put(NETWORKS, cfg.name, cfg);
      FileControlPlane.bump(tx);
      return cfg;
    });
  }

  async getNetwork(name: string): Promise<OverlayNetworkConfig | undefined> {
    this.checkOpen();
    checkName(name, 'network name');
    return this.store.read((view) => view.get<OverlayNetworkConfig>(NETWORKS, name));
  }

  async removeNetwork(name: string): Promise<void> {
    this.checkOpen();
    checkName(name, 'network name');
    await this.store.update((tx) => {
      FileControlPlane.sweep(tx, Date.now());
      if (!tx.get(NETWORKS, name)) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${name} does not exist`, { network: name });
      const holders = FileControlPlane.records(tx, Date.now()).filter((r) => r.network === name);
      if (holders.length)
        throw new NsnetError(
          'ERR_NETWORK_IN_USE',
          `overlay network ${name} has ${holders.length} host(s): ${holders
            .slice(0, 5)
            .map((h) => h.hostId)
            .join(', ')}`,
          { network: name },
        );
      tx.delete(NETWORKS, name);
      FileControlPlane.bump(tx);
    });
  }

  async join(network: string, vtep: Vtep, opts: JoinOptions = {}): Promise<HostRecord> {
    this.checkOpen();
    checkName(network, 'network name');
    const pub = checkVtep({ underlay: vtep.underlay, vtepMac: vtep.vtepMac });
    const done = await this.store.update((tx) => {
      const now = Date.now();
      FileControlPlane.sweep(tx, now);
      const cfg = tx.get<OverlayNetworkConfig>(NETWORKS, network);
      if (!cfg) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${network} does not exist`, { network });
      if (opts.subnet !== undefined) checkBlock(cfg, opts.subnet);
      const mine = this.lease !== undefined ? tx.get<StoredLease>(LEASES, this.lease) : undefined;
      const lease = mine && mine.expires > now ? this.lease! : randomBytes(8).toString('hex');
      tx.put(LEASES, lease, { hostId: this.hostId, expires: now + this.ttl * 1000 } satisfies StoredLease);
      const records = FileControlPlane.records(tx, now).filter((r) => r.network === network);
      const own = records.find((r) => r.hostId === this.hostId);
      let subnet: string;
      if (own && (opts.subnet === undefined || !opts.exact || own.subnet === opts.subnet)) subnet = own.subnet;
      else {
        // (With `exact` and another block held: that one is given up for the one asked for.)
        if (own) tx.delete(SUBNETS, `${network}/${blockKey(own.subnet)}`);
        subnet = pickBlock(cfg, new Map(records.filter((r) => r !== own).map((r) => [r.subnet, r.hostId])), opts);
      }
      const key = `${network}/${blockKey(subnet)}`;
      const before = tx.get<StoredRecord>(SUBNETS, key);
      const value: StoredRecord = { hostId: this.hostId, underlay: pub.underlay, vtepMac: pub.vtepMac, lease };
      if (JSON.stringify(before) !== JSON.stringify(value)) {
        tx.put(SUBNETS, key, value);
        // A new lease only (same VTEP) is invisible to readers: no revision.
        if (!before || before.underlay !== value.underlay || before.vtepMac !== value.vtepMac || before.hostId !== value.hostId || own === undefined)
          FileControlPlane.bump(tx);
      }
      return { rec: { network, hostId: this.hostId, subnet, ...pub }, lease };
    });
    this.lease = done.lease;
    this.held.set(network, done.rec);
    this.startKeepAlive();
    return done.rec;
  }

  async leave(network: string): Promise<void> {
    this.checkOpen();
    checkName(network, 'network name');
    await this.leaving(network);
    await this.store.update((tx) => {
      let gone = false;
      for (const r of FileControlPlane.records(tx, Date.now())) {
        if (r.network !== network || r.hostId !== this.hostId) continue;
        tx.delete(SUBNETS, `${network}/${blockKey(r.subnet)}`);
        gone = true;
      }
      if (gone) FileControlPlane.bump(tx);
    });
    this.held.delete(network);
  }

  async snapshot(): Promise<ControlPlaneSnapshot> {
    this.checkOpen();
    const snap = await this.store.read((view) => ({
      revision: FileControlPlane.revision(view),
      networks: view.list<OverlayNetworkConfig>(NETWORKS).map((n) => n.value),
      hosts: FileControlPlane.records(view, Date.now()).map(({ lease: _lease, ...r }) => r),
    }));
    this.last = { revision: snap.revision, state: stateOf(snap) };
    return snap;
  }

  watch(revision: number, listener: (e: ControlPlaneEvent) => void): ControlPlaneWatch {
    this.checkOpen();
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const handle = {
      stop: (): void => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
    this.watches.add(handle);
    // The state at `revision`: known when it is the last snapshot's, else the caller re-lists.
    let base = this.last?.revision === revision ? this.last.state : undefined;
    let at = revision;
    const finish = (e: ControlPlaneEvent): void => {
      handle.stop();
      this.watches.delete(handle);
      listener(e);
    };
    const poll = async (): Promise<void> => {
      if (stopped) return;
      if (!base) return finish({ type: 'resync', reason: 'compacted' });
      try {
        const now = Date.now();
        const { rev, expired } = await this.store.read((view) => ({
          rev: FileControlPlane.revision(view),
          expired: view.list<StoredLease>(LEASES).some((l) => l.value.expires <= now),
        }));
        if (expired) await this.store.update((tx) => FileControlPlane.sweep(tx, Date.now()));
        if (stopped) return;
        if (!expired && rev === at) return;
        const snap = await this.snapshot();
        if (stopped || snap.revision === at) return;
        const next = stateOf(snap);
        const events: ControlPlaneEvent[] = [];
        for (const [k, val] of base) {
          if (next.has(k)) continue;
          if (k.startsWith('n:')) events.push({ type: 'network-delete', revision: snap.revision, name: k.slice(2) });
          else {
            const r = JSON.parse(val) as HostRecord;
            events.push({ type: 'host-delete', revision: snap.revision, network: r.network, subnet: r.subnet });
          }
        }
        for (const [k, val] of next) {
          if (base.get(k) === val) continue;
          if (k.startsWith('n:')) events.push({ type: 'network-put', revision: snap.revision, network: JSON.parse(val) });
          else events.push({ type: 'host-put', revision: snap.revision, record: JSON.parse(val) });
        }
        base = next;
        at = snap.revision;
        for (const e of events) if (!stopped) listener(e);
      } catch (e) {
        if (!stopped) finish({ type: 'resync', reason: 'error', error: e as Error });
      }
    };
    const loop = (): void => {
      timer = setTimeout(
        () =>
          void poll().finally(() => {
            if (!stopped) loop();
          }),
        this.pollInterval,
      );
    };
    loop();
    return {
      close: async () => {
        handle.stop();
        this.watches.delete(handle);
      },
    };
  }

  async renew(): Promise<void> {
    this.checkOpen();
    const lease = this.lease;
    if (lease === undefined) return;
    await this.store.update((tx) => {
      const now = Date.now();
      const l = tx.get<StoredLease>(LEASES, lease);
      if (!l || l.expires <= now) {
        if (this.lease === lease) this.lease = undefined;
        throw new NsnetError('ERR_LEASE_LOST', `the lease of host ${this.hostId} expired; its records are gone`, { hostId: this.hostId });
      }
      tx.put(LEASES, lease, { ...l, expires: now + this.ttl * 1000 });
    });
  }

  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.stopKeepAlive();
    for (const w of this.watches) w.stop();
    this.watches.clear();
    const lease = this.lease;
    try {
      if ((opts.revoke ?? true) && lease !== undefined) {
        await this.store.update((tx) => {
          tx.delete(LEASES, lease);
          let gone = false;
          for (const r of tx.list<StoredRecord>(SUBNETS)) {
            if (r.value.lease !== lease) continue;
            tx.delete(SUBNETS, r.key);
            gone = true;
          }
          if (gone) FileControlPlane.bump(tx);
        });
      }
    } finally {
      this.lease = undefined;
      await this.store.close();
    }
  }
}
