/**
 * `doctor()`: what this kernel and this host can do for nsnet. The kernel's features are probed
 * by doing each thing once in a throwaway network namespace (created under a unique name and
 * always removed); the inspected namespace (the host's) is only read: sysctls and an nf_tables
 * listing. No process is spawned. Probing may make the kernel load modules (as `ip link add` or
 * `nft` would).
 */
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { NsnetError, fromNative } from './errors';
import {
  FEATURES,
  detailOf,
  firewallFeatures,
  probeConntrack,
  probeIpv6Forwarding,
  probeLinks,
  probeNftables,
  probeXfrm,
  type FeatureName,
  type FeatureProbe,
} from './doctor/features';
import { inspectHost, type ForwardDropChain, type HostState } from './doctor/host-state';
import { inspectStore, type StoreState } from './doctor/store-state';
import { damageWarning } from './state/damage';
import type { DamagedDocument } from './store/types';
import { Netns, openNetns, type NetnsSpec } from './netns';
import * as v from './validate';

export type { FeatureName, FeatureProbe, ForwardDropChain, HostState, StoreState };
export type { LinkKind, NftFeature } from './doctor/features';

/** The network modes `doctor()` reports on. */
export type ModeName = 'host' | 'none' | 'container' | 'bridge' | 'overlay' | 'macvlan' | 'ipvlan' | 'vlan';

/** Whether a mode can run here, and what it lacks when it cannot. */
export interface ModeSupport {
  available: boolean;
  /** The features the mode needs that this kernel lacks (empty when available). */
  missing: FeatureName[];
}

/** Stable codes of the warnings `doctor()` gives. */
export type DoctorWarningCode =
  | 'WARN_IP_FORWARD_OFF'
  | 'WARN_IPV6_FORWARD_OFF'
  | 'WARN_IPV6_ACCEPT_RA'
  | 'WARN_FORWARD_POLICY_DROP'
  | 'WARN_BR_NETFILTER'
  | 'WARN_STORE_DAMAGED'
  | 'WARN_STORE_UNREADABLE';

/** Host state that can break nsnet. */
export interface DoctorWarning {
  code: DoctorWarningCode;
  /** What is wrong, what it breaks, and what to do. */
  message: string;
  /** The chain concerned (WARN_FORWARD_POLICY_DROP, WARN_BR_NETFILTER). */
  chain?: ForwardDropChain;
  /** The damaged state document (WARN_STORE_DAMAGED: one warning per document). */
  document?: DamagedDocument;
  /** The state file concerned (WARN_STORE_DAMAGED, WARN_STORE_UNREADABLE). */
  file?: string;
}

/** What `doctor()` returns. */
export interface DoctorReport {
  /** The kernel release (`uname -r`). */
  kernel: string;
  /** The inspected namespace: the path it was opened by and its inode. */
  netns: { path: string; inode: number };
  /** Each probed feature of the kernel, in a throwaway namespace. */
  features: Record<FeatureName, FeatureProbe>;
  /** The inspected namespace's state. */
  host: HostState;
  /** Each network mode: can it run here? */
  modes: Record<ModeName, ModeSupport>;
  /** The state directory: does it hold a store, can it be read, which documents are damaged (absent with `stateDir: false`). */
  store?: StoreState;
  /** Host state that can break nsnet (empty when there is none). */
  warnings: DoctorWarning[];
}

/** Options of {@link doctor}. */
export interface DoctorOptions {
  /** The host namespace whose state is inspected (name, path, pid or `{ fd }`); default: the caller's. */
  netns?: NetnsSpec;
  /**
   * The state directory whose documents are checked (default /var/lib/nsnet, as NetworkHost's);
   * `false`: none. A directory without a store is reported as such, never created.
   */
  stateDir?: string | false;
}

/** The features each mode needs. @internal */
export function modeNeeds(): Record<ModeName, FeatureName[]> {
  const bridge: FeatureName[] = ['netns', 'veth', 'bridge', ...firewallFeatures(), 'conntrack'];
  return {
    host: ['netns'],
    none: ['netns'],
    container: ['netns'],
    bridge,
    overlay: [...bridge, 'vxlan'],
    macvlan: ['netns', 'macvlan'],
    ipvlan: ['netns', 'ipvlan'],
    vlan: ['netns', 'vlan', 'macvlan'],
  };
}

/** Modes from features. @internal */
export function modesOf(features: Record<FeatureName, FeatureProbe>): Record<ModeName, ModeSupport> {
  const out = {} as Record<ModeName, ModeSupport>;
  for (const [mode, needs] of Object.entries(modeNeeds()) as [ModeName, FeatureName[]][]) {
    const missing = needs.filter((f) => !features[f]?.available);
    out[mode] = { available: missing.length === 0, missing };
  }
  return out;
}

const BRIDGES = 'nsnet0, nsbr-*';
/** Where NetworkHost keeps its state by default. */
const DEFAULT_STATE_DIR = '/var/lib/nsnet';
const describeChain = (c: ForwardDropChain) => `${c.family} ${c.table} chain ${c.chain} (hook forward, priority ${c.priority})`;

/** Warnings from the host state. @internal */
export function warningsOf(host: HostState): DoctorWarning[] {
  const out: DoctorWarning[] = [];
  if (!host.ipForward) {
    out.push({
      code: 'WARN_IP_FORWARD_OFF',
      message: host.nsnetTables.inet
        ? "net.ipv4.ip_forward is 0 although nsnet's tables exist here: containers of bridge and overlay networks cannot reach beyond the host and published ports do not reach them. nsnet sets it to 1 when it creates a network; something turned it off since (set it to 1 again)."
        : 'net.ipv4.ip_forward is 0: nothing is routed between interfaces. nsnet sets it to 1 when it creates a (non-internal) bridge or overlay network; if something resets it, containers lose egress and published ports.',
    });
  }
  if (host.ipv6Forward === false && host.ipv6Networks.length) {
    out.push({
      code: 'WARN_IPV6_FORWARD_OFF',
      message:
        `net.ipv6.conf.all.forwarding is 0 although nsnet networks with an IPv6 subnet exist here (${host.ipv6Networks.join(', ')}): ` +
        "their containers have no IPv6 egress and ports published on the host's IPv6 addresses do not reach them. nsnet sets it to 1 when it creates such a network; something turned it off since (set it to 1 again).",
    });
  }
  if (host.ipv6Forward === true && host.raRoutes.length) {
    out.push({
      code: 'WARN_IPV6_ACCEPT_RA',
      message:
        `IPv6 forwarding is on, and ${host.raRoutes.join(', ')} ${host.raRoutes.length > 1 ? 'have' : 'has'} IPv6 routes learned from router advertisements with accept_ra 1: ` +
        'a forwarding host ignores router advertisements there, so those routes (often the default route) expire. ' +
        `Set net.ipv6.conf.<interface>.accept_ra to 2 (${host.raRoutes.map((i) => `net.ipv6.conf.${i}.accept_ra=2`).join(', ')}) to keep them.`,
    });
  }
  for (const c of host.forwardDropChains) {
    const what =
      c.family === 'bridge'
        ? 'Frames bridged between containers of one network are dropped'
        : 'Container egress, published ports and traffic between networks are dropped';
    out.push({
      code: 'WARN_FORWARD_POLICY_DROP',
      chain: c,
      message:
        `${describeChain(c)} has policy drop. A drop in any base chain at the forward hook is final, while an accept only ends the chain it is in, ` +
        `so the accept rules of nsnet's own table (inet nsnet) cannot override it, and nsnet never changes another table. ` +
        `${what} unless this chain accepts them: accept traffic in and out of nsnet's bridges (${BRIDGES}) there.`,
    });
  }
  const { callIptables, callIp6tables } = host.brNetfilter;
  for (const c of host.forwardDropChains) {
    const v4 = callIptables === true && (c.family === 'ip' || c.family === 'inet');
    const v6 = callIp6tables === true && (c.family === 'ip6' || c.family === 'inet');
    if (!v4 && !v6) continue;
    const key = v4 ? 'net.bridge.bridge-nf-call-iptables' : 'net.bridge.bridge-nf-call-ip6tables';
    out.push({
      code: 'WARN_BR_NETFILTER',
      chain: c,
      message:
        `br_netfilter is active (${key} = 1): frames bridged between containers of the same network pass the ${c.family} forward hook too, ` +
        `so ${describeChain(c)} also drops traffic between containers of one network unless it accepts it.`,
    });
  }
  return out;
}

/** Warnings from the state directory: one per damaged document; one when it cannot be read at all. @internal */
export function storeWarningsOf(store: StoreState): DoctorWarning[] {
  const out: DoctorWarning[] = store.damaged.map((d) => {
    const w = damageWarning(d, 'is left out of listings, and what needs it fails with ERR_STORE_CORRUPT');
    return { code: w.code, message: `${w.message} (README: "When the state is damaged")`, document: d, file: d.file };
  });
  if (store.unreadable) {
    out.push({
      code: 'WARN_STORE_UNREADABLE',
      message: `the state store in ${store.dir} cannot be opened: ${store.detail}. Every nsnet command fails until this is fixed by hand (gc cannot repair a journal or meta.json).`,
      ...(store.unreadable.file !== undefined ? { file: store.unreadable.file } : {}),
    });
  }
  return out;
}

/** A namespace name no one else uses. */
function scratchName(): string {
  return `nsnet-doctor-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

/**
 * Reports what this kernel supports and what in the host namespace can break nsnet.
 *
 * Kernel features are probed in a throwaway namespace (`nsnet-doctor-<pid>-<random>`, removed
 * before this returns, whatever happens): link kinds (veth, bridge, vxlan, macvlan, ipvlan,
 * vlan, dummy, wireguard, geneve), IPv6 forwarding, nf_tables (tables and chains, NAT, masquerade,
 * dnat through maps, IPv6 NAT, redirect, conntrack expressions, fib, concatenated / interval / concatenated-interval
 * sets, verdict maps, bridge-family filtering, and nsnet's whole firewall skeleton), ctnetlink
 * and XFRM. The inspected namespace is only read: forwarding sysctls, br_netfilter, base chains
 * of other tables hooked at forward with policy drop, nsnet's own tables (and which networks in
 * them have IPv6), and IPv6 routes learned from router advertisements that IPv6 forwarding
 * would let expire. The state directory's documents are read too: each damaged one is a
 * WARN_STORE_DAMAGED warning.
 *
 * @throws NsnetError ERR_NETNS_NOT_FOUND / ERR_NOT_A_NETNS for a bad `netns`;
 *   ERR_DOCTOR_SCRATCH when no throwaway namespace can be made (EPERM: not root).
 */
export async function doctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  v.knownKeys(opts, ['netns', 'stateDir'], 'doctor options');
  const stateDir = opts.stateDir === undefined ? DEFAULT_STATE_DIR : opts.stateDir;
  if (stateDir !== false && (typeof stateDir !== 'string' || stateDir === '' || stateDir.includes('\0')))
    throw new NsnetError('ERR_INVALID_ARGUMENT', 'doctor: stateDir must be a directory path or false', { option: 'stateDir', value: stateDir });
  const inspected = openNetns(opts.netns);
  const netns = { path: inspected.path, inode: inspected.inode };
  try {
    // Keep the inspected namespace open while it is read: a pid's namespace stays the same one.
    const spec: NetnsSpec | undefined = opts.netns === undefined ? undefined : { fd: inspected.fd };
    const host = await inspectHost(spec);
    const store = stateDir === false ? undefined : await inspectStore(stateDir);
    const name = scratchName();
    try {
      await Netns.create(name);
    } catch (e) {
      const err = fromNative(e);
      throw new NsnetError('ERR_DOCTOR_SCRATCH', `doctor: cannot create a throwaway network namespace to probe in: ${detailOf(err)}`, { cause: err.code });
    }
    let features: Record<FeatureName, FeatureProbe>;
    try {
      const [links, nft, conntrack, xfrm, ipv6] = await Promise.all([
        probeLinks(name),
        probeNftables(name),
        probeConntrack(name),
        probeXfrm(name),
        probeIpv6Forwarding(name),
      ]);
      const all: Partial<Record<FeatureName, FeatureProbe>> = { netns: { available: true }, ipv6_forwarding: ipv6, ...links, ...nft, conntrack, xfrm };
      features = Object.fromEntries(FEATURES.map((f) => [f, all[f]!])) as Record<FeatureName, FeatureProbe>;
    } finally {
      await Netns.remove(name);
    }
    const warnings = [...warningsOf(host), ...(store ? storeWarningsOf(store) : [])];
    return { kernel: os.release(), netns, features, host, ...(store ? { store } : {}), modes: modesOf(features), warnings };
  } finally {
    inspected.close();
  }
}
