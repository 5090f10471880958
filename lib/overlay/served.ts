/**
 * The networks an overlay agent serves on this host, and when each was last joined or left here.
 *
 * The agent reads the host's recorded networks (NetworkHost's store) outside its queue and acts
 * on the list inside it, later; meanwhile this host may have joined or left a network itself.
 * "When" is a counter of those joins and leaves (not a clock: two in one millisecond are still
 * ordered), so a list can be compared with what happened after it was read: a network joined
 * since is kept even if the list misses it (its record may not be committed yet), and one left
 * since is not adopted again even if the list still has it (its removal may not be committed
 * yet — adopting it would make its devices again and claim its block again).
 */
import type { OverlayDevices } from './devices';

export class ServedNetworks {
  private epoch = 0;
  private readonly devices = new Map<string, OverlayDevices>();
  private readonly joinedAt = new Map<string, number>();
  private readonly leftAt = new Map<string, number>();

  /** The counter now: what a list read now is compared with. */
  get now(): number {
    return this.epoch;
  }

  get(network: string): OverlayDevices | undefined {
    return this.devices.get(network);
  }

  has(network: string): boolean {
    return this.devices.has(network);
  }

  entries(): IterableIterator<[string, OverlayDevices]> {
    return this.devices.entries();
  }

  values(): IterableIterator<OverlayDevices> {
    return this.devices.values();
  }

  /** Serves a network from now on (joined or adopted here). */
  serve(d: OverlayDevices): void {
    this.devices.set(d.network, d);
    this.joinedAt.set(d.network, ++this.epoch);
    this.leftAt.delete(d.network);
  }

  /** Stops serving a network because a list no longer has it (not a leave of this host's). */
  forget(network: string): void {
    this.devices.delete(network);
  }

  /** Stops serving a network that this host left or removed. */
  left(network: string): void {
    this.devices.delete(network);
    this.joinedAt.delete(network);
    this.leftAt.set(network, ++this.epoch);
  }

  /**
   * Compares a list of the host's networks read at `asked` (see {@link now}) with what is
   * served: the networks to forget (served, not listed with the same block, and joined before
   * the list was read) and those to adopt (listed, not served, and not left since).
   */
  compare(listed: { network: string; subnet: string }[], asked: number): { forget: string[]; adopt: { network: string; subnet: string }[] } {
    const want = new Map(listed.map((l) => [l.network, l.subnet]));
    const forget = [...this.devices].filter(([network, d]) => want.get(network) !== d.subnet && (this.joinedAt.get(network) ?? 0) <= asked).map(([n]) => n);
    const adopt = [...want]
      .filter(([network]) => (!this.devices.has(network) || forget.includes(network)) && (this.leftAt.get(network) ?? 0) <= asked)
      .map(([network, subnet]) => ({ network, subnet }));
    return { forget, adopt };
  }
}
