/**
 * Docker's payloads as NetworkHost arguments: which nsnet network a Docker network is, the
 * NetworkSpec a CreateNetwork asks for, the published ports of a sandbox's port map, the name
 * under which an endpoint's interface waits for Docker to move it.
 */
import { NsnetError, invalid } from '../errors';
import type { NetworkSpec, PortMapping } from '../host-types';
import { parseDriverOptions } from '../driver-options';
import * as v from '../validate';
import { obj, type Body } from './protocol';

/** The label that ties an nsnet network to the Docker network it is (the full network id). */
export const DOCKER_NETWORK_LABEL = 'com.docker.network.id';
/** The label saying which IPAM gave the network its addresses: `nsnet` or Docker's (`default`). */
export const DOCKER_IPAM_LABEL = 'com.docker.network.ipam';
/** The address space nsnet's IPAM driver announces (pool ids carry it). */
export const ADDRESS_SPACE = 'nsnet';
/** The prefix Docker names the moved interface with (eth0, eth1, … in the container). */
export const DST_PREFIX = 'eth';

const ID = /^[A-Za-z0-9]{1,64}$/u;

/** A Docker id (network, endpoint): letters and digits, at most 64. */
export function dockerId(value: string, what: string): string {
  if (!ID.test(value))
    throw invalid('ERR_INVALID_ARGUMENT', `${what} ${JSON.stringify(value.slice(0, 80))} is not a Docker id (1-64 letters and digits)`, {
      value: value.slice(0, 80),
    });
  return value;
}

/**
 * The nsnet network of a Docker network: named by the network's short id (the 12 characters
 * `docker network ls` shows), so the CLI and the library find it by the name a Docker user
 * sees; the full id is its label.
 */
export function networkName(networkId: string): string {
  return dockerId(networkId, 'NetworkID').slice(0, 12);
}

/** The name an endpoint's interface has in the host namespace until Docker moves it (15 bytes at most). */
export function handOverName(endpointId: string): string {
  return `nsp${dockerId(endpointId, 'EndpointID').slice(0, 12)}`;
}

/** One entry of CreateNetwork's IPv4Data / IPv6Data. */
export interface IpamData {
  AddressSpace?: string;
  Pool: string;
  Gateway?: string;
}

/** The IPAM data of a family (at most one pool per family: nsnet networks have one subnet each). */
export function ipamData(body: Body, key: 'IPv4Data' | 'IPv6Data'): IpamData | undefined {
  const list = (body[key] ?? []) as unknown[];
  if (list.length === 0) return undefined;
  if (list.length > 1) throw invalid('ERR_INVALID_ARGUMENT', `${key}: an nsnet network has one subnet per family (got ${list.length})`);
  const d = list[0] as Record<string, unknown>;
  if (d === null || typeof d !== 'object' || typeof d.Pool !== 'string') throw invalid('ERR_INVALID_ARGUMENT', `${key}[0] has no Pool`);
  for (const k of ['AddressSpace', 'Gateway'] as const)
    if (d[k] !== undefined && typeof d[k] !== 'string') throw invalid('ERR_INVALID_ARGUMENT', `${key}[0].${k} must be a string`);
  return d as unknown as IpamData;
}

/** An address without its prefix ('172.18.0.1/16' → '172.18.0.1'). */
export const bare = (cidr: string): string => cidr.split('/')[0]!;

/**
 * The NetworkSpec of a CreateNetwork: the subnets and gateways Docker's IPAM data names, the
 * driver options (`-o`, the same names as `nsnet network create -o`), `--internal`.
 */
export function networkSpec(body: Body): NetworkSpec {
  const id = dockerId(String(body.NetworkID), 'NetworkID');
  const opts = obj(body, 'Options');
  const generic = obj(opts, 'com.docker.network.generic');
  const driverOpts: string[] = [];
  for (const [k, val] of Object.entries(generic)) {
    if (typeof val !== 'string') throw invalid('ERR_INVALID_ARGUMENT', `driver option ${k} must be a string`, { option: k });
    driverOpts.push(`${k}=${val}`);
  }
  const v4 = ipamData(body, 'IPv4Data');
  const v6 = ipamData(body, 'IPv6Data');
  if (!v4 || v4.Pool === '0.0.0.0/0')
    throw invalid('ERR_INVALID_ARGUMENT', 'an nsnet network needs an IPv4 subnet: use the nsnet or the default IPAM driver (not null)');
  const spec: NetworkSpec = {
    name: networkName(id),
    driver: 'bridge',
    subnet: v4.Pool,
    labels: { [DOCKER_NETWORK_LABEL]: id, [DOCKER_IPAM_LABEL]: v4.AddressSpace === ADDRESS_SPACE ? 'nsnet' : 'default' },
    ...(v4.Gateway ? { gateway: bare(v4.Gateway) } : {}),
    ...(v6 ? { subnet6: v6.Pool, ...(v6.Gateway ? { gateway6: bare(v6.Gateway) } : {}) } : {}),
    ...(parseDriverOptions(driverOpts) as Partial<NetworkSpec>),
  };
  if (opts['com.docker.network.internal'] === true) spec.internal = true;
  return spec;
}

const PROTOCOLS: Record<number, PortMapping['protocol']> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** One of Docker's port bindings (libnetwork `types.PortBinding`, JSON). */
interface PortBinding {
  Proto: number;
  IP?: string;
  Port: number;
  HostIP?: string;
  HostPort: number;
  HostPortEnd?: number;
}

/**
 * The sandbox's port map (`com.docker.network.portmap` of ProgramExternalConnectivity's
 * options) as nsnet mappings, each with the host ports Docker allows for it: `-p 8080:80` one,
 * `-p 80` any (hostPort 0), `-p 8000-8010:80` one of those.
 */
export function portBindings(options: Record<string, unknown>): { mapping: PortMapping; candidates: number[] }[] {
  const raw = options['com.docker.network.portmap'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid('ERR_INVALID_PORT', 'com.docker.network.portmap must be an array of port bindings');
  return raw.map((b: PortBinding, i) => {
    if (b === null || typeof b !== 'object') throw invalid('ERR_INVALID_PORT', `port binding ${i} is not an object`);
    const protocol = PROTOCOLS[b.Proto];
    if (!protocol) throw invalid('ERR_INVALID_PORT', `port binding ${i}: protocol ${JSON.stringify(b.Proto)} is not tcp (6), udp (17) or sctp (132)`);
    const containerPort = v.int(b.Port, 1, 65535, `port binding ${i} Port`, 'ERR_INVALID_PORT');
    const hostPort = v.int(b.HostPort ?? 0, 0, 65535, `port binding ${i} HostPort`, 'ERR_INVALID_PORT');
    const end =
      b.HostPortEnd === undefined || b.HostPortEnd === 0
        ? hostPort
        : v.int(b.HostPortEnd, hostPort, 65535, `port binding ${i} HostPortEnd`, 'ERR_INVALID_PORT');
    if (b.HostIP !== undefined && typeof b.HostIP !== 'string') throw invalid('ERR_INVALID_IP', `port binding ${i}: HostIP must be a string`);
    const hostIp = b.HostIP === '' || b.HostIP === undefined || b.HostIP === '0.0.0.0' ? undefined : b.HostIP;
    const mapping: PortMapping = { protocol, hostPort, containerPort, ...(hostIp !== undefined ? { hostIp } : {}) };
    const candidates: number[] = [];
    for (let p = hostPort; p <= end; p++) candidates.push(p);
    return { mapping, candidates };
  });
}

/** Published ports as Docker's port bindings (EndpointOperInfo's `com.docker.network.portmap`). */
export function toPortBindings(ports: PortMapping[]): PortBinding[] {
  const proto = Object.fromEntries(Object.entries(PROTOCOLS).map(([n, p]) => [p, Number(n)]));
  return ports.flatMap((p) => {
    const out: PortBinding[] = [];
    for (let i = 0; i <= (p.hostPortEnd ?? p.hostPort) - p.hostPort; i++)
      out.push({ Proto: proto[p.protocol]!, IP: '', Port: p.containerPort + i, HostIP: p.hostIp ?? '', HostPort: p.hostPort + i, HostPortEnd: p.hostPort + i });
    return out;
  });
}

/** ERR_ENDPOINT_NOT_FOUND for a Docker endpoint nsnet does not know. */
export function unknownEndpoint(networkId: string, endpointId: string): NsnetError {
  return new NsnetError('ERR_ENDPOINT_NOT_FOUND', `endpoint ${endpointId} of network ${networkId} is not known to nsnet`, {
    network: networkId,
    endpoint: endpointId,
  });
}
