/**
 * What a runtime hands the plugin: the CNI_* environment variables and the network
 * configuration on stdin. Everything is validated here, before anything is opened, and every
 * failure is a {@link CniError} with the spec's code:
 *
 * - 4: a required variable is missing or malformed (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 *   CNI_IFNAME, CNI_ARGS);
 * - 6: stdin is not JSON;
 * - 1: `cniVersion` is not one nsnet-cni speaks;
 * - 2: a field nsnet-cni does not know (a typo, or `ipam`: nsnet allocates addresses itself);
 * - 7: a known field with a wrong type or value, a prototype-pollution key anywhere.
 */
import * as path from 'node:path';
import type { NetworkSpec, PortMapping } from '../host-types';
import { netnsPath } from '../netns';
import * as v from '../validate';
import { CNI_ERR, CniError } from './codes';
import { parseAliases } from './names';

/** The CNI spec versions nsnet-cni speaks (results are printed in the requested one's shape). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type Command = (typeof COMMANDS)[number];

/** The default state directory (the same as the library's and the CLI's). */
export const DEFAULT_STATE_DIR = '/var/lib/nsnet';

/** Whether version `a` is `b` or later. */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * The versions VERSION lists for a caller that speaks `caller` (the `cniVersion` of its VERSION
 * request; libcni sends the newest version it can read results of): those up to it. A caller
 * cannot read a result newer than its own version, so listing one would only move the failure
 * from loading the configuration to after the ADD: podman 4.3 (libcni 1.1, which reads results
 * up to 1.0.0) then refuses a 1.1.0 conflist when it loads it, with "plugin type=nsnet-cni does
 * not support config version 1.1.0", instead of failing each `podman run` after nsnet-cni has
 * set the container up with "unsupported CNI result version". Without a caller version (or one
 * older than every version nsnet-cni speaks), all of them.
 */
export function versionsFor(caller: unknown): CniVersion[] {
  if (typeof caller !== 'string' || !/^\d+\.\d+\.\d+$/u.test(caller)) return [...SUPPORTED_VERSIONS];
  const upTo = SUPPORTED_VERSIONS.filter((v) => versionAtLeast(caller, v));
  return upTo.length ? upTo : [...SUPPORTED_VERSIONS];
}

/** The CNI_* variables, validated for the command. */
export interface CniEnv {
  command: Command;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS as key/value pairs (nsnet-cni uses `IP`; the others are only checked for form). */
  args: Record<string, string>;
}

/** CNI's container id: an alphanumeric, then alphanumerics, '_', '.' and '-' (SPEC.md "Parameters"). */
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/u;
/**
 * The endpoint id is `<containerId>:<ifname>` (at most 128 characters, see plugin.ts), and an
 * interface name is at most 15 bytes: so container ids up to 112 characters.
 */
export const CONTAINER_ID_MAX = 112;

const envError = (msg: string): CniError => new CniError(CNI_ERR.INVALID_ENV, msg);

/** Reads and checks the CNI_* variables. */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') throw envError('CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(command)) throw envError(`unknown CNI_COMMAND ${JSON.stringify(command)} (known: ${COMMANDS.join(', ')})`);
  const out: CniEnv = { command: command as Command, args: parseArgs(env.CNI_ARGS) };
  const perAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  if (!perAttachment) return out;
  const id = env.CNI_CONTAINERID;
  if (id === undefined || id === '') throw envError(`CNI_CONTAINERID is required for ${command}`);
  if (!CONTAINER_ID_RE.test(id) || id.length > CONTAINER_ID_MAX)
    throw envError(`CNI_CONTAINERID ${JSON.stringify(id)} must be 1 to ${CONTAINER_ID_MAX} characters: an alphanumeric, then alphanumerics, "_", "." or "-"`);
  out.containerId = id;
  const ifname = env.CNI_IFNAME;
  if (ifname === undefined || ifname === '') throw envError(`CNI_IFNAME is required for ${command}`);
  try {
    out.ifname = v.ifname(ifname, 'CNI_IFNAME');
  } catch (e) {
    throw envError((e as Error).message);
  }
  const netns = env.CNI_NETNS;
  if (netns === undefined || netns === '') {
    // DEL may come without a namespace (the container is gone): clean up what is known.
    if (command !== 'DEL') throw envError(`CNI_NETNS is required for ${command}`);
  } else {
    if (!path.isAbsolute(netns) || netns.includes('\0')) throw envError(`CNI_NETNS ${JSON.stringify(netns)} must be an absolute path to a network namespace`);
    out.netns = netns;
  }
  return out;
}

/** CNI_ARGS: "K1=V1;K2=V2" (SPEC.md); an empty value is fine, a pair without "=" is not. */
function parseArgs(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (raw === undefined || raw === '') return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw envError(`CNI_ARGS ${JSON.stringify(raw)}: ${JSON.stringify(pair)} is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** DNS settings (passed through to the result). */
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** One attachment the runtime still considers valid (GC). */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/**
 * The nsnet network a configuration describes: the fields given, nothing defaulted — the
 * library's NetworkSpec fields the plugin takes (bridge and macvlan networks).
 */
export type NetworkSettings = Pick<
  NetworkSpec,
  'bridge' | 'parent' | 'mode' | 'subnet' | 'gateway' | 'ipRange' | 'subnet6' | 'gateway6' | 'mtu' | 'icc' | 'internal' | 'ipMasquerade'
> & {
  driver?: 'bridge' | 'macvlan';
};

/** A validated network configuration. */
export interface PluginConfig {
  cniVersion: CniVersion;
  /** The network's name: nsnet's network of that name. */
  name: string;
  type: string;
  network: NetworkSettings;
  stateDir: string;
  /** The namespace nsnet treats as the host's (default: the one the plugin runs in). */
  hostNetns?: string;
  /** `runtimeConfig.portMappings` (the `portMappings` capability), as nsnet publishes them. */
  portMappings: PortMapping[];
  /**
   * `runtimeConfig.ips` (the `ips` capability): static addresses, at most one per family (the
   * same one twice is one). ADD merges CNI_ARGS `IP` in ({@link staticAddresses}).
   */
  ips: StaticIps;
  /** This network's list of `runtimeConfig.aliases` (the `aliases` capability; ./names.ts). */
  aliases?: string[];
  dns?: Dns;
  prevResult?: Record<string, unknown>;
  /** GC: `cni.dev/valid-attachments` (or the older spelling `cni.dev/attachments`). */
  validAttachments?: Attachment[];
}

/** Keys of the CNI spec and its conventions that may appear in any plugin's configuration. */
const STANDARD_KEYS = ['cniVersion', 'cniVersions', 'name', 'type', 'capabilities', 'runtimeConfig', 'prevResult', 'args', 'dns', 'disableCheck', 'disableGC'];
/** nsnet's own keys. */
const NETWORK_KEYS = [
  'driver',
  'bridge',
  'parent',
  'mode',
  'subnet',
  'gateway',
  'ipRange',
  'subnet6',
  'gateway6',
  'mtu',
  'icc',
  'internal',
  'ipMasquerade',
] as const;
const NSNET_KEYS = [...NETWORK_KEYS, 'stateDir', 'hostNetns'];
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const configError = (msg: string): CniError => new CniError(CNI_ERR.INVALID_CONFIG, msg);

/**
 * Parses stdin as JSON, refusing prototype-pollution keys at any depth (JSON.parse makes them
 * plain own properties, but a later spread or merge elsewhere might not).
 */
export function decode(stdin: string): Record<string, unknown> {
  if (stdin.trim() === '') throw new CniError(CNI_ERR.DECODE_FAILURE, 'no network configuration on stdin');
  let forbidden: string | undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin, (key, value: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) forbidden ??= key;
      return value;
    });
  } catch (e) {
    throw new CniError(CNI_ERR.DECODE_FAILURE, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (forbidden !== undefined) throw configError(`the network configuration contains the key ${JSON.stringify(forbidden)}, which is not allowed anywhere`);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw configError('the network configuration must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * The version a reply is printed in: the configuration's when nsnet-cni speaks it, else the
 * latest (used for errors, before or without a valid configuration).
 */
export function replyVersion(conf: Record<string, unknown> | undefined): CniVersion {
  const want = conf?.cniVersion;
  return typeof want === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(want) ? (want as CniVersion) : LATEST_VERSION;
}

/** Checks `cniVersion`: required, and one nsnet-cni speaks. */
export function checkVersion(conf: Record<string, unknown>): CniVersion {
  const want = conf.cniVersion;
  if (want === undefined) throw configError('cniVersion is required');
  if (typeof want !== 'string') throw configError(`cniVersion must be a string, got ${JSON.stringify(want)}`);
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(want))
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `nsnet-cni does not speak CNI ${want}; it speaks ${SUPPORTED_VERSIONS.join(', ')}`, `cniVersion ${want}`);
  return want as CniVersion;
}

function str(conf: Record<string, unknown>, key: string): string | undefined {
  const x = conf[key];
  if (x === undefined) return undefined;
  if (typeof x !== 'string' || x === '' || x.includes('\0')) throw configError(`${key} must be a non-empty string, got ${JSON.stringify(x)}`);
  return x;
}

function bool(conf: Record<string, unknown>, key: string): boolean | undefined {
  const x = conf[key];
  if (x === undefined) return undefined;
  if (typeof x !== 'boolean') throw configError(`${key} must be true or false, got ${JSON.stringify(x)}`);
  return x;
}

function object(x: unknown, what: string): Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw configError(`${what} must be an object`);
  return x as Record<string, unknown>;
}

function strings(x: unknown, what: string): string[] {
  if (!Array.isArray(x) || x.some((s) => typeof s !== 'string')) throw configError(`${what} must be an array of strings`);
  return x as string[];
}

/**
 * Validates a decoded configuration (its version already checked). For DEL, `runtimeConfig`
 * (ports, addresses) is not read: DEL removes what ADD made, whatever the runtime passes along
 * (podman passes the same arguments to the DEL of a failed ADD).
 */
export function parseConfig(conf: Record<string, unknown>, version: CniVersion, command?: Command): PluginConfig {
  for (const k of Object.keys(conf)) {
    if (STANDARD_KEYS.includes(k) || NSNET_KEYS.includes(k) || k.includes('/')) continue; // "x/y": namespaced, another party's
    if (k === 'ipam')
      throw new CniError(
        CNI_ERR.UNSUPPORTED_FIELD,
        'nsnet-cni allocates addresses itself: give subnet (and gateway, ipRange, subnet6) instead of an ipam section',
        'ipam',
      );
    throw new CniError(
      CNI_ERR.UNSUPPORTED_FIELD,
      `nsnet-cni does not know the field ${JSON.stringify(k)} (known: ${NSNET_KEYS.join(', ')} and the CNI spec's)`,
      k,
    );
  }
  const name = str(conf, 'name');
  if (name === undefined) throw configError('name is required');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/u.test(name))
    throw configError(`name ${JSON.stringify(name)} must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit`);
  const type = str(conf, 'type');
  if (type === undefined) throw configError('type is required');

  const network: NetworkSettings = {};
  const driver = str(conf, 'driver');
  if (driver !== undefined) {
    if (driver !== 'bridge' && driver !== 'macvlan') throw configError(`driver ${JSON.stringify(driver)} must be "bridge" or "macvlan"`);
    network.driver = driver;
  }
  for (const k of ['bridge', 'parent', 'subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6'] as const) {
    const x = str(conf, k);
    if (x !== undefined) network[k] = x;
  }
  const mode = str(conf, 'mode');
  if (mode !== undefined) {
    if (!['bridge', 'private', 'vepa', 'passthru'].includes(mode)) throw configError(`mode ${JSON.stringify(mode)} must be bridge, private, vepa or passthru`);
    network.mode = mode as NetworkSettings['mode'];
  }
  if (conf.mtu !== undefined) {
    try {
      network.mtu = v.mtu(conf.mtu);
    } catch (e) {
      throw configError((e as Error).message);
    }
  }
  for (const k of ['icc', 'internal', 'ipMasquerade'] as const) {
    const x = bool(conf, k);
    if (x !== undefined) network[k] = x;
  }

  const stateDir = str(conf, 'stateDir') ?? DEFAULT_STATE_DIR;
  if (!path.isAbsolute(stateDir)) throw configError(`stateDir ${JSON.stringify(stateDir)} must be an absolute path`);
  const out: PluginConfig = { cniVersion: version, name, type, network, stateDir: path.normalize(stateDir), portMappings: [], ips: {} };

  const hostNetns = str(conf, 'hostNetns');
  if (hostNetns !== undefined) {
    try {
      netnsPath(hostNetns);
    } catch (e) {
      throw configError(`hostNetns: ${(e as Error).message}`);
    }
    out.hostNetns = hostNetns;
  }

  if (conf.capabilities !== undefined) object(conf.capabilities, 'capabilities');
  if (conf.args !== undefined) object(conf.args, 'args');
  if (conf.runtimeConfig !== undefined) {
    const rc = object(conf.runtimeConfig, 'runtimeConfig');
    if (rc.portMappings !== undefined && command !== 'DEL') out.portMappings = portMappings(rc.portMappings);
    if (rc.ips !== undefined && command !== 'DEL') out.ips = staticIps(rc.ips);
    const aliases = rc.aliases !== undefined && command !== 'DEL' ? parseAliases(rc.aliases, name) : undefined;
    if (aliases) out.aliases = aliases;
    // Other capabilities (bandwidth, mac, …) belong to other plugins of a chain: ignored.
  }
  if (conf.dns !== undefined) out.dns = dns(conf.dns);
  if (conf.prevResult !== undefined) out.prevResult = object(conf.prevResult, 'prevResult');
  const attachments = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'];
  if (attachments !== undefined) out.validAttachments = validAttachments(attachments);
  return out;
}

/**
 * `runtimeConfig.portMappings` (CNI conventions: `{ hostPort, containerPort, protocol, hostIP }`).
 * `hostIP` as the reference `portmap` plugin reads it: absent or `''`, every host address (of
 * both families when the container has an IPv6 address); an IPv4 address, `0.0.0.0` included,
 * IPv4 only; an IPv6 address, `::` included, IPv6 only. hostPort 0 is refused, since a CNI
 * result has no place to report the port nsnet would pick.
 */
function portMappings(x: unknown): PortMapping[] {
  if (!Array.isArray(x)) throw configError('runtimeConfig.portMappings must be an array');
  return x.map((raw, i) => {
    const what = `runtimeConfig.portMappings[${i}]`;
    const m = object(raw, what);
    const port = (key: string): number => {
      const n = m[key];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
        throw configError(`${what}.${key} must be an integer from 1 to 65535, got ${JSON.stringify(n)}`);
      return n;
    };
    const protocol = m.protocol === undefined || m.protocol === '' ? 'tcp' : m.protocol;
    if (typeof protocol !== 'string' || !['tcp', 'udp', 'sctp'].includes(protocol.toLowerCase()))
      throw configError(`${what}.protocol must be tcp, udp or sctp, got ${JSON.stringify(protocol)}`);
    const out: PortMapping = { protocol: protocol.toLowerCase() as PortMapping['protocol'], hostPort: port('hostPort'), containerPort: port('containerPort') };
    const hostIP = m.hostIP;
    if (hostIP !== undefined && hostIP !== '') {
      if (typeof hostIP !== 'string') throw configError(`${what}.hostIP must be a string`);
      try {
        out.hostIp = v.ip(hostIP, undefined, `${what}.hostIP`).address;
      } catch (e) {
        throw configError((e as Error).message);
      }
    }
    return out;
  });
}

/** Static addresses: at most one per family. */
export interface StaticIps {
  ipv4?: string;
  ipv6?: string;
}

/**
 * Adds addresses (with or without a prefix) to `out`, naming `source` in errors: the same
 * address again is the same request (podman's `network reload` passes the address it already
 * has next to the one asked for); two different addresses of one family are refused.
 */
function addStaticIps(out: StaticIps, list: string[], source: string, fail: (msg: string) => CniError): StaticIps {
  for (const s of list) {
    let a: { address: string; family: 4 | 6 };
    try {
      a = v.ip(s.includes('/') ? s.slice(0, s.indexOf('/')) : s, undefined, source);
    } catch (e) {
      throw fail((e as Error).message);
    }
    const key = a.family === 4 ? 'ipv4' : 'ipv6';
    const had = out[key];
    if (had !== undefined && had !== a.address)
      throw fail(`${source} asks for ${a.address} while ${had} is asked for too: nsnet gives an attachment one IPv${a.family} address`);
    out[key] = a.address;
  }
  return out;
}

/** `runtimeConfig.ips` (the `ips` capability). */
function staticIps(x: unknown): StaticIps {
  return addStaticIps({}, strings(x, 'runtimeConfig.ips'), 'runtimeConfig.ips', configError);
}

/**
 * The static addresses of an ADD: `runtimeConfig.ips` and CNI_ARGS `IP` (what podman sends for
 * one `--ip`, and the `static` IPAM's convention: comma-separated, a prefix allowed), merged as
 * one request. A malformed `IP` is error 4 (it is an environment variable); the two sources
 * asking for different addresses of one family is error 7.
 */
export function staticAddresses(conf: PluginConfig, env: CniEnv): StaticIps {
  const out = { ...conf.ips };
  const arg = env.args.IP;
  if (arg === undefined || arg.trim() === '') return out;
  const list = arg
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const one of list) addStaticIps({}, [one], 'CNI_ARGS IP', envError); // form first: error 4
  return addStaticIps(out, list, 'CNI_ARGS IP', configError);
}

function dns(x: unknown): Dns {
  const d = object(x, 'dns');
  const out: Dns = {};
  for (const k of Object.keys(d)) if (!['nameservers', 'domain', 'search', 'options'].includes(k)) throw configError(`dns: unknown field ${JSON.stringify(k)}`);
  if (d.nameservers !== undefined) out.nameservers = strings(d.nameservers, 'dns.nameservers');
  if (d.domain !== undefined) {
    if (typeof d.domain !== 'string') throw configError('dns.domain must be a string');
    out.domain = d.domain;
  }
  if (d.search !== undefined) out.search = strings(d.search, 'dns.search');
  if (d.options !== undefined) out.options = strings(d.options, 'dns.options');
  return out;
}

function validAttachments(x: unknown): Attachment[] {
  if (!Array.isArray(x)) throw configError('cni.dev/valid-attachments must be an array of { containerID, ifname }');
  return x.map((raw, i) => {
    const a = object(raw, `cni.dev/valid-attachments[${i}]`);
    if (typeof a.containerID !== 'string' || typeof a.ifname !== 'string')
      throw configError(`cni.dev/valid-attachments[${i}] needs containerID and ifname strings`);
    return { containerID: a.containerID, ifname: a.ifname };
  });
}
