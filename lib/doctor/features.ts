/**
 * The feature probes of `doctor()`: each one asks the kernel to do one thing nsnet relies on —
 * create a link of a kind, commit a small nf_tables transaction, open a ctnetlink or XFRM socket
 * — inside a throwaway namespace, and records whether it could. Every nf_tables probe is a
 * transaction of its own (its own table), so one missing feature never hides another.
 * @internal
 */
import { Conntrack } from '../conntrack';
import { NetlinkError, NsnetError } from '../errors';
import { CHAINS, RULES, SETS, writeSkeleton } from '../firewall/layout';
import { Netlink } from '../netlink/netlink';
import { Netns } from '../netns';
import type { LinkSpec } from '../netlink/link-types';
import { Xfrm } from '../netlink/xfrm';
import type { Expr } from '../nftables/expr/types';
import { NfTables } from '../nftables/nftables';
import type { ChainSpec, MapSpec, SetSpec } from '../nftables/types';
import { NFT_FEATURES, NFT_PROBES, type NftFeature, type Probe } from './nft-probes';

export { NFT_FEATURES, type NftFeature };

export { NFT_PROBES, type Probe };

/** Link kinds `doctor()` probes. */
export const LINK_KINDS = ['veth', 'bridge', 'vxlan', 'macvlan', 'ipvlan', 'vlan', 'dummy', 'wireguard', 'geneve'] as const;
/** A link kind `doctor()` probes. */
export type LinkKind = (typeof LINK_KINDS)[number];

/** Every feature `doctor()` probes, in report order. */
export const FEATURES = ['netns', 'ipv6_forwarding', ...LINK_KINDS, ...NFT_FEATURES, 'conntrack', 'xfrm'] as const;
/**
 * What a probe tests:
 * - `netns`: a network namespace can be created (the scratch namespace of the probes).
 * - `ipv6_forwarding`: the kernel has IPv6 (not disabled by `ipv6.disable=1`) and forwards it:
 *   `net.ipv6.conf.all.forwarding` can be set to 1 in the scratch namespace (dual-stack
 *   networks need it; IPv4-only ones do not).
 * - link kinds (`veth` ... `geneve`): `RTM_NEWLINK` of that kind succeeds; macvlan, ipvlan and
 *   vlan on a veth parent.
 * - `nftables`: an inet table, a filter base chain, a hash set and a rule of the core
 *   expressions (meta, payload, cmp, bitwise, lookup, immediate).
 * - `nft_nat`: nat base chains at prerouting, output and postrouting (inet family).
 * - `nft_masquerade`, `nft_redirect`: the masq / redir expressions.
 * - `nft_dnat`: `dnat ip to meta l4proto . th dport map @m` (a map with concatenated key and value).
 * - `nft_nat_ipv6`: NAT of IPv6 (nf_nat for IPv6): `dnat ip6 to` through maps keyed by
 *   `ip6 daddr . meta l4proto . th dport` and by `meta l4proto . th dport`, and
 *   `ip6 saddr @s masquerade` — what publishing and egress on dual-stack networks use.
 * - `nft_ct`: `ct state` and `ct status` matches (conntrack from nf_tables).
 * - `nft_fib`: `fib daddr type local`.
 * - `nft_concat_sets`, `nft_interval_sets`, `nft_concat_interval_sets`: sets of those kinds with
 *   an element, looked up from a rule.
 * - `nft_verdict_maps`: `iifname vmap @m` with a jump element.
 * - `nft_bridge`: a bridge-family table with a filter chain at forward (`iifname @s meta pkttype`).
 * - `nsnet_firewall`: nsnet's whole firewall skeleton (lib/firewall/layout) in one transaction.
 * - `conntrack`: a ctnetlink socket lists the conntrack table.
 * - `xfrm`: an XFRM netlink socket lists security associations (the interface; which IPsec
 *   transforms exist is not probed).
 */
export type FeatureName = (typeof FEATURES)[number];

/** The outcome of one probe. */
export interface FeatureProbe {
  available: boolean;
  /** Why not: the error code and the kernel's message ('EOPNOTSUPP: Unknown device type'). */
  detail?: string;
}

/** An error as a probe's detail: its code and the kernel's own explanation when there is one. */
export function detailOf(e: unknown): string {
  if (e instanceof NetlinkError) return `${e.code}: ${e.extack ?? e.message}`;
  if (e instanceof NsnetError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

async function outcome(fn: () => Promise<unknown>): Promise<FeatureProbe> {
  try {
    await fn();
    return { available: true };
  } catch (e) {
    return { available: false, detail: detailOf(e) };
  }
}

// ------------------------------------------------------------------------------------ links

/** One netlink attribute: header, payload, padding to 4 bytes. */
function nla(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const PARENT = 'dv0';

/** The spec each kind is probed with (names are the scratch namespace's own). */
function linkSpec(kind: LinkKind): LinkSpec {
  switch (kind) {
    case 'veth':
      return { kind, name: PARENT, peer: { name: 'dv1' } };
    case 'bridge':
      return { kind, name: 'dbr0' };
    case 'vxlan':
      return { kind, name: 'dvx0', vni: 42, port: 4789 };
    case 'macvlan':
      return { kind, name: 'dmv0', parent: PARENT, mode: 'bridge' };
    case 'ipvlan':
      return { kind, name: 'dipv0', parent: PARENT };
    case 'vlan':
      return { kind, name: 'dvl0', parent: PARENT, id: 10 };
    // IFLA_GENEVE_ID (1), u32; IFLA_GENEVE_REMOTE (2), 192.0.2.1
    case 'geneve':
      return { kind, name: 'dgn0', data: Buffer.concat([nla(1, u32(5)), nla(2, Buffer.from([192, 0, 2, 1]))]) };
    default:
      return { kind, name: `d${kind.slice(0, 4)}0` };
  }
}

/** Creates one link of each kind in the scratch namespace. */
export async function probeLinks(scratch: string): Promise<Record<LinkKind, FeatureProbe>> {
  const out = {} as Record<LinkKind, FeatureProbe>;
  let nl: Netlink;
  try {
    nl = await Netlink.open({ netns: scratch });
  } catch (e) {
    const detail = detailOf(e);
    for (const kind of LINK_KINDS) out[kind] = { available: false, detail };
    return out;
  }
  try {
    for (const kind of LINK_KINDS) {
      const needsParent = kind === 'macvlan' || kind === 'ipvlan' || kind === 'vlan';
      if (needsParent && !out.veth?.available) {
        out[kind] = { available: false, detail: 'not probed: it needs a parent device, and no veth could be made' };
        continue;
      }
      out[kind] = await outcome(() => nl.links.add(linkSpec(kind)));
    }
    return out;
  } finally {
    nl.close();
  }
}

// ----------------------------------------------------------------------------- nf_tables

/** Runs every nf_tables probe in the scratch namespace, one transaction each. */
export async function probeNftables(scratch: string): Promise<Record<NftFeature, FeatureProbe>> {
  const out = {} as Record<NftFeature, FeatureProbe>;
  let nft: NfTables;
  try {
    nft = await NfTables.open({ netns: scratch });
  } catch (e) {
    const detail = detailOf(e);
    for (const f of NFT_FEATURES) out[f] = { available: false, detail };
    return out;
  }
  try {
    for (const [f, probe] of Object.entries(NFT_PROBES) as [NftFeature, Probe][]) out[f] = await outcome(() => nft.transaction(probe));
    out.nsnet_firewall = await outcome(() => nft.transaction((tx) => writeSkeleton(tx)));
    return out;
  } finally {
    nft.close();
  }
}

// --------------------------------------------------------------------- IPv6 forwarding

/**
 * IPv6 is there and forwards: `net.ipv6.conf.all.forwarding` set to 1 and read back in the
 * scratch namespace (absent when the kernel has no IPv6, or it was disabled at boot).
 */
export function probeIpv6Forwarding(scratch: string): Promise<FeatureProbe> {
  return outcome(async () => {
    const got = (await Netns.sysctl(scratch, 'net.ipv6.conf.all.forwarding', '1')).trim();
    if (got !== '1') throw new NsnetError('ERR_NOT_AVAILABLE', `net.ipv6.conf.all.forwarding reads ${got} after writing 1`);
  });
}

// --------------------------------------------------------------------- conntrack, xfrm

/** ctnetlink answers: the conntrack table can be listed. */
export function probeConntrack(scratch: string): Promise<FeatureProbe> {
  return outcome(async () => {
    const ct = await Conntrack.open({ netns: scratch });
    try {
      await ct.list();
    } finally {
      ct.close();
    }
  });
}

/** The XFRM netlink interface answers: security associations can be listed. */
export function probeXfrm(scratch: string): Promise<FeatureProbe> {
  return outcome(async () => {
    const x = await Xfrm.open(scratch);
    try {
      await x.states();
    } finally {
      x.close();
    }
  });
}

// ------------------------------------------------------------ what the firewall needs

/** The nf_tables feature an expression of the firewall needs, beyond the core (`nftables`). */
function exprFeature(e: Expr): NftFeature {
  switch (e.type) {
    case 'payload':
    case 'cmp':
    case 'bitwise':
    case 'range':
    case 'meta':
    case 'immediate':
    case 'counter':
      return 'nftables';
    case 'lookup':
      return e.dreg === 0 ? 'nft_verdict_maps' : 'nftables';
    case 'ct':
      return 'nft_ct';
    case 'fib':
      return 'nft_fib';
    // (snat is the same expression as dnat, in the same kernel module)
    case 'nat':
      return e.family === 'ip6' ? 'nft_nat_ipv6' : 'nft_dnat';
    case 'masq':
      return 'nft_masquerade';
    case 'redir':
      return 'nft_redirect';
    default:
      // A new expression in the layout needs a probe of its own (test/unit/doctor.test.ts).
      throw new NsnetError('ERR_INTERNAL', `doctor: no probe covers the firewall's ${e.type} expression`);
  }
}

function setFeature(s: SetSpec | MapSpec): NftFeature {
  const concat = Array.isArray(s.key) && s.key.length > 1;
  if ('value' in s && s.value === 'verdict') return 'nft_verdict_maps';
  if (s.interval) return concat ? 'nft_concat_interval_sets' : 'nft_interval_sets';
  return concat ? 'nft_concat_sets' : 'nftables';
}

/**
 * The nf_tables features nsnet's firewall needs, derived from its layout (every expression,
 * set and chain of lib/firewall/layout), plus the whole skeleton itself.
 */
export function firewallFeatures(
  layout: { rules: readonly { expr: Expr[] }[]; sets: readonly { spec: SetSpec | MapSpec }[]; chains: readonly ChainSpec[] } = {
    rules: RULES,
    sets: SETS,
    chains: CHAINS,
  },
): NftFeature[] {
  const need = new Set<NftFeature>(['nftables', 'nsnet_firewall']);
  for (const r of layout.rules) for (const e of r.expr) need.add(exprFeature(e));
  for (const s of layout.sets) need.add(setFeature(s.spec));
  for (const c of layout.chains) {
    if (c.type === 'nat') need.add('nft_nat');
    if (c.family === 'bridge') need.add('nft_bridge');
  }
  return NFT_FEATURES.filter((f) => need.has(f));
}
