/**
 * The documents of a {@link FileStore}: key encoding, parsing with damage checks, and the
 * view/transaction given to callbacks (which reports damaged documents or sets them aside).
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NsnetError, invalid } from '../errors';
import { asideName } from './aside';
import { ioError, readText } from './files';
import type { DamagedDocument, DocumentCheck, StoreEntry, StoreScan, StoreTx } from './types';

/** Collection names: a directory each. */
export const COLLECTION = /^[a-z][a-z0-9_-]{0,63}$/u;
const KEY_MAX_BYTES = 4096;
const NAME_MAX = 200;

/** A put (`doc` is the document's file text without the newline) or a delete (`doc` null). */
export interface Op {
  collection: string;
  key: string;
  doc: string | null;
}

/** The file name of `key` (without `.json`): URI-encoded, never starting with '.', bounded. */
export function encodeKey(key: string): string {
  let name = encodeURIComponent(key);
  if (name[0] === '.' || name[0] === '~') name = `%${name.charCodeAt(0).toString(16).toUpperCase()}${name.slice(1)}`;
  // Long keys get a digest ('~' never starts another name); the document holds the real key.
  if (name.length > NAME_MAX) name = `~${createHash('sha256').update(key).digest('hex')}`;
  return name;
}

/** A collection name (ERR_INVALID_ARGUMENT unless `[a-z][a-z0-9_-]*`, at most 64 characters). */
export function checkCollection(collection: unknown): string {
  if (typeof collection !== 'string' || !COLLECTION.test(collection))
    throw invalid('ERR_INVALID_ARGUMENT', `collection name ${JSON.stringify(collection)} must match [a-z][a-z0-9_-]* (at most 64 characters)`, {
      value: collection,
    });
  return collection;
}

/** A document key (ERR_INVALID_ARGUMENT unless a non-empty well-formed string of at most 4096 bytes). */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > KEY_MAX_BYTES || !wellFormed(key))
    throw invalid('ERR_INVALID_ARGUMENT', `document key ${JSON.stringify(key)} must be a non-empty well-formed string of at most ${KEY_MAX_BYTES} bytes`, {
      value: key,
    });
  return key;
}

/** No lone surrogate (it has no UTF-8 form, so no file name). */
function wellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * ERR_STORE_CORRUPT naming `file` (details.file, and `more`: collection, key, …). A document of a
 * collection (`more.collection`) is one gc() can set aside and repair; the journal and meta.json
 * are for a person to look at.
 */
export function corrupt(file: string, why: string, more: Record<string, unknown> = {}): NsnetError {
  const next = more.collection !== undefined ? ' (`nsnet gc` sets it aside and repairs the state)' : '';
  return new NsnetError('ERR_STORE_CORRUPT', `state store file ${file} is corrupt: ${why}; it was left untouched for inspection${next}`, { file, ...more });
}

/**
 * A document file's text as the document, or what is wrong with it. `key`: the key it must
 * hold (else: the one its name encodes).
 */
export function readDoc(text: string, file: string, key?: string): { key: string; value: unknown } | { damaged: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { damaged: text.length === 0 ? 'empty file' : 'not valid JSON (truncated?)' };
  }
  const d = doc as { key?: unknown; value?: unknown };
  if (doc === null || typeof doc !== 'object' || typeof d.key !== 'string' || !('value' in d))
    return { damaged: 'not an nsnet document ({"key":…,"value":…})' };
  if (key !== undefined ? d.key !== key : `${encodeKey(d.key)}.json` !== path.basename(file))
    return { damaged: `it holds key ${JSON.stringify(d.key)}, which does not belong in this file` };
  return { key: d.key, value: d.value };
}

/** {@link readDoc}, throwing ERR_STORE_CORRUPT for a damaged document. */
export function parseDoc(text: string, file: string, key?: string, more: Record<string, unknown> = {}): { key: string; value: unknown } {
  const d = readDoc(text, file, key);
  if ('damaged' in d) throw corrupt(file, d.damaged, { ...more, ...(key === undefined ? {} : { key }) });
  return d;
}

/**
 * File names already decoded (name → key, null: not an encoded key): listing a collection of
 * 1,000 documents decodes 1,000 names, at every disconnect (bounded: cleared when it grows past
 * 64k names).
 */
const decoded = new Map<string, string | null>();

/** The key a document's file name encodes, or undefined (a digest name, or not an encoded key). */
export function keyOfName(name: string): string | undefined {
  const known = decoded.get(name);
  if (known !== undefined) return known ?? undefined;
  const base = name.slice(0, -'.json'.length);
  if (base.startsWith('~')) return undefined;
  let key: string | null;
  try {
    key = decodeURIComponent(base);
    if (encodeKey(key) !== base) key = null;
  } catch {
    key = null;
  }
  if (decoded.size >= 65536) decoded.clear();
  decoded.set(name, key);
  return key ?? undefined;
}

/** Code-unit order, as `list()` and `keys()` sort. */
export function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The view/transaction handed to callbacks: disk reads memoized, writes kept in `pending`. */
export class Snapshot implements StoreTx {
  /** collection → key → document text (null: deleted); applied over the disk. */
  readonly pending = new Map<string, Map<string, string | null>>();
  private readonly seen = new Map<string, string | null>();
  /** Document files set aside by this transaction → the name each is kept under. */
  private readonly asides = new Map<string, string>();
  done = false;

  constructor(
    private readonly root: string,
    private readonly writable: boolean,
  ) {}

  get<T = unknown>(collection: string, key: string): T | undefined {
    const text = this.text(checkCollection(collection), checkKey(key));
    if (text === null) return undefined;
    const d = readDoc(text, this.file(collection, key), key);
    if ('damaged' in d) throw corrupt(this.file(collection, key), d.damaged, { collection, key });
    return d.value as T;
  }

  list<T = unknown>(collection: string): StoreEntry<T>[] {
    const { entries, damaged } = this.scan<T>(collection);
    const d = damaged[0];
    if (d) throw corrupt(d.file, d.reason, { collection, ...(d.key !== undefined ? { key: d.key } : {}), damaged });
    return entries;
  }

  scan<T = unknown>(collection: string, check?: DocumentCheck): StoreScan<T> {
    const pending = this.pending.get(checkCollection(collection));
    const docs = new Map<string, unknown>();
    const damaged: DamagedDocument[] = [];
    for (const name of this.names(collection)) {
      const file = path.join(this.root, collection, name);
      const named = keyOfName(name);
      // Written or deleted by this transaction (or set aside): the disk's version is not read.
      if (this.asides.has(file) || (named !== undefined && pending?.has(named))) continue;
      const text = readText(file);
      if (text === null) continue;
      const d = readDoc(text, file);
      const why = 'damaged' in d ? d.damaged : pending?.has(d.key) ? null : check?.(d.value, d.key);
      if (why === null) continue;
      const key = 'damaged' in d ? named : d.key;
      if (why !== undefined) damaged.push({ collection, ...(key !== undefined ? { key } : {}), file, reason: why });
      else if (!('damaged' in d)) {
        this.seen.set(`${collection}\0${d.key}`, text);
        docs.set(d.key, d.value);
      }
    }
    for (const [key, text] of pending ?? []) if (text !== null) docs.set(key, parseDoc(text, this.file(collection, key), key).value);
    return {
      entries: [...docs.keys()].sort(byKey).map((key) => ({ key, value: docs.get(key) as T })),
      damaged: damaged.sort((a, b) => byKey(a.file, b.file)),
    };
  }

  damaged(checks: Record<string, DocumentCheck> = {}, collections?: string[]): DamagedDocument[] {
    const names = collections?.map(checkCollection) ?? this.collections();
    return names.flatMap((c) => this.scan(c, checks[c]).damaged).sort((a, b) => byKey(a.file, b.file));
  }

  keys(collection: string): string[] {
    const keys = new Set<string>();
    for (const name of this.names(checkCollection(collection))) {
      if (this.asides.size > 0 && this.asides.has(path.join(this.root, collection, name))) continue;
      const base = name.slice(0, -'.json'.length);
      if (!base.startsWith('~')) {
        const key = keyOfName(name);
        if (key === undefined) throw corrupt(path.join(this.root, collection, name), 'its name is not an encoded key', { collection });
        keys.add(key);
        continue;
      }
      const file = path.join(this.root, collection, name);
      const text = readText(file);
      if (text !== null) keys.add(parseDoc(text, file, undefined, { collection }).key);
    }
    for (const [key, text] of this.pending.get(collection) ?? []) {
      if (text === null) keys.delete(key);
      else keys.add(key);
    }
    return [...keys].sort(byKey);
  }

  put(collection: string, key: string, value: unknown): void {
    this.writeCheck();
    checkCollection(collection);
    checkKey(key);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (e) {
      throw invalid('ERR_INVALID_ARGUMENT', `document ${collection}/${key} is not JSON-serializable: ${(e as Error).message}`, { collection, key });
    }
    if (json === undefined)
      throw invalid('ERR_INVALID_ARGUMENT', `document ${collection}/${key} is not JSON-serializable (use delete() to remove it)`, { collection, key });
    this.stage(collection, key, `{"key":${JSON.stringify(key)},"value":${json}}`);
  }

  delete(collection: string, key: string): void {
    this.writeCheck();
    this.stage(checkCollection(collection), checkKey(key), null);
  }

  setAside(doc: DamagedDocument): string {
    this.writeCheck();
    const collection = checkCollection(doc?.collection);
    const name = path.basename(String(doc.file));
    const file = path.join(this.root, collection, name);
    if (doc.file !== file || !name.endsWith('.json') || name.startsWith('.'))
      throw invalid('ERR_INVALID_ARGUMENT', `${String(doc.file)} is not a document file of collection ${collection}`, { file: doc.file });
    let aside = this.asides.get(file);
    if (aside === undefined) this.asides.set(file, (aside = asideName(file, this.asides.values())));
    // The commit deletes the document by its key (journaled) unless this transaction writes it.
    const key = doc.key ?? keyOfName(name);
    if (key !== undefined && this.pending.get(collection)?.get(key) === undefined) this.stage(collection, checkKey(key), null);
    return aside;
  }

  /** The files set aside: each with the name it is to be kept under. */
  asideList(): { file: string; aside: string }[] {
    return [...this.asides].map(([file, aside]) => ({ file, aside }));
  }

  /** Queues a journal's operations (replay failed: serve reads from the journal). */
  overlay(ops: Op[]): void {
    for (const op of ops) this.stage(op.collection, op.key, op.doc);
  }

  /** What {@link commitAhead} calls (set by the store that made this transaction). */
  onCommitAhead: (() => void) | undefined;

  commitAhead(): void {
    this.writeCheck();
    this.onCommitAhead?.();
  }

  /** The documents `ops` replace as they are now on disk: the ops that put them back. */
  inverse(ops: Op[]): Op[] {
    return ops.map((o) => {
      const id = `${o.collection}\0${o.key}`;
      let text = this.seen.get(id);
      if (text === undefined) this.seen.set(id, (text = readText(this.file(o.collection, o.key))));
      return { collection: o.collection, key: o.key, doc: text === null ? null : text.replace(/\n$/u, '') };
    });
  }

  /** The writes that change something, in a stable order. */
  ops(): Op[] {
    const out: Op[] = [];
    for (const collection of [...this.pending.keys()].sort(byKey)) {
      for (const [key, doc] of [...this.pending.get(collection)!].sort((a, b) => byKey(a[0], b[0]))) {
        const before = this.seen.get(`${collection}\0${key}`);
        if (before !== undefined && (doc === null ? before === null : before === `${doc}\n`)) continue;
        out.push({ collection, key, doc });
      }
    }
    return out;
  }

  private stage(collection: string, key: string, doc: string | null): void {
    let m = this.pending.get(collection);
    if (!m) this.pending.set(collection, (m = new Map()));
    m.set(key, doc);
  }

  private writeCheck(): void {
    if (this.done) throw new NsnetError('ERR_STORE_TX_CLOSED', 'this store transaction is finished; use the one passed to the current callback');
    if (!this.writable) throw new NsnetError('ERR_INVALID_ARGUMENT', 'read() gives a read-only view; use update() to write');
  }

  private text(collection: string, key: string): string | null {
    if (this.done) throw new NsnetError('ERR_STORE_TX_CLOSED', 'this store view is finished; use the one passed to the current callback');
    const staged = this.pending.get(collection)?.get(key);
    if (staged !== undefined) return staged;
    const id = `${collection}\0${key}`;
    let text = this.seen.get(id);
    if (text === undefined) this.seen.set(id, (text = readText(this.file(collection, key))));
    return text;
  }

  private names(collection: string): string[] {
    if (this.done) throw new NsnetError('ERR_STORE_TX_CLOSED', 'this store view is finished; use the one passed to the current callback');
    try {
      return fs.readdirSync(path.join(this.root, collection)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return [];
      throw ioError(e, 'list', path.join(this.root, collection));
    }
  }

  /** The collections (directories) of the store. */
  private collections(): string[] {
    if (this.done) throw new NsnetError('ERR_STORE_TX_CLOSED', 'this store view is finished; use the one passed to the current callback');
    try {
      return fs
        .readdirSync(this.root, { withFileTypes: true })
        .filter((e) => e.isDirectory() && COLLECTION.test(e.name))
        .map((e) => e.name)
        .sort(byKey);
    } catch (e) {
      throw ioError(e, 'list', this.root);
    }
  }

  private file(collection: string, key: string): string {
    return path.join(this.root, collection, `${encodeKey(key)}.json`);
  }
}
