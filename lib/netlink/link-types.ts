/**
 * Link types: what `links.list()` returns (a union discriminated on `kind`) and what
 * `links.add()` / `links.set()` take. Each kind's own types live with its codec in ./kinds/;
 * the fields every link shares in ./link-base.ts.
 */
import type { NetnsSpec } from '../netns';
import type { AddrGenMode, BridgePortSettings, LinkBase, LinkSpecBase } from './link-base';
import type { BridgeLink, BridgeSpec } from './kinds/bridge';
import type { IpvlanLink, IpvlanSpec } from './kinds/ipvlan';
import type { MacvlanLink, MacvlanSpec } from './kinds/macvlan';
import type { VethLink, VethSpec } from './kinds/veth';
import type { VlanLink, VlanSpec } from './kinds/vlan';
import type { VxlanLink, VxlanSpec } from './kinds/vxlan';

export type { AddrGenMode, BridgePortInfo, BridgePortSettings, LinkBase, LinkSpecBase } from './link-base';
export type { BridgeLink, BridgeSpec } from './kinds/bridge';
export type { IpvlanFlags, IpvlanLink, IpvlanMode, IpvlanSpec } from './kinds/ipvlan';
export type { MacvlanLink, MacvlanMode, MacvlanSpec } from './kinds/macvlan';
export type { VethLink, VethSpec } from './kinds/veth';
export type { VlanLink, VlanProtocol, VlanSpec } from './kinds/vlan';
export type { VxlanLink, VxlanSpec } from './kinds/vxlan';

/** A device without a link kind: loopback, a physical NIC. */
export interface DeviceLink extends LinkBase {
  kind: 'device';
}

/** A link of a kind nsnet has no typed view of (ifb, tun, ...): see kernelKind and raw. */
export interface OtherLink extends LinkBase {
  kind: 'other';
}

/** A link, discriminated on `kind`. */
export type Link = VethLink | BridgeLink | VxlanLink | MacvlanLink | IpvlanLink | VlanLink | DeviceLink | OtherLink;

/** Any other kind: passed to the kernel as is (it says "Unknown device type" if it has none). */
export interface GenericLinkSpec extends LinkSpecBase {
  kind: string;
  /** The device it is stacked on (IFLA_LINK), for kinds that have one: macvtap, ipvtap. */
  parent?: string | number;
  /** Raw IFLA_INFO_DATA. */
  data?: Buffer;
}

/** What `links.add()` takes, discriminated on `kind` (a kind without a typed spec: {@link GenericLinkSpec}). */
export type LinkSpec = VethSpec | BridgeSpec | VxlanSpec | MacvlanSpec | IpvlanSpec | VlanSpec | GenericLinkSpec;

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
