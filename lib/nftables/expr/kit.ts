/**
 * The kit every nf_tables expression module shares: registers, the codec interface, and the
 * small validation and conversion helpers. Values are readable names in the typed form and
 * numbers on the wire (the attribute names of the addon's tables in native/nft/expr_*.cc).
 *
 * Canonical form: optional fields are absent when they hold their default (zero, false, no
 * flags), flag lists are in bit order, registers NFT_REG32_00/04/08/12 are written 1..4 (see
 * {@link canonicalReg}), and decoding always yields that form, so `decode(encode(x))`
 * deep-equals any canonical `x`, and a rule listed from the kernel decodes to the canonical form
 * of the expressions it was written from (less `setId`s: the kernel lists the set's name).
 *
 * A leaf: the expression modules import it, ./registry.ts imports them, and nothing here
 * imports either.
 */
import { invalid, NsnetError } from '../../errors';

/**
 * How one expression kind is written and read (each expression module exports one; the
 * registry, ./registry.ts, collects them). `E` is the kind's typed form (`ExprCodec<CmpExpr>`).
 */
export interface ExprCodec<E extends { type: string } = { type: string }> {
  /** The typed form's discriminant. */
  type: E['type'];
  /** NFTA_EXPR_NAME. */
  kernelName: string;
  /** The NFTA_EXPR_DATA attributes, by the addon's attribute names; throws ERR_INVALID_ARGUMENT. */
  encode(e: E): Record<string, unknown>;
  /** The typed form, canonical, from the decoded NFTA_EXPR_DATA attributes. */
  decode(data: Record<string, unknown>): E;
}

/**
 * A register number as on the wire: NFT_REG_VERDICT (0), the 16-byte NFT_REG_1..4 (1..4) or the
 * 4-byte NFT_REG32_00..15 (8..23). The kernel aliases NFT_REG32_00/04/08/12 with NFT_REG_1..4
 * and lists them as 1..4.
 */
export type Register = number;

/** Register numbers by name. */
export const REG = {
  verdict: 0,
  r1: 1,
  r2: 2,
  r3: 3,
  r4: 4,
  /** NFT_REG32_00 + n, n = 0..15. */
  r32: (n: number): Register => {
    if (!Number.isInteger(n) || n < 0 || n > 15) throw fail('REG.r32', `n must be an integer from 0 to 15, got ${JSON.stringify(n)}`);
    return 8 + n;
  },
} as const;

/** A field as a validation message names it: 'payload.offset'. */
type What = string;

/** The error every encoder (and decoder) throws on bad input. @internal */
export function fail(what: What, message: string, value?: unknown): NsnetError {
  return invalid('ERR_INVALID_ARGUMENT', `nft expression${what ? ` ${what}` : ''}: ${message}`, value === undefined ? {} : { value });
}

/** Checks that `e` is an object with only the known keys (typos are errors). @internal */
export function fields(e: unknown, type: string, keys: readonly string[]): Record<string, unknown> {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw fail(type, 'must be an object', e);
  for (const k of Object.keys(e)) {
    if (k !== 'type' && !keys.includes(k)) throw fail(type, `unknown field ${JSON.stringify(k)}`, k);
  }
  return e as Record<string, unknown>;
}

/** An integer in [min, max]. @internal */
export function int(v: unknown, what: What, min = 0, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw fail(what, `must be an integer from ${min} to ${max}`, v);
  return v;
}

/** A 64-bit unsigned counter: a number, or a bigint beyond 2^53. @internal */
export function u64(v: unknown, what: What): number | bigint {
  if (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) return v;
  return int(v, what, 0, Number.MAX_SAFE_INTEGER);
}

/** A data register (1..4, 8..23), or also the verdict register when `verdict` is set. @internal */
export function reg(v: unknown, what: What, verdict = false): Register {
  if (typeof v === 'number' && Number.isInteger(v) && ((v >= 1 && v <= 4) || (v >= 8 && v <= 23) || (verdict && v === 0))) return v;
  throw fail(what, `must be a register: ${verdict ? '0 (verdict), ' : ''}1..4 or 8..23 (REG.r1.., REG.r32(n))`, v);
}

/** A non-empty name of at most `max` bytes without NUL (sets, chains, objects, prefixes). @internal */
export function name(v: unknown, what: What, max = 255, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v === '') || Buffer.byteLength(v) > max || v.includes('\0'))
    throw fail(what, `must be a string of ${allowEmpty ? 0 : 1} to ${max} bytes without NUL`, v);
  return v;
}

/** The most an expression's constant holds: struct nft_data, 16 bytes (one NFT_REG_1..4). */
export const NFT_DATA_MAXLEN = 16;

/** A constant of an expression (cmp, range, bitwise, immediate): 1 to 16 bytes. @internal */
export function bytes(v: unknown, what: What): Buffer {
  if (!(v instanceof Uint8Array) || v.length < 1 || v.length > NFT_DATA_MAXLEN) throw fail(what, `must be a Buffer of 1 to ${NFT_DATA_MAXLEN} bytes`, v);
  return Buffer.isBuffer(v) ? v : Buffer.from(v);
}

/** A boolean option; `undefined` is false. @internal */
export function flag(v: unknown, what: What): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw fail(what, 'must be true or false', v);
  return v;
}

/** A closed enumeration: names in the typed form, numbers on the wire. @internal */
export class Enum<N extends string> {
  private readonly byValue = new Map<number, N>();
  constructor(readonly values: Readonly<Record<N, number>>) {
    for (const [k, n] of Object.entries(values) as [N, number][]) this.byValue.set(n, k);
  }
  encode(v: unknown, what: What): number {
    if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(this.values, v)) return this.values[v as N];
    throw fail(
      what,
      `must be one of ${Object.keys(this.values)
        .map((k) => `'${k}'`)
        .join(', ')}`,
      v,
    );
  }
  decode(n: unknown, what: What): N {
    const k = typeof n === 'number' ? this.byValue.get(n) : undefined;
    if (k === undefined) throw fail(what, 'unknown value on the wire', n);
    return k;
  }
}

/** An open enumeration: a name when known, else the number (kernel keys newer than this table). @internal */
export class OpenEnum<N extends string> {
  private readonly names: Enum<N>;
  constructor(values: Readonly<Record<N, number>>) {
    this.names = new Enum(values);
  }
  encode(v: unknown, what: What): number {
    return typeof v === 'number' ? int(v, what) : this.names.encode(v, what);
  }
  decode(n: unknown, what: What): N | number {
    try {
      return this.names.decode(n, what);
    } catch {
      return int(n, what);
    }
  }
}

/** A bit set: an array of names in the typed form (canonical: bit order), a number on the wire. @internal */
export class Flags<N extends string> {
  constructor(readonly bits: Readonly<Record<N, number>>) {}
  encode(v: unknown, what: What): number {
    if (v === undefined) return 0;
    if (!Array.isArray(v)) throw fail(what, 'must be an array of flag names', v);
    let n = 0;
    for (const f of v) {
      if (typeof f !== 'string' || !Object.prototype.hasOwnProperty.call(this.bits, f))
        throw fail(what, `unknown flag ${JSON.stringify(f)}; known: ${Object.keys(this.bits).join(', ')}`, f);
      n |= this.bits[f as N];
    }
    return n >>> 0;
  }
  decode(n: unknown, what: What): N[] {
    let rest = int(n ?? 0, what);
    const out: N[] = [];
    for (const [k, bit] of (Object.entries(this.bits) as [N, number][]).sort((a, b) => a[1] - b[1])) {
      if (rest & bit) out.push(k);
      rest &= ~bit;
    }
    if (rest) throw fail(what, `unknown flag bits 0x${(rest >>> 0).toString(16)}`, n);
    return out;
  }
}

// ---- decoding the addon's attribute objects ----

/** A required integer attribute. @internal */
export function need(d: Record<string, unknown>, key: string, what: What): number {
  const v = d[key];
  if (typeof v !== 'number') throw fail(what, `attribute ${key} missing or not a number`, v);
  return v;
}

/**
 * A register as the kernel lists it: NFT_REG32_00, 04, 08 and 12 are the first words of
 * NFT_REG_1..4 and are listed as 1..4, so the canonical form uses 1..4 for them too.
 */
export function canonicalReg(n: Register): Register {
  return n >= 8 && n <= 23 && (n - 8) % 4 === 0 ? 1 + (n - 8) / 4 : n;
}

/** A required register attribute, canonical. @internal */
export function needReg(d: Record<string, unknown>, key: string, what: What): Register {
  return canonicalReg(need(d, key, what));
}

/** An optional register attribute, canonical; absent (or 0 where 0 means unset): undefined. @internal */
export function optReg(d: Record<string, unknown>, key: string, zeroIsUnset = false): Register | undefined {
  const v = d[key];
  return typeof v !== 'number' || (zeroIsUnset && v === 0) ? undefined : canonicalReg(v);
}

/** An optional integer attribute (absent: `dflt`). @internal */
export function opt(d: Record<string, unknown>, key: string, dflt = 0): number {
  const v = d[key];
  return typeof v === 'number' ? v : dflt;
}

/** A 64-bit attribute (a number, or a decimal string beyond 2^53) as a number or bigint. @internal */
export function wireU64(v: unknown): number | bigint {
  if (typeof v === 'string' && /^\d+$/u.test(v)) return BigInt(v);
  return typeof v === 'number' ? v : 0;
}

/** A required string attribute. @internal */
export function needString(d: Record<string, unknown>, key: string, what: What): string {
  const v = d[key];
  if (typeof v !== 'string') throw fail(what, `attribute ${key} missing`, v);
  return v;
}

/** An NFTA_DATA nest `{ value }` (hex on decode) as a Buffer. @internal */
export function wireValue(d: Record<string, unknown>, key: string, what: What): Buffer {
  const nest = d[key] as { value?: unknown } | undefined;
  const v = nest?.value;
  if (typeof v === 'string') return Buffer.from(v, 'hex');
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw fail(what, `attribute ${key} has no data value`, nest);
}

/** Builds an attribute object, leaving out `undefined` entries. @internal */
export function attrs(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
