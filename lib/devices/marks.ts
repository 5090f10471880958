/**
 * How nsnet marks the kernel objects it makes, so that they can be found again without any
 * record (gc, after a crash): every link carries the alias `nsnet:<network>[:<endpoint>]`; a
 * container's veth has a host end named from a hash of its network and endpoint; veths being
 * deleted wait in a link group of nsnet's own.
 */
import { createHash } from 'node:crypto';

/** The alias that marks a kernel object as nsnet's. */
export function ownerAlias(network: string, endpoint?: string): string {
  return endpoint === undefined ? `nsnet:${network}` : `nsnet:${network}:${endpoint}`;
}

/** Parses an alias written by ownerAlias(). */
export function parseOwnerAlias(alias: string | undefined): { network: string; endpoint?: string } | undefined {
  if (!alias?.startsWith('nsnet:')) return undefined;
  const rest = alias.slice(6);
  const i = rest.indexOf(':');
  return i < 0 ? { network: rest } : { network: rest.slice(0, i), endpoint: rest.slice(i + 1) };
}

/** The host end of an endpoint's veth: 've-' + 12 hex digits of a hash of network and id (≤ 15 bytes). */
export function hostIfname(network: string, endpoint: string): string {
  return `ve-${createHash('sha256').update(`${network}\0${endpoint}`).digest('hex').slice(0, 12)}`;
}

/**
 * The link group of retired veths: deleting links one at a time costs an RCU grace period each
 * (~16 ms), a group delete of any number costs one. nsnet's own mark, documented; only links it
 * retired itself are ever put there.
 */
export const RETIRED_GROUP = 0x6e736e74; // 'nsnt'
