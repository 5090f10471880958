/**
 * The firewall side of a port handover (lib/state/ledger.ts, releaseClaims): when the attachment
 * that receives a port its container publishes on several networks leaves, the next attachment
 * of that container receives it. Each taker's ports are re-pointed in one firewall transaction
 * (the element replaced, never absent), before the leaving attachment's other elements go.
 *
 * Docker and podman behave alike for a container published on several networks: one binding per
 * container, its traffic sent to one of the container's addresses. nsnet names which: the first
 * attachment, in connect order, then the next.
 */
import { NsnetError } from '../errors';
import type { Undo } from '../drivers/driver';
import type { Firewall } from '../firewall/firewall';
import type { FirewallPort } from '../firewall/published';
import type { EndpointRecord } from '../host-types';
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
    }
  } catch (e) {
    for (const back of done.reverse()) await back().catch(() => undefined);
    if (e instanceof NsnetError && e.code === 'ERR_FIREWALL_MISSING') return undefined;
    throw e;
  }
  return done.length ? async () => { for (const back of [...done].reverse()) await back(); } : undefined;
}

function addressed(ep: EndpointRecord, ports: FirewallPort[]): { id: string; ipv4: string; ipv6?: string; ports: FirewallPort[] } {
  return { id: ep.id, ipv4: ep.ipv4!, ...(ep.ipv6 !== undefined ? { ipv6: ep.ipv6 } : {}), ports };
}
