/**
 * Planning published-port changes: which elements to add and remove, decided by asking a
 * {@link Lookup} before the transaction, so a taken port is refused with the holder's name.
 *
 * Exclusivity rules, within each family: a (protocol, port) published on every address excludes
 * the same port on any single address of that family and the other way round; on one address it
 * excludes only that address. The two families never exclude each other: `0.0.0.0:8080` and
 * `[::]:8080` are two claims (an omitted host address makes both, in one transaction).
 * The check reads the family's two maps (and its `hostip_ports` index, which says in O(1)
 * whether some single address holds a (protocol, port), so publishing on every address needs
 * no scan). The
 * transaction then adds with NLM_F_EXCL: a concurrent publisher of the same key in the same map
 * loses with EEXIST, reported as ERR_PORT_IN_USE. A race between a publisher on every address
 * and one on a single address is not seen by the kernel (different maps); callers that may race
 * so serialize their operations (the façade does, under its store lock).
 */
import { NsnetError } from '../errors';
import { keyId, parseOwner, type IpFamily, type Placed } from './elements';
import { describePort, hostIpOf, showIp, indexElement, portElement, portKey, portSets, type PortEntry } from './published';
import type { Lookup } from './lookup';

/** Element changes for one transaction. */
export interface Plan {
  remove: Placed[];
  /** Added unless present (no NLM_F_EXCL): the derived index. */
  ensure: Placed[];
  /** Added with NLM_F_EXCL. */
  add: Placed[];
}

export const emptyPlan = (): Plan => ({ remove: [], ensure: [], add: [] });

/** ERR_PORT_IN_USE naming the holder (from its element's comment). */
export function portInUse(
  e: { family: IpFamily; hostIp?: string; protocol: string; hostPort: number },
  holder: { hostIp?: string; comment?: string } | undefined,
): NsnetError {
  const owner = parseOwner(holder?.comment);
  const who = owner ? `${owner.kind} ${owner.name}` : 'an element without owner';
  const where =
    holder && holder.hostIp !== e.hostIp
      ? ` (published on ${showIp(hostIpOf({ family: e.family, ...(holder.hostIp !== undefined ? { hostIp: holder.hostIp } : {}) }))})`
      : '';
  return new NsnetError('ERR_PORT_IN_USE', `${describePort(e)} is already published by ${who}${where}`, {
    protocol: e.protocol,
    family: e.family,
    hostIp: hostIpOf(e),
    hostPort: e.hostPort,
    holder: holder?.comment ?? null,
    ...(owner?.kind === 'endpoint' ? { endpoint: owner.name } : {}),
  });
}

/**
 * The point queries {@link planPublish} will make for `entries`, asked now, together: with a
 * lookup that keeps its answers (KernelLookup), the plan then costs one round trip.
 */
export function askPublish(look: Lookup, entries: PortEntry[]): Promise<unknown>[] {
  const out: Promise<unknown>[] = [...new Set(entries.map((e) => e.containerIp))].map((ip) => look.internalSubnetOf(ip));
  for (const e of entries) {
    const { set, key } = portKey(e);
    const sets = portSets(e.family);
    out.push(look.get(set, key), e.hostIp === undefined ? look.get(sets.index, [e.protocol, e.hostPort]) : look.get(sets.any, [e.protocol, e.hostPort]));
  }
  return out;
}

/**
 * Plans publishing `entries` for `owner`. Entries already published by the same owner with the
 * same container address and port are left as they are (idempotent).
 * @throws ERR_PORT_IN_USE, ERR_NETWORK_INTERNAL
 */
export async function planPublish(look: Lookup, owner: string, entries: PortEntry[], plan: Plan = emptyPlan()): Promise<Plan> {
  for (const ip of new Set(entries.map((e) => e.containerIp))) {
    const internal = await look.internalSubnetOf(ip);
    if (internal) {
      const net = parseOwner(internal.comment);
      throw new NsnetError('ERR_NETWORK_INTERNAL', `${ip} is on internal network ${net?.name ?? String(internal.key)}: its ports cannot be published`, {
        containerIp: ip,
        ...(net ? { network: net.name } : {}),
      });
    }
  }
  const staleIndex = new Set<string>();
  const wantIndex = new Set<string>();
  await Promise.all(
    entries.map(async (e) => {
      const { set, key } = portKey(e);
      const sets = portSets(e.family);
      const [own, cross] = await Promise.all([
        look.get(set, key),
        e.hostIp === undefined ? look.get(sets.index, [e.protocol, e.hostPort]) : look.get(sets.any, [e.protocol, e.hostPort]),
      ]);
      if (own) {
        const v = own.value as unknown[] | undefined;
        if (own.comment === owner && v?.[0] === e.containerIp && v?.[1] === e.containerPort) return;
        throw portInUse(e, { ...(e.hostIp !== undefined ? { hostIp: e.hostIp } : {}), ...(own.comment !== undefined ? { comment: own.comment } : {}) });
      }
      if (e.hostIp !== undefined) {
        if (cross) throw portInUse(e, cross.comment !== undefined ? { comment: cross.comment } : {});
        wantIndex.add(JSON.stringify([e.family, e.protocol, e.hostPort]));
      } else if (cross) {
        // The index says some single address holds it: find who (one listing per operation).
        const holders = await look.hostipHolders(e.family, e.protocol, e.hostPort);
        const h = holders[0];
        if (h) throw portInUse(e, { hostIp: String((h.key as unknown[])[0]), ...(h.comment !== undefined ? { comment: h.comment } : {}) });
        staleIndex.add(JSON.stringify([e.family, e.protocol, e.hostPort]));
      }
      plan.add.push(portElement(e, owner));
    }),
  );
  for (const k of staleIndex) {
    const [f, p, port] = JSON.parse(k) as [IpFamily, PortEntry['protocol'], number];
    plan.remove.push(indexElement(f, p, port));
  }
  for (const k of wantIndex) {
    const [f, p, port] = JSON.parse(k) as [IpFamily, PortEntry['protocol'], number];
    plan.ensure.push(indexElement(f, p, port));
  }
  return plan;
}

/**
 * Plans handing published entries over from owner `from` to owner `to` (its container address
 * and port are the entries'): an element `from` (or `to`) holds under an entry's key is replaced —
 * removed and added again in the same transaction, so the port is never unpublished in between;
 * an entry with no element is planned as {@link planPublish} plans it.
 * @throws ERR_PORT_IN_USE (another owner holds one), ERR_NETWORK_INTERNAL
 */
export async function planHandOver(look: Lookup, from: string, to: string, entries: PortEntry[], plan: Plan = emptyPlan()): Promise<Plan> {
  const fresh: PortEntry[] = [];
  await Promise.all(
    entries.map(async (e) => {
      const { set, key } = portKey(e);
      const own = await look.get(set, key);
      if (!own) {
        fresh.push(e);
        return;
      }
      if (own.comment !== from && own.comment !== to)
        throw portInUse(e, { ...(e.hostIp !== undefined ? { hostIp: e.hostIp } : {}), ...(own.comment !== undefined ? { comment: own.comment } : {}) });
      plan.remove.push({ set, element: { key } });
      plan.add.push(portElement(e, to));
    }),
  );
  if (fresh.length) await planPublish(look, to, fresh, plan);
  return plan;
}

/**
 * Plans unpublishing `entries` of `owner`: only elements this owner holds are removed (another
 * owner's element under the same key is left alone). Returns the entries actually removed.
 */
export async function planUnpublish(look: Lookup, owner: string, entries: PortEntry[], plan: Plan = emptyPlan()): Promise<PortEntry[]> {
  const removed: PortEntry[] = [];
  const seen = new Set<string>();
  await Promise.all(
    entries.map(async (e) => {
      const { set, key } = portKey(e);
      const id = keyId(set, key);
      if (seen.has(id)) return;
      seen.add(id);
      const own = await look.get(set, key);
      if (!own || own.comment !== owner) return;
      const v = own.value as unknown[] | undefined;
      plan.remove.push({ set, element: { key } });
      removed.push({ ...e, containerIp: String(v?.[0] ?? e.containerIp), containerPort: Number(v?.[1] ?? e.containerPort) });
    }),
  );
  await dropIndexIfLast(look, removed, plan);
  return removed;
}

/**
 * For entries removed from a `published_hostip` map: removes the index element of a (family,
 * protocol, port) no other single address holds any more.
 */
export async function dropIndexIfLast(look: Lookup, removed: PortEntry[], plan: Plan): Promise<void> {
  const gone = new Set(
    removed
      .filter((e) => e.hostIp !== undefined)
      .map((e) => {
        const k = portKey(e);
        return keyId(k.set, k.key);
      }),
  );
  const pairs = new Map<string, PortEntry>();
  for (const e of removed) if (e.hostIp !== undefined) pairs.set(`${e.family} ${e.protocol} ${e.hostPort}`, e);
  for (const e of pairs.values()) {
    const sets = portSets(e.family);
    const others = (await look.hostipHolders(e.family, e.protocol, e.hostPort)).filter((h) => !gone.has(keyId(sets.hostip, h.key)));
    if (others.length === 0 && (await look.get(sets.index, [e.protocol, e.hostPort]))) plan.remove.push(indexElement(e.family, e.protocol, e.hostPort));
  }
}
