/**
 * How the overlay agent's loop waits between full passes: a timer that can be cut short. A
 * reason given while nobody waits is kept for the next wait (the strongest one: a stop beats a
 * resync, which beats a pass asked for), so a wake-up is never lost between two waits.
 */

/** Why the loop woke: its timer, a full pass asked for, the watch ended, or stop(). */
export type Wake = 'timer' | 'pass' | 'resync' | 'stop';

const STRENGTH: Record<Wake, number> = { timer: 0, pass: 1, resync: 2, stop: 3 };

export class Wakeup {
  private waiting: ((w: Wake) => void) | undefined;
  private pending: Wake | undefined;

  /** Wakes the loop now, or at its next wait. */
  poke(w: Wake): void {
    if (this.waiting) {
      const f = this.waiting;
      this.waiting = undefined;
      f(w);
    } else if (w !== 'timer' && STRENGTH[w] > STRENGTH[this.pending ?? 'timer']) this.pending = w;
  }

  /** Waits `ms`, or less when poked. */
  sleep(ms: number): Promise<Wake> {
    if (this.pending) {
      const w = this.pending;
      this.pending = undefined;
      return Promise.resolve(w);
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => this.poke('timer'), ms);
      this.waiting = (w) => {
        clearTimeout(t);
        resolve(w);
      };
    });
  }

  /** Forgets a kept reason (a new round of the loop starts with a full pass anyway). */
  clear(): void {
    this.pending = undefined;
  }
}
