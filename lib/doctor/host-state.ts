/**
 * The state of the inspected ("host") namespace that can break nsnet, read without changing
 * anything: forwarding sysctls, br_netfilter, other tables' forward chains with policy drop, and
 * whether nsnet's own tables are there.
 * @internal
 */
import { NsnetError } from '../errors';
import { INET, L2 } from '../firewall/layout';
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
  const state: HostState = {
    ipForward: ipv4 === '1',
    brNetfilter: { loaded: callIp !== undefined || callIp6 !== undefined },
    ruleset: { available: true },
    forwardDropChains: [],
    nsnetTables: { inet: false, bridge: false },
  };
  const v6 = flag(ipv6);
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
