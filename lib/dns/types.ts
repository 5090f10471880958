/**
 * The shapes of the embedded DNS resolver: what network and endpoint records carry for it,
 * what `connect()` hands the runtime for the container's resolv.conf, and the resolver's
 * options and counters.
 */
import type { NetnsSpec } from '../netns';

export type { DnsConfig, EndpointDnsNames, NetworkDns } from '../host-types';

/** Options of {@link runDns}. */
export interface DnsOptions {
  /** The state directory of the store to follow (default /var/lib/nsnet). */
  stateDir?: string;
  /** The host namespace, where the resolver listens and forwards from (default: the caller's). */
  netns?: NetnsSpec;
  /** The host's resolver configuration, re-read when it changes (default /etc/resolv.conf). */
  resolvConf?: string;
  /** How long one upstream may take to answer before the next is tried, ms (default 1500). */
  upstreamTimeout?: number;
  /** How long a TCP client may stay idle, ms (default 10 000). */
  tcpIdleTimeout?: number;
  /** Called with what went wrong in the background (a listener that could not bind, a store read that failed). */
  onError?: (err: Error) => void;
}

/** The resolver's counters since it started. */
export interface DnsStats {
  /** Queries received (UDP datagrams and TCP messages). */
  queries: number;
  /** Answered from the network's names (NOERROR, with or without records). */
  local: number;
  /** Answered NXDOMAIN for a name that belongs to the network but is not there. */
  nxdomain: number;
  /** Sent to an upstream. */
  forwarded: number;
  /** Answered SERVFAIL: no upstream answered in time. */
  servfail: number;
  /** Answered REFUSED: a client from outside the network, or an internal network's outside name. */
  refused: number;
  /** Answered FORMERR or NOTIMP. */
  formerr: number;
  /** Dropped: not a DNS query at all (too short, a response, garbage). */
  dropped: number;
  /**
   * Of the UDP queries counted above, those the listening socket answered itself from a reply it
   * remembered for the same query from the same client (counted in `local`, `nxdomain` or
   * `refused` too): a remembered reply is dropped as soon as the store changes.
   */
  remembered: number;
}

/** A listening address of the resolver. */
export interface DnsListener {
  network: string;
  address: string;
}
