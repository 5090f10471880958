/**
 * The state store: where nsnet records intent (networks, endpoints, address leases, published
 * ports). {@link FileStore} is the embedded implementation; an etcd one can implement the same
 * {@link Store} interface. IPAM, drivers and the façade are written against these interfaces.
 */
export { FileStore } from './filestore';
export type { FileStoreOptions } from './filestore';
export { FileLock } from './flock';
export type { DamagedDocument, DocumentCheck, Store, StoreChanges, StoreEntry, StoreScan, StoreTx, StoreView } from './types';
export type { StoreStamp } from './changes';
