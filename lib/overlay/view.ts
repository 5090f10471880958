/**
 * The overlay agent's view of the control plane's host records (network → block → record), kept
 * from snapshots and watch events in revision order.
 *
 * Two races are closed here. A watch event and a snapshot travel separately, so (1) an event
 * newer than a snapshot can arrive while the snapshot is being read — replacing the view with
 * the snapshot would lose it, so events heard meanwhile are replayed on the snapshot; and (2) an
 * event older than a snapshot can arrive after it — applying it would bring back a record the
 * snapshot no longer has (a peer programmed and withdrawn again, or a false ERR_SUBNET_TAKEN),
 * so an event at or before the revision the view already reflects for its network is dropped.
 */
import type { ControlPlane, ControlPlaneEvent, ControlPlaneSnapshot, HostRecord } from './controlplane';

type HostEvent = Extract<ControlPlaneEvent, { type: 'host-put' | 'host-delete' }>;

const networkOf = (e: HostEvent): string => (e.type === 'host-put' ? e.record.network : e.network);

export class HostView {
  private readonly records = new Map<string, Map<string, HostRecord>>();
  /** Revision of the last snapshot of every network, and of later snapshots of single networks. */
  private revision = -1;
  private readonly netRevision = new Map<string, number>();
  /** Events heard while a snapshot is being read (one at a time: the agent's queue reads them). */
  private heard: HostEvent[] | undefined;

  /** Reads a snapshot, keeping the events heard meanwhile for {@link absorb}. */
  async read(cp: ControlPlane): Promise<{ snap: ControlPlaneSnapshot; heard: HostEvent[] }> {
    const heard: HostEvent[] = [];
    this.heard = heard;
    try {
      return { snap: await cp.snapshot(), heard };
    } finally {
      if (this.heard === heard) this.heard = undefined;
    }
  }

  /**
   * Replaces the view of every network (or of `network` only) with the snapshot's, then
   * re-applies the events heard while it was read that are newer than it.
   */
  absorb(snap: ControlPlaneSnapshot, heard: HostEvent[], network?: string): void {
    if (network === undefined) {
      this.records.clear();
      this.netRevision.clear();
      this.revision = snap.revision;
    } else {
      this.records.delete(network);
      this.netRevision.set(network, snap.revision);
    }
    for (const h of snap.hosts) if (network === undefined || h.network === network) this.put(h);
    for (const e of heard) if (network === undefined || networkOf(e) === network) this.apply(e, false);
  }

  /** The revision the view reflects for a network. */
  private revisionOf(network: string): number {
    return Math.max(this.revision, this.netRevision.get(network) ?? -1);
  }

  /** Applies a watch event unless the view already reflects its revision; whether it did. */
  apply(e: HostEvent, hear = true): boolean {
    if (hear) this.heard?.push(e);
    const network = networkOf(e);
    if (e.revision <= this.revisionOf(network)) return false;
    if (e.type === 'host-put') this.put(e.record);
    else this.records.get(network)?.delete(e.subnet);
    return true;
  }

  /** Records one host record (this host's own, as it has just published it). */
  put(r: HostRecord): void {
    let m = this.records.get(r.network);
    if (!m) this.records.set(r.network, (m = new Map()));
    m.set(r.subnet, r);
  }

  get(network: string, subnet: string): HostRecord | undefined {
    return this.records.get(network)?.get(subnet);
  }

  hosts(network: string): HostRecord[] {
    return [...(this.records.get(network)?.values() ?? [])];
  }
}

export type { HostEvent };
