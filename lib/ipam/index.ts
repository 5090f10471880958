/**
 * IPAM: address plans of networks ({@link normalizeNetwork}), leases kept in the state store
 * ({@link Ipam}), and MAC addresses derived from IPv4 addresses ({@link macFromIp}).
 */
export { Ipam } from './ipam';
export type { PoolDoc, Lease, AllocateOptions, LeaseEntry } from './ipam';
export { normalizeNetwork, DEFAULT_POOLS } from './network';
export type { NetworkAddressing, NormalizedNetwork, AddressPool, NormalizeOptions } from './network';
export { macFromIp } from './mac';
