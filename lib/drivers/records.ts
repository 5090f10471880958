/**
 * What the store keeps of networks and endpoints: their intent, one record type per driver,
 * discriminated on `driver`. A leaf module: the façade, the drivers and the public types all
 * read these shapes, and none of them is imported here.
 */
import type { MacvlanMode as KernelMacvlanMode } from '../netlink/link-types';

/** A published port: host side to container side. */
export interface PortMapping {
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Host address to listen on; omitted: every local address. '127.0.0.1' needs route_localnet. */
  hostIp?: string;
  /** 0 asks for a free port. */
  hostPort: number;
  /** Last port of a range (inclusive); the container range has the same length. */
  hostPortEnd?: number;
  containerPort: number;
}

/** The network drivers (modes). `host`, `none` and `container` are predefined networks. */
export type NetworkDriver = 'bridge' | 'macvlan' | 'overlay' | 'host' | 'none' | 'container';

/** The macvlan modes a network can use: the kernel's, but 'source'. */
export type MacvlanMode = Exclude<KernelMacvlanMode, 'source'>;

interface NetworkRecordBase {
  name: string;
  labels: Record<string, string>;
  created: string;
}

/** The address plan of a network with its own subnet (bridge, macvlan). */
interface AddressedNetwork extends NetworkRecordBase {
  subnet: string;
  gateway: string;
  ipRange?: string;
  subnet6?: string;
  gateway6?: string;
  mtu: number;
  /** No way out: no default route in the containers, no published ports. */
  internal: boolean;
}

/** A bridge network as the store records it (its intent). */
export interface BridgeNetworkRecord extends AddressedNetwork {
  driver: 'bridge';
  /** The bridge device. */
  bridge: string;
  icc: boolean;
  ipMasquerade: boolean;
}

/** A macvlan network: children of `parent`, on the parent's own L2 segment (no NAT). */
export interface MacvlanNetworkRecord extends AddressedNetwork {
  driver: 'macvlan';
  /** The parent device in the host namespace. */
  parent: string;
  /** How children of the parent reach each other. */
  mode: MacvlanMode;
}

/**
 * An overlay network as this host records it: its share of a VXLAN overlay that spans hosts
 * (lib/overlay): a block of the overlay's range claimed in the control plane, a bridge (the
 * containers' gateway) and a VXLAN device. The configuration itself lives in the control plane.
 */
export interface OverlayNetworkRecord extends NetworkRecordBase {
  driver: 'overlay';
  /** The overlay's whole range, shared by every host ("10.88.0.0/16"). */
  subnet: string;
  /** This host's block of it: its containers' addresses ("10.88.3.0/24"). */
  hostSubnet: string;
  /** The bridge's address, the containers' default gateway (the block's first address). */
  gateway: string;
  vni: number;
  vxlanPort: number;
  /** Prefix length of each host's block. */
  hostPrefix: number;
  /** The containers' MTU (configured, or the underlay's minus 50). */
  mtu: number;
  /** The bridge device on this host. */
  bridge: string;
  /** The VXLAN device on this host. */
  vxlan: string;
  /** The MAC of the VXLAN device (published to the other hosts). */
  vtepMac: string;
  /** This host's underlay when the network was joined. */
  underlay: { address: string; dev: string };
  /** Masquerade egress (to anything but the overlay) behind the host's address. */
  ipMasquerade: boolean;
}

/** A predefined network without addresses of its own. */
export interface PlainNetworkRecord extends NetworkRecordBase {
  driver: 'host' | 'none' | 'container';
}

/** A network as the store records it (its intent), discriminated on `driver`. */
export type NetworkRecord = BridgeNetworkRecord | MacvlanNetworkRecord | OverlayNetworkRecord | PlainNetworkRecord;

/**
 * What an endpoint is, as the store records it and as `connect()` returns it (the public
 * {@link Endpoint} is this with addresses written with their prefix). Fields a driver doesn't
 * have are absent.
 */
export interface EndpointFields {
  id: string;
  network: string;
  /** The container's namespace, as resolved (the target's in container mode; absent in host mode). */
  netns?: string;
  /** The container's interface (bridge, macvlan, overlay). */
  ifname?: string;
  /** Host end of the veth (bridge, overlay). */
  hostIfname?: string;
  mac?: string;
  ipv4?: string;
  ipv6?: string;
  gateway?: string;
  gateway6?: string;
  /** Published ports (bridge, overlay), or the ports a host-mode container claims (hostPort = containerPort). */
  ports: PortMapping[];
  /** Container mode: the endpoint id whose namespace this one shares. */
  target?: string;
}

/** An endpoint (a container's attachment to a network) as the store records it: addresses without prefix. */
export interface EndpointRecord extends EndpointFields {
  created: string;
}

/** A bridge (or overlay) endpoint: every field of its attachment is there. */
export type BridgeEndpointRecord = EndpointRecord & Required<Pick<EndpointRecord, 'netns' | 'ifname' | 'hostIfname' | 'mac' | 'ipv4' | 'gateway'>>;

/** A macvlan endpoint. */
export type MacvlanEndpointRecord = EndpointRecord & Required<Pick<EndpointRecord, 'netns' | 'ifname' | 'mac' | 'ipv4'>>;
