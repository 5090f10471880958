/**
 * The firewall side of a port handover (lib/state/ledger.ts, releaseClaims): when the attachment
 * that receives a port its container publishes on several networks leaves, the next attachment
 * of that container receives it. Each taker's ports are re-pointed in one firewall transaction
 * (the element replaced, never absent), before the leaving attachment's other elements go.
 *
 * The taker also takes the container's default route of each family whose route went through the
 * leaving attachment's gateway: replies to the published port's clients leave by the way they came
 * in, and the container keeps a way out when the leaving interface goes.
 *
 * How the runtimes compare, for a container on several networks with published ports: Docker
 * binds the ports through the endpoint that provides the container's default gateway (the highest
 * `gw-priority`, then network names in lexical order; chosen again at every connect and
 * disconnect, so the ports move with the gateway). Podman (netavark) writes DNAT rules for every
 * network the container is on, the first rule that matches wins (in no defined order), and every
 * network adds a default route (metric 100, round-robin unless `metric` says otherwise). nsnet
 * keeps Docker's coupling — one receiving attachment, which also has the default route — and
 * chooses by connect order, so the choice is stable and the caller decides it.
 */
import { NsnetError } from '../errors';
import type { Undo } from '../drivers/driver';
import type { Firewall } from '../firewall/firewall';
import type { FirewallPort } from '../firewall/published';
import type { EndpointRecord } from '../host-types';
import { Netlink } from '../netlink/netlink';
import type { StoreView } from '../store/types';
import { ENDPOINTS } from './collections';
import type { Handover } from './ledger';
import { hostIpOf } from './publish';

/**
 * Re-points in the firewall the ports `from` received to the attachments taking them over.
 * Returns the step that hands them back (undefined: nothing was handed over). Without nsnet's
 * tables (flushed), nothing is done: reconcile() rebuilds them from the records and the ledger,
 * which names the new receivers.
 */
export async function handOver(firewall: Firewall, view: StoreView, from: EndpointRecord, handovers: Handover[]): Promise<Undo | undefined> {
  const byTaker = new Map<string, Handover[]>();
  for (const h of handovers) byTaker.set(h.to, [...(byTaker.get(h.to) ?? []), h]);
  const done: (() => Promise<void>)[] = [];
  try {
    for (const [key, hs] of byTaker) {
      const taker = view.get<EndpointRecord>(ENDPOINTS, key);
      if (taker?.ipv4 === undefined) continue; // a damaged record: gc() repairs it and reconcile publishes
      const ports: FirewallPort[] = hs.map((h) => ({ protocol: h.protocol, hostIp: hostIpOf(h), hostPort: h.hostPort, containerPort: h.containerPort }));
      await firewall.handOver(from.id, addressed(taker, ports));
      if (from.ipv4 !== undefined) done.push(() => firewall.handOver(taker.id, addressed(from, ports)));
      const routesBack = await moveDefaultRoutes(from, taker, new Set(hs.map((h) => h.family)));
      if (routesBack) done.push(routesBack);
    }
  } catch (e) {
    for (const back of done.reverse()) await back().catch(() => undefined);
    if (e instanceof NsnetError && e.code === 'ERR_FIREWALL_MISSING') return undefined;
    throw e;
  }
  return done.length
    ? async () => {
        for (const back of [...done].reverse()) await back();
      }
    : undefined;
}

/**
 * In the container's namespace, the default route of each of `families` that goes through
 * `from`'s gateway now goes through `to`'s (same namespace only). Returns the step that puts them
 * back. A namespace that is gone has nothing to move.
 */
async function moveDefaultRoutes(from: EndpointRecord, to: EndpointRecord, families: Set<4 | 6>): Promise<(() => Promise<void>) | undefined> {
  if (to.netns === undefined || to.netns !== from.netns) return undefined;
  let c: Netlink;
  try {
    c = await Netlink.open({ netns: to.netns });
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND') return undefined;
    throw e;
  }
  const moved: string[] = [];
  try {
    for (const [family, was, now] of [
      [4, from.gateway, to.gateway],
      [6, from.gateway6, to.gateway6],
    ] as const) {
      if (!families.has(family) || was === undefined || now === undefined) continue;
      const current = (await c.routes.list({ family })).find((r) => r.dst === 'default');
      if (current?.gateway !== was) continue;
      await c.routes.replace({ dst: 'default', gateway: now });
      moved.push(was);
    }
  } finally {
    c.close();
  }
  if (!moved.length) return undefined;
  const netns = to.netns;
  return async () => {
    const back = await Netlink.open({ netns });
    try {
      for (const gw of moved) await back.routes.replace({ dst: 'default', gateway: gw }).catch(() => undefined);
    } finally {
      back.close();
    }
  };
}

function addressed(ep: EndpointRecord, ports: FirewallPort[]): { id: string; ipv4: string; ipv6?: string; ports: FirewallPort[] } {
  return { id: ep.id, ipv4: ep.ipv4!, ...(ep.ipv6 !== undefined ? { ipv6: ep.ipv6 } : {}), ports };
}
