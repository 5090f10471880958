/**
 * The shapes of the embedded DNS resolver: what network and endpoint records carry for it,
 * what `connect()` hands the runtime for the container's resolv.conf, and the resolver's
 * options and counters.
 */
import type { NetnsSpec } from '../netns';

/**
 * A network's DNS setting (the network record's optional `dns` field):
 * - absent: the default — on for user-created bridge and overlay networks, off for the
 *   predefined `bridge` network and for macvlan (its containers cannot reach the host through
 *   their parent);
 * - `false`: off;
 * - `{ upstream }`: on, forwarding what is not a name of the network to these servers instead
 *   of the host's (`/etc/resolv.conf`). Each is an address, optionally with a port:
 *   `'192.0.2.53'`, `'192.0.2.53:5353'`, `'2001:db8::53'`, `'[2001:db8::53]:5353'`.
 *   An empty list forwards nothing. Internal networks never forward, whatever this says.
 */
export type NetworkDns = false | { upstream?: string[] };

/** What an endpoint record carries for DNS (optional fields of the record). */
export interface EndpointDnsNames {
  /** The container's name: resolves like its id, and is what PTR answers name. */
  name?: string;
  /** More names for the endpoint in this network (`--alias`, CNI `aliases`). */
  aliases?: string[];
}

/**
 * What the runtime writes into the container's resolv.conf (`connect()` returns it; the CNI
 * result carries it as its `dns` field).
 */
export interface DnsConfig {
  /** The network's gateway addresses the endpoint can reach (one per address family it has). */
  nameservers: string[];
  /** The host's search domains, so that a short name outside the network resolves as on the host. */
  search: string[];
  /**
   * `ndots:0`, as Docker writes: a name with no dot is asked as it is first, answered by the
   * resolver at once, instead of after a round of search domains upstream.
   */
  options: string[];
}

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
}

/** A listening address of the resolver. */
export interface DnsListener {
  network: string;
  address: string;
}
