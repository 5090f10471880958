/**
 * Whole-table writes: the elements of a desired state (for rebuild after `nft flush ruleset`),
 * the elements worth keeping across a repair, and turning element lists into transaction
 * operations (one per set).
 */
import { NsnetError } from '../errors';
import type { Transaction } from '../nftables/transaction';
import type { Element } from '../nftables/types';
import * as v from '../validate';
import { epOwner, normalizeEndpoint, normalizeNetwork, type FirewallEndpoint, type FirewallNetwork, type Net, type Placed } from './elements';
import { entryOf, type PortEntry } from './published';
import { INET, SET, SETS, tableOf, type SetName } from './layout';
import { SnapshotLookup, type Snapshot } from './lookup';
import { planNetwork } from './networks';
import { emptyPlan, planPublish, type Plan } from './ports';

/** Everything the firewall should hold, as the store records it (for `Firewall.rebuild`). */
export interface FirewallState {
  networks: FirewallNetwork[];
  endpoints: FirewallEndpoint[];
}

/**
 * Every element of a desired state, checked as the element operations check them (a taken
 * bridge, overlapping subnets, a port published twice, an endpoint on no network's bridge).
 * @throws ERR_BRIDGE_IN_USE, ERR_SUBNET_OVERLAP, ERR_PORT_IN_USE, ERR_NETWORK_NOT_FOUND, ERR_NETWORK_INTERNAL
 */
export async function stateElements(state: FirewallState): Promise<Placed[]> {
  v.knownKeys(state, ['networks', 'endpoints'], 'firewall state');
  if (!Array.isArray(state.networks) || !Array.isArray(state.endpoints))
    throw new NsnetError('ERR_INVALID_ARGUMENT', 'firewall state needs networks and endpoints arrays');
  const look = new SnapshotLookup();
  const placed: Placed[] = [];
  const record = (plan: Plan): void => {
    for (const p of [...plan.ensure, ...plan.add]) {
      if (look.has(p.set, p.element.key)) continue; // the index, once per (protocol, port)
      look.record(p.set, [p.element as Element]);
      placed.push(p);
    }
  };
  const byBridge = new Map<string, Net>();
  const names = new Set<string>();
  for (const raw of state.networks) {
    const n = normalizeNetwork(raw);
    if (names.has(n.name)) throw new NsnetError('ERR_INVALID_ARGUMENT', `network ${n.name} appears twice`);
    names.add(n.name);
    byBridge.set(n.bridge, n);
    const plan = emptyPlan();
    planNetwork(look.sets(), n, plan);
    record(plan);
  }
  for (const raw of state.endpoints) {
    const e = normalizeEndpoint(raw);
    const n = byBridge.get(e.bridge);
    if (!n) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `endpoint ${e.id}: ${e.bridge} is no network's bridge`, { bridge: e.bridge });
    const plan = emptyPlan();
    if (!n.icc) plan.add.push({ set: SET.noiccPorts, element: { key: e.hostIfname, comment: epOwner(e.id) } });
    await planPublish(look, epOwner(e.id), e.ports, plan);
    record(plan);
  }
  return placed;
}

/** Elements of a snapshot to carry over a repair: those of sets the layout still has, same types. */
export function keptElements(snap: Snapshot): Placed[] {
  const out: Placed[] = [];
  for (const { spec, where } of SETS) {
    const rs = where === INET ? snap.inet : snap.l2;
    const s = rs?.sets.find((x) => x.name === spec.name);
    if (!s) continue;
    const key = Array.isArray(spec.key) ? spec.key.join(' . ') : spec.key;
    if (s.key?.join(' . ') !== key || s.interval !== (spec.interval === true)) continue;
    for (const el of s.elements) {
      const e: Placed = { set: spec.name as SetName, element: { key: el.key as never } };
      if (el.value !== undefined) e.element.value = el.value as never;
      if (el.comment !== undefined) e.element.comment = el.comment;
      out.push(e);
    }
  }
  return out;
}

/** Adds one operation per set for these elements. */
export function writeElements(tx: Transaction, op: 'addElements' | 'ensureElements' | 'deleteElements', elements: Placed[]): void {
  const bySet = new Map<SetName, Placed[]>();
  for (const p of elements) {
    const list = bySet.get(p.set);
    if (list) list.push(p);
    else bySet.set(p.set, [p]);
  }
  for (const [set, ps] of bySet) tx[op]({ ...tableOf(set), set, elements: ps.map((p) => p.element) });
}

/** The published-port entries a plan adds. */
export function addedEntries(plan: Plan): PortEntry[] {
  return plan.add.map((p) => entryOf(p.set, p.element)).filter((x): x is PortEntry => x !== undefined);
}
