/**
 * The documents of a {@link FileStore}: key encoding, parsing with corruption checks, the
 * view/transaction given to callbacks, and the small file-system helpers the commit uses.
 * @internal
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NsnetError, invalid } from '../errors';
import type { StoreEntry, StoreTx } from './types';

/** Collection names: a directory each. */
export const COLLECTION = /^[a-z][a-z0-9_-]{0,63}$/u;
const KEY_MAX_BYTES = 4096;
const NAME_MAX = 200;
const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);

/** A put (`doc` is the document's file text without the newline) or a delete (`doc` null). */
export interface Op { collection: string; key: string; doc: string | null }

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
    throw invalid('ERR_INVALID_ARGUMENT', `collection name ${JSON.stringify(collection)} must match [a-z][a-z0-9_-]* (at most 64 characters)`, { value: collection });
  return collection;
}

/** A document key (ERR_INVALID_ARGUMENT unless a non-empty well-formed string of at most 4096 bytes). */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > KEY_MAX_BYTES || !wellFormed(key))
    throw invalid('ERR_INVALID_ARGUMENT', `document key ${JSON.stringify(key)} must be a non-empty well-formed string of at most ${KEY_MAX_BYTES} bytes`, { value: key });
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

/** ERR_STORE_CORRUPT naming `file` (details.file). */
export function corrupt(file: string, why: string): NsnetError {
  return new NsnetError('ERR_STORE_CORRUPT', `state store file ${file} is corrupt: ${why}; it was left untouched for inspection`, { file });
}

/** Wraps a failed system call in ERR_STORE_IO (details.errno: 'ENOSPC', 'EROFS', ...). */
export function ioError(e: unknown, what: string, file: string): NsnetError {
  if (e instanceof NsnetError && e.code.startsWith('ERR_') && e.code !== 'ERR_NATIVE') return e;
  const err = e as { code?: string; message?: string };
  const errno = typeof err?.code === 'string' ? err.code : 'EIO';
  return new NsnetError('ERR_STORE_IO', `state store: cannot ${what} ${file}: ${errno} (${err?.message ?? String(e)})`, { errno, file });
}

/** Parses a document file's text; `key`: the key it must hold (else: the one its name encodes). ERR_STORE_CORRUPT otherwise. */
export function parseDoc(text: string, file: string, key?: string): { key: string; value: unknown } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt(file, text.length === 0 ? 'empty file' : 'not valid JSON (truncated?)');
  }
  const d = doc as { key?: unknown; value?: unknown };
  if (doc === null || typeof doc !== 'object' || typeof d.key !== 'string' || !('value' in d))
    throw corrupt(file, 'not an nsnet document ({"key":…,"value":…})');
  if (key !== undefined ? d.key !== key : `${encodeKey(d.key)}.json` !== path.basename(file))
    throw corrupt(file, `it holds key ${JSON.stringify(d.key)}, which does not belong in this file`);
  return { key: d.key, value: d.value };
}

const readBuf = Buffer.allocUnsafe(64 * 1024);

/** A file's text, or null when it is absent; other failures are ERR_STORE_IO. */
export function readText(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const n = fs.readSync(fd, readBuf, 0, readBuf.length, 0);
    return n < readBuf.length ? readBuf.toString('utf8', 0, n) : fs.readFileSync(fd, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw ioError(e, 'read', file);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
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
  done = false;

  constructor(private readonly root: string, private readonly writable: boolean) {}

  get<T = unknown>(collection: string, key: string): T | undefined {
    const text = this.text(checkCollection(collection), checkKey(key));
    return text === null ? undefined : (parseDoc(text, this.file(collection, key), key).value as T);
  }

  list<T = unknown>(collection: string): StoreEntry<T>[] {
    const docs = new Map<string, unknown>();
    for (const name of this.names(checkCollection(collection))) {
      const file = path.join(this.root, collection, name);
      const text = readText(file);
      if (text === null) continue;
      const d = parseDoc(text, file);
      this.seen.set(`${collection}\0${d.key}`, text);
      docs.set(d.key, d.value);
    }
    for (const [key, text] of this.pending.get(collection) ?? []) {
      if (text === null) docs.delete(key);
      else docs.set(key, parseDoc(text, this.file(collection, key), key).value);
    }
    return [...docs.keys()].sort(byKey).map((key) => ({ key, value: docs.get(key) as T }));
  }

  keys(collection: string): string[] {
    const keys = new Set<string>();
    for (const name of this.names(checkCollection(collection))) {
      const base = name.slice(0, -'.json'.length);
      if (!base.startsWith('~')) {
        let key: string;
        try {
          key = decodeURIComponent(base);
        } catch {
          throw corrupt(path.join(this.root, collection, name), 'its name is not an encoded key');
        }
        if (encodeKey(key) !== base) throw corrupt(path.join(this.root, collection, name), 'its name is not an encoded key');
        keys.add(key);
        continue;
      }
      const file = path.join(this.root, collection, name);
      const text = readText(file);
      if (text !== null) keys.add(parseDoc(text, file).key);
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

  /** Queues a journal's operations (replay failed: serve reads from the journal). */
  overlay(ops: Op[]): void {
    for (const op of ops) this.stage(op.collection, op.key, op.doc);
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

  private file(collection: string, key: string): string {
    return path.join(this.root, collection, `${encodeKey(key)}.json`);
  }
}

/** Writes `text` to `file` (created or truncated, mode 0600); with `sync`, waits until it is on disk. */
export async function writeFile(file: string, text: string, sync: boolean): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'w', 0o600);
    fs.writeFileSync(fd, text);
    if (sync) await fdatasync(fd);
  } catch (e) {
    throw ioError(e, 'write', file);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Waits until `file` (or a directory's entries) is on disk. */
export async function syncFile(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    await fsync(fd);
  } catch (e) {
    throw ioError(e, 'sync', dir);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function unlinkQuiet(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    /* absent, or the file system refuses: a stale temp file is harmless */
  }
}
