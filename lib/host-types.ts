/**
 * The public shapes of the NetworkHost façade: what the store keeps of networks and endpoints
 * (their intent, one record type per driver, discriminated on `driver`), what createNetwork and
 * connect take, what they return. A low module: drivers, the state layer and the façade all
 * read these shapes.
 */
import type { NetnsSpec } from './netns';
import type { IpvlanFlags, IpvlanMode, MacvlanMode as KernelMacvlanMode, VlanProtocol } from './netlink/link-types';
import type { OverlayHostOptions } from './overlay/membership';
import type { DamagedDocument } from './store/types';

/** A published port: host side to container side. */
export interface PortMapping {
  protocol: 'tcp' | 'udp' | 'sctp';
  /**
   * Host address to publish on: omitted, every local address of both families on a dual-stack
   * endpoint (of IPv4 otherwise); '0.0.0.0' every IPv4 address only; '::' every IPv6 address
   * only; one address, that one. `::1`, link-local, multicast and IPv4-mapped addresses are
   * refused (ERR_INVALID_HOST_IP); IPv6 without an IPv6 subnet is ERR_NO_IPV6_SUBNET.
   */
  hostIp?: string;
  /** 0 asks for a free port. */
  hostPort: number;
  /** Last port of a range (inclusive); the container range has the same length. */
  hostPortEnd?: number;
  containerPort: number;
}

/** The network drivers (modes). `host`, `none` and `container` are predefined networks. */
export type NetworkDriver = 'bridge' | 'macvlan' | 'ipvlan' | 'vlan' | 'overlay' | 'host' | 'none' | 'container';

/** The macvlan modes a network can use: the kernel's, but 'source'. */
export type MacvlanMode = Exclude<KernelMacvlanMode, 'source'>;

interface NetworkRecordBase {
  name: string;
  labels: Record<string, string>;
  created: string;
  /** The embedded resolver's setting for the network (absent: the default, see {@link NetworkDns}). */
  dns?: NetworkDns;
}

/**
 * A network's DNS setting (the network record's optional `dns` field):
 * - absent: the default — on for user-created bridge and overlay networks, off for the
 *   predefined `bridge` network and for macvlan (its containers cannot reach the host through
 *   their parent);
 * - `false`: off;
 * - `{ upstream }`: on, forwarding what is not a name of the network to these servers instead
 *   of the host's (`/etc/resolv.conf`). Each is an address, optionally with a port:
 *   `'192.0.2.53'`, `'192.0.2.53:5353'`, `'2001:db8::53'`, `'[2001:db8::53]:5353'`.
 *   An empty list forwards nothing. Internal networks never forward, whatever this says.
 */
export type NetworkDns = false | { upstream?: string[] };

/** What an endpoint record carries for DNS (optional fields of the record). */
export interface EndpointDnsNames {
  /** The container's name: resolves like its id, and is what PTR answers name. */
  name?: string;
  /** More names for the endpoint in this network (`--alias`, CNI `aliases`). */
  aliases?: string[];
}

/**
 * What the runtime writes into the container's resolv.conf (`connect()` returns it; the CNI
 * result carries it as its `dns` field).
 */
export interface DnsConfig {
  /** The network's gateway addresses the endpoint can reach (one per address family it has). */
  nameservers: string[];
  /** The host's search domains, so that a short name outside the network resolves as on the host. */
  search: string[];
  /**
   * `ndots:0`, as Docker writes: a name with no dot is asked as it is first, answered by the
   * resolver at once, instead of after a round of search domains upstream.
   */
  options: string[];
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
 * An ipvlan network: children of `parent` sharing its MAC address, on its segment (l2) or
 * routed through it (l3, l3s); no NAT.
 */
export interface IpvlanNetworkRecord extends AddressedNetwork {
  driver: 'ipvlan';
  parent: string;
  mode: IpvlanMode;
  /** How children of the parent reach each other (the kernel's ipvlan flags). */
  ipvlanFlag: IpvlanFlags;
}

/**
 * A VLAN network: an 802.1Q sub-interface of `parent` (made and marked by nsnet unless it
 * exists: Docker's `parent: eth0.10`), with containers on it as macvlan children.
 */
export interface VlanNetworkRecord extends AddressedNetwork {
  driver: 'vlan';
  /** The trunk device in the host namespace. */
  parent: string;
  vlanId: number;
  vlanProtocol: VlanProtocol;
  /** The sub-interface ("eth0.10"): the containers' parent. */
  subInterface: string;
  /** How the containers' macvlan children reach each other. */
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
export type NetworkRecord = BridgeNetworkRecord | MacvlanNetworkRecord | IpvlanNetworkRecord | VlanNetworkRecord | OverlayNetworkRecord | PlainNetworkRecord;

/**
 * What an endpoint is, as the store records it and as `connect()` returns it (the public
 * {@link Endpoint} is this with addresses written with their prefix). Fields a driver doesn't
 * have are absent.
 */
export interface EndpointFields extends EndpointDnsNames {
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
  /**
   * The container's end of the link was left in the host namespace under this name for the
   * caller to move into `netns` and configure ({@link ConnectOptions.handOver}).
   */
  handOver?: string;
  /**
   * The container this endpoint is an attachment of, when connect named one other than the
   * endpoint id ({@link ConnectOptions.container}).
   */
  container?: string;
}

/** An endpoint (a container's attachment to a network) as the store records it: addresses without prefix. */
export interface EndpointRecord extends EndpointFields {
  created: string;
  /** A slot of the warm pool (NetworkHost.prepare): made ahead, no caller's endpoint yet. */
  slot?: boolean;
  /** Its namespace was made by nsnet (a slot's): disconnecting removes it. */
  ownNetns?: boolean;
}

/** A bridge (or overlay) endpoint: every field of its attachment is there. */
export type BridgeEndpointRecord = EndpointRecord & Required<Pick<EndpointRecord, 'netns' | 'ifname' | 'hostIfname' | 'mac' | 'ipv4' | 'gateway'>>;

/** A macvlan endpoint. */
export type MacvlanEndpointRecord = EndpointRecord & Required<Pick<EndpointRecord, 'netns' | 'ifname' | 'mac' | 'ipv4'>>;

/** What `NetworkHost.open` takes. */
export interface NetworkHostOptions {
  /** Where the state lives (default /var/lib/nsnet). */
  stateDir?: string;
  /** The host namespace (default: the caller's). */
  netns?: NetnsSpec;
  /**
   * Overlay mode: where the hosts share the overlay's state — `{ etcd: ['http://10.0.0.1:2379'] }`
   * or `{ dir }` (hosts sharing one machine), or a ControlPlane already open.
   */
  controlPlane?: OverlayHostOptions['controlPlane'];
  /** Overlay mode: this host's id (default: the machine's host name). */
  hostId?: string;
  /** Overlay mode: where VXLAN traffic leaves, `{ dev }` or `{ address }` (default: the IPv4 default route's device). */
  underlay?: OverlayHostOptions['underlay'];
  /** Overlay mode: the agent's full reconcile period, ms (default 10 000). */
  reconcileInterval?: number;
  /**
   * Receives warnings: a damaged state document a listing left out (`WARN_STORE_DAMAGED`,
   * naming the file; `gc()` repairs it). Default: `process.emitWarning` (printed on stderr).
   */
  onWarning?: WarningHandler;
}

/** A warning about the recorded state: a damaged document a listing left out. */
export interface StateWarning {
  code: 'WARN_STORE_DAMAGED';
  /** What is damaged, what was left out, and what to do. */
  message: string;
  /** The damaged document: its file, collection, key when known, and what is wrong with it. */
  document: DamagedDocument;
}

/** Receives the warnings of a NetworkHost (see NetworkHostOptions.onWarning). */
export type WarningHandler = (warning: StateWarning) => void;

/** What `createNetwork` takes. */
export interface NetworkSpec {
  /** 1..64 characters: letters, digits, '_', '.', '-'. */
  name: string;
  /**
   * 'bridge' (default): a Linux bridge, NAT and published ports. 'macvlan': children of `parent`
   * on its own L2 segment, no NAT. 'ipvlan': the same, sharing the parent's MAC (l2, or routed:
   * l3, l3s). 'vlan': macvlan children of an 802.1Q sub-interface of `parent`. 'overlay': one
   * network across hosts over VXLAN (needs a NetworkHost opened with a `controlPlane`).
   * (`host`, `none` and `container` are predefined networks.)
   */
  driver?: 'bridge' | 'macvlan' | 'ipvlan' | 'vlan' | 'overlay';
  /** Bridge device name (bridge; default `nsbr-` + 10 hex digits of the name's hash). */
  bridge?: string;
  /**
   * macvlan, ipvlan, vlan: the parent device in the host namespace (required). vlan: the trunk
   * with `vlanId`, or Docker's `eth0.10` (trunk eth0, id 10).
   */
  parent?: string;
  /** macvlan, vlan: how children of the parent reach each other (default 'bridge'); ipvlan: l2, l3 or l3s (default 'l2'). */
  mode?: MacvlanMode | IpvlanMode;
  /** ipvlan: the kernel's ipvlan flag, bridge (default), private or vepa. */
  ipvlanFlag?: IpvlanFlags;
  /** vlan: the 802.1Q id, 1..4094 (default: the number after the parent's dot). */
  vlanId?: number;
  /** vlan: '802.1Q' (default) or '802.1ad'. */
  vlanProtocol?: VlanProtocol;
  /**
   * IPv4 subnet; default: a free one from the default pools (172.17-31.0.0/16, 192.168.x/20).
   * Overlay (required): the range shared by every host; each host leases a block of it.
   */
  subnet?: string;
  gateway?: string;
  /** Allocate dynamic addresses only from here. */
  ipRange?: string;
  /** IPv6 subnet for dual stack. */
  subnet6?: string;
  gateway6?: string;
  /** Default 1500 (macvlan: the parent's; overlay: the underlay's minus 50). */
  mtu?: number;
  /** overlay (required): the VXLAN network identifier, 1..16777215, unique among the overlays. */
  vni?: number;
  /** overlay: the VXLAN UDP port (default 4789). */
  vxlanPort?: number;
  /** overlay: the prefix length of each host's block (default 24). */
  hostPrefix?: number;
  /** Containers of the network may talk to each other (bridge; default true). */
  icc?: boolean;
  /** No egress and no published ports (default false). macvlan: no default route. */
  internal?: boolean;
  /** Masquerade egress behind the host's address (bridge; default true). */
  ipMasquerade?: boolean;
  labels?: Record<string, string>;
  /**
   * bridge, overlay: the embedded resolver (default: on, but for the predefined `bridge`).
   * `false` turns it off; `{ upstream: ['192.0.2.53', '[2001:db8::53]:5353'] }` forwards what
   * is not a name of the network there instead of to the host's resolv.conf servers.
   */
  dns?: boolean | { upstream?: string[] };
}

/** A network as nsnet keeps it (its record in the store). */
export type Network = NetworkRecord;

/** A port a host-mode container will listen on (claimed in the host-wide port ledger). */
export interface HostPort {
  /** Default 'tcp'. */
  protocol?: 'tcp' | 'udp' | 'sctp';
  port: number;
  /** Last port of a range (inclusive). */
  portEnd?: number;
  /**
   * Only this host address, of either family; '0.0.0.0' every IPv4 address, '::' every IPv6
   * address (default: every address of both families).
   */
  hostIp?: string;
}

/**
 * What `connect` takes. Which fields apply depends on the network's driver:
 * - bridge, macvlan: `netns` (required), `ifname`, `ipv4`, `ipv6`; bridge also `publish`;
 * - `host`: `ports` (claimed host-wide; no namespace: the container uses the host's);
 * - `none`: `netns` (gets loopback only, up);
 * - `container`: `target`, the id of a connected endpoint whose namespace this one joins.
 */
export interface ConnectOptions {
  /** The endpoint (container) id: 1..128 characters of letters, digits, '_', '.', '-', ':'. */
  id: string;
  /** The container's network namespace. */
  netns?: NetnsSpec;
  /** Interface name inside the container (default 'eth0'). */
  ifname?: string;
  /** A static IPv4 address in the subnet. */
  ipv4?: string;
  /** A static IPv6 address, or false for none on a dual-stack network. */
  ipv6?: string | boolean;
  /** Ports to publish (bridge). `hostPort: 0` picks a free one. */
  publish?: PortMapping[];
  /** Ports a host-mode container will listen on. */
  ports?: HostPort[];
  /** Container mode: the endpoint id whose namespace to share. */
  target?: string;
  /** The container's name: resolves to its addresses on networks with DNS, like its id. */
  name?: string;
  /** More names for it on this network's resolver (Docker's `--network-alias`, CNI `aliases`). */
  aliases?: string[];
  /**
   * Bridge, overlay: leave the container's end of the veth in the host namespace under this
   * name (MAC and MTU set, down, no address) instead of making it in `netns`: the caller moves
   * it into `netns` and configures it itself — its addresses, MAC, gateways and routes are the
   * returned endpoint's. That is how runtimes that move interfaces themselves work (Docker's
   * remote network drivers). `netns` is still required and recorded — the absolute path the
   * namespace has or will have (it need not exist yet: Docker makes it when the container
   * starts) — and gc() removes the endpoint once that namespace is gone and the interface is no
   * longer waiting in the host namespace. Not with `ifname` (the caller names the interface
   * when it moves it).
   */
  handOver?: string;
  /**
   * The container this endpoint is an attachment of (default: the endpoint id; the CNI plugin
   * gives CNI_CONTAINERID). Attachments of one container to several networks may publish the
   * same host port to the same container port, as `podman run --network a,b -p 8083:80` does:
   * the first of them, in connect order, receives the port's traffic; when it disconnects, the
   * next one receives it, re-pointed in one firewall transaction (the port is never unpublished
   * in between). Another container asking for the port is refused (ERR_PORT_IN_USE).
   */
  container?: string;
  /**
   * The caller holds the published host ports open itself to reserve them (a container runtime:
   * podman's conmon, dockerd's userland proxy): a socket bound to one of them on the host is
   * not a conflict. The ledger still refuses a port another endpoint holds. Default false: a
   * port a process on the host has bound is refused (ERR_PORT_IN_USE naming the socket), since
   * its traffic would go to the container instead. The CNI plugin sets it (the reference
   * `portmap` plugin never looks at listeners either).
   */
  hostPortsHeldByCaller?: boolean;
}

/** A connected endpoint. Fields a driver doesn't have are absent. */
export interface Endpoint extends EndpointFields {
  /** The driver of its network. */
  driver: NetworkDriver;
  /** What to write into the container's resolv.conf: its network's embedded resolver (absent: the network has no DNS). */
  dns?: DnsConfig;
  /** Address with prefix: '172.20.0.2/16'. */
  ipv4?: string;
  /** Address with prefix: 'fd00::2/64'. */
  ipv6?: string;
}

/** A host interface as a host-mode container sees it. */
export interface HostInterface {
  name: string;
  index: number;
  kind: string;
  mac?: string;
  up: boolean;
  mtu: number;
  /** 'addr/prefix'. */
  addresses: string[];
}

/** A network with its endpoints and the host state it depends on. */
export type NetworkInspect = Network & {
  endpoints: Endpoint[];
  /** The kernel's IPv4 forwarding in the host namespace (nsnet turns it on for bridge networks). */
  ipForward: boolean;
  /** bridge, overlay: whether the bridge exists and is up right now. */
  bridgeUp?: boolean;
  /** overlay: whether this host's VXLAN device exists and is up, and how many other hosts it has routes to. */
  vxlanUp?: boolean;
  peers?: number;
  /** macvlan: whether the parent exists and is up (children pass no traffic while it is down). */
  parentUp?: boolean;
  /** host: the host's interfaces and addresses — what a host-mode container sees. */
  interfaces?: HostInterface[];
};

/** A damaged state document gc() dealt with. */
export interface DamageRepair {
  /** The document: its file, collection, key when known, and what was wrong with it. */
  document: DamagedDocument;
  /**
   * `rebuilt`: a new document took its place, made from the kernel's marks and the other
   * documents; `dropped`: none could be made, and what it held was released.
   */
  action: 'rebuilt' | 'dropped';
  /** Where the damaged file is kept (`<name>.damaged`). */
  keptAs: string;
  /** What it stood for and what was done, for people. */
  detail: string;
}

export interface GcReport {
  /** Endpoints whose namespace is gone, removed from kernel and store. */
  endpoints: string[];
  /** Links marked as nsnet's that belong to nothing in the store. */
  links: string[];
  /** Namespaces made for warm-pool slots that belong to nothing in the store (present when there were some). */
  namespaces?: string[];
  /** Firewall owners (ep:…/net:…) whose elements belonged to nothing in the store. */
  firewallOwners: string[];
  /** Recorded networks and endpoints put back (`network x`, `endpoint net/id`): what an interrupted disconnect or removeNetwork had half undone. */
  repaired: string[];
  /** What could not be put back (see {@link ReconcileReport.problems}). */
  problems: HealProblem[];
  /**
   * Damaged state documents, each set aside (kept as `<name>.damaged`) and then rebuilt from
   * the kernel's marks and the other documents, or dropped with what it held released. Done
   * first, so the rest of gc works on sound records.
   */
  damaged: DamageRepair[];
}

export interface ReconcileReport {
  /**
   * Networks whose bridge, VXLAN device or firewall elements were recreated — by this call, or
   * (overlay) by the running agent since the last report: a device deleted by hand is reported
   * once, whoever remade it first.
   */
  networks: string[];
  /** Endpoints re-attached or re-published. */
  endpoints: string[];
  /** Whether the firewall skeleton had to be rebuilt. */
  firewallRebuilt: boolean;
  /**
   * What could not be healed, each left as it was while the rest went on: e.g. a bridge name
   * now held by a link that isn't nsnet's (`ERR_NAME_IN_USE`), a macvlan parent that is gone.
   */
  problems: HealProblem[];
}

/** Something reconcile() or gc() could not put back. */
export interface HealProblem {
  /** The network concerned ('' when a damaged document's name tells none). */
  network: string;
  endpoint?: string;
  code: string;
  message: string;
  /** ERR_STORE_CORRUPT: the damaged state file (its record was left out; gc() repairs it). */
  file?: string;
}
