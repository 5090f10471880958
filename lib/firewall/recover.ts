/**
 * Reading intent back from the firewall's elements, for rebuilding a lost record: every element
 * names its owner in its comment (`net:<network>`, `ep:<endpoint>`), so a network's settings
 * and an endpoint's published ports can be read off the sets without the store.
 */
import { epOwner, netOwner } from './elements';
import { entryOf, type PortEntry } from './published';
import type { OwnedElement } from './firewall';
import { SET } from './layout';

/** A network's settings as its elements show them. */
export interface NetworkSettings {
  /** Its bridge (the element of `bridges` that is not its VXLAN device). */
  bridge: string;
  /** Its IPv4 subnet, when an element carries it (a masqueraded, hairpinned or internal network). */
  subnet?: string;
  icc: boolean;
  internal: boolean;
  /**
   * Masquerade of its egress. An internal network has no egress, so its elements cannot say:
   * then the default (true) is given.
   */
  ipMasquerade: boolean;
  /** An overlay network's VXLAN device (it sits in `icc` paired with the bridge). */
  vxlan?: string;
}

const str = (k: unknown): string | undefined => (typeof k === 'string' ? k : undefined);
const pair = (k: unknown): [string, string] | undefined =>
  Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' && typeof k[1] === 'string' ? [k[0], k[1]] : undefined;

/**
 * A network's settings from the elements it owns (`owned`: {@link Firewall.listOwned}), or
 * undefined when it owns none.
 */
export function networkSettingsOf(owned: Map<string, OwnedElement[]>, network: string): NetworkSettings | undefined {
  const els = owned.get(netOwner(network));
  if (!els?.length) return undefined;
  const inSet = (set: string): OwnedElement[] => els.filter((e) => e.set === set);
  const devices = inSet(SET.bridges)
    .map((e) => str(e.key))
    .filter((d): d is string => d !== undefined);
  // The bridge is paired with itself in `icc` (or listed in `noicc_bridges`); an overlay's VXLAN
  // device is the other device in `bridges` (paired with the bridge both ways).
  const iccPairs = inSet(SET.icc)
    .map((e) => pair(e.key))
    .filter((p): p is [string, string] => p !== undefined);
  const noicc = inSet(SET.noiccBridges).map((e) => str(e.key));
  const bridge = devices.find((d) => noicc.includes(d) || iccPairs.some(([a, b]) => a === d && b === d)) ?? devices[0];
  if (bridge === undefined) return undefined;
  const vxlan = devices.find((d) => d !== bridge);
  const internal = inSet(SET.internal).some((e) => e.key === bridge);
  const hairpin = inSet(SET.hairpin)
    .map((e) => e.key)
    .find((k): k is unknown[] => Array.isArray(k) && k[1] === bridge);
  const subnet = str(inSet(SET.masqSubnets)[0]?.key) ?? str(hairpin?.[0]) ?? str(inSet(SET.internalSubnets)[0]?.key);
  const out: NetworkSettings = {
    bridge,
    icc: !inSet(SET.noiccBridges).some((e) => e.key === bridge),
    internal,
    ipMasquerade: internal || inSet(SET.masqSubnets).length > 0,
  };
  if (subnet !== undefined) out.subnet = subnet;
  if (vxlan !== undefined) out.vxlan = vxlan;
  return out;
}

/** The ports an endpoint publishes (one entry per host port), from the elements it owns. */
export function publishedPortsOf(owned: Map<string, OwnedElement[]>, endpointId: string): PortEntry[] {
  return (owned.get(epOwner(endpointId)) ?? []).flatMap((e) => {
    const entry = entryOf(e.set, e);
    return entry ? [entry] : [];
  });
}
