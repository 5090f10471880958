/**
 * Rebuilding a lost network or endpoint record from what outlives it: the kernel's ownership
 * marks (link aliases `nsnet:<network>[:<endpoint>]`, firewall element comments) and the
 * store's other documents (the network's address pool, the endpoint's lease, its port claims).
 * A record is only rebuilt when they determine it; otherwise the answer says why not, and the
 * caller drops it.
 *
 * What can be rebuilt:
 * - the predefined networks (host, none, container): their records are always the same;
 * - a bridge network: its bridge (marked `nsnet:<name>`) and its address pool; icc, internal
 *   and masquerade from its firewall elements (defaults when it has none, as for the default
 *   network before its first connect). Labels are not in the kernel: they are lost;
 * - a bridge or overlay endpoint: its veth's host end (marked `nsnet:<network>:<id>`), the
 *   container end found by the peer's index in a namespace reachable by path, its addresses
 *   (lease, else the container end's), its published ports (firewall elements, and its claims
 *   in the ledger: a port another attachment of its container receives has no element of its);
 * - a macvlan endpoint: its child (marked) in a namespace reachable by path;
 * - a host-mode endpoint: its port claims in the ledger.
 * What cannot: overlay networks (their settings live in the control plane), macvlan networks
 * (their parent and mode are marked nowhere), none and container endpoints (nothing in the
 * kernel is theirs), and anything whose marks are gone. `created` of a rebuilt record is the
 * time of the repair.
 * @internal
 */
import { hostIfname, ownerAlias } from '../devices/marks';
import type {
  BridgeNetworkRecord,
  EndpointRecord,
  MacvlanNetworkRecord,
  NetworkRecord,
  OverlayNetworkRecord,
  PlainNetworkRecord,
  PortMapping,
} from '../host-types';
import { NsnetError } from '../errors';
import type { OwnedElement } from '../firewall/firewall';
import { networkSettingsOf, publishedPortsOf } from '../firewall/recover';
import type { Ipam, Lease, PoolDoc } from '../ipam/ipam';
import type { Link } from '../netlink/link-types';
import type { StoreView } from '../store/types';
import { epKey } from './collections';
import { claimsOf, coalesce, publishedClaimsOf } from './ledger';
import type { FoundLink, NamespaceSearch } from './marks';

/** A rebuilt record and how, or why there is none. */
export type Rebuilt<T> = { record: T; detail: string } | { why: string };

/** What rebuilding reads: the store (in the repair's transaction), the host's links, the firewall's elements, the namespaces. */
export interface Evidence {
  view: StoreView;
  ipam: Ipam;
  links: Link[];
  owned: Map<string, OwnedElement[]>;
  search: NamespaceSearch;
  /** The default network and its bridge (recorded at open, made at its first connect). */
  defaultNetwork: { name: string; bridge: string };
  /** The predefined networks without addresses of their own. */
  predefined: readonly string[];
  /** `created` of the rebuilt records. */
  now: string;
}

/** A document, or undefined when it is absent or damaged (the repair deals with it separately). */
export function readable<T>(view: StoreView, collection: string, key: string): T | undefined {
  try {
    return view.get<T>(collection, key);
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_STORE_CORRUPT') return undefined;
    throw e;
  }
}

function pool(ev: Evidence, network: string): PoolDoc | undefined {
  try {
    return ev.ipam.pool(ev.view, network);
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_STORE_CORRUPT') return undefined;
    throw e;
  }
}

/** A network record from the marks, or why not. */
export function rebuildNetwork(ev: Evidence, name: string): Rebuilt<NetworkRecord> {
  if (ev.predefined.includes(name)) {
    const record: PlainNetworkRecord = { name, driver: name as PlainNetworkRecord['driver'], labels: {}, created: ev.now };
    return { record, detail: 'a predefined network: its record is always the same' };
  }
  const marked = ev.links.filter((l) => l.alias === ownerAlias(name));
  if (marked.some((l) => l.kind === 'vxlan')) return { why: 'an overlay network: its settings live in the control plane, not in the kernel' };
  const plan = pool(ev, name);
  if (!plan) return { why: 'its address pool is gone or damaged too' };
  const bridge = marked.find((l) => l.kind === 'bridge');
  const isDefault = name === ev.defaultNetwork.name;
  if (!bridge && !isDefault) return { why: `no bridge is marked nsnet:${name} (a macvlan network's parent and mode are marked nowhere)` };
  const settings = networkSettingsOf(ev.owned, name);
  const record: BridgeNetworkRecord = {
    name,
    driver: 'bridge',
    bridge: bridge?.name ?? ev.defaultNetwork.bridge,
    subnet: plan.subnet,
    gateway: plan.gateway,
    mtu: bridge?.mtu ?? 1500,
    icc: settings?.icc ?? true,
    internal: settings?.internal ?? false,
    ipMasquerade: settings?.ipMasquerade ?? true,
    labels: {},
    created: ev.now,
  };
  if (plan.ipRange) record.ipRange = plan.ipRange;
  if (plan.subnet6) record.subnet6 = plan.subnet6;
  if (plan.gateway6) record.gateway6 = plan.gateway6;
  const from = [
    bridge ? `bridge ${bridge.name} (alias nsnet:${name})` : 'its default bridge name',
    'its address pool',
    settings ? 'its firewall elements' : 'default icc, internal and masquerade (it has no firewall elements)',
  ];
  return { record, detail: `rebuilt from ${from.join(', ')}; its labels are lost` };
}

/** The container's addresses: its lease, else those on its interface. */
function addressesOf(net: NetworkRecord, found: FoundLink, lease: Lease | undefined): { ipv4?: string; ipv6?: string } {
  const ipv4 = lease?.ipv4 ?? found.addresses.find((a) => a.family === 4)?.address;
  const wants6 = 'subnet6' in net && net.subnet6 !== undefined;
  const ipv6 = lease?.ipv6 ?? (wants6 ? found.addresses.find((a) => a.family === 6 && !a.address.startsWith('fe80:'))?.address : undefined);
  return { ...(ipv4 !== undefined ? { ipv4 } : {}), ...(ipv6 !== undefined ? { ipv6 } : {}) };
}

/**
 * The published ports of a bridged endpoint: its elements whose target is its address of their
 * family, and its claims in the ledger; a port published on both families is one mapping again,
 * one on a single family of a dual-stack endpoint gets that family's wildcard.
 */
function publishedPorts(ev: Evidence, id: string, key: string, ipv4: string, ipv6: string | undefined): { ports: PortMapping[]; container?: string } {
  const seen = new Map<string, { p: PortMapping; families: Set<4 | 6> }>();
  const add = (family: 4 | 6, p: PortMapping): void => {
    const k = `${p.protocol} ${p.hostPort} ${p.containerPort} ${p.hostIp ?? ''}`;
    const e = seen.get(k) ?? { p, families: new Set<4 | 6>() };
    e.families.add(family);
    seen.set(k, e);
  };
  for (const e of publishedPortsOf(ev.owned, id)) {
    if (e.containerIp !== (e.family === 4 ? ipv4 : ipv6)) continue;
    add(e.family, { protocol: e.protocol, hostPort: e.hostPort, containerPort: e.containerPort, ...(e.hostIp !== undefined ? { hostIp: e.hostIp } : {}) });
  }
  const claims = publishedClaimsOf(ev.view, key);
  for (const c of claims) {
    if (c.family === 6 && ipv6 === undefined) continue;
    add(c.family, { protocol: c.protocol, hostPort: c.hostPort, containerPort: c.containerPort, ...(c.hostIp !== undefined ? { hostIp: c.hostIp } : {}) });
  }
  const ports = [...seen.values()].map(({ p, families }) =>
    p.hostIp !== undefined || families.size === 2 || (ipv6 === undefined && families.has(4)) ? p : { ...p, hostIp: families.has(6) ? '::' : '0.0.0.0' },
  );
  const container = claims.find((c) => c.container !== undefined)?.container;
  return { ports: coalesce(ports), ...(container !== undefined ? { container } : {}) };
}

/** An endpoint record from the marks, or why not. */
export async function rebuildEndpoint(ev: Evidence, net: NetworkRecord, id: string): Promise<Rebuilt<EndpointRecord>> {
  const key = epKey(net.name, id);
  const alias = ownerAlias(net.name, id);
  const lease = readable<Lease>(ev.view, ev.ipam.owners, key);
  switch (net.driver) {
    case 'bridge':
    case 'overlay': {
      const name = hostIfname(net.name, id);
      const link = ev.links.find((l) => l.name === name && l.alias === alias);
      if (!link) return { why: `no veth ${name} marked ${alias} in the host namespace` };
      const peer = await ev.search.vethPeer(link);
      if (!peer) return { why: `the container end of veth ${name} is in no namespace found by path (named, mounted, or a process's)` };
      const { ipv4, ipv6 } = addressesOf(net, peer, lease);
      if (ipv4 === undefined || peer.link.mac === undefined) return { why: `the container end of veth ${name} has no IPv4 address` };
      const { ports, container } = publishedPorts(ev, id, key, ipv4, ipv6);
      const record: EndpointRecord = {
        id,
        network: net.name,
        netns: peer.netns,
        ifname: peer.link.name,
        mac: peer.link.mac,
        ipv4,
        gateway: (net as BridgeNetworkRecord | OverlayNetworkRecord).gateway,
        ports,
        created: ev.now,
        hostIfname: name,
      };
      if (container !== undefined && container !== id) record.container = container;
      if (ipv6 !== undefined) record.ipv6 = ipv6;
      if (ipv6 !== undefined && net.driver === 'bridge' && net.gateway6) record.gateway6 = net.gateway6;
      return {
        record,
        detail: `rebuilt from veth ${name} (alias ${alias}), its container end ${peer.link.name} in ${peer.netns}, ${lease ? 'its address lease' : 'the addresses on it'} and ${ports.length ? 'the firewall elements of its published ports' : 'no published ports'}`,
      };
    }
    case 'macvlan': {
      const child = await ev.search.byAlias(alias, 'macvlan');
      if (!child) return { why: `no macvlan child marked ${alias} in a namespace found by path` };
      const { ipv4, ipv6 } = addressesOf(net, child, lease);
      if (ipv4 === undefined || child.link.mac === undefined) return { why: `macvlan child ${child.link.name} in ${child.netns} has no IPv4 address` };
      const m = net as MacvlanNetworkRecord;
      const record: EndpointRecord = {
        id,
        network: net.name,
        netns: child.netns,
        ifname: child.link.name,
        mac: child.link.mac,
        ipv4,
        gateway: m.gateway,
        ports: [],
        created: ev.now,
      };
      if (ipv6 !== undefined) record.ipv6 = ipv6;
      if (ipv6 !== undefined && m.gateway6) record.gateway6 = m.gateway6;
      return {
        record,
        detail: `rebuilt from macvlan child ${child.link.name} (alias ${alias}) in ${child.netns} and ${lease ? 'its address lease' : 'the addresses on it'}`,
      };
    }
    case 'host': {
      const ports = claimsOf(ev.view, key);
      if (!ports.length) return { why: 'a host-mode endpoint without port claims leaves nothing to rebuild it from' };
      return { record: { id, network: net.name, ports, created: ev.now }, detail: 'rebuilt from its port claims in the ledger' };
    }
    default:
      return { why: `a ${net.driver} endpoint leaves no mark in the kernel` };
  }
}
