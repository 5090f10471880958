/**
 * What the resolver says to a query from a network, given that network's zone: an answer from
 * its names, NXDOMAIN for a name that would be one of them but is not there, REFUSED for a client
 * from elsewhere — or "forward" for the rest. Pure: no I/O, no clock.
 *
 * - Names resolve only for clients inside the network's subnets (another network's containers,
 *   or a host beyond the gateway, get REFUSED for everything: the resolver is not an open one).
 * - A, AAAA, ANY for a name of the network answer its addresses (authoritative, TTL 0: a name
 *   must stop resolving the moment its endpoint goes, and a stub cache inside the container
 *   would otherwise keep it). Other types for such a name: NOERROR with no records.
 * - PTR for an address inside the network: its endpoint's name, or NXDOMAIN.
 * - A, AAAA, ANY for a single-label name that is not there: NXDOMAIN at once — no upstream
 *   serves bare names, and a container asking for a peer that has not started should not wait
 *   for one to say so.
 */
import type * as dnsPacket from 'dns-packet';
import { dnsKey } from './names';
import { RCODE, reply, udpLimit, type Query } from './message';
import { reverseAddress, type Zone } from './records';

export type Outcome = 'local' | 'nxdomain' | 'refused';

/**
 * `cacheable`: the same query from the same client gets the same bytes (but the id) until the
 * records change — not so for a name with several addresses, whose order rotates.
 */
export type Decision = { kind: 'reply'; response: Buffer; outcome: Outcome; cacheable: boolean } | { kind: 'forward' };

export interface Asked {
  /** The client's address. */
  src: string;
  transport: 'udp' | 'tcp';
}

const ADDRESS_TYPES = new Set(['A', 'AAAA', 'ANY']);

export function decide(q: Query, zone: Zone, asked: Asked): Decision {
  const limit = asked.transport === 'udp' ? udpLimit(q) : 65535;
  const ra = zone.forwards;
  if (!zone.contains(asked.src)) return { kind: 'reply', response: reply(q, { rcode: RCODE.REFUSED }, limit), outcome: 'refused', cacheable: true };
  const { question } = q;
  const cls = question.class ?? 'IN';
  if (!q.exact || (cls !== 'IN' && cls !== 'ANY')) return { kind: 'forward' };
  const key = dnsKey(question.name);
  if (key === undefined) return { kind: 'forward' };
  const type: string = question.type;
  if (type === 'PTR') {
    const addr = reverseAddress(key);
    if (addr !== undefined && zone.contains(addr)) {
      const target = zone.ptr.get(addr);
      if (target === undefined)
        return { kind: 'reply', response: reply(q, { rcode: RCODE.NXDOMAIN, aa: true, ra }, limit), outcome: 'nxdomain', cacheable: true };
      const answers: dnsPacket.Answer[] = [{ type: 'PTR', name: question.name, ttl: 0, class: 'IN', data: target }];
      return { kind: 'reply', response: reply(q, { rcode: RCODE.NOERROR, aa: true, ra, answers }, limit), outcome: 'local', cacheable: true };
    }
  }
  const host = zone.names.get(key);
  if (host) {
    const answers: dnsPacket.Answer[] = [];
    if (type === 'A' || type === 'ANY') for (const a of rotate(host.v4)) answers.push({ type: 'A', name: question.name, ttl: 0, class: 'IN', data: a });
    if (type === 'AAAA' || type === 'ANY') for (const a of rotate(host.v6)) answers.push({ type: 'AAAA', name: question.name, ttl: 0, class: 'IN', data: a });
    const cacheable = host.v4.length < 2 && host.v6.length < 2;
    return { kind: 'reply', response: reply(q, { rcode: RCODE.NOERROR, aa: true, ra, answers }, limit), outcome: 'local', cacheable };
  }
  if (!key.includes('.') && ADDRESS_TYPES.has(type))
    return { kind: 'reply', response: reply(q, { rcode: RCODE.NXDOMAIN, aa: true, ra }, limit), outcome: 'nxdomain', cacheable: true };
  return { kind: 'forward' };
}

/** Several endpoints under one name (an alias they share): a different first one each time, as round-robin DNS. */
let turn = 0;
function rotate(list: string[]): string[] {
  if (list.length < 2) return list;
  const k = turn++ % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}
