/**
 * The state of the inspected ("host") namespace that can break nsnet, read without changing
 * anything: forwarding sysctls, br_netfilter, other tables' forward chains with policy drop, and
 * whether nsnet's own tables are there.
 * @internal
 */
import { NsnetError } from '../errors';
import { parseOwner } from '../firewall/elements';
import { INET, L2, SET } from '../firewall/layout';
import { Netlink } from '../netlink/netlink';
import { Netns, type NetnsSpec } from '../netns';
import type { Family } from '../nftables/constants';
import { NfTables } from '../nftables/nftables';
import { detailOf, type FeatureProbe } from './features';

/** A base chain of another table, hooked at forward with policy drop. */
export interface ForwardDropChain {
  family: Family;
  table: string;
  chain: string;
  /** The chain's priority at the hook (iptables' FORWARD: 0). */
  priority: number;
  /** 'filter', ... */
  type?: string;
}

/** What `doctor()` found in the inspected namespace. */
export interface HostState {
  /** `net.ipv4.ip_forward` is 1. */
  ipForward: boolean;
  /** `net.ipv6.conf.all.forwarding` is 1 (undefined: IPv6 is disabled in the namespace). */
  ipv6Forward?: boolean;
  /**
   * br_netfilter: `loaded` when its sysctls exist; then whether bridged IPv4 / IPv6 frames pass
   * the ip / ip6 / inet hooks too (`net.bridge.bridge-nf-call-iptables`, `-ip6tables`).
   */
  brNetfilter: { loaded: boolean; callIptables?: boolean; callIp6tables?: boolean };
  /** Whether the namespace's nf_tables ruleset could be read (the chains below come from it). */
  ruleset: FeatureProbe;
  /**
   * Base chains of other tables (any family) hooked at forward with policy drop, in tables that
   * are not dormant. nsnet's own tables are never listed. (Rules of iptables-legacy live outside
   * nf_tables and are not seen.)
   */
  forwardDropChains: ForwardDropChain[];
  /** Whether nsnet's own tables exist: `inet nsnet` and `bridge nsnet_l2`. */
  nsnetTables: { inet: boolean; bridge: boolean };
  /** nsnet networks with an IPv6 subnet in this namespace's firewall (owners of its IPv6 subnet elements). */
  ipv6Networks: string[];
  /**
   * Interfaces with an IPv6 route learned from router advertisements (`proto ra`) whose
   * `accept_ra` is 1: with IPv6 forwarding on, the kernel ignores their advertisements, so
   * those routes (often the host's own default route) expire. `accept_ra` 2 keeps them.
   */
  raRoutes: string[];
}

/** A sysctl's value, or undefined when the namespace has no such key. */
async function sysctl(netns: NetnsSpec | undefined, key: string): Promise<string | undefined> {
  try {
    return (await Netns.sysctl(netns, key)).trim();
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_SYSCTL_NOT_FOUND') return undefined;
    throw e;
  }
}

const flag = (s: string | undefined): boolean | undefined => (s === undefined ? undefined : s === '1');

const NFT_TABLE_F_DORMANT = 1;

/** Reads the inspected namespace's state. Read-only: sysctl reads and nf_tables dumps. */
export async function inspectHost(netns: NetnsSpec | undefined): Promise<HostState> {
  const [ipv4, ipv6, callIp, callIp6] = await Promise.all([
    sysctl(netns, 'net.ipv4.ip_forward'),
    sysctl(netns, 'net.ipv6.conf.all.forwarding'),
    sysctl(netns, 'net.bridge.bridge-nf-call-iptables'),
    sysctl(netns, 'net.bridge.bridge-nf-call-ip6tables'),
  ]);
  const v6 = flag(ipv6);
  const state: HostState = {
    ipForward: ipv4 === '1',
    brNetfilter: { loaded: callIp !== undefined || callIp6 !== undefined },
    ruleset: { available: true },
    forwardDropChains: [],
    nsnetTables: { inet: false, bridge: false },
    ipv6Networks: [],
    raRoutes: v6 === undefined ? [] : await raDependent(netns),
  };
  if (v6 !== undefined) state.ipv6Forward = v6;
  const ci = flag(callIp);
  const ci6 = flag(callIp6);
  if (ci !== undefined) state.brNetfilter.callIptables = ci;
  if (ci6 !== undefined) state.brNetfilter.callIp6tables = ci6;

  let nft: NfTables;
  try {
    nft = await NfTables.open(netns === undefined ? {} : { netns });
  } catch (e) {
    state.ruleset = { available: false, detail: detailOf(e) };
    return state;
  }
  try {
    const tables = await nft.tables();
    const chains = await nft.chains();
    const isNsnet = (family: Family, table: string) => (family === INET.family && table === INET.table) || (family === L2.family && table === L2.table);
    const dormant = new Set(tables.filter((t) => t.flags & NFT_TABLE_F_DORMANT).map((t) => `${t.family} ${t.name}`));
    state.nsnetTables = {
      inet: tables.some((t) => t.family === INET.family && t.name === INET.table),
      bridge: tables.some((t) => t.family === L2.family && t.name === L2.table),
    };
    if (state.nsnetTables.inet) state.ipv6Networks = await ipv6Owners(nft);
    state.forwardDropChains = chains
      .filter((c) => c.hook === 'forward' && c.policy === 'drop' && !isNsnet(c.family, c.table) && !dormant.has(`${c.family} ${c.table}`))
      .map((c) => ({ family: c.family, table: c.table, chain: c.name, priority: c.priority ?? 0, ...(c.type !== undefined ? { type: c.type } : {}) }));
  } catch (e) {
    state.ruleset = { available: false, detail: detailOf(e) };
  } finally {
    nft.close();
  }
  return state;
}

/** The networks owning elements of nsnet's IPv6 subnet sets (none when the sets do not exist). */
async function ipv6Owners(nft: NfTables): Promise<string[]> {
  const names = new Set<string>();
  for (const set of [SET.hairpin6, SET.internalSubnets6]) {
    try {
      for (const el of await nft.elements({ ...INET, set })) {
        const o = parseOwner(el.comment);
        if (o?.kind === 'network') names.add(o.name);
      }
    } catch (e) {
      if (!(e instanceof NsnetError && e.code === 'ERR_SET_NOT_FOUND')) throw e;
    }
  }
  return [...names].sort();
}

/** Interfaces with IPv6 routes from router advertisements and `accept_ra` 1. */
async function raDependent(netns: NetnsSpec | undefined): Promise<string[]> {
  let nl: Netlink;
  try {
    nl = await Netlink.open(netns === undefined ? {} : { netns });
  } catch {
    return [];
  }
  try {
    const ra = (await nl.routes.list({ family: 6, table: 'main' })).filter((r) => r.protocol === 'ra' && r.dev !== undefined);
    if (ra.length === 0) return [];
    const names = new Map((await nl.links.list()).map((l) => [l.index, l.name]));
    const out = new Set<string>();
    for (const r of ra) {
      const name = names.get(r.dev!);
      if (!name) continue;
      const key = name.includes('.') ? `net/ipv6/conf/${name}/accept_ra` : `net.ipv6.conf.${name}.accept_ra`;
      if ((await sysctl(netns, key)) === '1') out.add(name);
    }
    return [...out].sort();
  } finally {
    nl.close();
  }
}
