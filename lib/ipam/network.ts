/**
 * A network's address plan: validation and defaults for subnet, gateway, ip range and the IPv6
 * subnet, overlap checks, and picking a free subnet from address pools (Docker's
 * default-address-pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 in /20s).
 */
import { invalid } from '../errors';
import * as validate from '../validate';
import { contains, formatBlock, fromBig, lastOf, overlaps, parseAddress, parseBlock, within, type Block, type Family } from './addr';

/** What a user may say about a network's addresses (all optional). */
export interface NetworkAddressing {
  /** IPv4 subnet in network form ('172.20.0.0/16'); picked from the pools when omitted. */
  subnet?: string;
  /** IPv4 gateway inside the subnet (default: its first host). Needs `subnet`. */
  gateway?: string;
  /** Allocate dynamic IPv4 addresses only from this block inside the subnet. Needs `subnet`. */
  ipRange?: string;
  /** IPv6 subnet (prefix /48 to /124) for a dual-stack network. */
  subnet6?: string;
  /** IPv6 gateway inside `subnet6` (default: its first address after the network, '…::1'). */
  gateway6?: string;
}

/** A validated, complete address plan: addresses normalized, defaults filled in. */
export interface NormalizedNetwork {
  subnet: string;
  gateway: string;
  ipRange?: string;
  subnet6?: string;
  gateway6?: string;
}

/** A pool subnets are carved from: `base` split into blocks of prefix length `size`. */
export interface AddressPool {
  base: string;
  size: number;
}

/** Docker's default-address-pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 in /20s. */
export const DEFAULT_POOLS: readonly AddressPool[] = Object.freeze([
  { base: '172.17.0.0/16', size: 16 },
  { base: '172.18.0.0/15', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/13', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
]);

/** Options of {@link normalizeNetwork}. */
export interface NormalizeOptions {
  /** Pools to pick a subnet from when none is given (default {@link DEFAULT_POOLS}). */
  pools?: readonly AddressPool[];
  /**
   * Blocks a picked subnet must also stay clear of — e.g. the host's routes — without making
   * an explicitly given subnet an error (as Docker does).
   */
  avoid?: readonly string[];
}

/** Blocks no network may use: unspecified, loopback, multicast, class E; IPv6 likewise + link-local and v4-mapped. */
const FORBIDDEN: Record<Family, Block[]> = {
  4: ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'].map((c) => parseBlock(c, 4, 'block', true)),
  6: ['::/127', 'ff00::/8', 'fe80::/10', '::ffff:0:0/96'].map((c) => parseBlock(c, 6, 'block', true)),
};

const PREFIX: Record<Family, [number, number]> = { 4: [8, 30], 6: [48, 124] };

function subnetBlock(value: unknown, family: Family, what: string): Block {
  if (typeof value === 'string' && value.includes(':') !== (family === 6))
    throw invalid('ERR_INVALID_CIDR', `${what} ${value} is IPv${family === 4 ? 6 : 4}; use ${family === 4 ? 'subnet6' : 'subnet'} for it`, { value });
  const b = parseBlock(value, family, what, true);
  const [min, max] = PREFIX[family];
  if (b.prefix < min || b.prefix > max)
    throw invalid('ERR_INVALID_CIDR', `${what} ${value}: an IPv${family} network needs a prefix length from /${min} to /${max}`, { value });
  const bad = FORBIDDEN[family].find((f) => overlaps(f, b));
  if (bad) throw invalid('ERR_INVALID_CIDR', `${what} ${value} overlaps ${formatBlock(bad)}, which cannot be used for a network`, { value });
  return b;
}

function gatewayOf(value: unknown, subnet: Block, what: string): string {
  if (value === undefined) return fromBig(subnet.base + 1n, subnet.family);
  const g = parseAddress(value, subnet.family, what);
  const reserved = g.n === subnet.base || (subnet.family === 4 && g.n === lastOf(subnet));
  if (!contains(subnet, g.family, g.n) || reserved)
    throw invalid(
      'ERR_GATEWAY_OUTSIDE_SUBNET',
      reserved
        ? `${what} ${g.address} is the ${g.n === subnet.base ? 'network' : 'broadcast'} address of ${formatBlock(subnet)}; pick a host address`
        : `${what} ${g.address} is outside the subnet ${formatBlock(subnet)}`,
      { gateway: g.address, subnet: formatBlock(subnet) },
    );
  return g.address;
}

/** Parses a list of blocks (host bits tolerated); a malformed one is an error, never skipped. */
function blocks(list: readonly string[] | undefined, what: string): Block[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw invalid('ERR_INVALID_ARGUMENT', `${what} must be an array of CIDRs`, { value: list });
  return list.map((c) => parseBlock(c, undefined, what, false));
}

function refuseOverlap(b: Block, existing: Block[]): void {
  const other = existing.find((e) => overlaps(e, b));
  if (other)
    throw invalid('ERR_SUBNET_OVERLAP', `subnet ${formatBlock(b)} overlaps ${formatBlock(other)}, which is already in use`, {
      subnet: formatBlock(b),
      other: formatBlock(other),
    });
}

/** The first block of the pools that overlaps nothing taken (ERR_NO_FREE_SUBNET). */
function pick(pools: readonly AddressPool[], taken: Block[]): Block {
  for (const pool of pools) {
    const base = parseBlock(pool?.base, 4, 'address pool', true);
    const size = validate.int(pool.size, base.prefix, PREFIX[4][1], `address pool ${pool.base} size`);
    const step = 1n << BigInt(32 - size);
    for (let at = base.base; at <= lastOf(base); at += step) {
      const candidate: Block = { family: 4, base: at, prefix: size };
      // Skip past a taken block in one go (it may be bigger than the step).
      const hit = taken.find((t) => overlaps(t, candidate));
      if (!hit) return candidate;
      const after = lastOf(hit) + 1n;
      if (after > at + step) at = ((after - base.base + step - 1n) / step) * step + base.base - step;
    }
  }
  throw invalid('ERR_NO_FREE_SUBNET', 'every subnet of the address pools is in use; give a subnet explicitly or configure more pools', {
    pools: pools.map((p) => `${p.base} as /${p.size}s`),
  });
}

/**
 * Validates and completes a network's address plan.
 * @param spec what the user asked for
 * @param existingSubnets subnets (IPv4 and IPv6) of the other networks: an overlap is ERR_SUBNET_OVERLAP
 * @param opts pools to pick from when `spec.subnet` is omitted, and blocks to steer clear of
 * @throws ERR_INVALID_CIDR (with details.hint for host bits), ERR_INVALID_IP,
 *   ERR_GATEWAY_OUTSIDE_SUBNET, ERR_RANGE_OUTSIDE_SUBNET, ERR_SUBNET_OVERLAP (details.other),
 *   ERR_NO_FREE_SUBNET, ERR_INVALID_ARGUMENT
 */
export function normalizeNetwork(spec: NetworkAddressing, existingSubnets: readonly string[] = [], opts: NormalizeOptions = {}): NormalizedNetwork {
  validate.knownKeys(spec, ['subnet', 'gateway', 'ipRange', 'subnet6', 'gateway6'], 'network addressing');
  validate.knownKeys(opts, ['pools', 'avoid'], 'normalizeNetwork options');
  const existing = blocks(existingSubnets, 'existing subnet');
  let subnet: Block;
  if (spec.subnet === undefined) {
    for (const k of ['gateway', 'ipRange'] as const) {
      if (spec[k] !== undefined) throw invalid('ERR_INVALID_ARGUMENT', `${k} needs an explicit subnet`, { [k]: spec[k] });
    }
    subnet = pick(opts.pools ?? DEFAULT_POOLS, [...existing, ...blocks(opts.avoid, 'avoided subnet')]);
  } else {
    subnet = subnetBlock(spec.subnet, 4, 'subnet');
    refuseOverlap(subnet, existing);
  }
  const out: NormalizedNetwork = { subnet: formatBlock(subnet), gateway: gatewayOf(spec.gateway, subnet, 'gateway') };
  if (spec.ipRange !== undefined) {
    const range = parseBlock(spec.ipRange, 4, 'ipRange', true);
    if (!within(range, subnet))
      throw invalid('ERR_RANGE_OUTSIDE_SUBNET', `ipRange ${formatBlock(range)} is not inside the subnet ${out.subnet}`, {
        ipRange: formatBlock(range),
        subnet: out.subnet,
      });
    out.ipRange = formatBlock(range);
  }
  if (spec.subnet6 === undefined) {
    if (spec.gateway6 !== undefined) throw invalid('ERR_INVALID_ARGUMENT', 'gateway6 needs subnet6', { gateway6: spec.gateway6 });
  } else {
    const subnet6 = subnetBlock(spec.subnet6, 6, 'subnet6');
    refuseOverlap(subnet6, existing);
    out.subnet6 = formatBlock(subnet6);
    out.gateway6 = gatewayOf(spec.gateway6, subnet6, 'gateway6');
  }
  return out;
}
