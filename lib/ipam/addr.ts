/**
 * Address math for IPAM: addresses as bigints (IPv4 and IPv6 alike), CIDRs as base + prefix.
 * Parsing goes through ipaddr.js and lib/validate.ts; failures are NsnetErrors.
 * @internal
 */
import * as ipaddr from 'ipaddr.js';
import { invalid } from '../errors';
import * as validate from '../validate';

export type Family = 4 | 6;

/** A CIDR block: its first address, prefix length and family. */
export interface Block {
  family: Family;
  base: bigint;
  prefix: number;
}

/** Address bits per family. */
export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** An address as an integer. */
export function toBig(address: string): bigint {
  let n = 0n;
  for (const b of ipaddr.parse(address).toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

/** An integer as an address string (IPv6 in RFC 5952 form). */
export function fromBig(n: bigint, family: Family): string {
  const bytes: number[] = new Array(bitsOf(family) / 8);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses an address (ERR_INVALID_IP): normalized text and value. Zone ids are refused. */
export function parseAddress(value: unknown, family: Family | undefined, what: string): { address: string; n: bigint; family: Family } {
  if (typeof value === 'string' && value.includes('%')) throw invalid('ERR_INVALID_IP', `${what} ${JSON.stringify(value)} may not carry a zone id`, { value });
  const a = validate.ip(value, family, what);
  return { address: a.address, n: toBig(a.address), family: a.family };
}

/**
 * Parses a CIDR (ERR_INVALID_CIDR). `strict`: host bits must be zero, else the error says which
 * network was probably meant (details.hint); otherwise they are masked off.
 */
export function parseBlock(value: unknown, family: Family | undefined, what: string, strict: boolean): Block {
  if (typeof value === 'string' && value.includes('%'))
    throw invalid('ERR_INVALID_CIDR', `${what} ${JSON.stringify(value)} may not carry a zone id`, { value });
  const c = validate.cidr(value, family, what);
  const n = toBig(c.address);
  const base = n & mask(c.family, c.prefix);
  if (strict && base !== n) {
    const hint = `${fromBig(base, c.family)}/${c.prefix}`;
    throw invalid('ERR_INVALID_CIDR', `${what} ${value} has host bits set; a network is written by its first address — did you mean ${hint}?`, { value, hint });
  }
  return { family: c.family, base, prefix: c.prefix };
}

function mask(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** Number of addresses in the block. */
export const sizeOf = (b: Block): bigint => 1n << BigInt(bitsOf(b.family) - b.prefix);

/** Last address of the block (the IPv4 broadcast address). */
export const lastOf = (b: Block): bigint => b.base + sizeOf(b) - 1n;

/** "base/prefix". */
export const formatBlock = (b: Block): string => `${fromBig(b.base, b.family)}/${b.prefix}`;

/** Is address `n` (of `family`) inside the block? */
export const contains = (b: Block, family: Family, n: bigint): boolean => b.family === family && n >= b.base && n <= lastOf(b);

/** Do the blocks share an address? (Blocks of different families never do.) */
export const overlaps = (a: Block, b: Block): boolean => a.family === b.family && a.base <= lastOf(b) && b.base <= lastOf(a);

/** Is `inner` entirely inside `outer`? */
export const within = (inner: Block, outer: Block): boolean => overlaps(inner, outer) && inner.prefix >= outer.prefix;
