/** The public shapes of the NetworkHost façade. */
import type { NetnsSpec } from './netns';
import type { NetworkRecord, PortMapping } from './drivers/driver';

export type { PortMapping };

/** What `createNetwork` takes. */
export interface NetworkSpec {
  /** 1..64 characters: letters, digits, '_', '.', '-'. */
  name: string;
  /** Only 'bridge' for now. */
  driver?: 'bridge';
  /** Bridge device name (default `nsbr-` + 10 hex digits of the name's hash). */
  bridge?: string;
  /** IPv4 subnet; default: a free one from the default pools (172.17-31.0.0/16, 192.168.x/20). */
  subnet?: string;
  gateway?: string;
  /** Allocate dynamic addresses only from here. */
  ipRange?: string;
  /** IPv6 subnet for dual stack. */
  subnet6?: string;
  gateway6?: string;
  /** Default 1500. */
  mtu?: number;
  /** Containers of the network may talk to each other (default true). */
  icc?: boolean;
  /** No egress and no published ports (default false). */
  internal?: boolean;
  /** Masquerade egress behind the host's address (default true). */
  ipMasquerade?: boolean;
  labels?: Record<string, string>;
}

/** A network as nsnet keeps it (its record in the store). */
export type Network = NetworkRecord;

/** What `connect` takes. */
export interface ConnectOptions {
  /** The endpoint (container) id: 1..128 characters of letters, digits, '_', '.', '-', ':'. */
  id: string;
  /** The container's network namespace. */
  netns: NetnsSpec;
  /** Interface name inside the container (default 'eth0'). */
  ifname?: string;
  /** A static IPv4 address in the subnet. */
  ipv4?: string;
  /** A static IPv6 address, or false for none on a dual-stack network. */
  ipv6?: string | boolean;
  /** Ports to publish. `hostPort: 0` picks a free one. */
  publish?: PortMapping[];
}

/** A connected endpoint. */
export interface Endpoint {
  id: string;
  network: string;
  ifname: string;
  mac: string;
  /** Address with prefix: '172.20.0.2/16'. */
  ipv4: string;
  ipv6?: string;
  gateway: string;
  gateway6?: string;
  /** Published ports (with picked host ports filled in). */
  ports: PortMapping[];
  /** The host end of the veth. */
  hostIfname: string;
}

export interface NetworkInspect extends Network {
  endpoints: Endpoint[];
  /** The kernel's IPv4 forwarding in the host namespace (nsnet turns it on for non-internal networks). */
  ipForward: boolean;
  /** Whether the bridge exists right now. */
  bridgeUp: boolean;
}

export interface GcReport {
  /** Endpoints whose namespace is gone, removed from kernel and store. */
  endpoints: string[];
  /** Links marked as nsnet's that belong to nothing in the store. */
  links: string[];
  /** Firewall owners (ep:…/net:…) whose elements belonged to nothing in the store. */
  firewallOwners: string[];
}

export interface ReconcileReport {
  /** Networks whose bridge or firewall elements were recreated. */
  networks: string[];
  /** Endpoints re-attached or re-published. */
  endpoints: string[];
  /** Whether the firewall skeleton had to be rebuilt. */
  firewallRebuilt: boolean;
}
