/**
 * The state store's interfaces: what IPAM, drivers and the façade are written against. A leaf
 * module (it imports nothing of the store), so the implementation (filestore.ts, documents.ts)
 * and the barrel (index.ts) can all depend on it without an import cycle.
 */
import type { StoreStamp } from './changes';
import type { NativeChangeWatch } from '../native';

/** One document of a collection, as returned by {@link StoreView.list}. */
export interface StoreEntry<T> {
  /** The document's key (any non-empty string). */
  key: string;
  /** The document: a fresh copy, safe to modify (changes are kept only through `put`). */
  value: T;
}

/**
 * A consistent read-only view of the store, valid only while the `read`/`update` callback that
 * received it runs. Collection names are `[a-z][a-z0-9_-]*` (at most 64 characters); keys are
 * any non-empty string of at most 4096 bytes. Bad names throw ERR_INVALID_ARGUMENT.
 */
export interface StoreView {
  /** The document `key` of `collection` (a fresh copy), or undefined when there is none. */
  get<T = unknown>(collection: string, key: string): T | undefined;
  /**
   * Every document of `collection`, sorted by key (code-unit order). All or nothing: a damaged
   * document throws ERR_STORE_CORRUPT naming its file (details: file, collection, key when
   * known, damaged: every damaged document of the collection). Use {@link StoreView.scan} where
   * the others are still useful without it.
   */
  list<T = unknown>(collection: string): StoreEntry<T>[];
  /**
   * Every readable document of `collection` (as {@link StoreView.list}), and apart the damaged
   * ones, which are reported instead of thrown. `check` may refuse a readable value: it returns
   * why the value is not a document of this collection, and the document counts as damaged.
   */
  scan<T = unknown>(collection: string, check?: DocumentCheck): StoreScan<T>;
  /**
   * The damaged documents of every collection (or of `collections`), sorted by file; `checks`
   * per collection as in {@link StoreView.scan}.
   */
  damaged(checks?: Record<string, DocumentCheck>, collections?: string[]): DamagedDocument[];
  /** The keys of `collection`, sorted (code-unit order). */
  keys(collection: string): string[];
}

/** Why `value` (the document `key`) is not a document of its collection, or undefined when it is. */
export type DocumentCheck = (value: unknown, key: string) => string | undefined;

/**
 * A document whose file holds no readable document: damaged from outside the store (a disk, a
 * hand), since the store itself only ever renames complete files into place.
 */
export interface DamagedDocument {
  collection: string;
  /** Its key, when the file name tells it (every key but long ones, stored under a digest). */
  key?: string;
  /** The file, absolute. */
  file: string;
  /** What is wrong with it ("not valid JSON (truncated?)", "empty file", …). */
  reason: string;
}

/** What {@link StoreView.scan} returns. */
export interface StoreScan<T> {
  /** The readable documents, sorted by key. */
  entries: StoreEntry<T>[];
  /** The damaged ones, sorted by file. */
  damaged: DamagedDocument[];
}

/**
 * A transaction: a {@link StoreView} plus writes. Writes are visible to later reads of the same
 * transaction and reach the store together when the callback returns, or not at all when it
 * throws.
 */
export interface StoreTx extends StoreView {
  /** Creates or replaces a document. `value` must be JSON-serializable (it is copied now). */
  put(collection: string, key: string, value: unknown): void;
  /** Removes a document (no error when there is none). */
  delete(collection: string, key: string): void;
  /**
   * Moves a (damaged) document out of its collection when the transaction commits. Its file is
   * kept beside the others as `<name>.damaged` (`<name>.2.damaged`, … when taken), which no
   * read looks at: nothing is lost. Later reads of this transaction no longer see it; a put of
   * the same key writes a new document in its place. Returns the path it is kept under.
   */
  setAside(doc: DamagedDocument): string;
  /**
   * Says the writes made so far are this transaction's outcome unless the callback fails: the
   * store may start making them durable now, while the callback goes on (a connect's kernel
   * work), instead of after it returns. The transaction still resolves only once they are
   * durable; if the callback throws after all, a record restoring what it changed is committed
   * before the error comes out. Writes made after it are committed when the callback returns
   * (a second record). Readers never see the writes before the transaction ends (the lock is
   * held); a crash while the callback goes on may leave them committed with the callback's
   * work half done — as a crash right after any commit point does — which is what gc/repair is
   * for. A no-op where the store has nothing to gain (optional: stores may lack it).
   */
  commitAhead?(): void;
}

/** A state store shared by several processes. */
export interface Store {
  /** Runs `fn` on a consistent snapshot (a shared lock is held meanwhile). */
  read<T>(fn: (view: StoreView) => T | Promise<T>): Promise<T>;
  /** Runs `fn` in an exclusive, all-or-nothing transaction and commits its writes durably. */
  update<T>(fn: (tx: StoreTx) => T | Promise<T>): Promise<T>;
  /** Waits for operations in flight, then refuses new ones (ERR_STORE_CLOSED). */
  close(): Promise<void>;
}

/**
 * A store that readers can follow: a synchronous stamp of its committed state (equal stable
 * stamps: nothing was committed in between) and a best-effort watch.
 */
export interface StoreChanges {
  stamp(): StoreStamp;
  watch(onChange: () => void): { close(): void };
  /**
   * A change counter of the store's files, read synchronously (see lib/store/changes.ts
   * {@link watchGenerations}); undefined where the store cannot have one. The caller closes it.
   */
  generations?(): NativeChangeWatch | undefined;
}
