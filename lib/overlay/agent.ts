/**
 * OverlayAgent: one per host. It joins this host to overlay networks (claims a block, makes the
 * bridge and VXLAN device) and keeps the kernel's peer state (lib/overlay/peers.ts) equal to the
 * control plane's host records:
 *
 *   list → program every peer → watch from the listed revision → apply each change as it comes;
 *   every `reconcileInterval` a full pass again (list, re-assert this host's own records, make
 *   the devices and every peer exactly right), so a missed event or a hand-made change cannot
 *   leave stale state; when the watch ends (compaction, lost connection, error) list again,
 *   retrying with exponential backoff until the control plane answers.
 *
 * All kernel work is serialized (one queue), so events and full passes never interleave — and
 * neither do this host's own changes to a network's devices: NetworkHost makes and removes them
 * through {@link OverlayAgent.realize} and {@link OverlayAgent.drop}, which take the same queue
 * and stop serving a network before its devices go. Work queued for a network that was left
 * meanwhile is dropped, not failed.
 *
 * Failures are reported as 'error' events (only when someone listens) and retried; nothing the
 * agent does in the background can become an unhandled rejection. A failure that this host's own
 * removal of a network explains (its device vanished, its definition went) is no error: the
 * network is checked again by a full pass soon, and only a failure that persists is reported
 * (lib/overlay/doubts.ts).
 *
 * A full pass that finds a network's devices missing or wrong remakes them and records the
 * repair ('repaired' event); NetworkHost.reconcile() reports it, whoever got there first.
 *
 * The lease is the control plane's business (it renews it while open); the agent re-asserts its
 * records in every full pass, which also heals a lease lost while the control plane was away.
 */
import { EventEmitter } from 'node:events';
import { NsnetError } from '../errors';
import { Netlink } from '../netlink/netlink';
import { Netns, type NetnsSpec } from '../netns';
import * as v from '../validate';
import { createOverlay, localBlock, planOverlay, removeOverlay, resolveUnderlay, type OverlayDevices, type Underlay, type UnderlaySpec } from './devices';
import { emitError, vtepMacOf, type ControlPlane, type ControlPlaneEvent, type ControlPlaneWatch, type OverlayNetworkConfig } from './controlplane';
import { Doubts } from './doubts';
import { applyPeers, syncPeers, type Peer, type PeerSyncReport } from './peers';
import { ServedNetworks } from './served';
import { HostView } from './view';
import { Wakeup, type Wake } from './wakeup';

export interface OverlayAgentOptions {
  controlPlane: ControlPlane;
  /** Where VXLAN traffic leaves this host. */
  underlay: UnderlaySpec;
  /** The host namespace (default: the caller's); the agent opens its own handle there. */
  netns?: NetnsSpec;
  /** Use this handle instead (not closed by the agent). */
  netlink?: Netlink;
  /** Full reconcile period, ms (default 10 000). */
  reconcileInterval?: number;
  /** Retry delays after a failure, ms: doubling from `initial` (default 200) to `max` (default 5000). */
  backoff?: { initial?: number; max?: number };
  /**
   * The networks this host is joined to and their blocks, read at every full pass (NetworkHost
   * passes its recorded overlay networks, which other processes may have joined): those
   * missing are adopted (the block re-asserted, the devices made), those gone are forgotten.
   * Without it the agent serves what `join()` joined.
   */
  networks?: () => Promise<{ network: string; subnet: string }[]>;
}

/** What one full pass did. */
export interface AgentSyncReport {
  revision: number;
  /** Peers programmed, per joined network. */
  peers: Record<string, number>;
  changes: Record<string, PeerSyncReport>;
}

/**
 * The per-host overlay agent. Events: 'synced' (a full pass, {@link AgentSyncReport}), 'peers'
 * ({ network, added, updated, removed }), 'repaired' ({ network }: a full pass remade devices
 * that were missing or wrong), 'resync', 'error', 'lease-lost', 'lease-recovered'.
 */
export class OverlayAgent extends EventEmitter {
  /** The last failure (also reported as 'error' when someone listens). */
  lastError: Error | undefined;
  /** The networks served here (see ServedNetworks: when each was joined or left). */
  private readonly joined = new ServedNetworks();
  /** Networks whose record this agent's control plane has (re)published (adopted ones not yet). */
  private readonly asserted = new Set<string>();
  /** Control-plane view: network → block → record. */
  private readonly view = new HostView();
  /** Kernel view: network → block → peer programmed. */
  private readonly programmed = new Map<string, Map<string, Peer>>();
  /** Networks whose devices a full pass remade since NetworkHost last asked (takeRepaired). */
  private readonly repairs = new Set<string>();
  /** Failures a removal of this host's may explain, held back once (see Doubts). */
  private readonly doubts: Doubts;
  private queue: Promise<unknown> = Promise.resolve();
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly wakeup = new Wakeup();
  private readonly interval: number;
  private readonly backoff: { initial: number; max: number };
  private readonly relay: Record<string, (...a: unknown[]) => void>;
  private readonly provider: OverlayAgentOptions['networks'];

  private constructor(
    readonly controlPlane: ControlPlane,
    private readonly nl: Netlink,
    private readonly ownsHandle: boolean,
    private readonly underlaySpec: UnderlaySpec,
    private readonly netns: NetnsSpec | undefined,
    /** This host's underlay as last resolved. */
    public underlay: Underlay,
    opts: OverlayAgentOptions,
  ) {
    super();
    this.doubts = new Doubts(nl, () => this.poke('pass'));
    this.provider = opts.networks;
    this.interval = opts.reconcileInterval === undefined ? 10000 : v.int(opts.reconcileInterval, 50, 86400000, 'reconcileInterval');
    this.backoff = {
      initial: opts.backoff?.initial === undefined ? 200 : v.int(opts.backoff.initial, 1, 600000, 'backoff.initial'),
      max: opts.backoff?.max === undefined ? 5000 : v.int(opts.backoff.max, 1, 600000, 'backoff.max'),
    };
    this.relay = {
      'lease-lost': () => this.emit('lease-lost'),
      'lease-recovered': () => this.emit('lease-recovered'),
      error: (e) => this.fail(e),
    };
    for (const [k, f] of Object.entries(this.relay)) controlPlane.on(k as 'error', f);
  }

  /** Opens the agent: a handle in the host namespace and the underlay resolved. @throws ERR_UNDERLAY_NOT_FOUND */
  static async open(opts: OverlayAgentOptions): Promise<OverlayAgent> {
    v.knownKeys(opts, ['controlPlane', 'underlay', 'netns', 'netlink', 'reconcileInterval', 'backoff', 'networks'], 'overlay agent options');
    if (!opts.controlPlane) throw new NsnetError('ERR_INVALID_ARGUMENT', 'overlay agent needs a controlPlane');
    const nl = opts.netlink ?? (await Netlink.open(opts.netns === undefined ? {} : { netns: opts.netns }));
    try {
      const underlay = await resolveUnderlay(nl, opts.underlay);
      return new OverlayAgent(opts.controlPlane, nl, !opts.netlink, opts.underlay, opts.netns, underlay, opts);
    } catch (e) {
      if (!opts.netlink) nl.close();
      throw e;
    }
  }

  get hostId(): string {
    return this.controlPlane.hostId;
  }

  /** The networks this host has joined, as realized here. */
  networks(): OverlayDevices[] {
    return [...this.joined.values()].map((d) => ({ ...d }));
  }

  /** Runs `fn` after every kernel job queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private fail(e: unknown): void {
    this.lastError = e as Error;
    emitError(this, e);
  }

  /** Stops serving a network: `left` by this host's own leave or removal, else no longer listed. */
  private forget(network: string, left: boolean): void {
    if (left) this.joined.left(network);
    else this.joined.forget(network);
    this.programmed.delete(network);
    this.asserted.delete(network);
    this.repairs.delete(network);
    this.doubts.clear(network);
  }

  /**
   * Joins a network on this host: claims a block (the one its VXLAN device already carries,
   * after a restart), makes the bridge and VXLAN device, programs the peers. Joining again is
   * cheap and corrects what differs. Fails without changing anything.
   * @throws ERR_NETWORK_NOT_FOUND, ERR_UNDERLAY_NOT_FOUND, ERR_VNI_IN_USE, ERR_NO_FREE_SUBNET, ERR_INVALID_MTU
   */
  async join(network: string): Promise<OverlayDevices> {
    const cfg = await this.controlPlane.getNetwork(network);
    if (!cfg) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${network} does not exist`, { network });
    return this.serial(async () => {
      this.underlay = await resolveUnderlay(this.nl, this.underlaySpec);
      const vtepMac = vtepMacOf(network, this.hostId);
      const before = this.joined.get(network)?.subnet ?? (await localBlock(this.nl, network, cfg.hostPrefix));
      const rec = await this.controlPlane.join(network, { underlay: this.underlay.address, vtepMac }, before ? { subnet: before } : {});
      try {
        const d = planOverlay(cfg, rec.subnet, vtepMac, this.underlay);
        await Netns.sysctl(this.netns, 'net.ipv4.ip_forward', '1');
        await createOverlay(this.nl, d);
        this.joined.serve(d);
        this.asserted.add(network);
        const { snap, heard } = await this.view.read(this.controlPlane);
        this.view.absorb(snap, heard, network);
        await this.syncNetwork(network);
        return { ...d };
      } catch (e) {
        // A block claimed by this call is given back; one held before stays (containers use it).
        if (before !== rec.subnet) await this.controlPlane.leave(network).catch(() => undefined);
        throw e;
      }
    });
  }

  /**
   * Leaves a network: stops serving it, removes its devices from this host (unless
   * `keepDevices`) and releases this host's block everywhere.
   */
  async leave(network: string, opts: { keepDevices?: boolean } = {}): Promise<void> {
    await this.serial(async () => {
      this.forget(network, true);
      if (!opts.keepDevices) await removeOverlay(this.nl, network);
      await this.controlPlane.leave(network);
    });
  }

  /**
   * Makes (or corrects) a network's devices as this host records them, in the agent's queue,
   * and serves the network (its peers are programmed by a full pass, asked for at once when the
   * network was not served yet). How NetworkHost realizes an overlay network.
   * @internal
   */
  async realize(d: OverlayDevices): Promise<void> {
    const adopted = await this.serial(async () => {
      await createOverlay(this.nl, d);
      if (this.joined.has(d.network)) return false;
      this.joined.serve(d);
      return true;
    });
    if (adopted) this.poke('pass');
  }

  /**
   * Stops serving a network and removes its devices from this host, in the agent's queue: no
   * work of the agent's touches them afterwards, and none is half done when they go. This
   * host's block stays claimed ({@link leave} releases it). How NetworkHost removes them.
   * @internal
   */
  async drop(network: string): Promise<void> {
    await this.serial(async () => {
      this.forget(network, true);
      await removeOverlay(this.nl, network);
    });
  }

  /**
   * Whether a full pass remade this network's devices since the last call (which forgets it).
   * NetworkHost.reconcile() reports such a network as repaired, as if it had remade them itself.
   * @internal
   */
  takeRepaired(network: string): boolean {
    return this.repairs.delete(network);
  }

  /** The peers a joined network should have: every other host's record, never this host's block. */
  private wanted(network: string): Map<string, Peer> {
    const d = this.joined.get(network);
    const out = new Map<string, Peer>();
    for (const r of this.view.hosts(network)) {
      if (r.hostId === this.hostId) continue;
      if (r.subnet === d?.subnet) {
        this.fail(
          new NsnetError('ERR_SUBNET_TAKEN', `${r.subnet} of ${network} is this host's block but host ${r.hostId} holds it`, {
            network,
            subnet: r.subnet,
            holder: r.hostId,
          }),
        );
        continue;
      }
      out.set(r.subnet, { subnet: r.subnet, underlay: r.underlay, vtepMac: r.vtepMac });
    }
    return out;
  }

  /** Full sync of one network's peers against the kernel. */
  private async syncNetwork(network: string): Promise<PeerSyncReport | undefined> {
    const d = this.joined.get(network);
    if (!d) return undefined;
    const want = this.wanted(network);
    const report = await syncPeers(this.nl, d.vxlan, [...want.values()]);
    this.programmed.set(network, want);
    if (report.added.length || report.updated.length || report.removed.length) this.emit('peers', { network, ...report });
    return report;
  }

  /** Applies the view of one network incrementally (what changed since it was programmed). */
  private async applyNetwork(network: string): Promise<void> {
    const d = this.joined.get(network);
    if (!d) return; // left meanwhile: nothing to do
    try {
      await this.applyPeers(network, d);
    } catch (e) {
      // Its devices went while the change was applied: a full pass finds out why.
      if (await this.doubts.explained(d, e, true)) this.poke('pass');
      else this.fail(e);
    }
  }

  private async applyPeers(network: string, d: OverlayDevices): Promise<void> {
    const have = this.programmed.get(network) ?? new Map<string, Peer>();
    this.programmed.set(network, have);
    const report = await applyPeers(this.nl, d.vxlan, have, this.wanted(network));
    if (report.added.length || report.updated.length || report.removed.length) this.emit('peers', { network, ...report });
  }

  /**
   * One full pass now: list, re-assert this host's records, make every joined network's devices
   * and peers exactly right. (The running agent does this every `reconcileInterval`.)
   */
  async reconcile(): Promise<AgentSyncReport> {
    // Read before taking the queue: the provider may wait for a store transaction that is
    // itself waiting for this queue (a createNetwork joining).
    const asked = this.joined.now;
    const listed = this.provider ? await this.provider() : undefined;
    return this.serial(async () => {
      const { snap, heard } = await this.view.read(this.controlPlane);
      this.view.absorb(snap, heard);
      if (listed) this.follow(listed, snap.networks, asked);
      const report: AgentSyncReport = { revision: snap.revision, peers: {}, changes: {} };
      for (const [network, d] of [...this.joined.entries()]) {
        const had = await this.doubts.present(d).catch(() => false);
        try {
          const mine = this.view.get(network, d.subnet);
          // Its record gone: expired, or another process of this host removed the network after
          // the list above was read. Not claimed again before a fresh list says (see Doubts).
          if (!mine && this.doubts.holdBack(network, true)) continue;
          // An adopted network's record may hang on another process's lease: it is published
          // again under this one's at once, not after that lease has expired.
          if (!mine || mine.hostId !== this.hostId || mine.underlay !== d.underlay.address || mine.vtepMac !== d.vtepMac || !this.asserted.has(network)) {
            if (mine && mine.hostId !== this.hostId)
              throw new NsnetError('ERR_SUBNET_TAKEN', `${d.subnet} of ${network} is held by host ${mine.hostId}`, {
                network,
                subnet: d.subnet,
                holder: mine.hostId,
              });
            const rec = await this.controlPlane.join(network, { underlay: d.underlay.address, vtepMac: d.vtepMac }, { subnet: d.subnet, exact: true });
            this.asserted.add(network);
            this.view.put(rec);
          }
          if (await createOverlay(this.nl, d)) {
            this.repairs.add(network);
            this.emit('repaired', { network });
          }
          const r = await this.syncNetwork(network);
          if (r) report.changes[network] = r;
          report.peers[network] = this.programmed.get(network)?.size ?? 0;
          this.doubts.clear(network);
        } catch (e) {
          if (!this.doubts.holdBack(network, await this.doubts.explained(d, e, had))) this.fail(e);
        }
      }
      this.emit('synced', report);
      return report;
    });
  }

  /** Makes the joined set what the provider listed (see OverlayAgentOptions.networks, ServedNetworks). */
  private follow(listed: { network: string; subnet: string }[], configs: OverlayNetworkConfig[], asked: number): void {
    const { forget, adopt } = this.joined.compare(listed, asked);
    for (const network of forget) this.forget(network, false);
    this.doubts.retain((n) => this.joined.has(n) || listed.some((l) => l.network === n));
    for (const { network, subnet } of adopt) {
      const cfg = configs.find((c) => c.name === network);
      if (!cfg) {
        if (!this.doubts.holdBack(network, true))
          this.fail(new NsnetError('ERR_NETWORK_NOT_FOUND', `overlay network ${network} is recorded on this host but not in the control plane`, { network }));
        continue;
      }
      try {
        this.joined.serve(planOverlay(cfg, subnet, vtepMacOf(network, this.hostId), this.underlay));
      } catch (e) {
        this.fail(e);
      }
    }
  }

  private onEvent(e: ControlPlaneEvent): void {
    if (e.type === 'resync') {
      this.emit('resync', { reason: e.reason, ...(e.error ? { error: e.error } : {}) });
      this.poke('resync');
      return;
    }
    if (e.type !== 'host-put' && e.type !== 'host-delete') return;
    if (!this.view.apply(e)) return;
    const network = e.type === 'host-put' ? e.record.network : e.network;
    // (applyNetwork reports its own failures.)
    if (this.joined.has(network)) void this.serial(() => this.applyNetwork(network));
  }

  private poke(w: Wake): void {
    this.wakeup.poke(w);
  }

  private sleep(ms: number): Promise<Wake> {
    return this.stopped ? Promise.resolve('stop') : this.wakeup.sleep(ms);
  }

  /**
   * Starts the background loop (idempotent); returns at once. 'synced' is emitted after every
   * full pass; `stop()` ends it.
   */
  start(): this {
    if (this.running || this.stopped) return this;
    this.running = this.loop().catch((e) => this.fail(e));
    return this;
  }

  /** Resolves after the next full pass (the running loop's or an explicit `reconcile()`). */
  synced(): Promise<AgentSyncReport> {
    return new Promise((resolve) => this.once('synced', resolve));
  }

  private async loop(): Promise<void> {
    let delay = this.backoff.initial;
    while (!this.stopped) {
      let watch: ControlPlaneWatch | undefined;
      try {
        const r = await this.reconcile();
        watch = this.controlPlane.watch(r.revision, (e) => this.onEvent(e));
        delay = this.backoff.initial;
        for (;;) {
          const w = await this.sleep(this.interval);
          if (w !== 'timer' && w !== 'pass') break;
          await this.reconcile();
        }
      } catch (e) {
        this.fail(e);
        await this.sleep(delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 2, this.backoff.max);
      } finally {
        // (A pass asked for is what the next round's pass is; a 'stop' stays seen through `stopped`.)
        this.wakeup.clear();
        await watch?.close().catch(() => undefined);
      }
    }
  }

  /** Stops the loop (kernel state and the control plane's records stay as they are). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.poke('stop');
    await this.running;
    await this.queue;
  }

  /** Stops, closes the agent's own handle and stops relaying the control plane's events (the control plane stays open). */
  async close(): Promise<void> {
    await this.stop();
    for (const [k, f] of Object.entries(this.relay)) this.controlPlane.off(k, f);
    if (this.ownsHandle) this.nl.close();
  }
}
