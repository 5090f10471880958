/**
 * Verdicts: the value of an `immediate` into the verdict register, and of a verdict map's
 * elements (NFTA_DATA_VERDICT `{ code, chain }`).
 */
import { fail, name } from './kit';

/** A verdict: a name, or a jump/goto to a chain of the same table. */
export type Verdict = 'accept' | 'drop' | 'continue' | 'break' | 'return' | { jump: string } | { goto: string };

/** NF_DROP, NF_ACCEPT and the nft_verdicts codes. */
export const VERDICT_CODES = { drop: 0, accept: 1, continue: -1, break: -2, jump: -3, goto: -4, return: -5 } as const;

/** The wire form of a verdict: the NFTA_VERDICT_* attributes, by the addon's names. */
export interface VerdictAttrs {
  code: number;
  chain?: string;
}

/** Encodes a verdict as NFTA_VERDICT_* attributes (`{ code, chain? }`). */
export function encodeVerdict(v: Verdict, what = 'verdict'): VerdictAttrs {
  if (typeof v === 'string') {
    if (v === 'accept' || v === 'drop' || v === 'continue' || v === 'break' || v === 'return') return { code: VERDICT_CODES[v] };
  } else if (v !== null && typeof v === 'object' && Object.keys(v).length === 1) {
    if ('jump' in v) return { code: VERDICT_CODES.jump, chain: name(v.jump, `${what}.jump`) };
    if ('goto' in v) return { code: VERDICT_CODES.goto, chain: name(v.goto, `${what}.goto`) };
  }
  throw fail(what, "must be 'accept', 'drop', 'continue', 'break', 'return', { jump: chain } or { goto: chain }", v);
}

/** Decodes NFTA_VERDICT_* attributes. */
export function decodeVerdict(a: unknown, what = 'verdict'): Verdict {
  const { code, chain } = (a ?? {}) as { code?: unknown; chain?: unknown };
  if (code === VERDICT_CODES.jump || code === VERDICT_CODES.goto) {
    if (typeof chain !== 'string') throw fail(what, 'a jump or goto without a chain', a);
    return code === VERDICT_CODES.jump ? { jump: chain } : { goto: chain };
  }
  for (const [k, n] of Object.entries(VERDICT_CODES)) if (n === code && k !== 'jump' && k !== 'goto') return k as Verdict;
  throw fail(what, 'unknown verdict code', a);
}
