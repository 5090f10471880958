/** The typed objects of the nf_tables API. */
import type { Expr } from './expr/types';
import type { DataType } from './datatypes';
import type { Family } from './constants';

export type { Family, DataType, Expr };

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';

export interface TableSpec {
  family: Family;
  name: string;
  /** Dormant: the table's base chains are not attached. */
  dormant?: boolean;
}

export interface ChainSpec {
  family: Family;
  table: string;
  name: string;
  /** Base chains only: type, hook and priority. A chain without hook is a regular chain. */
  type?: 'filter' | 'nat' | 'route';
  hook?: Hook;
  priority?: number;
  /** Base chains: what happens to a packet no rule decides on (default accept). */
  policy?: 'accept' | 'drop';
  /** netdev family: the device of the ingress/egress hook. */
  device?: string;
}

export interface RuleSpec {
  family: Family;
  table: string;
  chain: string;
  expr: Expr[];
  comment?: string;
}

export interface SetSpec {
  family: Family;
  table: string;
  name: string;
  /** Key type, or types of a concatenated key. */
  key: DataType | DataType[];
  /** Intervals (CIDRs, ranges) as keys. */
  interval?: boolean;
  /** Elements expire after this many milliseconds unless they say otherwise. */
  timeout?: number;
  /** The elements cannot change after creation. */
  constant?: boolean;
  /** Rules may add to it from the packet path (`update @set`, dynset): NFT_SET_EVAL. */
  dynamic?: boolean;
  /** Expected number of elements (sizing hint). */
  size?: number;
}

export interface MapSpec extends SetSpec {
  /** Value type(s), or 'verdict' for a verdict map. */
  value: DataType | DataType[] | 'verdict';
}

import type { Verdict } from './expr/verdict';

/** A verdict as map data or in an immediate expression. */
export type { Verdict };

/**
 * A key (or value): one typed value, or an array for a concatenation. In an interval set a
 * key may be a CIDR ('10.0.0.0/8') or `{ from, to }` (inclusive), also inside a concatenation
 * (`['tcp', { from: 8000, to: 8100 }]`).
 */
export type KeyPart = string | number | { from: string | number; to: string | number };
export type Key = KeyPart | KeyPart[];

export interface ElementSpec {
  key: Key;
  /** Map value (typed like the map's value type). */
  value?: string | number | (string | number)[];
  /** Verdict-map value. */
  verdict?: Verdict;
  /** Milliseconds; sets with timeout only. */
  timeout?: number;
  /** Stored with the element (nft shows it as `comment`). */
  comment?: string;
}

export interface ElementsSpec {
  family: Family;
  table: string;
  /** The set or map. */
  set: string;
  elements: ElementSpec[];
}

export interface RuleRef {
  family: Family;
  table: string;
  chain: string;
  handle: number;
}

/** What `list()` returns. */
export interface Table {
  family: Family;
  name: string;
  handle: number;
  flags: number;
  use: number;
}

export interface Chain {
  family: Family;
  table: string;
  name: string;
  handle: number;
  type?: string;
  hook?: Hook;
  priority?: number;
  policy?: 'accept' | 'drop';
  device?: string;
  use: number;
}

export interface Rule {
  family: Family;
  table: string;
  chain: string;
  handle: number;
  expr: Expr[];
  comment?: string;
}

export interface Element {
  key: unknown;
  value?: unknown;
  verdict?: Verdict;
  timeout?: number;
  expiration?: number;
  comment?: string;
  /** Raw bytes (hex) when the set's types are not ones nsnet decodes. */
  rawKey?: string;
}

export interface NftSet {
  family: Family;
  table: string;
  name: string;
  handle: number;
  flags: string[];
  /** Key types, when nsnet knows them (else see keyType/keyLen). */
  key?: DataType[];
  value?: DataType[] | 'verdict';
  keyType: number;
  keyLen: number;
  interval: boolean;
  map: boolean;
  timeout?: number;
  elements: Element[];
}

export interface Ruleset {
  tables: Table[];
  chains: Chain[];
  rules: Rule[];
  sets: NftSet[];
}
