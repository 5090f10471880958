/**
 * Set key and map value types: how a typed value ('172.20.0.2', 'tcp', 8080, 'br0') becomes
 * the bytes the kernel compares, and back. Concatenations pad each field to 4 bytes, as the
 * kernel's 32-bit registers do.
 */
import * as net from 'node:net';
import * as os from 'node:os';
import * as ipaddr from 'ipaddr.js';
import { invalid } from '../errors';
import * as v from '../validate';
import { TYPE_BITS } from './constants';

/** A set key / map value type, by its nft name. */
export type DataType = 'ipv4_addr' | 'ipv6_addr' | 'ether_addr' | 'inet_proto' | 'inet_service' | 'ifname' | 'mark';

interface TypeInfo {
  id: number;
  len: number;
  /** nft's byte order of the type: 1 host, 2 big-endian (kept in set user data for `nft list`). */
  byteorder?: 1;
  encode(value: unknown): Buffer;
  decode(b: Buffer): string | number;
}

const PROTOS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, sctp: 132, udplite: 136 };
const PROTO_NAMES = Object.fromEntries(Object.entries(PROTOS).map(([k, n]) => [n, k])) as Record<number, string>;

/**
 * The canonical dotted quad's bytes, read by hand: ipaddr.js's parser (two regular expressions
 * and a parseInt per part) was a sixth of the time of a 10,000-element batch. `net.isIPv4` is
 * Node's own check (four decimal parts ≤ 255, no leading zeros); anything else goes the
 * validated way below.
 */
function dottedQuad(x: unknown): Buffer | undefined {
  if (typeof x !== 'string' || !net.isIPv4(x)) return undefined;
  const b = Buffer.alloc(4);
  let i = 0;
  let n = 0;
  for (let c = 0; c < x.length; c++) {
    const ch = x.charCodeAt(c);
    if (ch === 46 /* . */) {
      b[i++] = n;
      n = 0;
    } else n = n * 10 + ch - 48;
  }
  b[3] = n;
  return b;
}

/** Parses an address of one family once (the hot path of big element batches). */
function parseIp(x: unknown, family: 4 | 6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (family === 4 && typeof x === 'string' && ipaddr.IPv4.isValidFourPartDecimal(x)) return ipaddr.IPv4.parse(x);
  if (family === 6 && typeof x === 'string' && x.includes(':') && ipaddr.IPv6.isValid(x)) return ipaddr.IPv6.parse(x);
  return ipaddr.parse(v.ip(x, family).address); // throws the coded error for bad input
}

const TYPES: Record<DataType, TypeInfo> = {
  ipv4_addr: {
    id: 7,
    len: 4,
    encode: (x) => dottedQuad(x) ?? Buffer.from(parseIp(x, 4).toByteArray()),
    decode: (b) => Array.from(b.subarray(0, 4)).join('.'),
  },
  ipv6_addr: {
    id: 8,
    len: 16,
    encode: (x) => Buffer.from(parseIp(x, 6).toByteArray()),
    decode: (b) => ipaddr.fromByteArray(Array.from(b.subarray(0, 16))).toString(),
  },
  ether_addr: {
    id: 9,
    len: 6,
    encode: (x) =>
      Buffer.from(
        v
          .mac(x)
          .split(':')
          .map((h) => parseInt(h, 16)),
      ),
    decode: (b) => Array.from(b.subarray(0, 6), (n) => n.toString(16).padStart(2, '0')).join(':'),
  },
  inet_proto: {
    id: 12,
    len: 1,
    encode: (x) => Buffer.from([typeof x === 'string' && x in PROTOS ? PROTOS[x]! : v.int(x, 0, 255, 'protocol')]),
    decode: (b) => PROTO_NAMES[b[0]!] ?? b[0]!,
  },
  inet_service: {
    id: 13,
    len: 2,
    encode: (x) => {
      const b = Buffer.alloc(2);
      b.writeUInt16BE(v.int(x, 0, 65535, 'port'));
      return b;
    },
    decode: (b) => b.readUInt16BE(0),
  },
  ifname: {
    id: 41,
    len: 16,
    byteorder: 1,
    encode: (x) => {
      const b = Buffer.alloc(16);
      b.write(v.ifname(x), 'utf8');
      return b;
    },
    decode: (b) => b.subarray(0, 16).toString('utf8').replace(/\0.*$/su, ''),
  },
  mark: {
    id: 19,
    len: 4,
    byteorder: 1,
    encode: (x) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v.int(x, 0, 2 ** 32 - 1, 'mark')); // host byte order, like meta mark
      return b;
    },
    decode: (b) => b.readUInt32LE(0),
  },
};

const BY_ID = new Map(Object.entries(TYPES).map(([name, t]) => [t.id, name as DataType]));

export function typeInfo(t: unknown): TypeInfo {
  if (typeof t !== 'string' || !(t in TYPES))
    throw invalid('ERR_INVALID_ARGUMENT', `unknown data type ${JSON.stringify(t)} (known: ${Object.keys(TYPES).join(', ')})`);
  return TYPES[t as DataType];
}

/** A key or value layout: one type, or a concatenation. */
export class Layout {
  readonly types: DataType[];
  constructor(types: DataType | DataType[]) {
    this.types = Array.isArray(types) ? types : [types];
    if (this.types.length === 0) throw invalid('ERR_INVALID_ARGUMENT', 'a set key needs at least one type');
    for (const t of this.types) typeInfo(t);
  }
  get concat(): boolean {
    return this.types.length > 1;
  }
  /** The type id nft uses: fields shifted by TYPE_BITS. */
  get id(): number {
    return this.types.reduce((acc, t) => acc * 2 ** TYPE_BITS + typeInfo(t).id, 0);
  }
  /** Bytes on the wire: each field of a concatenation padded to 4. */
  get len(): number {
    return this.concat ? this.types.reduce((n, t) => n + align4(typeInfo(t).len), 0) : typeInfo(this.types[0]).len;
  }
  /** nft's byte order for set user data: that of a single type; 0 for a concatenation. */
  get byteorder(): number {
    return this.concat ? 0 : (typeInfo(this.types[0]).byteorder ?? 2);
  }
  /** Field lengths (unpadded), for NFTA_SET_DESC_CONCAT. */
  get fieldLens(): number[] {
    return this.types.map((t) => typeInfo(t).len);
  }
  encode(value: unknown): Buffer {
    const parts = this.concat ? value : [value];
    if (!Array.isArray(parts) || parts.length !== this.types.length)
      throw invalid(
        'ERR_INVALID_ARGUMENT',
        `expected ${this.concat ? `an array of ${this.types.length} values (${this.types.join(' . ')})` : `a ${this.types[0]}`}, got ${JSON.stringify(value)}`,
      );
    if (!this.concat) return typeInfo(this.types[0]).encode(parts[0]);
    // Each field written into one buffer at its padded offset (no concatenations per element).
    const bytes = parts.map((p, i) => typeInfo(this.types[i]).encode(p));
    const out = Buffer.alloc(bytes.reduce((n, b) => n + align4(b.length), 0));
    let off = 0;
    for (const b of bytes) {
      b.copy(out, off);
      off += align4(b.length);
    }
    return out;
  }
  decode(b: Buffer): unknown {
    if (!this.concat) return typeInfo(this.types[0]).decode(b);
    const out: unknown[] = [];
    let off = 0;
    for (const t of this.types) {
      const ti = typeInfo(t);
      out.push(ti.decode(b.subarray(off, off + ti.len)));
      off += align4(ti.len);
    }
    return out;
  }
  /** The layout of a type id from the kernel (undefined if a field type is not one nsnet knows). */
  static fromId(id: number, len: number): Layout | undefined {
    const types: DataType[] = [];
    let rest = id;
    while (rest > 0) {
      const t = BY_ID.get(rest % 2 ** TYPE_BITS);
      if (!t) return undefined;
      types.unshift(t);
      rest = Math.floor(rest / 2 ** TYPE_BITS);
    }
    if (types.length === 0) return undefined;
    const l = new Layout(types);
    return l.len === len ? l : undefined;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Adds one to a big-endian byte string (the exclusive end of an interval); undefined on overflow. */
export function increment(b: Buffer): Buffer | undefined {
  const out = Buffer.from(b);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i]! += 1;
      return out;
    }
    out[i] = 0;
  }
  return undefined;
}

/** Subtracts one from a big-endian byte string. */
export function decrement(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0) {
      out[i]! -= 1;
      return out;
    }
    out[i] = 0xff;
  }
  return out;
}

/**
 * A u32 in host byte order, as nf_tables compares the results of `fib`, `ct state` and
 * `ct status` (registers hold them in the CPU's order).
 */
export function hostU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (os.endianness() === 'LE') b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}
