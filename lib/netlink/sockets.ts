/**
 * The namespace's bound sockets, from sock_diag netlink (what `ss -ltnu` shows): used to
 * refuse publishing a port a process on the host already listens on.
 */
import * as ipaddr from 'ipaddr.js';
import { NETLINK_SOCK_DIAG } from '../native';
import type { NetnsSpec } from '../netns';
import { Conn } from './conn';

const SOCK_DIAG_BY_FAMILY = 20;
const TCP_LISTEN = 10;
const PROTOCOLS = { tcp: 6, udp: 17 } as const;

/** A socket bound to a local port. */
export interface BoundSocket {
  protocol: 'tcp' | 'udp';
  family: 4 | 6;
  /** '0.0.0.0' / '::' for every address. */
  address: string;
  port: number;
  /**
   * An IPv6 socket that takes IPv6 only (IPV6_V6ONLY). An IPv6 socket on `::` without it also
   * receives IPv4 (as `::ffff:a.b.c.d`). The kernel says so for listening TCP and unconnected UDP
   * sockets; for others (a connected UDP socket) it says nothing, and this is false.
   */
  v6only: boolean;
}

function address(family: number, w: number[]): string {
  const bytes = w.slice(0, family === 2 ? 1 : 4).flatMap((x) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
  return ipaddr.fromByteArray(bytes).toString();
}

/** Lists listening TCP sockets and bound UDP sockets of one namespace. */
export class Sockets {
  private constructor(private readonly conn: Conn) {}

  /**
   * Binds to a namespace (default: the caller's). No socket or thread is kept: each listing is
   * a one-shot exchange run by a pooled thread of the addon (Conn.transient), so a host that
   * publishes ports pays no handle, and its first connect no handle opening.
   */
  static async open(netns?: NetnsSpec): Promise<Sockets> {
    return new Sockets(Conn.transient(NETLINK_SOCK_DIAG, netns, 'sock_diag'));
  }

  /** Listening TCP and bound UDP sockets (of the given protocols), IPv4 and IPv6. */
  async bound(protocols: readonly ('tcp' | 'udp')[] = ['tcp', 'udp']): Promise<BoundSocket[]> {
    this.conn.assertOpen();
    const dumps = protocols.flatMap((protocol) => [2, 10].map((family) => dump(this.conn, protocol, family)));
    return (await Promise.all(dumps)).flat();
  }

  close(): void {
    this.conn.close();
  }
}

async function dump(conn: Conn, protocol: 'tcp' | 'udp', family: number): Promise<BoundSocket[]> {
  const msgs = await conn.dump(
    {
      type: SOCK_DIAG_BY_FAMILY,
      header: { family, protocol: PROTOCOLS[protocol], states: protocol === 'tcp' ? 1 << TCP_LISTEN : 0xffffffff },
    },
    `list ${protocol} sockets`,
  );
  return msgs
    .filter((m) => m.type === SOCK_DIAG_BY_FAMILY && m.header.sport)
    .map((m) => ({
      protocol,
      family: m.header.family === 10 ? 6 : 4,
      address: address(m.header.family ?? 2, [m.header.src0 ?? 0, m.header.src1 ?? 0, m.header.src2 ?? 0, m.header.src3 ?? 0]),
      port: m.header.sport ?? 0,
      v6only: m.attrs?.v6only === 1,
    }));
}
