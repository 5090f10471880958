/**
 * The overlay's control plane: what every host of an overlay network shares, behind one
 * interface with two implementations — {@link FileControlPlane} (a directory shared by "hosts"
 * on one machine: tests, demos, CI) and {@link EtcdControlPlane} (etcd v3, real clusters).
 *
 * What it holds (Flannel's model):
 * - network configurations: name, overlay range, per-host prefix, VNI, UDP port, MTU;
 * - per network, per host, one **host record** {host id, host subnet, underlay address, VTEP
 *   MAC}. The record *is* the subnet claim: it is stored under the subnet's key, created only
 *   if that key is absent (a transaction), so no two hosts ever hold one subnet;
 * - every record of a host is attached to the host's **lease** (default TTL 15 s), renewed by
 *   the control plane itself while it is open; a host that dies stops renewing, its lease
 *   expires and its records disappear everywhere; a host that closes cleanly revokes it.
 *
 * Readers take a {@link ControlPlaneSnapshot} (with the revision it was read at) and then
 * {@link ControlPlane.watch} from that revision; a `resync` event means "list again".
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { NsnetError, invalid } from '../errors';
import { fromBig, toBig } from '../ipam/addr';
import * as v from '../validate';

/** What `defineNetwork` takes. */
export interface OverlayNetworkSpec {
  /** 1..64 letters, digits, '_', '.', '-' (the network's name on every host). */
  name: string;
  /** The overlay range, IPv4 ("10.88.0.0/16"); each host leases one block of it. */
  subnet: string;
  /** VXLAN network identifier, 1..16777215; unique among the control plane's networks. */
  vni: number;
  /** Prefix length of each host's block (default 24). */
  hostPrefix?: number;
  /** VXLAN UDP port (default 4789, the IANA port). */
  vxlanPort?: number;
  /** The containers' MTU; default: each host's underlay MTU − 50 (the VXLAN overhead over IPv4). */
  mtu?: number;
}

/** A network's configuration as the control plane stores it. */
export interface OverlayNetworkConfig {
  name: string;
  subnet: string;
  vni: number;
  hostPrefix: number;
  vxlanPort: number;
  mtu?: number;
  created: string;
}

/** A host's VTEP on one network, as it publishes it. */
export interface Vtep {
  /** The host's underlay (IPv4) address: where VXLAN packets for it go. */
  underlay: string;
  /** The MAC of the host's VXLAN device for the network. */
  vtepMac: string;
}

/** One host's record on one network: its subnet claim and its VTEP. */
export interface HostRecord extends Vtep {
  network: string;
  hostId: string;
  /** The host's block of the overlay range ("10.88.3.0/24"). */
  subnet: string;
}

/** Everything the control plane holds, read at one revision. */
export interface ControlPlaneSnapshot {
  revision: number;
  networks: OverlayNetworkConfig[];
  /** Live records only (a record whose lease expired is absent). */
  hosts: HostRecord[];
}

/** A change after some revision. */
export type ControlPlaneEvent =
  | { type: 'host-put'; revision: number; record: HostRecord }
  | { type: 'host-delete'; revision: number; network: string; subnet: string }
  | { type: 'network-put'; revision: number; network: OverlayNetworkConfig }
  | { type: 'network-delete'; revision: number; name: string }
  /**
   * The watch cannot go on (history compacted, connection lost, an error): the watch is over;
   * take a new snapshot (retrying until the control plane answers) and watch from its revision.
   */
  | { type: 'resync'; reason: 'compacted' | 'disconnected' | 'error'; error?: Error };

/** A running watch. */
export interface ControlPlaneWatch {
  close(): Promise<void>;
}

/** Options of `join`. */
export interface JoinOptions {
  /** The block to claim (a host's previous one); another is chosen if it is taken, unless `exact`. */
  subnet?: string;
  /** Fail with ERR_SUBNET_TAKEN instead of choosing another block. */
  exact?: boolean;
}

/** Options both implementations take. */
export interface ControlPlaneOptions {
  /** This host's id: 1..64 letters, digits, '_', '.', '-'. Unique among the hosts. */
  hostId: string;
  /** Lease TTL in seconds (default 15): how long a silent host's records outlive it. */
  ttl?: number;
}

/** The control plane. Errors are NsnetErrors with stable codes. */
export interface ControlPlane {
  readonly hostId: string;
  /** Lease TTL, seconds. */
  readonly ttl: number;
  /**
   * Stores a network's configuration; the same configuration again returns the stored one.
   * @throws ERR_NETWORK_EXISTS (same name, other settings), ERR_VNI_IN_USE, ERR_SUBNET_OVERLAP,
   *   ERR_INVALID_* for bad input
   */
  defineNetwork(spec: OverlayNetworkSpec): Promise<OverlayNetworkConfig>;
  getNetwork(name: string): Promise<OverlayNetworkConfig | undefined>;
  /** Removes a configuration. @throws ERR_NETWORK_NOT_FOUND, ERR_NETWORK_IN_USE (a host holds a block) */
  removeNetwork(name: string): Promise<void>;
  /**
   * Claims this host's block of a network (or keeps the one it holds) and publishes its VTEP,
   * attached to this host's lease.
   * @throws ERR_NETWORK_NOT_FOUND, ERR_NO_FREE_SUBNET, ERR_SUBNET_TAKEN (with `exact`)
   */
  join(network: string, vtep: Vtep, opts?: JoinOptions): Promise<HostRecord>;
  /** Releases this host's block of a network (none held is fine). */
  leave(network: string): Promise<void>;
  snapshot(): Promise<ControlPlaneSnapshot>;
  /** Changes after `revision`; see {@link ControlPlaneEvent}. The listener must not throw. */
  watch(revision: number, listener: (e: ControlPlaneEvent) => void): ControlPlaneWatch;
  /** Renews the lease now (it is also renewed every TTL/3 on its own). @throws ERR_LEASE_LOST */
  renew(): Promise<void>;
  /**
   * Stops renewing. `revoke` (default true): the lease ends now and every record of this host
   * goes with it (a clean leave); false: the records expire after the TTL (as after a crash).
   */
  close(opts?: { revoke?: boolean }): Promise<void>;
  /** 'lease-lost' (expired: the records are re-claimed), 'lease-recovered', 'error'. */
  on(event: 'lease-lost' | 'lease-recovered', listener: () => void): this;
  on(event: 'error', listener: (e: NsnetError) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): this;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/u;
/** At most this many blocks per network, so choosing one stays cheap. */
const MAX_BLOCK_BITS = 16;

/** Validates a network or host name. */
export function checkName(n: unknown, what: string): string {
  if (typeof n !== 'string' || !NAME_RE.test(n))
    throw invalid('ERR_INVALID_NAME', `${what} ${JSON.stringify(n)} must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit`, {
      value: n,
    });
  return n;
}

/** Validates a spec into a configuration (no I/O). */
export function normalizeSpec(spec: OverlayNetworkSpec): OverlayNetworkConfig {
  v.knownKeys(spec, ['name', 'subnet', 'vni', 'hostPrefix', 'vxlanPort', 'mtu'], 'overlay network');
  const name = checkName(spec.name, 'network name');
  const c = v.cidr(spec.subnet, 4, 'overlay subnet');
  if (v.networkAddress(c.address, c.prefix) !== c.address)
    throw invalid('ERR_INVALID_CIDR', `overlay subnet ${spec.subnet} has host bits set (did you mean ${v.networkAddress(c.address, c.prefix)}/${c.prefix}?)`, {
      value: spec.subnet,
    });
  const hostPrefix = spec.hostPrefix === undefined ? 24 : v.int(spec.hostPrefix, 1, 30, 'hostPrefix');
  if (hostPrefix < c.prefix)
    throw invalid('ERR_INVALID_ARGUMENT', `hostPrefix /${hostPrefix} is wider than the overlay subnet ${spec.subnet}`, { value: hostPrefix });
  if (hostPrefix - c.prefix > MAX_BLOCK_BITS)
    throw invalid(
      'ERR_INVALID_ARGUMENT',
      `${spec.subnet} split into /${hostPrefix} blocks makes more than ${2 ** MAX_BLOCK_BITS} of them; use a longer subnet prefix or a shorter hostPrefix`,
      { value: hostPrefix },
    );
  const cfg: OverlayNetworkConfig = {
    name,
    subnet: `${c.address}/${c.prefix}`,
    vni: v.int(spec.vni, 1, 0xffffff, 'VNI', 'ERR_INVALID_VNI'),
    hostPrefix,
    vxlanPort: spec.vxlanPort === undefined ? 4789 : v.int(spec.vxlanPort, 1, 65535, 'vxlanPort', 'ERR_INVALID_PORT'),
    created: new Date().toISOString(),
  };
  if (spec.mtu !== undefined) cfg.mtu = v.mtu(spec.mtu);
  return cfg;
}

/** Whether two configurations ask for the same network (creation time aside). */
export function sameConfig(a: OverlayNetworkConfig, b: OverlayNetworkConfig): boolean {
  return a.name === b.name && a.subnet === b.subnet && a.vni === b.vni && a.hostPrefix === b.hostPrefix && a.vxlanPort === b.vxlanPort && a.mtu === b.mtu;
}

function block(cidr: string): { base: bigint; size: bigint } {
  const [addr, len] = cidr.split('/') as [string, string];
  return { base: toBig(addr), size: 1n << BigInt(32 - Number(len)) };
}

/** Whether two IPv4 CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
  const x = block(a);
  const y = block(b);
  return x.base < y.base + y.size && y.base < x.base + x.size;
}

/**
 * Refuses a new configuration that clashes with the stored ones.
 * @throws ERR_NETWORK_EXISTS, ERR_VNI_IN_USE, ERR_SUBNET_OVERLAP
 */
export function checkConflicts(cfg: OverlayNetworkConfig, others: OverlayNetworkConfig[]): void {
  for (const o of others) {
    if (o.name === cfg.name)
      throw new NsnetError('ERR_NETWORK_EXISTS', `overlay network ${cfg.name} exists with other settings (${o.subnet}, VNI ${o.vni})`, { network: cfg.name });
    if (o.vni === cfg.vni) throw new NsnetError('ERR_VNI_IN_USE', `VNI ${cfg.vni} is used by overlay network ${o.name}`, { vni: cfg.vni, network: o.name });
    if (overlaps(o.subnet, cfg.subnet))
      throw new NsnetError('ERR_SUBNET_OVERLAP', `subnet ${cfg.subnet} overlaps ${o.subnet} of overlay network ${o.name}`, {
        subnet: cfg.subnet,
        other: o.subnet,
        network: o.name,
      });
  }
}

/** Number of host blocks of a network. */
export function blockCount(cfg: OverlayNetworkConfig): number {
  return 2 ** (cfg.hostPrefix - Number(cfg.subnet.split('/')[1]));
}

/** The i-th host block of a network. */
export function blockAt(cfg: OverlayNetworkConfig, i: number): string {
  const { base } = block(cfg.subnet);
  return `${fromBig(base + (BigInt(i) << BigInt(32 - cfg.hostPrefix)), 4)}/${cfg.hostPrefix}`;
}

/** Validates a block asked for by a caller: inside the range and aligned. @throws ERR_INVALID_CIDR */
export function checkBlock(cfg: OverlayNetworkConfig, subnet: string): string {
  const c = v.cidr(subnet, 4, 'host subnet');
  const s = `${c.address}/${c.prefix}`;
  if (c.prefix !== cfg.hostPrefix || v.networkAddress(c.address, c.prefix) !== c.address || !overlaps(s, cfg.subnet))
    throw invalid('ERR_INVALID_CIDR', `${subnet} is not a /${cfg.hostPrefix} block of ${cfg.subnet}`, { value: subnet });
  return s;
}

/**
 * Picks a free block: the one asked for when it is free, else a random free one (random, so
 * hosts joining at once rarely race for the same block; a lost race is simply retried).
 * @throws ERR_SUBNET_TAKEN (asked for `exact`), ERR_NO_FREE_SUBNET
 */
export function pickBlock(cfg: OverlayNetworkConfig, taken: Map<string, string>, opts: JoinOptions = {}): string {
  if (opts.subnet !== undefined) {
    const want = checkBlock(cfg, opts.subnet);
    const holder = taken.get(want);
    if (holder === undefined) return want;
    if (opts.exact) throw new NsnetError('ERR_SUBNET_TAKEN', `${want} of ${cfg.name} is held by host ${holder}`, { network: cfg.name, subnet: want, holder });
  }
  const n = blockCount(cfg);
  if (taken.size >= n)
    throw new NsnetError('ERR_NO_FREE_SUBNET', `every /${cfg.hostPrefix} block of ${cfg.subnet} (${cfg.name}) is held`, { network: cfg.name });
  const start = Math.floor(Math.random() * n);
  for (let k = 0; k < n; k++) {
    const s = blockAt(cfg, (start + k) % n);
    if (!taken.has(s)) return s;
  }
  throw new NsnetError('ERR_NO_FREE_SUBNET', `every /${cfg.hostPrefix} block of ${cfg.subnet} (${cfg.name}) is held`, { network: cfg.name });
}

/** The key form of a block: "10.88.3.0-24". */
export const blockKey = (subnet: string): string => subnet.replace('/', '-');
/** The block of a key made by {@link blockKey}. */
export const blockOfKey = (key: string): string => key.replace(/-(\d+)$/u, '/$1');

/** The address a host's VXLAN device carries: its block's network address (10.88.3.0). */
export const vtepAddress = (subnet: string): string => subnet.split('/')[0]!;

/** The containers' gateway on a host: its block's first address (10.88.3.1), on the bridge. */
export function gatewayOf(subnet: string): string {
  return fromBig(toBig(vtepAddress(subnet)) + 1n, 4);
}

/**
 * The MAC of a host's VXLAN device on a network: derived from both names, so it is known before
 * the device exists (the record can be published first) and stays the same when the device is
 * made again (peers need no update). Locally administered, unicast.
 */
export function vtepMacOf(network: string, hostId: string): string {
  const h = createHash('sha256').update(`vtep\0${network}\0${hostId}`).digest();
  h[0] = (h[0]! & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Validates a VTEP as published. */
export function checkVtep(vtep: Vtep): Vtep {
  v.knownKeys(vtep, ['underlay', 'vtepMac'], 'vtep');
  return { underlay: v.ip(vtep.underlay, 4, 'underlay address').address, vtepMac: v.mac(vtep.vtepMac, { unicast: true }) };
}

/** Parses a stored host record; undefined when it is not one. */
export function parseRecord(text: string | Buffer, network: string, subnet: string): HostRecord | undefined {
  try {
    const r = JSON.parse(String(text)) as Partial<HostRecord>;
    if (typeof r.hostId !== 'string' || typeof r.underlay !== 'string' || typeof r.vtepMac !== 'string') return undefined;
    return { network, hostId: r.hostId, subnet, underlay: r.underlay, vtepMac: r.vtepMac };
  } catch {
    return undefined;
  }
}

/** What is stored for a record (network and subnet are in its key). */
export function recordValue(r: HostRecord): string {
  return JSON.stringify({ hostId: r.hostId, underlay: r.underlay, vtepMac: r.vtepMac });
}

/** Emits 'error' only when someone listens (an unheard 'error' event would throw). */
export function emitError(em: EventEmitter, e: unknown): void {
  if (em.listenerCount('error') > 0) em.emit('error', e);
}

/**
 * What both implementations share: option checks, the records this host holds, and the
 * keep-alive loop — renew every TTL/3; when the lease turns out to have expired, take a new one
 * and claim the same blocks again (`exact`: a block another host took meanwhile is reported as
 * ERR_SUBNET_TAKEN, never silently swapped under running containers).
 *
 * The keep-alive runs beside this host's own calls, so it never reports what they cause: a
 * renewal or recovery cut short by `close()` is no error, a block left (`leave`) while the lease
 * was being recovered is not claimed again (leave waits for the recovery, which skips what was
 * left), and a network removed meanwhile is no error either.
 */
export abstract class ControlPlaneBase extends EventEmitter {
  readonly hostId: string;
  readonly ttl: number;
  /** network → the record this host holds there. */
  protected readonly held = new Map<string, HostRecord>();
  protected closed = false;
  private timer: NodeJS.Timeout | undefined;
  private recovering: Promise<void> | undefined;

  protected constructor(opts: ControlPlaneOptions) {
    super();
    this.hostId = checkName(opts.hostId, 'host id');
    this.ttl = opts.ttl === undefined ? 15 : v.int(opts.ttl, 2, 3600, 'lease ttl (seconds)');
  }

  abstract join(network: string, vtep: Vtep, opts?: JoinOptions): Promise<HostRecord>;
  abstract renew(): Promise<void>;

  protected checkOpen(): void {
    if (this.closed) throw new NsnetError('ERR_CONTROL_PLANE_CLOSED', 'the control plane is closed');
  }

  /** Starts the keep-alive loop (idempotent). */
  protected startKeepAlive(): void {
    if (this.timer || this.closed) return;
    const tick = (): void => {
      this.timer = setTimeout(
        () => {
          void this.renew()
            .then(
              () => undefined,
              (e: NsnetError) => {
                if (this.closed) return undefined; // closed while renewing: nothing to report
                if (e?.code === 'ERR_LEASE_LOST') return this.recover();
                emitError(this, e); // unreachable: retried at the next tick
                return undefined;
              },
            )
            .finally(() => {
              if (!this.closed) tick();
            });
        },
        (this.ttl * 1000) / 3,
      );
      this.timer.unref();
    };
    tick();
  }

  protected stopKeepAlive(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** After a lost lease: claims every held block again under a new lease. */
  protected recover(): Promise<void> {
    this.recovering ??= (async () => {
      this.emit('lease-lost');
      let ok = true;
      for (const r of [...this.held.values()]) {
        // Left (or claimed again) by this host meanwhile: not this recovery's business.
        if (this.closed || this.held.get(r.network) !== r) continue;
        try {
          await this.join(r.network, r, { subnet: r.subnet, exact: true });
        } catch (e) {
          ok = false;
          // Closed, or left while this join was on its way (leave() waits for it, then releases it).
          if (this.closed || !this.held.has(r.network)) continue;
          if ((e as NsnetError).code === 'ERR_SUBNET_TAKEN' || (e as NsnetError).code === 'ERR_NETWORK_NOT_FOUND') this.held.delete(r.network);
          emitError(this, e);
        }
      }
      if (ok && !this.closed) this.emit('lease-recovered');
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  /**
   * The start of every leave(): the network is no longer held (a recovery in progress skips it)
   * and a recovery's join already on its way has landed, so the leave that follows releases
   * whatever it claimed.
   */
  protected async leaving(network: string): Promise<void> {
    this.held.delete(network);
    await this.recovering;
  }
}
