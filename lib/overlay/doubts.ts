/**
 * Failures of the overlay agent's work on a network that this host's own removal of the network
 * explains, and are therefore no errors: a device that vanished while the agent worked on it
 * (ENODEV, and the device is gone now although it was there when the work began) or a network
 * definition gone from the control plane (ERR_NETWORK_NOT_FOUND). Within one process NetworkHost
 * removes a network's devices through the agent's queue, so this happens only when another
 * process of this host (the CLI beside `nsnet agent`) removes the network, or someone deletes a
 * device by hand.
 *
 * Such a failure is held back once and the network checked again by a full pass soon (after the
 * agent's backoff delay): that pass reads the host's networks afresh — after any removal has
 * committed — and forgets the network, or remakes its devices (a repair, reported as one). Only
 * a failure that happens again in the next pass is reported.
 */
import type { NsnetError } from '../errors';
import type { OverlayDevices } from '../drivers/overlay';
import type { Netlink } from '../netlink/netlink';

export class Doubts {
  private readonly doubted = new Set<string>();
  /** Set when a network began to be doubted: the next full pass should come soon. */
  recheck = false;

  constructor(private readonly nl: Netlink) {}

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

  /** Whether to hold a failure back: explained, and the network not doubted already. */
  holdBack(network: string, explained: boolean): boolean {
    if (!explained || this.doubted.has(network)) return false;
    this.doubted.add(network);
    this.recheck = true;
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
