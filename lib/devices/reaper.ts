/**
 * Deletes retired veths in batches: deleting a link costs the kernel an RCU grace period
 * (~16 ms) whatever the count, so disconnect retires a pair at once (lib/devices/veth.ts) and
 * this deletes every retired pair in one group delete a moment later.
 */
import type { Netlink } from '../netlink/netlink';
import { reapRetired } from './veth';

/** How long a retired veth waits for others to be deleted with it, ms. */
const BATCH_WINDOW = 50;

export class VethReaper {
  private timer: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;
  /** The reap that runs after the one in flight (for veths retired while it runs). */
  private next: Promise<void> | undefined;

  constructor(private readonly host: Netlink) {}

  /** Deletes retired veths soon (one kernel operation for all of them); a failure is left to gc(). */
  soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.now().catch(() => undefined);
    }, BATCH_WINDOW);
    this.timer.unref();
  }

  /** Deletes every veth retired until now, and resolves when they are gone. */
  now(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.reaping) {
      this.reaping = reapRetired(this.host).finally(() => {
        this.reaping = undefined;
      });
      return this.reaping;
    }
    // A group delete in flight may have started before the caller's veth was retired: the
    // caller waits for the next one, which every caller arriving meanwhile shares.
    this.next ??= this.reaping
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.now();
      });
    return this.next;
  }
}
