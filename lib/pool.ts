/**
 * The warm pool (issue 18, item 7): endpoints made ahead of time, so that a connect only hands
 * one over. `NetworkHost.prepare(network, n)` makes sure `n` **slots** are ready on a network: a
 * network namespace made by nsnet, with loopback up and the container's interface in it — the
 * veth's peer, addressed (a lease of the network's pool), up, with its default route — and the
 * host end on the bridge. A connect that names no `netns` takes a slot: the endpoint's record
 * takes the slot's place (its lease and interface become the endpoint's), the host end's mark
 * moves to the endpoint, the ports are published, and the caller runs its container in the
 * slot's namespace (`endpoint.netns`), as AWS Lambda starts functions in network slots made at
 * boot.
 *
 * Decision — why whole namespaces, not parked peers moved into the container's namespace: a
 * veth moved between namespaces waits for an RCU grace period in the kernel
 * (`synchronize_net()` in `__dev_change_net_namespace`), measured here at ~19 ms per move
 * against ~0.9 ms to create a pair with its peer born in place (bench/results/connect.md). A
 * pool of parked peers would make connect 20× slower; a pool of ready namespaces makes it a
 * handover with nothing to create in the kernel. Callers that bring their own namespace (CNI,
 * Docker, podman) keep the normal connect.
 *
 * Slots are recorded as endpoints of their network (ids `.slot-…`, which no caller's endpoint id
 * can be) with `slot: true`: gc, reconcile and repair treat them as any endpoint (a crash leaves
 * nothing they cannot explain), listings and DNS leave them out. One small document per network
 * (`pool/<network>`) lists the ready slots, so taking one reads two documents however many
 * endpoints the host has. An endpoint born from a slot has `ownNetns: true`: disconnecting it
 * removes the namespace too (the container is expected to be gone, as with any disconnect).
 * @internal
 */
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { NsnetError } from './errors';
import type { Driver, DriverContext, UndoLog } from './drivers/driver';
import type { EndpointRecord, NetworkRecord } from './host-types';
import { macFromIp, type Ipam } from './ipam/index';
import { NETNS_DIR, Netns } from './netns';
import { ENDPOINTS, epKey } from './state/collections';
import type { StoreTx, StoreView } from './store/index';

/** Slot ids start with it: an endpoint id must start with a letter or digit. */
export const SLOT_PREFIX = '.slot-';
/** The pool's collection: per network, the ids of its ready slots. */
export const POOL = 'pool';
/** How many slots are made at once (their round trips overlap). */
const PARALLEL = 8;

interface PoolDoc {
  slots: string[];
}

/** Whether an endpoint id is a slot's. */
export function isSlot(id: string): boolean {
  return id.startsWith(SLOT_PREFIX);
}

/** The name prefix of the namespaces this state directory's slots live in (gc knows its own). */
export function slotNetnsPrefix(stateDir: string): string {
  return `nsnet-${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 8)}-`;
}

/** The ready slots of a network, oldest first (a damaged pool document counts as none). */
function readyOf(view: StoreView, network: string): string[] {
  try {
    return view.get<PoolDoc>(POOL, network)?.slots ?? [];
  } catch {
    return [];
  }
}

/** Removes a namespace nsnet made for a slot (already gone is fine). */
export async function removeSlotNetns(netns: string): Promise<void> {
  await Netns.remove(path.basename(netns)).catch((e) => {
    if (!(e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND')) throw e;
  });
}

/** The warm pool of one NetworkHost (its store transactions are the caller's). */
export class WarmPool {
  constructor(
    private readonly ctx: DriverContext,
    private readonly ipam: Ipam,
    private readonly stateDir: string,
  ) {}

  /** How many slots of `network` are ready. */
  ready(view: StoreView, network: string): number {
    return readyOf(view, network).filter((id) => view.get(ENDPOINTS, epKey(network, id)) !== undefined).length;
  }

  /**
   * Makes slots until `count` are ready (the caller made sure of the network). Each slot's
   * kernel objects are undone if a later step or the commit fails.
   */
  async fill(tx: StoreTx, net: NetworkRecord, driver: Driver, count: number, undo: UndoLog): Promise<number> {
    const ready = readyOf(tx, net.name).filter((id) => tx.get(ENDPOINTS, epKey(net.name, id)) !== undefined);
    const a = driver.addressing!(net as never);
    const made: string[] = [];
    for (let start = ready.length; start < count; start += PARALLEL) {
      const batch = Array.from({ length: Math.min(PARALLEL, count - start) }, () => {
        const id = `${SLOT_PREFIX}${randomBytes(6).toString('hex')}`;
        const netns = path.join(NETNS_DIR, `${slotNetnsPrefix(this.stateDir)}${id.slice(SLOT_PREFIX.length)}`);
        const lease = this.ipam.allocate(tx, net.name, { owner: id });
        const rec: EndpointRecord = {
          id,
          network: net.name,
          netns,
          ifname: 'eth0',
          ports: [],
          slot: true,
          created: new Date().toISOString(),
          mac: macFromIp(lease.ipv4),
          ipv4: lease.ipv4,
          gateway: a.gateway,
          ...(lease.ipv6 ? { ipv6: lease.ipv6 } : {}),
          ...(lease.ipv6 && a.gateway6 ? { gateway6: a.gateway6 } : {}),
        };
        driver.complete?.(net as never, rec);
        return rec;
      });
      await Promise.all(
        batch.map(async (rec) => {
          await Netns.create(path.basename(rec.netns!));
          undo(() => removeSlotNetns(rec.netns!));
          await driver.attach(this.ctx, net as never, rec, undo);
        }),
      );
      for (const rec of batch) {
        tx.put(ENDPOINTS, epKey(net.name, rec.id), rec);
        made.push(rec.id);
      }
    }
    tx.put(POOL, net.name, { slots: [...ready, ...made] } satisfies PoolDoc);
    return ready.length + made.length;
  }

  /**
   * Takes the oldest ready slot of `network` for endpoint `rec` (its id and names): the slot's
   * record and lease become the endpoint's, its ports are claimed by `claim`, its kernel objects
   * are handed over by the driver. Undefined when no slot is ready.
   */
  async take(
    tx: StoreTx,
    net: NetworkRecord,
    driver: Driver,
    rec: EndpointRecord,
    undo: UndoLog,
    claim: (ep: EndpointRecord) => Promise<EndpointRecord>,
    /** Records the endpoint (its record is final then: the caller may commit it ahead of the adoption). */
    record: (ep: EndpointRecord) => void,
  ): Promise<EndpointRecord | undefined> {
    const ready = readyOf(tx, net.name);
    let slot: EndpointRecord | undefined;
    while (ready.length && !slot) slot = tx.get<EndpointRecord>(ENDPOINTS, epKey(net.name, ready.shift()!));
    if (!slot) return undefined;
    tx.put(POOL, net.name, { slots: ready } satisfies PoolDoc);
    const { slot: _s, id: _i, created: _c, ports: _p, ...kept } = slot;
    const ep: EndpointRecord = { ...rec, ...kept, ownNetns: true };
    // The slot's lease becomes the endpoint's (the same addresses, in the same transaction).
    this.ipam.release(tx, net.name, slot.id);
    this.ipam.allocate(tx, net.name, { owner: ep.id, ipv4: slot.ipv4!, ipv6: slot.ipv6 ?? false });
    // Its ports, now that its addresses are known: `claim` fills them in and gives the record as
    // the driver publishes it (the ports this attachment receives).
    const receiving = await claim(ep);
    tx.delete(ENDPOINTS, epKey(net.name, slot.id));
    record(ep);
    await driver.adopt!(this.ctx, net as never, slot, receiving, undo);
    return ep;
  }

  /** Removes the slots of a network that is going (kernel objects, leases, records, its pool document). */
  async drain(tx: StoreTx, net: NetworkRecord, driver: Driver, slots: EndpointRecord[]): Promise<void> {
    for (const slot of slots) {
      await driver.forget?.(this.ctx, net as never, slot);
      if (slot.netns) await removeSlotNetns(slot.netns);
      this.ipam.release(tx, net.name, slot.id);
      tx.delete(ENDPOINTS, epKey(net.name, slot.id));
    }
    tx.delete(POOL, net.name);
  }
}
