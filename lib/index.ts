/**
 * nsnet: container networking for Node.js.
 *
 * The public API. Everything a user may import is exported from here and nowhere else.
 */
export { NsnetError, NetlinkError } from './errors';
export { Netns, NETNS_DIR } from './netns';
export type { NetnsSpec, NetnsHandle } from './netns';
export { Netlink } from './netlink/netlink';
export type { NetlinkOptions } from './netlink/netlink';
export type { Links } from './netlink/links';
export type { LinkWatcher } from './netlink/watch';
export type {
  Link,
  LinkBase,
  VethLink,
  BridgeLink,
  VxlanLink,
  MacvlanLink,
  IpvlanLink,
  VlanLink,
  DeviceLink,
  OtherLink,
  BridgePortInfo,
  LinkSpec,
  LinkSpecBase,
  VethSpec,
  BridgeSpec,
  VxlanSpec,
  MacvlanSpec,
  IpvlanSpec,
  VlanSpec,
  GenericLinkSpec,
  MacvlanMode,
  IpvlanMode,
  IpvlanFlags,
  VlanProtocol,
  LinkChanges,
  LinkEvent,
  BridgePortSettings,
  AddrGenMode,
} from './netlink/link-types';
export type { Addresses, Address, AddressOptions } from './netlink/addresses';
export type { Routes, Route, RouteSpec, RouteScope } from './netlink/routes';
export type { Neighbors, Neighbor, NeighborSpec, NeighborState, Fdb, FdbEntry, FdbSpec } from './netlink/neighbors';
export { FileLock } from './store/flock';
export { NfTables } from './nftables/nftables';
export type { TransactionResult } from './nftables/nftables';
export type { Transaction } from './nftables/transaction';
export type {
  Family,
  Hook,
  DataType,
  TableSpec,
  ChainSpec,
  RuleSpec,
  SetSpec,
  MapSpec,
  ElementSpec,
  ElementsSpec,
  RuleRef,
  Key,
  KeyPart,
  Table,
  Chain,
  Rule,
  NftSet,
  Element,
  Ruleset,
} from './nftables/types';
export { REG, canonicalExpr } from './nftables/expr/index';
export type * from './nftables/expr/index';
export { Conntrack } from './conntrack';
export type {
  ConntrackEntry,
  ConntrackTuple,
  ConntrackFilter,
  ConntrackCounters,
  ConntrackStats,
  ConntrackOptions,
  ConntrackProtocol,
  ConntrackStatus,
} from './conntrack';
export { NetworkHost, DEFAULT_NETWORK, PREDEFINED_NETWORKS } from './host';
export type { NetworkHostOptions } from './host-types';
export type {
  NetworkSpec,
  Network,
  NetworkInspect,
  ConnectOptions,
  Endpoint,
  PortMapping,
  GcReport,
  ReconcileReport,
  HealProblem,
  HostPort,
  HostInterface,
  NetworkDriver,
  DamageRepair,
} from './host-types';
export type { StateWarning, WarningHandler } from './state/damage';
export type { DamagedDocument } from './store/types';
export { Firewall } from './firewall/firewall';
export type { FirewallNetwork, FirewallEndpoint, FirewallPort, Protocol } from './firewall/elements';
export type { EnsureResult, OwnedElement } from './firewall/firewall';
export type { FirewallCheck } from './firewall/check';
export type { FirewallState } from './firewall/state';
export type { NetworkRecord, BridgeNetworkRecord, MacvlanNetworkRecord, OverlayNetworkRecord, PlainNetworkRecord } from './host-types';
export { doctor } from './doctor';
export type {
  DoctorReport,
  DoctorOptions,
  DoctorWarning,
  DoctorWarningCode,
  FeatureName,
  FeatureProbe,
  ForwardDropChain,
  HostState,
  StoreState,
  LinkKind,
  ModeName,
  ModeSupport,
  NftFeature,
} from './doctor';
export { OverlayAgent } from './overlay/agent';
export type { OverlayAgentOptions, AgentSyncReport } from './overlay/agent';
export { EtcdControlPlane } from './overlay/etcd';
export type { EtcdControlPlaneOptions } from './overlay/etcd';
export { FileControlPlane } from './overlay/files';
export type { FileControlPlaneOptions } from './overlay/files';
export type {
  ControlPlane,
  ControlPlaneEvent,
  ControlPlaneSnapshot,
  ControlPlaneWatch,
  ControlPlaneOptions,
  HostRecord,
  JoinOptions,
  OverlayNetworkConfig,
  OverlayNetworkSpec,
  Vtep,
} from './overlay/controlplane';
export type { ControlPlaneSpec } from './overlay/membership';
export type { OverlayDevices, Underlay, UnderlaySpec } from './overlay/devices';
export type { PeerSyncReport } from './overlay/peers';
export { runDns } from './dns/resolver';
export type { DnsResolver } from './dns/resolver';
export type { DnsConfig, DnsListener, DnsOptions, DnsStats, EndpointDnsNames, NetworkDns } from './dns/index';
