/**
 * The ADD result, in the shape of the requested CNI version:
 *
 * - 1.0.0 and 1.1.0: `{ cniVersion, interfaces: [{ name, mac, sandbox?, mtu? }], ips: [{ address,
 *   gateway, interface }], routes: [{ dst, gw }], dns }` (`mtu` on interfaces from 1.1.0);
 * - 0.3.0, 0.3.1, 0.4.0: the same with `version: "4" | "6"` on every ip.
 *
 * A bridge endpoint lists the host end of its veth first (no `sandbox`: it is in the host
 * namespace — what `bandwidth` looks for) and then the container's interface; a macvlan
 * endpoint only the container's. When nsnet-cni is not the first plugin of a chain its
 * interfaces, ips and routes are appended to the `prevResult` it was given.
 */
import type { Endpoint } from '../host-types';
import { versionAtLeast, type CniVersion, type Dns } from './config';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIp {
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniResult {
  cniVersion: CniVersion;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: Dns;
}

/** What ADD knows about the attachment it made. */
export interface Attached {
  endpoint: Endpoint;
  /** The host end's MAC (bridge). */
  hostMac?: string;
  mtu: number;
  /** An internal network: no default route. */
  internal: boolean;
  /** CNI_NETNS. */
  sandbox: string;
}

const arrayOf = <T>(x: unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);

/** Builds the result of an ADD (merged into `prev` when a plugin ran before). */
export function buildResult(version: CniVersion, a: Attached, dns: Dns | undefined, prev?: Record<string, unknown>): CniResult {
  const withMtu = versionAtLeast(version, '1.1.0');
  const withIpVersion = !versionAtLeast(version, '1.0.0');
  const interfaces: CniInterface[] = arrayOf<CniInterface>(prev?.interfaces).map((i) => ({ ...i }));
  const ep = a.endpoint;
  if (ep.hostIfname !== undefined) {
    const host: CniInterface = { name: ep.hostIfname };
    if (a.hostMac) host.mac = a.hostMac;
    if (withMtu) host.mtu = a.mtu;
    interfaces.push(host);
  }
  const container: CniInterface = { name: ep.ifname ?? '' };
  if (ep.mac) container.mac = ep.mac;
  if (withMtu) container.mtu = a.mtu;
  container.sandbox = a.sandbox;
  interfaces.push(container);
  const index = interfaces.length - 1;

  const ips: CniIp[] = arrayOf<CniIp>(prev?.ips).map((i) => ({ ...i }));
  const routes: CniRoute[] = arrayOf<CniRoute>(prev?.routes).map((r) => ({ ...r }));
  const add = (family: '4' | '6', address: string | undefined, gateway: string | undefined): void => {
    if (address === undefined) return;
    const ip: CniIp = withIpVersion ? { version: family, address } : { address };
    if (gateway !== undefined) ip.gateway = gateway;
    ip.interface = index;
    ips.push(ip);
    if (!a.internal && gateway !== undefined) routes.push({ dst: family === '4' ? '0.0.0.0/0' : '::/0', gw: gateway });
  };
  add('4', ep.ipv4, ep.gateway);
  add('6', ep.ipv6, ep.gateway6);

  const prevDns = prev?.dns !== null && typeof prev?.dns === 'object' ? (prev.dns as Dns) : {};
  return { cniVersion: version, interfaces, ips, routes, dns: { ...prevDns, ...(dns ?? {}) } };
}
