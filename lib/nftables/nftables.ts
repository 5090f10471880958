/**
 * nf_tables over netlink: typed, atomic transactions and listing, bound to a network
 * namespace. No `nft` process, no libnftables: the addon encodes every message.
 */
import { NetlinkError, NsnetError, invalid } from '../errors';
import { NETLINK_NETFILTER, type NativeMessage } from '../native';
import { Conn, toError } from '../netlink/conn';
import type { NetnsSpec } from '../netns';
import * as v from '../validate';
import { FAMILIES, HOOKS, NETDEV_HOOKS, NFT_DATA_VERDICT, NFT_MSG, NFT_SET, NFT_SET_ELEM_INTERVAL_END, UDATA, type Family } from './constants';
import { Layout, decrement } from './datatypes';
import { decodeExpr } from './expr/registry';
import { decodeVerdict } from './expr/verdict';
import { Transaction, family, setKey, type SetLayout } from './transaction';
import type { Chain, Element, Hook, Key, NftSet, Rule, Ruleset, Table } from './types';
import { decodeComment } from './udata';

const FAMILY_NAMES = Object.fromEntries(Object.entries(FAMILIES).map(([k, n]) => [n, k])) as Record<number, Family>;
const SET_FLAG_NAMES = Object.entries(NFT_SET).map(([k, n]) => [n, k.toLowerCase()] as const);

/** The outcome of a transaction. */
export interface TransactionResult {
  /** Messages the batch held (without BATCH_BEGIN / BATCH_END). */
  messages: number;
}

/** How often a set's element dump that repeated keys is taken again (see dumpElements). */
const ELEMENT_DUMP_ATTEMPTS = 8;

/** Kernel refusals that may come from encoding with a set layout that is out of date. */
const STALE_LAYOUT = new Set(['EINVAL', 'ENOENT', 'ERANGE', 'EOVERFLOW']);

/** An nf_tables connection bound to a network namespace. */
export class NfTables {
  /**
   * Set layouts (key and value types) by set, as this handle last saw them: asked once per set
   * (NFT_MSG_GETSET), not before every lookup and transaction. Refreshed by listings and by this
   * handle's transactions that define or delete sets; a transaction the kernel refuses while a
   * cached layout was used is built again from fresh layouts, once.
   */
  private readonly layouts = new Map<string, SetLayout>();

  private constructor(private readonly conn: Conn) {}

  /**
   * Opens a connection in a namespace (default: the caller's).
   * @throws NsnetError ERR_NETNS_NOT_FOUND, ERR_NOT_A_NETNS; EPERM without CAP_NET_ADMIN.
   */
  static async open(opts: { netns?: NetnsSpec } = {}): Promise<NfTables> {
    v.knownKeys(opts, ['netns'], 'NfTables.open options');
    const conn = await Conn.open(NETLINK_NETFILTER, opts.netns, 'nftables', (c) => generation(c));
    return new NfTables(conn);
  }

  /** The ruleset generation: it changes with every committed transaction. */
  async generation(): Promise<number> {
    this.conn.assertOpen();
    return generation(this.conn);
  }

  /**
   * Runs a transaction: every operation `fn` collects goes to the kernel in one batch, applied
   * as a whole or not at all. When the kernel refuses, the NetlinkError names the operation
   * (`index`, `details.op`) and carries the kernel's extended-ACK text; nothing was applied.
   */
  async transaction(fn: (tx: Transaction) => unknown): Promise<TransactionResult> {
    this.conn.assertOpen();
    const tx = new Transaction();
    await fn(tx);
    if (tx.ops.length === 0) return { messages: 0 };
    for (let attempt = 0; ; attempt++) {
      const layouts = tx.definedSets();
      let cached = false;
      for (const s of tx.referencedSets()) {
        const k = setKey(s.family, s.table, s.name);
        if (layouts.has(k)) continue;
        cached ||= this.layouts.has(k);
        const found = await this.setLayout(s.family, s.table, s.name);
        if (found) layouts.set(k, found);
      }
      const { requests, opOf } = tx.build(layouts);
      const results = await this.conn.exec(requests, true);
      const failed = results.findIndex((r) => r.errno);
      if (failed < 0) {
        this.learn(tx);
        return { messages: requests.length - 2 };
      }
      const r = results[failed]!;
      if (cached && attempt === 0 && STALE_LAYOUT.has(r.code ?? '')) {
        this.layouts.clear(); // nothing was applied: built again from what the kernel says now
        continue;
      }
      const opIndex = opOf[failed] ?? -1;
      const op = tx.ops[opIndex];
      throw toError(r, `transaction operation #${opIndex} (${op?.kind ?? '?'}${describeOp(op)})`, opIndex, { op: op?.kind });
    }
  }

  /** What a committed transaction changed of the sets' layouts. */
  private learn(tx: Transaction): void {
    for (const op of tx.ops) {
      if (op.kind === 'deleteTable') {
        const prefix = setKey(op.spec.family, op.spec.name, '');
        for (const k of [...this.layouts.keys()]) if (k.startsWith(prefix)) this.layouts.delete(k);
      } else if (op.kind === 'deleteSet') {
        this.layouts.delete(setKey(op.spec.family, op.spec.table, op.spec.name));
      }
    }
    for (const [k, l] of tx.definedSets()) this.layouts.set(k, l);
  }

  /** The set's key / value layout: cached, or from the kernel. */
  private async setLayout(fam: Family, table: string, name: string): Promise<SetLayout | undefined> {
    const k = setKey(fam, table, name);
    const known = this.layouts.get(k);
    if (known) return known;
    const found = await this.fetchLayout(fam, table, name);
    if (found) this.layouts.set(k, found);
    return found;
  }

  /** The set's key / value layout, from the kernel. */
  private async fetchLayout(fam: Family, table: string, name: string): Promise<SetLayout | undefined> {
    let replies: NativeMessage[];
    try {
      replies = await this.conn.request({ type: NFT_MSG.GETSET, header: { family: family(fam) }, attrs: { table, name } }, `get set ${name}`);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENOENT') return undefined;
      throw e;
    }
    const m = replies.find((r) => r.type === NFT_MSG.NEWSET);
    if (!m) return undefined;
    const s = decodeSetHead(m);
    if (!s.keyLayout) throw invalid('ERR_INVALID_ARGUMENT', `set ${name} has a key type nsnet cannot encode (type ${s.set.keyType}, ${s.set.keyLen} bytes)`);
    if (s.set.map && !s.valueLayout) throw invalid('ERR_INVALID_ARGUMENT', `map ${name} has a value type nsnet cannot encode`);
    return { key: s.keyLayout, ...(s.valueLayout ? { value: s.valueLayout } : {}), interval: s.set.interval };
  }

  /**
   * Lists what the kernel holds: tables, chains, rules (expressions decoded) and sets with their
   * elements — of one family and/or one table, or everything.
   */
  async list(filter: { family?: Family; table?: string } = {}): Promise<Ruleset> {
    this.conn.assertOpen();
    v.knownKeys(filter, ['family', 'table'], 'list filter');
    const fam = filter.family === undefined ? 0 : family(filter.family);
    const byTable = <T extends { table: string }>(xs: T[]) => (filter.table === undefined ? xs : xs.filter((x) => x.table === filter.table));
    const tables = (await this.conn.dump({ type: NFT_MSG.GETTABLE, header: { family: fam } }, 'list tables'))
      .filter((m) => m.type === NFT_MSG.NEWTABLE)
      .map(decodeTable)
      .filter((t) => filter.table === undefined || t.name === filter.table);
    const tableAttrs = filter.table === undefined ? {} : { table: filter.table };
    const chains = byTable(
      (await this.conn.dump({ type: NFT_MSG.GETCHAIN, header: { family: fam }, attrs: tableAttrs }, 'list chains'))
        .filter((m) => m.type === NFT_MSG.NEWCHAIN)
        .map(decodeChain),
    );
    const rules = byTable(
      (await this.conn.dump({ type: NFT_MSG.GETRULE, header: { family: fam }, attrs: tableAttrs }, 'list rules'))
        .filter((m) => m.type === NFT_MSG.NEWRULE)
        .map(decodeRule),
    );
    const heads = (await this.conn.dump({ type: NFT_MSG.GETSET, header: { family: fam }, attrs: tableAttrs }, 'list sets'))
      .filter((m) => m.type === NFT_MSG.NEWSET)
      .map(decodeSetHead);
    const sets: NftSet[] = [];
    for (const h of heads) {
      if (filter.table !== undefined && h.set.table !== filter.table) continue;
      sets.push({ ...h.set, elements: await this.dumpElements(h) });
    }
    return { tables, chains, rules, sets };
  }

  /**
   * The tables (of one family, or all): one dump, no chains, rules or elements — cheap however
   * large the ruleset.
   */
  async tables(filter: { family?: Family } = {}): Promise<Table[]> {
    this.conn.assertOpen();
    v.knownKeys(filter, ['family'], 'tables filter');
    const fam = filter.family === undefined ? 0 : family(filter.family);
    return (await this.conn.dump({ type: NFT_MSG.GETTABLE, header: { family: fam } }, 'list tables'))
      .filter((m) => m.type === NFT_MSG.NEWTABLE)
      .map(decodeTable);
  }

  /**
   * The chains (of one family and/or one table, or all), with the hook, priority and policy of
   * base chains: one dump, no rules or elements.
   */
  async chains(filter: { family?: Family; table?: string } = {}): Promise<Chain[]> {
    this.conn.assertOpen();
    v.knownKeys(filter, ['family', 'table'], 'chains filter');
    const fam = filter.family === undefined ? 0 : family(filter.family);
    const attrs = filter.table === undefined ? {} : { table: v.str(filter.table, 'table', 255) };
    return (await this.conn.dump({ type: NFT_MSG.GETCHAIN, header: { family: fam }, attrs }, 'list chains'))
      .filter((m) => m.type === NFT_MSG.NEWCHAIN)
      .map(decodeChain)
      .filter((c) => filter.table === undefined || c.table === filter.table);
  }

  /**
   * One set's elements. A hash set's dump walks an rhashtable: when the table is resized during
   * the walk (the kernel grows it in a worker some time after many insertions), the walk restarts
   * and repeats elements, and the dump's resume-by-count then skips as many others — without
   * NLM_F_DUMP_INTR, as no ruleset generation changed. A consistent dump has no repeated key, so
   * a dump that repeats one is taken again (bounded); the last attempt is returned deduplicated.
   */
  private async dumpElements(h: SetHead): Promise<Element[]> {
    for (let attempt = 1; ; attempt++) {
      const msgs = await this.conn.dump(
        { type: NFT_MSG.GETSETELEM, header: { family: family(h.set.family) }, attrs: { table: h.set.table, set: h.set.name } },
        `list elements of ${h.set.name}`,
      );
      const raw = msgs.filter((m) => m.type === NFT_MSG.NEWSETELEM).flatMap((m) => (m.attrs.elements as Record<string, unknown>[] | undefined) ?? []);
      const elements = decodeElements(raw, h);
      const unique = new Map(elements.map((e) => [JSON.stringify(e.key), e]));
      if (unique.size === elements.length) return elements;
      if (attempt >= ELEMENT_DUMP_ATTEMPTS) return [...unique.values()];
      await new Promise((r) => setTimeout(r, 5 * attempt)); // let the resize finish
    }
  }

  /** The elements of one set or map. */
  async elements(spec: { family: Family; table: string; set: string }): Promise<Element[]> {
    const { sets } = await this.list({ family: spec.family, table: spec.table });
    const s = sets.find((x) => x.name === spec.set);
    if (!s) throw new NsnetError('ERR_SET_NOT_FOUND', `set ${spec.set} does not exist in ${spec.family} ${spec.table}`, { set: spec.set });
    return s.elements;
  }

  /**
   * Looks one key up in a set or map (NFT_MSG_GETSETELEM); undefined when absent.
   */
  getElement(spec: { family: Family; table: string; set: string; key: Key }): Promise<Element | undefined> {
    // With the layout known, the query is sent in the caller's burst (see Conn): lookups made
    // together travel together.
    const known = this.layouts.get(setKey(spec.family, spec.table, spec.set));
    if (known) return this.lookup(spec, known);
    return this.setLayout(spec.family, spec.table, spec.set).then((layout) => {
      if (!layout) throw new NsnetError('ERR_SET_NOT_FOUND', `set ${spec.set} does not exist in ${spec.family} ${spec.table}`, { set: spec.set });
      return this.lookup(spec, layout);
    });
  }

  private async lookup(spec: { family: Family; table: string; set: string; key: Key }, layout: SetLayout): Promise<Element | undefined> {
    const tx = new Transaction().deleteElements({ family: spec.family, table: spec.table, set: spec.set, elements: [{ key: spec.key }] });
    const { requests } = tx.build(new Map([[setKey(spec.family, spec.table, spec.set), layout]]));
    const probe = requests[1]!;
    let replies: NativeMessage[];
    try {
      replies = await this.conn.request(
        {
          type: NFT_MSG.GETSETELEM,
          header: probe.header ?? {},
          attrs: { ...(probe.attrs ?? {}), elements: ((probe.attrs?.elements as unknown[]) ?? []).slice(0, 1) },
        },
        `get element of ${spec.set}`,
      );
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'ENOENT')) throw e;
      // ENOENT is an absent element — or, when the kernel's extended ACK points at the table or
      // set attribute (before the element list), a set that is gone (the layout was cached).
      const at = e.details?.extackOffset;
      const elements = 20 + align4(4 + Buffer.byteLength(spec.table) + 1) + align4(4 + Buffer.byteLength(spec.set) + 1);
      if (typeof at === 'number' && at < elements) {
        this.layouts.delete(setKey(spec.family, spec.table, spec.set));
        throw new NsnetError('ERR_SET_NOT_FOUND', `set ${spec.set} does not exist in ${spec.family} ${spec.table}`, { set: spec.set });
      }
      return undefined;
    }
    const raw = replies.filter((m) => m.type === NFT_MSG.NEWSETELEM).flatMap((m) => (m.attrs.elements as Record<string, unknown>[] | undefined) ?? []);
    if (layout.interval && !layout.key.concat) {
      // The kernel answers with the start element of the interval holding the key; the interval
      // itself (its end is a separate element) comes from the set's listing.
      const start = raw.find((it) => !(Number(it.flags ?? 0) & NFT_SET_ELEM_INTERVAL_END));
      if (!start) return undefined;
      const first = layout.key.decode(Buffer.from(String((start.key as { value?: string } | undefined)?.value ?? ''), 'hex'));
      const all = await this.elements(spec);
      return all.find(
        (e) => e.key === first || (typeof e.key === 'string' && e.key.startsWith(`${String(first)}/`)) || (e.key as { from?: unknown } | null)?.from === first,
      );
    }
    const head = { keyLayout: layout.key, valueLayout: layout.value, set: { interval: false } } as SetHead;
    return decodeElements(raw, head)[0];
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /** Closes the handle; requests still queued or in flight reject with ERR_HANDLE_CLOSED. */
  close(): void {
    this.conn.close();
  }
}

const align4 = (n: number): number => (n + 3) & ~3;

async function generation(conn: Conn): Promise<number> {
  const replies = await conn.request({ type: NFT_MSG.GETGEN, header: { family: 0 } }, 'get nftables generation');
  const gen = replies.find((m) => m.type === NFT_MSG.NEWGEN);
  return Number(gen?.attrs.id ?? 0);
}

function describeOp(op: { kind: string; spec: unknown } | undefined): string {
  if (!op) return '';
  const s = op.spec as Record<string, unknown>;
  const name = s.name ?? s.set ?? s.chain;
  return name === undefined ? '' : ` ${String(name)}`;
}

function famName(m: NativeMessage): Family {
  return FAMILY_NAMES[m.header.family ?? 0] ?? ('ip' as Family);
}

function decodeTable(m: NativeMessage): Table {
  return {
    family: famName(m),
    name: String(m.attrs.name),
    handle: Number(m.attrs.handle ?? 0),
    flags: Number(m.attrs.flags ?? 0),
    use: Number(m.attrs.use ?? 0),
  };
}

function decodeChain(m: NativeMessage): Chain {
  const a = m.attrs;
  const c: Chain = { family: famName(m), table: String(a.table), name: String(a.name), handle: Number(a.handle ?? 0), use: Number(a.use ?? 0) };
  const hook = a.hook as Record<string, unknown> | undefined;
  if (hook) {
    const hooks = c.family === 'netdev' ? NETDEV_HOOKS : HOOKS;
    const name = Object.entries(hooks).find(([, n]) => n === hook.hooknum)?.[0];
    if (name) c.hook = name as Hook;
    if (typeof hook.priority === 'number') c.priority = hook.priority;
    if (typeof hook.dev === 'string') c.device = hook.dev;
  }
  if (typeof a.type === 'string') c.type = a.type;
  if (typeof a.policy === 'number') c.policy = a.policy === 1 ? 'accept' : 'drop';
  return c;
}

function decodeRule(m: NativeMessage): Rule {
  const a = m.attrs;
  const r: Rule = {
    family: famName(m),
    table: String(a.table),
    chain: String(a.chain),
    handle: Number(a.handle ?? 0),
    // (A list may end in an item of stray non-expression attributes: not an expression.)
    expr: ((a.expressions as Record<string, unknown>[] | undefined) ?? []).filter((e) => typeof e.name === 'string').map((e) => decodeExpr(e)),
  };
  const comment = decodeComment(a.userdata, UDATA.RULE_COMMENT);
  if (comment !== undefined) r.comment = comment;
  return r;
}

interface SetHead {
  set: Omit<NftSet, 'elements'>;
  keyLayout?: Layout;
  valueLayout?: Layout | 'verdict';
}

function decodeSetHead(m: NativeMessage): SetHead {
  const a = m.attrs;
  const flags = Number(a.flags ?? 0);
  const keyType = Number(a.keyType ?? 0);
  const keyLen = Number(a.keyLen ?? 0);
  const keyLayout = Layout.fromId(keyType, keyLen);
  const map = (flags & NFT_SET.MAP) !== 0;
  const dataType = Number(a.dataType ?? 0);
  const valueLayout: Layout | 'verdict' | undefined = !map
    ? undefined
    : dataType === NFT_DATA_VERDICT
      ? 'verdict'
      : Layout.fromId(dataType, Number(a.dataLen ?? 0));
  const set: Omit<NftSet, 'elements'> = {
    family: famName(m),
    table: String(a.table),
    name: String(a.name),
    handle: Number(a.handle ?? 0),
    flags: SET_FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n),
    keyType,
    keyLen,
    interval: (flags & NFT_SET.INTERVAL) !== 0,
    map,
  };
  if (keyLayout) set.key = keyLayout.types;
  if (valueLayout) set.value = valueLayout === 'verdict' ? 'verdict' : valueLayout.types;
  if (a.timeout !== undefined) set.timeout = Number(a.timeout);
  return { set, ...(keyLayout ? { keyLayout } : {}), ...(valueLayout ? { valueLayout } : {}) };
}

function decodeElements(raw: Record<string, unknown>[], h: SetHead): Element[] {
  const value = (x: unknown) => (x as { value?: string } | undefined)?.value;
  const out: Element[] = [];
  const one = (it: Record<string, unknown>): Element => {
    const keyHex = value(it.key) ?? '';
    const e: Element = { key: h.keyLayout ? h.keyLayout.decode(Buffer.from(keyHex, 'hex')) : keyHex };
    if (!h.keyLayout) e.rawKey = keyHex;
    const data = it.data as Record<string, unknown> | undefined;
    if (data?.verdict) {
      e.verdict = decodeVerdict(data.verdict, 'element verdict');
    } else if (data?.value !== undefined && h.valueLayout && h.valueLayout !== 'verdict') {
      e.value = h.valueLayout.decode(Buffer.from(String(data.value), 'hex'));
    }
    if (it.timeout !== undefined) e.timeout = Number(it.timeout);
    if (it.expiration !== undefined) e.expiration = Number(it.expiration);
    const comment = decodeComment(it.userdata, UDATA.SET_ELEM_COMMENT);
    if (comment !== undefined) e.comment = comment;
    return e;
  };
  if (h.set.interval && h.keyLayout && !h.keyLayout.concat) {
    // One-field intervals are [start, end+1) in the kernel's tree: a start element, then an end
    // element at the first key past it — or, for adjacent intervals, simply the next start.
    // In key order (an end before a start at the same key), each start runs up to the key before
    // whatever comes next, or to the last key when nothing does.
    const items = raw
      .map((it) => ({ it, key: Buffer.from(value(it.key) ?? '', 'hex'), end: (Number(it.flags ?? 0) & NFT_SET_ELEM_INTERVAL_END) !== 0 }))
      .sort((a, b) => Buffer.compare(a.key, b.key) || Number(b.end) - Number(a.end));
    for (let i = 0; i < items.length; i++) {
      const x = items[i]!;
      if (x.end) continue;
      const next = items[i + 1];
      const last = next ? decrement(next.key) : Buffer.alloc(x.key.length, 0xff);
      const e = one(x.it);
      e.key = describeRange(h.keyLayout, x.key, last);
      out.push(e);
    }
    return out;
  }
  for (const it of raw) {
    const e = one(it);
    if (h.keyLayout?.concat && it.keyEnd !== undefined)
      e.key = describeConcatRange(h.keyLayout, Buffer.from(value(it.key) ?? '', 'hex'), Buffer.from(value(it.keyEnd) ?? '', 'hex'));
    out.push(e);
  }
  return out;
}

/** A range [start, last] as a CIDR when it is one, else { from, to } (or the value itself). */
function describeRange(l: Layout, start: Buffer, last: Buffer): unknown {
  const from = l.decode(start);
  if (Buffer.compare(start, last) === 0) return from;
  const t = l.types[0];
  if (t === 'ipv4_addr' || t === 'ipv6_addr') {
    const bits = start.length * 8;
    for (let len = 0; len <= bits; len++) {
      const mask = (i: number) => (i < len ? 1 : 0);
      let ok = true;
      for (let b = 0; b < bits && ok; b++) {
        const sb = (start[b >> 3]! >> (7 - (b & 7))) & 1;
        const lb = (last[b >> 3]! >> (7 - (b & 7))) & 1;
        ok = mask(b) ? sb === lb : sb === 0 && lb === 1;
      }
      if (ok) return `${from}/${len}`;
    }
  }
  return { from, to: l.decode(last) };
}

/** Each field of a concatenated [start, end] described on its own, as describeRange does. */
function describeConcatRange(l: Layout, start: Buffer, end: Buffer): unknown[] {
  let off = 0;
  return l.types.map((t) => {
    const one = new Layout(t);
    const field = (b: Buffer) => b.subarray(off, off + one.len);
    const out = describeRange(one, field(start), field(end));
    off += (one.len + 3) & ~3;
    return out;
  });
}
