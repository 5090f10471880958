/**
 * The resolver's records follow the store — written by this process or any other (the CLI, the
 * CNI plugin, a runtime using the library).
 *
 * How a name resolves as soon as `connect()` returns, deterministically: `connect()` resolves
 * only after its commit is on disk, and every commit writes the state directory's lock file
 * first. Before answering any query the resolver asks whether anything was written there since
 * it began its last read: by the store's change counter (an inotify watch drained on demand, see
 * lib/store/changes.ts watchGenerations — the kernel queues the event inside the write, so it
 * is there before `connect()` even returns), or, where there is none, by comparing the store's
 * stamp with the one it took before that read (stat(2); equal and stable). Nothing written: its
 * records are current and it answers at once; otherwise it reads the store again first, and
 * every query that arrived meanwhile waits for that same read. So a query sent after
 * `connect()` (or `disconnect()`) returned is answered from records that include it; queries
 * are delayed by a read, never dropped or answered from a half-made index. The listening sockets
 * answer repeated queries themselves under the same counter (native/udp/responder.h). A watch on
 * the state directory reads ahead after commits, so that usually the read has happened before
 * the first query comes; a slow poll covers file systems without inotify.
 * @internal
 */
import type { EndpointRecord, NetworkRecord } from '../host-types';
import type { Store, StoreChanges, StoreStamp } from '../store/index';
import { COARSE_MS } from '../store/changes';
import type { NativeChangeWatch } from '../native';

/** The façade's collections (lib/host.ts). */
const NETWORKS = 'networks';
const ENDPOINTS = 'endpoints';
/** Safety net for a state directory that inotify does not see (NFS, overlay quirks). */
const POLL_MS = 2000;

export interface StoreSnapshot {
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  /**
   * The store's change generation taken before this read (-1: none): answers computed from it
   * may be remembered by a UdpResponder under it, which drops them as soon as it moves.
   */
  generation: number;
}

export class StoreSource {
  private stamp: StoreStamp | undefined;
  /** The change generation taken before the last completed read (-1: none, or no counter). */
  private readGeneration = -1;
  /** The read in progress, and the one queued to start after it. */
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private watch: { close(): void } | undefined;
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private closed = false;
  /** The store's change counter, when it has one (closed with the source). */
  readonly generations: NativeChangeWatch | undefined;
  /** Completed reads (for tests and stats). */
  reads = 0;

  constructor(
    private readonly store: Store & StoreChanges,
    private readonly onSnapshot: (s: StoreSnapshot) => void,
    private readonly onError: (e: Error) => void,
  ) {
    this.generations = store.generations?.();
  }

  /** Reads the store once (failing if it cannot), then follows it. */
  async start(): Promise<void> {
    await this.read(true);
    this.watch = this.store.watch(() => void this.refresh());
    this.poll = setInterval(() => void this.fresh(), POLL_MS);
    this.poll.unref();
  }

  /**
   * Undefined when the records are current (the common case: one stat); otherwise a promise
   * that resolves once they are (it never rejects: a failed read keeps the last records).
   */
  fresh(): Promise<void> | undefined {
    if (this.closed) return undefined;
    // The change counter, when there is one, tells exactly (no clock involved): unchanged since
    // it was taken before the last read, nothing has been committed since that read began.
    const g = this.generations?.generation() ?? -1;
    if (g >= 0 && this.readGeneration >= 0) return g === this.readGeneration ? undefined : this.refresh();
    const now = this.store.stamp();
    if (this.stamp && now.id === this.stamp.id && this.stamp.stable) return undefined;
    return this.refresh();
  }

  /** A read that starts after this call (joined by every call until it starts). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.running) {
      this.running = this.read(false).finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.refresh();
    });
    return this.queued;
  }

  private async read(strict: boolean): Promise<void> {
    // The generation and the stamp are taken before the read: a commit during the read shows as
    // a change next time.
    const generation = this.generations?.generation() ?? -1;
    const stamp = this.store.stamp();
    let snap: StoreSnapshot;
    try {
      snap = await this.store.read((view) => ({
        generation,
        networks: view.list<NetworkRecord>(NETWORKS).map((e) => e.value),
        // (Warm-pool slots are no containers yet: no names.)
        endpoints: view
          .list<EndpointRecord>(ENDPOINTS)
          .map((e) => e.value)
          .filter((e) => !e.slot),
      }));
    } catch (e) {
      if (strict) throw e;
      if (!this.closed) this.onError(e as Error);
      return;
    }
    if (this.closed) return;
    this.stamp = stamp;
    this.readGeneration = generation;
    this.reads++;
    this.onSnapshot(snap);
    if (!stamp.stable) {
      // Read again once the clock has moved past the last change, so that the stamp becomes
      // stable without a query having to wait for that read.
      clearTimeout(this.settle);
      this.settle = setTimeout(() => void this.fresh(), Math.max(1, stamp.changedAt + COARSE_MS + 1 - Date.now()));
      this.settle.unref();
    }
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
    this.generations?.close();
    clearInterval(this.poll);
    clearTimeout(this.settle);
  }
}
