/**
 * What every link has and what every new link may be given, whatever its kind. The kinds
 * (./kinds/*.ts) build on these; ./link-types.ts unites them.
 */
import type { NetnsSpec } from '../netns';

/** Fields every link has. */
export interface LinkBase {
  /** Interface index in its namespace. */
  index: number;
  name: string;
  /** The kernel's kind string ('veth', 'ifb', ...); '' for a device without one (lo, eth0). */
  kernelKind: string;
  mtu: number;
  minMtu?: number;
  maxMtu?: number;
  /** Link-layer address, 'aa:bb:cc:dd:ee:ff'. */
  mac?: string;
  broadcast?: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  lowerUp: boolean;
  /** RFC 2863 operational state. */
  operstate: 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';
  /** IFF_* flag names: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']. */
  flags: string[];
  /** Index of the master device (bridge) when enslaved. */
  master?: number;
  /** IFLA_LINK: the peer (veth) or parent (macvlan, ipvlan, vlan, vxlan underlay) index. */
  parentIndex?: number;
  /** The namespace id (as seen from this namespace) where `parentIndex` lives, when elsewhere. */
  parentNetnsId?: number;
  alias?: string;
  group: number;
  txqlen: number;
  /** Bridge-port settings when the link is enslaved to a bridge. */
  bridgePort?: BridgePortInfo;
  /**
   * The attributes the kernel sent, decoded by name; binary values and attributes without a
   * schema row (`unknown`) as hex strings. By default those behind the typed fields (with all
   * of IFLA_LINKINFO); with `{ full: true }` every one, nothing dropped.
   */
  raw: Record<string, unknown>;
}

/** IFLA_INET6_ADDR_GEN_MODE: how the kernel makes a link's IPv6 link-local address. */
export type AddrGenMode = 'eui64' | 'none' | 'stable_privacy' | 'random';

/** Settings of a bridge port (IFLA_BRPORT_*). */
export interface BridgePortSettings {
  /** Send frames back out of the port they came in on (a container reaching its own published port). */
  hairpin?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  /** Isolated ports cannot talk to other isolated ports. */
  isolated?: boolean;
  neighSuppress?: boolean;
}

export interface BridgePortInfo {
  state?: number;
  priority?: number;
  cost?: number;
  hairpin?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  isolated?: boolean;
  neighSuppress?: boolean;
}

/** Settings any new link may have. */
export interface LinkSpecBase {
  name: string;
  mtu?: number;
  mac?: string;
  /** Bring it up once created. */
  up?: boolean;
  alias?: string;
  /** Enslave to this bridge (name or index). */
  master?: string | number;
  /** Link group (used for bulk removal). */
  group?: number;
  txqlen?: number;
  /** IPv6 link-local address generation: 'none' keeps the link free of IPv6 (no DAD, no MLD). */
  addrGenMode?: AddrGenMode;
  /** Bridge-port settings, with `master`: applied right after creation. */
  bridgePort?: BridgePortSettings;
  /**
   * Create the link directly in this namespace (IFLA_NET_NS_FD): a macvlan child born inside a
   * container while its parent stays here. Not with `master` or `bridgePort` (they would name
   * devices of the other namespace); `alias` and `addrGenMode` are applied there.
   */
  netns?: NetnsSpec;
}
