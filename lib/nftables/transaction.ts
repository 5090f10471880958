/**
 * A transaction: the operations collected by `nft.transaction(tx => ...)`, turned into one
 * nf_tables batch (BATCH_BEGIN ... BATCH_END) that the kernel applies as a whole or not at all.
 */
import { invalid } from '../errors';
import type { NativeRequest } from '../native';
import * as v from '../validate';
import {
  FAMILIES,
  HOOKS,
  NETDEV_HOOKS,
  NFT_DATA_VERDICT,
  NFT_MSG,
  NFT_SET,
  NFT_SET_ELEM_INTERVAL_END,
  NFT_TABLE_F_DORMANT,
  NF_ACCEPT,
  NF_DROP,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFNL_SUBSYS_NFTABLES,
  UDATA,
  type Family,
} from './constants';
import { Layout, increment } from './datatypes';
import { encodeExpr } from './expr/registry';
import { encodeVerdict } from './expr/verdict';
import type { ChainSpec, ElementSpec, ElementsSpec, KeyPart, MapSpec, RuleRef, RuleSpec, SetSpec, TableSpec } from './types';
import { encodeComment } from './udata';
import * as ipaddr from 'ipaddr.js';
import { NLM_F } from '../netlink/constants';

const { REQUEST: NLM_F_REQUEST, ACK: NLM_F_ACK, REPLACE: NLM_F_REPLACE, EXCL: NLM_F_EXCL, CREATE: NLM_F_CREATE, APPEND: NLM_F_APPEND } = NLM_F;

/** How a set's keys and values are laid out, needed to encode its elements. @internal */
export interface SetLayout {
  key: Layout;
  value?: Layout | 'verdict';
  interval: boolean;
}

type Op =
  | { kind: 'addTable' | 'ensureTable'; spec: TableSpec }
  | { kind: 'deleteTable' | 'flushTable'; spec: { family: Family; name: string } }
  | { kind: 'addChain' | 'ensureChain'; spec: ChainSpec }
  | { kind: 'deleteChain' | 'flushChain'; spec: { family: Family; table: string; name: string } }
  | { kind: 'addRule' | 'insertRule'; spec: RuleSpec & { position?: number } }
  | { kind: 'replaceRule'; spec: RuleSpec & { handle: number } }
  | { kind: 'deleteRule'; spec: RuleRef }
  | { kind: 'addSet' | 'ensureSet'; spec: SetSpec | MapSpec }
  | { kind: 'deleteSet' | 'flushSet'; spec: { family: Family; table: string; name: string } }
  | { kind: 'addElements' | 'ensureElements' | 'deleteElements'; spec: ElementsSpec };

/** Collects the operations of one transaction. Nothing is sent until the callback returns. */
export class Transaction {
  /** @internal */
  readonly ops: Op[] = [];

  /** Creates a table; EEXIST if it exists. */
  addTable(spec: TableSpec): this {
    return this.push('addTable', spec);
  }
  /** Creates a table unless it exists. */
  ensureTable(spec: TableSpec): this {
    return this.push('ensureTable', spec);
  }
  /** Deletes a table and everything in it. */
  deleteTable(spec: { family: Family; name: string }): this {
    return this.push('deleteTable', spec);
  }
  /** Deletes every rule of a table. */
  flushTable(spec: { family: Family; name: string }): this {
    return this.push('flushTable', spec);
  }
  /** Creates a base chain (with type, hook, priority) or a regular chain; EEXIST if it exists. */
  addChain(spec: ChainSpec): this {
    return this.push('addChain', spec);
  }
  /** Creates a chain unless it exists. */
  ensureChain(spec: ChainSpec): this {
    return this.push('ensureChain', spec);
  }
  deleteChain(spec: { family: Family; table: string; name: string }): this {
    return this.push('deleteChain', spec);
  }
  /** Deletes every rule of a chain. */
  flushChain(spec: { family: Family; table: string; name: string }): this {
    return this.push('flushChain', spec);
  }
  /** Appends a rule (after the rule with handle `position`, if given). */
  addRule(spec: RuleSpec & { position?: number }): this {
    return this.push('addRule', spec);
  }
  /** Inserts a rule at the start of the chain (before the rule with handle `position`, if given). */
  insertRule(spec: RuleSpec & { position?: number }): this {
    return this.push('insertRule', spec);
  }
  /** Replaces the rule with this handle. */
  replaceRule(spec: RuleSpec & { handle: number }): this {
    return this.push('replaceRule', spec);
  }
  deleteRule(spec: RuleRef): this {
    return this.push('deleteRule', spec);
  }
  /** Creates a set; EEXIST if it exists. */
  addSet(spec: SetSpec): this {
    return this.push('addSet', spec);
  }
  ensureSet(spec: SetSpec): this {
    return this.push('ensureSet', spec);
  }
  /** Creates a map (or a verdict map with `value: 'verdict'`); EEXIST if it exists. */
  addMap(spec: MapSpec): this {
    return this.push('addSet', spec);
  }
  ensureMap(spec: MapSpec): this {
    return this.push('ensureSet', spec);
  }
  deleteSet(spec: { family: Family; table: string; name: string }): this {
    return this.push('deleteSet', spec);
  }
  /** Removes every element of a set or map. */
  flushSet(spec: { family: Family; table: string; name: string }): this {
    return this.push('flushSet', spec);
  }
  /** Adds elements; EEXIST if a key is present already. */
  addElements(spec: ElementsSpec): this {
    return this.push('addElements', spec);
  }
  /** Adds elements, leaving alone those present with the same value. */
  ensureElements(spec: ElementsSpec): this {
    return this.push('ensureElements', spec);
  }
  /** Deletes elements by key; ENOENT if one is absent. */
  deleteElements(spec: ElementsSpec): this {
    return this.push('deleteElements', spec);
  }

  private push(kind: Op['kind'], spec: unknown): this {
    if (!spec || typeof spec !== 'object') throw invalid('ERR_INVALID_ARGUMENT', `${kind} needs an object`);
    this.ops.push({ kind, spec } as Op);
    return this;
  }

  /** Sets this transaction adds (their layouts are known without asking the kernel). @internal */
  definedSets(): Map<string, SetLayout> {
    const out = new Map<string, SetLayout>();
    for (const op of this.ops)
      if (op.kind === 'addSet' || op.kind === 'ensureSet') out.set(setKey(op.spec.family, op.spec.table, op.spec.name), layoutOf(op.spec));
    return out;
  }

  /** Sets whose elements this transaction touches. @internal */
  referencedSets(): { family: Family; table: string; name: string }[] {
    const seen = new Map<string, { family: Family; table: string; name: string }>();
    for (const op of this.ops)
      if (op.kind === 'addElements' || op.kind === 'ensureElements' || op.kind === 'deleteElements')
        seen.set(setKey(op.spec.family, op.spec.table, op.spec.set), { family: op.spec.family, table: op.spec.table, name: op.spec.set });
    return [...seen.values()];
  }

  /** The batch: messages and, for each, the index of the operation it came from. @internal */
  build(layouts: Map<string, SetLayout>): { requests: NativeRequest[]; opOf: number[] } {
    const requests: NativeRequest[] = [{ type: NFNL_MSG_BATCH_BEGIN, flags: NLM_F_REQUEST, header: { family: 0, resId: NFNL_SUBSYS_NFTABLES } }];
    const opOf: number[] = [-1];
    let setId = 1;
    this.ops.forEach((op, i) => {
      for (const r of encodeOp(op, layouts, () => setId++)) {
        requests.push({ ...r, flags: NLM_F_REQUEST | NLM_F_ACK | (r.flags ?? 0) });
        opOf.push(i);
      }
    });
    requests.push({ type: NFNL_MSG_BATCH_END, flags: NLM_F_REQUEST, header: { family: 0, resId: NFNL_SUBSYS_NFTABLES } });
    opOf.push(-1);
    return { requests, opOf };
  }
}

export function setKey(family: Family, table: string, name: string): string {
  return `${family}\0${table}\0${name}`;
}

export function family(f: unknown): number {
  if (typeof f !== 'string' || !(f in FAMILIES))
    throw invalid('ERR_INVALID_ARGUMENT', `family ${JSON.stringify(f)} is not one of ${Object.keys(FAMILIES).join(', ')}`);
  return FAMILIES[f as Family];
}

/** nft object names: 1..255 bytes (NFT_NAME_MAXLEN 256 with NUL), no NUL or '/'. */
function objName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > 255 || /[\0/]/u.test(value))
    throw invalid('ERR_INVALID_NAME', `${what} name ${JSON.stringify(value)} must be 1 to 255 bytes without NUL or "/"`, { value });
  return value;
}

function layoutOf(spec: SetSpec | MapSpec): SetLayout {
  const key = new Layout(spec.key);
  const value = 'value' in spec ? (spec.value === 'verdict' ? 'verdict' : new Layout(spec.value)) : undefined;
  return { key, ...(value !== undefined ? { value } : {}), interval: spec.interval === true };
}

type Req = Omit<NativeRequest, 'flags'> & { flags?: number };

function encodeOp(op: Op, layouts: Map<string, SetLayout>, nextSetId: () => number): Req[] {
  switch (op.kind) {
    case 'addTable':
    case 'ensureTable': {
      const s = op.spec;
      v.knownKeys(s, ['family', 'name', 'dormant'], 'table');
      return [
        {
          type: NFT_MSG.NEWTABLE,
          flags: NLM_F_CREATE | (op.kind === 'addTable' ? NLM_F_EXCL : 0),
          header: { family: family(s.family) },
          attrs: { name: objName(s.name, 'table'), flags: s.dormant ? NFT_TABLE_F_DORMANT : 0 },
        },
      ];
    }
    case 'deleteTable':
      return [{ type: NFT_MSG.DELTABLE, header: { family: family(op.spec.family) }, attrs: { name: objName(op.spec.name, 'table') } }];
    case 'flushTable':
      return [{ type: NFT_MSG.DELRULE, header: { family: family(op.spec.family) }, attrs: { table: objName(op.spec.name, 'table') } }];
    case 'addChain':
    case 'ensureChain': {
      const s = op.spec;
      v.knownKeys(s, ['family', 'table', 'name', 'type', 'hook', 'priority', 'policy', 'device'], 'chain');
      const attrs: Record<string, unknown> = { table: objName(s.table, 'table'), name: objName(s.name, 'chain') };
      if (s.hook !== undefined) {
        const hooks = s.family === 'netdev' ? NETDEV_HOOKS : HOOKS;
        if (!(s.hook in hooks)) throw invalid('ERR_INVALID_ARGUMENT', `hook ${JSON.stringify(s.hook)} is not one of ${Object.keys(hooks).join(', ')}`);
        attrs.hook = {
          hooknum: hooks[s.hook],
          priority: v.int(s.priority ?? 0, -2147483648, 2147483647, 'priority'),
          ...(s.device !== undefined ? { dev: v.ifname(s.device) } : {}),
        };
        attrs.type = s.type ?? 'filter';
        if (!['filter', 'nat', 'route'].includes(String(attrs.type)))
          throw invalid('ERR_INVALID_ARGUMENT', `chain type ${JSON.stringify(s.type)} is not filter, nat or route`);
        if (s.policy !== undefined) {
          if (s.policy !== 'accept' && s.policy !== 'drop') throw invalid('ERR_INVALID_ARGUMENT', 'policy must be accept or drop');
          attrs.policy = s.policy === 'accept' ? NF_ACCEPT : NF_DROP;
        }
      } else if (s.type !== undefined || s.priority !== undefined || s.policy !== undefined) {
        throw invalid('ERR_INVALID_ARGUMENT', `chain ${s.name}: type, priority and policy need a hook (a base chain)`);
      }
      return [{ type: NFT_MSG.NEWCHAIN, flags: NLM_F_CREATE | (op.kind === 'addChain' ? NLM_F_EXCL : 0), header: { family: family(s.family) }, attrs }];
    }
    case 'deleteChain':
      return [
        {
          type: NFT_MSG.DELCHAIN,
          header: { family: family(op.spec.family) },
          attrs: { table: objName(op.spec.table, 'table'), name: objName(op.spec.name, 'chain') },
        },
      ];
    case 'flushChain':
      return [
        {
          type: NFT_MSG.DELRULE,
          header: { family: family(op.spec.family) },
          attrs: { table: objName(op.spec.table, 'table'), chain: objName(op.spec.name, 'chain') },
        },
      ];
    case 'addRule':
    case 'insertRule':
    case 'replaceRule': {
      const s = op.spec;
      v.knownKeys(s, ['family', 'table', 'chain', 'expr', 'comment', 'position', 'handle'], 'rule');
      if (!Array.isArray(s.expr) || s.expr.length === 0) throw invalid('ERR_INVALID_ARGUMENT', 'a rule needs a non-empty expr array');
      const attrs: Record<string, unknown> = { table: objName(s.table, 'table'), chain: objName(s.chain, 'chain'), expressions: s.expr.map(encodeExpr) };
      if (s.comment !== undefined) attrs.userdata = encodeComment(UDATA.RULE_COMMENT, v.str(s.comment, 'comment', 254));
      let flags: number = NLM_F_CREATE;
      if (op.kind === 'addRule') flags |= NLM_F_APPEND;
      if (op.kind === 'replaceRule') {
        flags = NLM_F_REPLACE;
        attrs.handle = v.int((s as { handle: number }).handle, 1, Number.MAX_SAFE_INTEGER, 'rule handle');
      } else if ((s as { position?: number }).position !== undefined) {
        attrs.position = v.int((s as { position?: number }).position, 1, Number.MAX_SAFE_INTEGER, 'position');
      }
      return [{ type: NFT_MSG.NEWRULE, flags, header: { family: family(s.family) }, attrs }];
    }
    case 'deleteRule':
      return [
        {
          type: NFT_MSG.DELRULE,
          header: { family: family(op.spec.family) },
          attrs: {
            table: objName(op.spec.table, 'table'),
            chain: objName(op.spec.chain, 'chain'),
            handle: v.int(op.spec.handle, 1, Number.MAX_SAFE_INTEGER, 'rule handle'),
          },
        },
      ];
    case 'addSet':
    case 'ensureSet': {
      const s = op.spec;
      v.knownKeys(s, ['family', 'table', 'name', 'key', 'value', 'interval', 'timeout', 'constant', 'dynamic', 'size'], 'set');
      const l = layoutOf(s);
      let flags = 0;
      if (l.interval) flags |= NFT_SET.INTERVAL;
      if (l.interval && l.key.concat) flags |= NFT_SET.CONCAT;
      if (s.constant) flags |= NFT_SET.CONSTANT;
      if (s.dynamic) flags |= NFT_SET.EVAL;
      if (s.timeout !== undefined) flags |= NFT_SET.TIMEOUT;
      if (l.value) flags |= NFT_SET.MAP;
      const attrs: Record<string, unknown> = {
        table: objName(s.table, 'table'),
        name: objName(s.name, 'set'),
        flags,
        keyType: l.key.id,
        keyLen: l.key.len,
        id: nextSetId(),
      };
      if (l.value === 'verdict') attrs.dataType = NFT_DATA_VERDICT;
      else if (l.value) {
        attrs.dataType = l.value.id;
        attrs.dataLen = l.value.len;
      }
      if (s.timeout !== undefined) attrs.timeout = v.int(s.timeout, 1, Number.MAX_SAFE_INTEGER, 'timeout (ms)');
      // Byte orders as nft records them, so `nft list` prints keys such as interface names right.
      const udata = [udataU32(UDATA.SET_KEYBYTEORDER, l.key.byteorder)];
      if (l.value) udata.push(udataU32(UDATA.SET_DATABYTEORDER, l.value === 'verdict' ? 0 : l.value.byteorder));
      attrs.userdata = Buffer.concat(udata);
      const desc: Record<string, unknown> = {};
      if (s.size !== undefined) desc.size = v.int(s.size, 1, 2 ** 32 - 1, 'size');
      // Field lengths go with NFT_SET_CONCAT, which the kernel wants only for concatenated intervals.
      if (l.key.concat && l.interval) desc.concat = l.key.fieldLens.map((len) => ({ len }));
      if (Object.keys(desc).length) attrs.desc = desc;
      return [{ type: NFT_MSG.NEWSET, flags: NLM_F_CREATE | (op.kind === 'addSet' ? NLM_F_EXCL : 0), header: { family: family(s.family) }, attrs }];
    }
    case 'deleteSet':
      return [
        {
          type: NFT_MSG.DELSET,
          header: { family: family(op.spec.family) },
          attrs: { table: objName(op.spec.table, 'table'), name: objName(op.spec.name, 'set') },
        },
      ];
    case 'flushSet':
      return [
        {
          type: NFT_MSG.DELSETELEM,
          header: { family: family(op.spec.family) },
          attrs: { table: objName(op.spec.table, 'table'), set: objName(op.spec.name, 'set') },
        },
      ];
    case 'addElements':
    case 'ensureElements':
    case 'deleteElements': {
      const s = op.spec;
      v.knownKeys(s, ['family', 'table', 'set', 'elements'], 'elements');
      const layout = layouts.get(setKey(s.family, s.table, s.set));
      if (!layout) throw invalid('ERR_SET_NOT_FOUND', `set ${s.set} does not exist in ${s.family} ${s.table}`, { set: s.set });
      if (!Array.isArray(s.elements)) throw invalid('ERR_INVALID_ARGUMENT', 'elements must be an array');
      const items = s.elements.flatMap((e) => encodeElement(e, layout, op.kind === 'deleteElements'));
      const type = op.kind === 'deleteElements' ? NFT_MSG.DELSETELEM : NFT_MSG.NEWSETELEM;
      const flags = op.kind === 'deleteElements' ? 0 : NLM_F_CREATE | (op.kind === 'addElements' ? NLM_F_EXCL : 0);
      // A nest's length is 16 bits: split the elements over as many messages as needed.
      const out: Req[] = [];
      let chunk: Record<string, unknown>[] = [];
      let bytes = 0;
      const flush = () => {
        if (chunk.length)
          out.push({
            type,
            flags,
            header: { family: family(s.family) },
            attrs: { table: objName(s.table, 'table'), set: objName(s.set, 'set'), elements: chunk },
          });
        chunk = [];
        bytes = 0;
      };
      for (const it of items) {
        const size = estimate(it);
        if (bytes + size > 60000) flush();
        chunk.push(it);
        bytes += size;
      }
      flush();
      return out;
    }
  }
}

function udataU32(type: number, value: number): Buffer {
  const b = Buffer.alloc(6);
  b[0] = type;
  b[1] = 4;
  b.writeUInt32LE(value, 2); // host order, as libnftnl writes it
  return b;
}

/** An upper bound of an element's encoded size: headers plus its bytes (Buffers, or hex strings halved). */
function estimate(item: Record<string, unknown>): number {
  let n = 96;
  for (const k of ['key', 'keyEnd', 'data'] as const) {
    const d = (item[k] as { value?: Buffer | string } | undefined)?.value;
    n += (typeof d === 'string' ? d.length / 2 : (d?.length ?? 0)) + 48;
  }
  if (typeof item.userdata === 'string') n += item.userdata.length / 2;
  return n;
}

/** Whether a key part of an address type is written as a CIDR. */
function isCidrPart(layoutType: Layout, i: number, p: KeyPart): p is string {
  const t = layoutType.types[i];
  return typeof p === 'string' && p.includes('/') && (t === 'ipv4_addr' || t === 'ipv6_addr');
}

/** Whether a key part is a range or a CIDR (bytes of its own: {@link part}). */
function isRangePart(layoutType: Layout, i: number, p: KeyPart): boolean {
  return (p !== null && typeof p === 'object') || isCidrPart(layoutType, i, p);
}

/** A key part as bytes (an interval part gives its start and inclusive end). */
function part(layoutType: Layout, i: number, p: KeyPart, allowRange: boolean): { start: Buffer; end: Buffer } {
  const one = new Layout(layoutType.types[i]!);
  if (p !== null && typeof p === 'object') {
    if (!allowRange) throw invalid('ERR_INVALID_ARGUMENT', 'ranges need an interval set');
    const start = one.encode(p.from);
    const end = one.encode(p.to);
    if (Buffer.compare(start, end) > 0) throw invalid('ERR_INVALID_ARGUMENT', `range ${JSON.stringify(p)} is backwards`);
    return { start, end };
  }
  if (isCidrPart(layoutType, i, p)) {
    if (!allowRange) throw invalid('ERR_INVALID_ARGUMENT', 'CIDR keys need an interval set');
    const c = v.cidr(p, one.types[0] === 'ipv4_addr' ? 4 : 6, 'key');
    const [net, len] = ipaddr.parseCIDR(`${c.address}/${c.prefix}`);
    const bytes = net.toByteArray().length * 8;
    const start = Buffer.from(net.toByteArray());
    for (let b = 0; b < bytes; b++) if (b >= len) start[b >> 3]! &= ~(0x80 >> (b & 7));
    const end = Buffer.from(start);
    for (let b = len; b < bytes; b++) end[b >> 3]! |= 0x80 >> (b & 7);
    return { start, end };
  }
  const b = one.encode(p);
  return { start: b, end: b };
}

function pad4(b: Buffer): Buffer {
  const n = (b.length + 3) & ~3;
  return n === b.length ? b : Buffer.concat([b, Buffer.alloc(n - b.length)]);
}

function encodeElement(e: ElementSpec, layout: SetLayout, forDelete: boolean): Record<string, unknown>[] {
  if (!e || typeof e !== 'object') throw invalid('ERR_INVALID_ARGUMENT', 'an element must be an object');
  v.knownKeys(e, ['key', 'value', 'verdict', 'timeout', 'comment'], 'element');
  const k = layout.key;
  const parts: KeyPart[] = k.concat ? (Array.isArray(e.key) ? e.key : []) : [e.key as KeyPart];
  if (parts.length !== k.types.length) throw invalid('ERR_INVALID_ARGUMENT', `element key ${JSON.stringify(e.key)} does not match ${k.types.join(' . ')}`);
  let start: Buffer;
  let end: Buffer;
  if (parts.every((p, i) => !isRangePart(k, i, p))) {
    // The usual element, no range and no CIDR: the key encoded whole, in one buffer.
    start = end = k.encode(k.concat ? parts : parts[0]);
  } else {
    const ranges = parts.map((p, i) => part(k, i, p, layout.interval));
    const join = (which: 'start' | 'end') => (k.concat ? Buffer.concat(ranges.map((r) => pad4(r[which]))) : ranges[0]![which]);
    start = join('start');
    end = join('end');
  }
  // Bytes go to the addon as Buffers (it also takes hex strings, which cost a conversion each way).
  const item: Record<string, unknown> = { key: { value: start } };
  if (!forDelete) {
    if (layout.value === 'verdict') {
      if (e.verdict === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'a verdict map element needs a verdict');
      item.data = { verdict: encodeVerdict(e.verdict, 'element verdict') };
    } else if (layout.value) {
      if (e.value === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'a map element needs a value');
      item.data = { value: layout.value.encode(e.value) };
    } else if (e.value !== undefined || e.verdict !== undefined) {
      throw invalid('ERR_INVALID_ARGUMENT', 'a set element has no value (this is not a map)');
    }
    if (e.timeout !== undefined) item.timeout = v.int(e.timeout, 1, Number.MAX_SAFE_INTEGER, 'timeout (ms)');
    if (e.comment !== undefined) item.userdata = encodeComment(UDATA.SET_ELEM_COMMENT, v.str(e.comment, 'comment', 254)).toString('hex');
  }
  if (!layout.interval) return [item];
  if (k.concat) return [{ ...item, keyEnd: { value: end } }];
  // One-field interval sets hold [start, end + 1) as two elements, the second flagged as an end.
  const after = increment(end);
  return after ? [item, { key: { value: after }, flags: NFT_SET_ELEM_INTERVAL_END }] : [item];
}
