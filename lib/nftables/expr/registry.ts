/**
 * The expression registry: one codec per expression kind, found by the kernel's expression name
 * when decoding and by `type` when encoding. The transaction code calls {@link encodeExpr} for
 * each item of a rule's `expressions` list, the listing code {@link decodeExpr}.
 */
import { bitwise } from './bitwise';
import { cmp } from './cmp';
import { counter } from './counter';
import { ct } from './ct';
import { dynset } from './dynset';
import { fib } from './fib';
import { immediate } from './immediate';
import { limit } from './limit';
import { log } from './log';
import { lookup } from './lookup';
import { masq } from './masq';
import { meta } from './meta';
import { nat } from './nat';
import { objref } from './objref';
import { payload } from './payload';
import { range } from './range';
import { redir } from './redir';
import { reject } from './reject';
import { fail, name, type ExprCodec } from './kit';
import type { Expr, UnknownExpr } from './types';
import { NsnetError } from '../../errors';

/**
 * One item of the addon's rule `expressions` list (NFTA_LIST_ELEM > NFTA_EXPR_NAME, _DATA):
 * `data` is an attribute object for the expressions the addon has tables for, else raw hex.
 */
export interface NativeExpr {
  name: string;
  data: Record<string, unknown> | string;
}

const CODECS: readonly ExprCodec<Expr>[] = [
  payload,
  cmp,
  bitwise,
  range,
  meta,
  ct,
  fib,
  immediate,
  lookup,
  dynset,
  objref,
  nat,
  masq,
  redir,
  counter,
  log,
  reject,
  limit,
];

/** Every codec by `type`. */
export const exprCodecs: ReadonlyMap<string, ExprCodec<Expr>> = new Map(CODECS.map((c) => [c.type, c]));
const byKernelName: ReadonlyMap<string, ExprCodec<Expr>> = new Map(CODECS.map((c) => [c.kernelName, c]));

/** Encodes a typed expression as an item of a rule's `expressions` list: `{ name, data }`. */
export function encodeExpr(e: Expr): NativeExpr {
  if (e === null || typeof e !== 'object') throw fail('', 'must be an object with a type', e);
  if (e.type === 'unknown') return encodeUnknown(e);
  const codec = typeof e.type === 'string' ? exprCodecs.get(e.type) : undefined;
  if (!codec) throw fail(typeof e.type === 'string' ? e.type : '', `unknown expression type; known: ${[...exprCodecs.keys()].join(', ')}, unknown`, e.type);
  return { name: codec.kernelName, data: codec.encode(e) };
}

function encodeUnknown(e: UnknownExpr): NativeExpr {
  const n = name(e.name, 'unknown.name');
  if (typeof e.data === 'string' ? !/^(?:[0-9a-f]{2})*$/iu.test(e.data) : e.data === null || typeof e.data !== 'object')
    throw fail('unknown.data', 'must be a hex string or the attribute object it was decoded with', e.data);
  return { name: n, data: e.data };
}

/**
 * Decodes one item of a decoded rule's `expressions` list. An expression without a codec, or
 * whose attributes are not all understood, becomes an {@link UnknownExpr} keeping its raw data,
 * so it encodes back unchanged. Throws ERR_INVALID_ARGUMENT only for an item without a name.
 */
export function decodeExpr(item: { name?: string; data?: unknown; unknown?: unknown }): Expr {
  const kernelName = item?.name;
  if (typeof kernelName !== 'string') throw fail('', 'a decoded expression without a name', item);
  const data = item.data ?? {};
  const codec = byKernelName.get(kernelName);
  if (!codec || typeof data !== 'object' || data === null || Buffer.isBuffer(data)) return unknown(kernelName, data);
  if ('unknown' in data) return unknown(kernelName, data); // attributes this version does not know
  try {
    return codec.decode(data as Record<string, unknown>);
  } catch (err) {
    if (err instanceof NsnetError) return unknown(kernelName, data);
    throw err;
  }
}

function unknown(n: string, data: unknown): UnknownExpr {
  return { type: 'unknown', name: n, data: Buffer.isBuffer(data) ? data.toString('hex') : (data as UnknownExpr['data']) };
}

/** The canonical form of an expression: `decodeExpr(encodeExpr(e))`, without the kernel. */
export function canonicalExpr(e: Expr): Expr {
  const { name: n, data } = encodeExpr(e);
  return decodeExpr({ name: n, data: typeof data === 'string' ? data : toWire(data) });
}

/** What the addon would decode: Buffers become hex strings (bigints and numbers stay as they are). */
function toWire(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (Array.isArray(v)) return v.map(toWire);
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
}
