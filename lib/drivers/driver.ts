/**
 * The driver interface: what each network mode implements, and the records the façade keeps in
 * the store. The façade (lib/host.ts) knows no driver's details; a driver knows nothing of
 * other drivers.
 */
import type { Netlink } from '../netlink/netlink';

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

/** A network as the store records it (its intent). */
export interface NetworkRecord {
  name: string;
  driver: 'bridge';
  /** The bridge device. */
  bridge: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  subnet6?: string;
  gateway6?: string;
  mtu: number;
  icc: boolean;
  internal: boolean;
  ipMasquerade: boolean;
  labels: Record<string, string>;
  created: string;
}

/** An endpoint (a container's attachment to a network) as the store records it. */
export interface EndpointRecord {
  id: string;
  network: string;
  /** The container's namespace, as given. */
  netns: string;
  ifname: string;
  /** Host end of the veth. */
  hostIfname: string;
  mac: string;
  ipv4: string;
  ipv6?: string;
  gateway: string;
  gateway6?: string;
  ports: PortMapping[];
  created: string;
}

/** What drivers get from the façade. */
export interface DriverContext {
  /** rtnetlink in the host namespace. */
  host: Netlink;
}
