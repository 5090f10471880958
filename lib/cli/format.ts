/**
 * Output for people: aligned tables and `Key: value` blocks, no dependency. (Scripts use
 * `--json`, which prints the library's objects as they are.)
 */
import type { Endpoint, Network, PortMapping } from '../host-types';

/** Columns padded to the widest cell, two spaces apart, header in capitals; no trailing blanks. */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return (
    cells
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function cell(v: string | number | undefined): string {
  return v === undefined || v === '' ? '-' : String(v);
}

/** `Key:  value` lines, keys aligned; undefined values are left out. */
export function block(pairs: [string, string | number | boolean | undefined][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${String(v)}`).join('\n') + '\n';
}

/** Docker's `ps` notation: `0.0.0.0:8080->80/tcp`, `127.0.0.1:8080-8081->80-81/udp`, `[::]:8080->80/tcp`. */
export function formatPort(p: PortMapping): string {
  const host = p.hostPortEnd !== undefined ? `${p.hostPort}-${p.hostPortEnd}` : `${p.hostPort}`;
  const c = p.hostPortEnd !== undefined ? `${p.containerPort}-${p.containerPort + (p.hostPortEnd - p.hostPort)}` : `${p.containerPort}`;
  const ip = p.hostIp ?? '0.0.0.0';
  return `${ip.includes(':') ? `[${ip}]` : ip}:${host}->${c}/${p.protocol}`;
}

/**
 * Every binding of the ports, `, `-separated. On a dual-stack endpoint (`dualStack`) a port
 * without a host address is published on both families and shows both bindings, as `docker ps`
 * does: `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`.
 */
export function formatPorts(ports: PortMapping[], dualStack = false): string {
  return ports.flatMap((p) => (dualStack && p.hostIp === undefined ? [formatPort(p), formatPort({ ...p, hostIp: '::' })] : [formatPort(p)])).join(', ');
}

/** The interface a network's traffic goes through: its bridge, or a macvlan parent. */
export function networkDevice(n: Network): string | undefined {
  if (n.driver === 'bridge') return n.bridge;
  if (n.driver === 'macvlan') return `${n.parent} (${n.mode})`;
  return undefined;
}

/** Settings that differ from the defaults, short: `internal`, `icc=false`, `mtu=1400`, ... */
export function networkFlags(n: Network): string {
  const out: string[] = [];
  if ('internal' in n && n.internal) out.push('internal');
  if (n.driver === 'bridge') {
    if (!n.icc) out.push('icc=false');
    if (!n.ipMasquerade) out.push('ip-masquerade=false');
  }
  if ('mtu' in n && n.mtu !== 1500) out.push(`mtu=${n.mtu}`);
  if ('ipRange' in n && n.ipRange) out.push(`ip-range=${n.ipRange}`);
  for (const [k, v] of Object.entries(n.labels ?? {})) out.push(`${k}=${v}`);
  return out.join(',');
}

export function networkSubnets(n: Network): string | undefined {
  if (!('subnet' in n)) return undefined;
  return [n.subnet, 'subnet6' in n ? n.subnet6 : undefined].filter(Boolean).join(', ');
}

export function networkGateways(n: Network): string | undefined {
  if (!('gateway' in n)) return undefined;
  return [n.gateway, 'gateway6' in n ? n.gateway6 : undefined].filter(Boolean).join(', ');
}

/**
 * Whether the embedded resolver serves the network, for people: `on`, `off`, or undefined for
 * the predefined host, none and container networks (no network of their own). `enabled` is
 * lib/dns/config.ts dnsEnabled() (the caller loads it: this file loads nothing of the library).
 * With `detail`, also where the rest goes: `on, upstream 192.0.2.53`, `on, internal: names of
 * the network only`.
 */
export function networkDns(n: Network, enabled: boolean, detail = false): string | undefined {
  if (n.driver === 'host' || n.driver === 'none' || n.driver === 'container') return undefined;
  if (!enabled) return 'off';
  if (!detail) return 'on';
  if ('internal' in n && n.internal) return 'on, internal: names of the network only';
  const up = n.dns ? n.dns.upstream : undefined;
  if (up === undefined) return "on, other names through the host's resolv.conf";
  return up.length ? `on, other names through ${up.join(', ')}` : 'on, no other names';
}

export const NETWORK_HEADERS = ['name', 'driver', 'subnet', 'gateway', 'device', 'dns', 'endpoints', 'options'];

export function networkRow(n: Network, endpoints: number, dns: string | undefined): (string | number | undefined)[] {
  return [n.name, n.driver, networkSubnets(n), networkGateways(n), networkDevice(n), dns, endpoints, networkFlags(n)];
}

export const ENDPOINT_HEADERS = ['network', 'id', 'netns', 'ifname', 'ipv4', 'mac', 'ports'];

export function endpointRow(e: Endpoint): (string | number | undefined)[] {
  const ns = e.netns ?? (e.driver === 'host' ? '(host)' : undefined);
  const addr = [e.ipv4, e.ipv6].filter(Boolean).join(', ');
  return [e.network, e.id, e.target !== undefined ? `${ns ?? ''} (shares ${e.target})` : ns, e.ifname, addr, e.mac, formatPorts(e.ports, e.ipv6 !== undefined)];
}
