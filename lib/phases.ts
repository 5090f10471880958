/**
 * Bench-only instrumentation: where the time of an operation goes. The façade and the layers
 * below call {@link phase} at the end of each step of a connect or disconnect (validation,
 * store, IPAM, link creation, addresses/routes, firewall, commit) and {@link count} for what
 * they send (netlink requests, store syncs). Nothing happens unless a sink is installed, which
 * only the benchmark does (bench/connect.ts): the cost when off is one property read per mark.
 * Tests never time anything.
 * @internal
 */

/** Receives the marks (the benchmark's recorder). */
export interface PhaseSink {
  /** A step named `name` just ended (its time runs from the previous mark). */
  mark(name: string): void;
  /** `n` more of `what` ('netlink requests', 'fdatasync'). */
  count(what: string, n: number): void;
}

let sink: PhaseSink | undefined;

/** Installs (or, with undefined, removes) the sink. */
export function setPhaseSink(s: PhaseSink | undefined): void {
  sink = s;
}

/** Marks the end of the step `name`. */
export function phase(name: string): void {
  if (sink) sink.mark(name);
}

/** Counts `n` of `what`. */
export function count(what: string, n = 1): void {
  if (sink) sink.count(what, n);
}
