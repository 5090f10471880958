/**
 * The state store: where nsnet records intent (networks, endpoints, address leases, published
 * ports). {@link FileStore} is the embedded implementation; an etcd one can implement the same
 * {@link Store} interface. IPAM, drivers and the façade are written against these interfaces.
 */
export { FileStore } from './filestore';
export type { FileStoreOptions } from './filestore';
export { FileLock } from './flock';
export type { StoreStamp } from './changes';
import type { StoreStamp } from './changes';

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
  /** Every document of `collection`, sorted by key (code-unit order). */
  list<T = unknown>(collection: string): StoreEntry<T>[];
  /** The keys of `collection`, sorted (code-unit order). */
  keys(collection: string): string[];
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
}
