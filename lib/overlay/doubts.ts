/**
 * What the overlay agent finds on a network that this host's own removal of the network may
 * explain — so it is neither an error nor a reason to make anything again yet: a device that
 * vanished while the agent worked on it (ENODEV, and the device is gone now although it was
 * there when the work began), a network definition gone from the control plane
 * (ERR_NETWORK_NOT_FOUND), or this host's record of the network gone from the control plane.
 * Within one process NetworkHost removes a network through the agent's queue, so this happens
 * when another process of this host (the CLI beside `nsnet agent`) removes it between the
 * moment a full pass read the host's networks and the moment it acts — or when someone deletes
 * a device by hand, or the lease expired.
 *
 * The network is then left alone by that pass (its block is not claimed again, its devices not
 * made again: that would leak both) and checked again at once by another full pass, which reads
 * the host's networks afresh — after any removal has committed — and forgets the network, or
 * re-publishes its record and remakes its devices (a repair, reported as one). Only a failure
 * that happens again in that pass is reported.
 */
import type { NsnetError } from '../errors';
import type { OverlayDevices } from './devices';
import type { Netlink } from '../netlink/netlink';

export class Doubts {
  private readonly doubted = new Set<string>();

  /** `recheck`: asks for a full pass at once. */
  constructor(
    private readonly nl: Netlink,
    private readonly recheck: () => void,
  ) {}

  /** Whether both of a network's devices exist (work on it begins by asking). */
  async present(d: OverlayDevices): Promise<boolean> {
    return (await this.nl.links.find(d.vxlan)) !== undefined && (await this.nl.links.find(d.bridge)) !== undefined;
  }

  /** Whether a failure is explained by the network going away under the work (see above). */
  async explained(d: OverlayDevices, e: unknown, had: boolean): Promise<boolean> {
    const code = (e as NsnetError)?.code;
    if (code === 'ERR_NETWORK_NOT_FOUND') return true;
    return code === 'ENODEV' && had && !(await this.present(d).catch(() => true));
  }

  /** Whether to hold back (a failure, a missing record): explained, and the network not doubted already. */
  holdBack(network: string, explained: boolean): boolean {
    if (!explained || this.doubted.has(network)) return false;
    this.doubted.add(network);
    this.recheck();
    return true;
  }

  /** The network's work went well (or it is no longer served): its next failure is held back again. */
  clear(network: string): void {
    this.doubted.delete(network);
  }

  /** Forgets the networks `keep` rejects. */
  retain(keep: (network: string) => boolean): void {
    for (const n of [...this.doubted]) if (!keep(n)) this.doubted.delete(n);
  }
}
