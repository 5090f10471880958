/**
 * The small shapes every part of the firewall shares: a protocol, an address family, and an
 * element placed in one of nsnet's sets or maps. A leaf: the element builders
 * (elements.ts, published.ts) both import it.
 */
import type { ElementSpec } from '../nftables/types';
import type { SetName } from './layout';

/** Transport protocols a port can be published for. */
export type Protocol = 'tcp' | 'udp' | 'sctp';

/** An address family. */
export type IpFamily = 4 | 6;

/** One element of one of nsnet's sets or maps. */
export interface Placed {
  set: SetName;
  element: ElementSpec;
}
