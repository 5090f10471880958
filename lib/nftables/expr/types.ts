/**
 * nf_tables expressions, typed: the {@link Expr} union, one member per expression module,
 * discriminated on `type`. What the modules share (registers, helpers, the codec interface)
 * is in ./kit.ts; the codecs by name in ./registry.ts.
 */
import type { BitwiseExpr } from './bitwise';
import type { CmpExpr } from './cmp';
import type { CounterExpr } from './counter';
import type { CtExpr } from './ct';
import type { DynsetExpr } from './dynset';
import type { FibExpr } from './fib';
import type { ImmediateExpr } from './immediate';
import type { LimitExpr } from './limit';
import type { LogExpr } from './log';
import type { LookupExpr } from './lookup';
import type { MasqExpr } from './masq';
import type { MetaExpr } from './meta';
import type { NatExpr } from './nat';
import type { ObjrefExpr } from './objref';
import type { PayloadExpr } from './payload';
import type { RangeExpr } from './range';
import type { RedirExpr } from './redir';
import type { RejectExpr } from './reject';

/**
 * An expression this version has no typed form for, kept raw so it can be written back
 * unchanged: `data` is the hex of its NFTA_EXPR_DATA when the addon has no attribute table for
 * `name`, or the addon's attribute object when it has one but the attributes are not all
 * understood here (a newer kernel's attribute, an unknown enum value).
 */
export interface UnknownExpr {
  type: 'unknown';
  /** The kernel's expression name (NFTA_EXPR_NAME). */
  name: string;
  data: string | Record<string, unknown>;
}

/** One nf_tables expression of a rule, discriminated on `type`. */
export type Expr =
  | PayloadExpr
  | CmpExpr
  | BitwiseExpr
  | RangeExpr
  | MetaExpr
  | CtExpr
  | FibExpr
  | ImmediateExpr
  | LookupExpr
  | DynsetExpr
  | ObjrefExpr
  | NatExpr
  | MasqExpr
  | RedirExpr
  | CounterExpr
  | LogExpr
  | RejectExpr
  | LimitExpr
  | UnknownExpr;

/** The `type` of every expression kind, `'unknown'` included. */
export type ExprType = Expr['type'];
