/**
 * Parsing of the CLI's own value syntaxes, before anything is opened or changed: Docker's `-p`,
 * `-o key=value` driver options, booleans, namespace references. Failures are NsnetErrors with
 * the library's codes (ERR_INVALID_PORT, ERR_INVALID_IP, ERR_INVALID_ARGUMENT, ...).
 */
import { isIP } from 'node:net';
import { NsnetError } from '../errors';
import type { HostPort, NetworkSpec, PortMapping } from '../host-types';
import type { NetnsSpec } from '../netns';
import { DRIVER_OPTIONS, keyValue, parseBool, parseDriverOptions, parseInteger } from '../driver-options';

export { DRIVER_OPTIONS, keyValue, parseBool, parseDriverOptions, parseInteger };

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

function badPort(spec: string, why: string): NsnetError {
  return new NsnetError('ERR_INVALID_PORT', `-p ${spec}: ${why}`, { value: spec });
}

/** `80` or `80-81` → [first, last]; `allowZero`: a single 0 (pick a free port). */
function portRange(spec: string, text: string, what: string, allowZero: boolean): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/u.exec(text);
  if (!m) throw badPort(spec, `${what} ${JSON.stringify(text)} is not a port or a range (80, 8000-8010)`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  const min = allowZero && m[2] === undefined ? 0 : 1;
  if (lo < min || lo > 65535 || hi < min || hi > 65535) throw badPort(spec, `${what} ${text} is outside ${min}-65535`);
  if (hi < lo) throw badPort(spec, `the ${what} range ${text} is backwards`);
  return [lo, hi];
}

/**
 * Docker's publish syntax: `[HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/PROTO]`; IPv6 host addresses
 * in brackets (`[2001:db8::1]:8080:80`). An omitted or 0 host port picks a free one (`80`,
 * `0:80`, `127.0.0.1::80`). A host range needs a container range of the same length. The
 * protocol is tcp (default), udp or sctp.
 *
 * The host address is kept as written, as Docker reads it: none means every address of both
 * families (on a dual-stack network), `0.0.0.0` every IPv4 address only, `[::]` every IPv6
 * address only. Whether an address can be published on (`[::1]` cannot: the kernel does not
 * DNAT IPv6 loopback) is the library's to say, with ERR_INVALID_HOST_IP.
 */
export function parsePublish(spec: string): PortMapping {
  let rest = spec;
  let protocol: PortMapping['protocol'] = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (!(PROTOCOLS as readonly string[]).includes(p)) throw badPort(spec, `protocol ${JSON.stringify(p)} is not one of ${PROTOCOLS.join(', ')}`);
    protocol = p as PortMapping['protocol'];
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']:');
    if (close < 0) throw badPort(spec, 'a bracketed host address must be followed by ":" and ports ([::1]:8080:80)');
    hostIp = rest.slice(1, close);
    if (isIP(hostIp) !== 6) throw new NsnetError('ERR_INVALID_IP', `-p ${spec}: ${JSON.stringify(hostIp)} is not an IPv6 address`, { value: spec });
    rest = rest.slice(close + 2);
    if (!rest.includes(':')) rest = `:${rest}`; // [::1]:80 means container port 80, any host port
  }
  const parts = rest.split(':');
  if (parts.length > 3 || (hostIp !== undefined && parts.length > 2))
    throw badPort(spec, 'too many ":" (write an IPv6 host address in brackets: [::1]:8080:80)');
  if (parts.length === 3) {
    hostIp = parts.shift()!;
    if (!isIP(hostIp)) throw new NsnetError('ERR_INVALID_IP', `-p ${spec}: ${JSON.stringify(hostIp)} is not an IP address`, { value: spec });
  }
  const [hostText, containerText] = parts.length === 2 ? [parts[0]!, parts[1]!] : ['', parts[0]!];
  if (containerText === '') throw badPort(spec, 'the container port is missing');
  const [c0, c1] = portRange(spec, containerText, 'container port', false);
  const [h0, h1] = hostText === '' ? [0, 0] : portRange(spec, hostText, 'host port', true);
  const out: PortMapping = { protocol, hostPort: h0, containerPort: c0 };
  if (hostIp !== undefined && hostIp !== '') out.hostIp = hostIp;
  if (h0 === 0) {
    if (c1 !== c0) throw badPort(spec, 'a range of container ports needs the host ports too (8000-8001:80-81)');
    return out;
  }
  if (h1 - h0 !== c1 - c0) {
    throw badPort(
      spec,
      c1 === c0
        ? 'one free port of a host range is not supported: give one host port, or none for any free port'
        : `the host range ${hostText} and the container range ${containerText} differ in length`,
    );
  }
  if (h1 !== h0) out.hostPortEnd = h1;
  return out;
}

/**
 * `-p` for the predefined `host` network: the container listens on the host's ports itself, so
 * only `[HOSTIP:]PORT[-END][/PROTO]` (or `PORT:PORT`) makes sense: the port claimed host-wide.
 */
export function parseHostClaim(spec: string): HostPort {
  const p = parsePublish(spec);
  const len = (p.hostPortEnd ?? p.hostPort) - p.hostPort;
  if (p.hostPort !== 0 && p.hostPort !== p.containerPort)
    throw badPort(
      spec,
      `host mode maps no ports: the container listens on host port ${p.hostPort} itself (write -p ${p.hostPort}${len ? `-${p.hostPort + len}` : ''}/${p.protocol})`,
    );
  const out: HostPort = { protocol: p.protocol, port: p.containerPort };
  if (p.hostPortEnd !== undefined) out.portEnd = p.hostPortEnd;
  if (p.hostIp !== undefined) out.hostIp = p.hostIp;
  return out;
}

/** `--netns` / `--host-netns`: digits are a pid, anything else a name or a path. */
export function parseNetns(value: string): NetnsSpec {
  return /^\d+$/u.test(value) ? Number(value) : value;
}

/** Docker's `container:ID` network argument: the `container` network with a target. */
export function parseNetworkArg(value: string): { network: string; target?: string } {
  if (value.startsWith('container:')) return { network: 'container', target: value.slice('container:'.length) };
  return { network: value };
}

/** The fields of NetworkSpec the CLI can set (plus `vni`, for overlay when it lands). */
export type CliNetworkSpec = Omit<NetworkSpec, 'driver'> & { driver?: string; vni?: number };
