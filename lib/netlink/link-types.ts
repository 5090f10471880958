/**
 * Link types: what `links.list()` returns (a union discriminated on `kind`) and what
 * `links.add()` / `links.set()` take.
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
  /** IFLA_LINK: the peer (veth) or parent (macvlan, vxlan underlay) index. */
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

export interface VethLink extends LinkBase {
  kind: 'veth';
}

export interface BridgeLink extends LinkBase {
  kind: 'bridge';
  bridge: {
    stp: boolean;
    vlanFiltering: boolean;
    /** Seconds. */
    ageingTime?: number;
    /** Seconds. */
    forwardDelay?: number;
    priority?: number;
  };
}

export interface VxlanLink extends LinkBase {
  kind: 'vxlan';
  vxlan: {
    vni: number;
    local?: string;
    /** Multicast group (when the destination is multicast). */
    group?: string;
    /** Unicast remote (when the destination is unicast). */
    remote?: string;
    port: number;
    /** Underlay device index. */
    dev?: number;
    ttl?: number;
    learning: boolean;
    proxy: boolean;
    udpChecksum: boolean;
    ageing?: number;
    srcPortRange?: [number, number];
  };
}

export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

export interface MacvlanLink extends LinkBase {
  kind: 'macvlan';
  macvlan: { mode: MacvlanMode | 'unknown' };
}

/** A device without a link kind: loopback, a physical NIC. */
export interface DeviceLink extends LinkBase {
  kind: 'device';
}

/** A link of a kind nsnet has no typed view of (ifb, tun, ...): see kernelKind and raw. */
export interface OtherLink extends LinkBase {
  kind: 'other';
}

/** A link, discriminated on `kind`. */
export type Link = VethLink | BridgeLink | VxlanLink | MacvlanLink | DeviceLink | OtherLink;

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

export interface VethSpec extends LinkSpecBase {
  kind: 'veth';
  /**
   * The other end. Default: a kernel-chosen name in this namespace. It starts down: the kernel
   * cannot bring up one end of a pair it is still creating, so raise it with a handle in its
   * namespace.
   */
  peer?: {
    name?: string;
    /** Create the peer directly in this namespace. */
    netns?: NetnsSpec;
    mac?: string;
    mtu?: number;
  };
}

export interface BridgeSpec extends LinkSpecBase {
  kind: 'bridge';
  stp?: boolean;
  vlanFiltering?: boolean;
  /** Seconds an FDB entry lives (default 300). */
  ageingTime?: number;
  /** Seconds (STP forward delay). */
  forwardDelay?: number;
}

/** (The link-group setting is not offered for vxlan: `group` is the multicast group here.) */
export interface VxlanSpec extends Omit<LinkSpecBase, 'group'> {
  kind: 'vxlan';
  /** VXLAN network identifier, 1..16777215. */
  vni: number;
  /** Local underlay address. */
  local?: string;
  /** Multicast group for BUM traffic. */
  group?: string;
  /** Unicast remote VTEP (instead of a group). */
  remote?: string;
  /** UDP destination port (default 4789, the IANA port). */
  port?: number;
  /** Underlay device (name or index). */
  dev?: string | number;
  ttl?: number;
  /** Learn remote MACs from traffic (default false: nsnet programs the FDB). */
  learning?: boolean;
  /** Answer ARP from the neighbour table (proxy ARP). */
  proxy?: boolean;
  /** UDP checksums on transmit (IPv4 underlay). */
  udpChecksum?: boolean;
  ageing?: number;
  srcPortRange?: [number, number];
}

export interface MacvlanSpec extends LinkSpecBase {
  kind: 'macvlan';
  /** Parent device (name or index). */
  parent: string | number;
  mode?: MacvlanMode;
}

/** Any other kind: passed to the kernel as is (it says "Unknown device type" if it has none). */
export interface GenericLinkSpec extends LinkSpecBase {
  kind: string;
  /** The device it is stacked on (IFLA_LINK), for kinds that have one: vlan, ipvlan, macvtap. */
  parent?: string | number;
  /** Raw IFLA_INFO_DATA. */
  data?: Buffer;
}

export type LinkSpec = VethSpec | BridgeSpec | VxlanSpec | MacvlanSpec | GenericLinkSpec;

/** Changes for `links.set()`; omitted fields stay as they are. */
export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  /** Rename. */
  name?: string;
  mac?: string;
  /** Enslave to a bridge (name or index), or `null` to release (nomaster). */
  master?: string | number | null;
  /** Move to another namespace (together with `name`, renamed on arrival). */
  netns?: NetnsSpec;
  /** Set the alias, or `null` / '' to clear it. */
  alias?: string | null;
  group?: number;
  txqlen?: number;
  /** IPv6 link-local address generation (set it before the link comes up). */
  addrGenMode?: AddrGenMode;
  /** Bridge-port settings of a link enslaved to a bridge. */
  bridgePort?: BridgePortSettings;
}

/** A link event from `links.watch()`. */
export type LinkEvent =
  | { type: 'added' | 'changed' | 'removed'; link: Link }
  /** The kernel dropped events (receive buffer overrun): re-list to resynchronize. */
  | { type: 'overrun' };
