/**
 * Input validation: everything is checked here before anything reaches the kernel, and a
 * failure is an NsnetError with a stable code.
 * @internal
 */
import * as ipaddr from 'ipaddr.js';
import { invalid } from './errors';

/** IFNAMSIZ - 1: interface names are at most 15 bytes. */
export const IFNAME_MAX = 15;

/** An interface name as the kernel accepts it (dev_valid_name): 1..15 bytes, no '/', ':' or white space, not '.' or '..'. */
export function ifname(name: unknown, what = 'interface name'): string {
  if (typeof name !== 'string') throw invalid('ERR_INVALID_NAME', `${what} must be a string`, { value: name });
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > IFNAME_MAX)
    throw invalid('ERR_INVALID_NAME', `${what} ${JSON.stringify(name)} must be 1 to ${IFNAME_MAX} bytes long`, { value: name });
  if (name === '.' || name === '..' || /[/:\s\0]/u.test(name))
    throw invalid('ERR_INVALID_NAME', `${what} ${JSON.stringify(name)} may not be "." or "..", nor contain "/", ":", NUL or white space`, { value: name });
  return name;
}

/** An IPv4 address label: up to 15 bytes, no '/', NUL or white space; ':' allowed ("eth0:web"). */
export function label(value: unknown): string {
  if (typeof value !== 'string' || Buffer.byteLength(value) === 0 || Buffer.byteLength(value) > IFNAME_MAX || /[/\s\0]/u.test(value))
    throw invalid('ERR_INVALID_NAME', `address label ${JSON.stringify(value)} must be 1 to ${IFNAME_MAX} bytes without "/", NUL or white space`, { value });
  return value;
}

/** A network namespace name: what iproute2 accepts, restricted to a portable set. */
export function netnsName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/u.test(name) || name === '.' || name === '..')
    throw invalid(
      'ERR_INVALID_NAME',
      `namespace name ${JSON.stringify(name)} must be 1 to 64 characters of letters, digits, "_", "." and "-", not starting with "." or "-"`,
      { value: name },
    );
  return name;
}

/** A link-layer (Ethernet) address; `unicast` refuses multicast and all-zero addresses. */
export function mac(value: unknown, opts: { unicast?: boolean } = {}): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/u.test(value))
    throw invalid('ERR_INVALID_MAC', `${JSON.stringify(value)} is not a MAC address (aa:bb:cc:dd:ee:ff)`, { value });
  const lower = value.toLowerCase();
  if (opts.unicast) {
    if (parseInt(lower.slice(0, 2), 16) & 1) throw invalid('ERR_INVALID_MAC', `${value} is a multicast address; an interface needs a unicast MAC`, { value });
    if (lower === '00:00:00:00:00:00') throw invalid('ERR_INVALID_MAC', 'the all-zero MAC is not a valid interface address', { value });
  }
  return lower;
}

export type Family = 4 | 6;

/** An IP address (v4 or v6, optionally only one family), normalized. */
export function ip(value: unknown, family?: Family, what = 'IP address'): { address: string; family: Family } {
  if (typeof value !== 'string' || !ipaddr.isValid(value) || (value.includes(':') === false && !ipaddr.IPv4.isValidFourPartDecimal(value)))
    throw invalid('ERR_INVALID_IP', `${what} ${JSON.stringify(value)} is not an IP address`, { value });
  const parsed = ipaddr.parse(value);
  const fam: Family = parsed.kind() === 'ipv4' ? 4 : 6;
  if (family && fam !== family) throw invalid('ERR_INVALID_IP', `${what} ${value} is IPv${fam}; IPv${family} is needed here`, { value });
  return { address: parsed.toString(), family: fam };
}

/** A CIDR "addr/len" (the host bits may be set: an interface address). */
export function cidr(value: unknown, family?: Family, what = 'CIDR'): { address: string; prefix: number; family: Family } {
  if (typeof value !== 'string' || !value.includes('/'))
    throw invalid('ERR_INVALID_CIDR', `${what} ${JSON.stringify(value)} is not in address/prefix form`, { value });
  const slash = value.indexOf('/');
  const addr = value.slice(0, slash);
  const len = value.slice(slash + 1);
  let a: { address: string; family: Family };
  try {
    a = ip(addr, undefined, what);
  } catch {
    throw invalid('ERR_INVALID_CIDR', `${what} ${JSON.stringify(value)} has an invalid address`, { value });
  }
  const max = a.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/u.test(len) || Number(len) > max)
    throw invalid('ERR_INVALID_CIDR', `${what} ${JSON.stringify(value)}: the prefix length must be 0..${max}`, { value });
  if (family && a.family !== family) throw invalid('ERR_INVALID_CIDR', `${what} ${value} is IPv${a.family}; IPv${family} is needed here`, { value });
  return { address: a.address, prefix: Number(len), family: a.family };
}

/** The network address of a CIDR ("10.1.2.3/8" -> "10.0.0.0"). */
export function networkAddress(address: string, prefix: number): string {
  return address.includes(':')
    ? ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefix}`).toString()
    : ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`).toString();
}

/** The IPv4 broadcast address of a CIDR. */
export function broadcastAddress(address: string, prefix: number): string {
  return ipaddr.IPv4.broadcastAddressFromCIDR(`${address}/${prefix}`).toString();
}

/** An integer in [min, max]. */
export function int(value: unknown, min: number, max: number, what: string, code = 'ERR_INVALID_ARGUMENT'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(code, `${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, { value });
  return value;
}

/** MTU: 68 (the IPv4 minimum) to 65535; the device may allow less (the kernel says so). */
export function mtu(value: unknown): number {
  return int(value, 68, 65535, 'MTU', 'ERR_INVALID_MTU');
}

export function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalid('ERR_INVALID_ARGUMENT', `${what} must be true or false`, { value });
  return value;
}

export function str(value: unknown, what: string, maxBytes = 255): string {
  if (typeof value !== 'string' || Buffer.byteLength(value) > maxBytes || value.includes('\0'))
    throw invalid('ERR_INVALID_ARGUMENT', `${what} must be a string of at most ${maxBytes} bytes without NUL`, { value });
  return value;
}

/** Rejects option keys the call does not know (typos, prototype-pollution keys). */
export function knownKeys(obj: unknown, keys: readonly string[], what: string): Record<string, unknown> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw invalid('ERR_INVALID_ARGUMENT', `${what} must be an object`, { value: obj });
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw invalid('ERR_INVALID_ARGUMENT', `${what}: unknown option ${JSON.stringify(k)}`, { key: k });
  }
  return obj as Record<string, unknown>;
}

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/u;
const ENDPOINT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/u;

/** A network's name: 1 to 64 letters, digits, '_', '.', '-', starting with a letter or digit. */
export function networkName(n: unknown): string {
  if (typeof n !== 'string' || !NETWORK_NAME.test(n))
    throw invalid('ERR_INVALID_NAME', `network name ${JSON.stringify(n)} must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit`, {
      value: n,
    });
  return n;
}

/** An endpoint's id: 1 to 128 letters, digits, '_', '.', ':', '-', starting with a letter or digit. */
export function endpointId(id: unknown): string {
  if (typeof id !== 'string' || !ENDPOINT_ID.test(id))
    throw invalid(
      'ERR_INVALID_NAME',
      `endpoint id ${JSON.stringify(id)} must be 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit`,
      { value: id },
    );
  return id;
}

/** Labels: string keys and values, no prototype keys. */
export function labels(l: unknown): Record<string, string> {
  if (l === undefined) return {};
  if (l === null || typeof l !== 'object' || Array.isArray(l)) throw invalid('ERR_INVALID_ARGUMENT', 'labels must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(l)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype')
      throw invalid('ERR_INVALID_ARGUMENT', `label key ${JSON.stringify(k)} is not allowed`, { key: k });
    out[str(k, 'label key', 256)] = str(val, `label ${k}`, 4096);
  }
  return out;
}
