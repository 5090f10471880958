/**
 * Forcing interleavings in overlay race tests: a gate that holds one call until the test opens
 * it, and a control plane seen through a proxy whose `snapshot` can be held and whose watch
 * events can be held back. Race tests built on these never depend on timing: each step waits
 * for a condition (the gate reached, an event delivered, a call made), never for a delay.
 */
import type { ControlPlane, ControlPlaneEvent, ControlPlaneWatch } from '../../lib/overlay/controlplane';

/**
 * Holds whoever calls `wait()` until `open()`; `reached` resolves at the first `wait()`, and
 * (with {@link hold}) `finished` once the held call has returned or thrown, and whatever its
 * caller chained on it has run.
 */
export class Gate {
  readonly reached: Promise<void>;
  readonly finished: Promise<void>;
  private readonly opened: Promise<void>;
  private hit!: () => void;
  private release!: () => void;
  /** @internal (hold) */
  done!: () => void;

  constructor() {
    this.reached = new Promise((r) => {
      this.hit = r;
    });
    this.opened = new Promise((r) => {
      this.release = r;
    });
    // (setImmediate: after the microtasks of the caller's own handlers.)
    this.finished = new Promise<void>((r) => {
      this.done = r;
    }).then(() => new Promise((r) => setImmediate(r)));
  }

  async wait(): Promise<void> {
    this.hit();
    await this.opened;
  }

  open(): void {
    this.release();
  }
}

type Fn = (...args: never[]) => unknown;

/**
 * Replaces `obj[key]` (a method, called with `obj` as this) so that its first call for which
 * `when(...args)` holds waits at the returned gate before the original runs; later calls run
 * as they are. `where: 'after'` lets the original run first and holds its result instead.
 */
export function hold<T extends object>(
  obj: T,
  key: keyof T & string,
  when: (...args: never[]) => boolean = () => true,
  where: 'before' | 'after' = 'before',
): Gate {
  const gate = new Gate();
  const original = obj[key] as unknown as Fn;
  let armed = true;
  (obj as Record<string, unknown>)[key] = async function (this: unknown, ...args: never[]) {
    if (!armed || !when(...args)) return original.apply(obj, args);
    armed = false;
    try {
      if (where === 'after') {
        const r = await original.apply(obj, args);
        await gate.wait();
        return r;
      }
      await gate.wait();
      return await original.apply(obj, args);
    } finally {
      gate.done();
    }
  };
  return gate;
}

/**
 * Resolves at the first call of `obj[key]` (the original then runs as it is); never, when `obj`
 * has no such method. A test that opens a gate "once the other side is waiting for it" names the
 * call the other side waits in.
 */
export function called(obj: object, key: string): Promise<void> {
  const original = (obj as Record<string, unknown>)[key];
  if (typeof original !== 'function') return new Promise(() => undefined);
  return new Promise((resolve) => {
    (obj as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
      resolve();
      return (original as (...a: unknown[]) => unknown).apply(obj, args);
    };
  });
}

/** Resolves with the index of the first of `ps` to settle (fulfilled or rejected). */
export function first(...ps: Promise<unknown>[]): Promise<number> {
  return Promise.race(
    ps.map((p, i) =>
      p.then(
        () => i,
        () => i,
      ),
    ),
  );
}

/** A control plane as its user sees it, with the hooks below; the control plane's own calls are untouched. */
export interface Intercepted {
  cp: ControlPlane;
  /** Holds the user's next snapshot() after it has been read (its result is returned when the gate opens). */
  holdSnapshot(): Gate;
  /** Events delivered to the user's watches so far. */
  delivered: ControlPlaneEvent[];
  /** Events kept back (while `holding`), not yet delivered. */
  kept(): ControlPlaneEvent[];
  /** While true, watch events are kept instead of delivered. */
  holding: boolean;
  /** Delivers the events kept meanwhile (the first `n` of them), in order. */
  flush(n?: number): void;
}

export function intercept(real: ControlPlane): Intercepted {
  let snapGate: Gate | undefined;
  const kept: { e: ControlPlaneEvent; to: (e: ControlPlaneEvent) => void }[] = [];
  const self: Intercepted = {
    cp: undefined as unknown as ControlPlane,
    delivered: [],
    kept: () => kept.map((k) => k.e),
    holding: false,
    holdSnapshot() {
      snapGate = new Gate();
      return snapGate;
    },
    flush(n = kept.length) {
      for (const { e, to } of kept.splice(0, n)) {
        self.delivered.push(e);
        to(e);
      }
    },
  };
  const snapshot = async (): Promise<unknown> => {
    const snap = await real.snapshot();
    const g = snapGate;
    snapGate = undefined;
    if (g) await g.wait();
    return snap;
  };
  const watch = (revision: number, listener: (e: ControlPlaneEvent) => void): ControlPlaneWatch =>
    real.watch(revision, (e) => {
      if (self.holding) kept.push({ e, to: listener });
      else {
        self.delivered.push(e);
        listener(e);
      }
    });
  self.cp = new Proxy(real, {
    get(target, key) {
      if (key === 'snapshot') return snapshot;
      if (key === 'watch') return watch;
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
  return self;
}
