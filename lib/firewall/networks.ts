/**
 * Planning a network's elements: what to add and remove so the sets hold exactly what the
 * network asks for (adding a network twice with the same settings changes nothing; with other
 * settings, its elements are replaced), refusing a bridge or a subnet another network holds.
 */
import * as ipaddr from 'ipaddr.js';
import { NsnetError } from '../errors';
import type { Element } from '../nftables/types';
import { keyId, netOwner, networkElements, parseOwner, type Net } from './elements';
import { SET, type SetName } from './layout';
import type { Plan } from './ports';

/** Whether two CIDRs (of one family; two families never overlap) share an address. */
export function subnetsOverlap(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  return na.kind() === nb.kind() && na.match(nb, Math.min(la, lb));
}

/** The subnet of a listed `hairpin` or `internal_subnets` element (either family). */
function subnetOf(set: SetName, el: Element): string | undefined {
  const k = set === SET.hairpin || set === SET.hairpin6 ? (el.key as unknown[])[0] : el.key;
  if (typeof k !== 'string') return undefined;
  return k.includes('/') ? k : `${k}/${k.includes(':') ? 128 : 32}`;
}

/**
 * Plans `n` into `plan` against the current elements.
 * @throws ERR_BRIDGE_IN_USE, ERR_SUBNET_OVERLAP (naming the other network)
 */
export function planNetwork(sets: Map<SetName, Element[]>, n: Net, plan: Plan): void {
  const owner = netOwner(n.name);
  const other = (el: Element) => el.comment !== owner;
  const bridgeHolder = (sets.get(SET.bridges) ?? []).find((el) => (el.key === n.bridge || (n.vxlan !== undefined && el.key === n.vxlan)) && other(el));
  if (bridgeHolder) {
    const net = parseOwner(bridgeHolder.comment)?.name;
    throw new NsnetError('ERR_BRIDGE_IN_USE', `bridge ${String(bridgeHolder.key)} belongs to network ${net ?? '(unknown)'}`, {
      bridge: n.bridge,
      ...(net ? { network: net } : {}),
    });
  }
  const checks: [SetName, string | undefined][] = [
    [SET.hairpin, n.subnet],
    [SET.internalSubnets, n.subnet],
    [SET.hairpin6, n.subnet6],
    [SET.internalSubnets6, n.subnet6],
  ];
  for (const [set, mine] of checks) {
    if (mine === undefined) continue;
    for (const el of sets.get(set) ?? []) {
      const s = subnetOf(set, el);
      if (!other(el) || !s || !subnetsOverlap(s, mine)) continue;
      const net = parseOwner(el.comment)?.name;
      throw new NsnetError('ERR_SUBNET_OVERLAP', `subnet ${mine} overlaps ${s} of network ${net ?? '(unknown)'}`, {
        subnet: mine,
        other: s,
        ...(net ? { network: net } : {}),
      });
    }
  }
  const want = networkElements(n);
  const wanted = new Set(want.map((p) => keyId(p.set, p.element.key)));
  const have = new Set<string>();
  for (const [set, els] of sets) {
    for (const el of els) {
      if (el.comment !== owner) continue;
      const id = keyId(set, el.key);
      if (wanted.has(id)) have.add(id);
      else plan.remove.push({ set, element: { key: el.key as never } });
    }
  }
  for (const p of want) if (!have.has(keyId(p.set, p.element.key))) plan.add.push(p);
}

/** Plans removing every element a network owns. */
export function planRemoveNetwork(sets: Map<SetName, Element[]>, name: string, plan: Plan): void {
  const owner = netOwner(name);
  for (const [set, els] of sets) for (const el of els) if (el.comment === owner) plan.remove.push({ set, element: { key: el.key as never } });
}
