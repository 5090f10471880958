/**
 * A rtnetlink handle bound to one network namespace. Requests on one handle run in order on
 * its own worker thread; open several handles for parallelism.
 */
import { NETLINK_ROUTE } from '../native';
import type { NetnsSpec } from '../netns';
import * as v from '../validate';
import { Addresses } from './addresses';
import type { NetlinkError } from '../errors';
import { Conn, type NetlinkOp } from './conn';
import { RTM } from './constants';
import { Links } from './links';
import { Fdb, Neighbors } from './neighbors';
import { Routes } from './routes';

export interface NetlinkOptions {
  /** The namespace to bind to (name, path, pid or `{ fd }`); default: the caller's. */
  netns?: NetnsSpec;
}

/** A rtnetlink connection bound to a network namespace. */
export class Netlink {
  /** Links: list, get, add, set, remove, bulk operations, watch. */
  readonly links: Links;
  /** IP addresses of links. */
  readonly addresses: Addresses;
  /** Routes. */
  readonly routes: Routes;
  /** Neighbour (ARP/NDP) entries. */
  readonly neighbors: Neighbors;
  /** Bridge / vxlan forwarding database entries. */
  readonly fdb: Fdb;
  /** Inode of the namespace the handle is bound to. */
  readonly netnsInode: number;

  private readonly conn: Conn;

  private constructor(conn: Conn) {
    this.conn = conn;
    this.netnsInode = conn.netns.inode;
    this.links = new Links(conn);
    this.addresses = new Addresses(conn, this.links);
    this.routes = new Routes(conn, this.links);
    this.neighbors = new Neighbors(conn, this.links);
    this.fdb = new Fdb(conn, this.links);
  }

  /**
   * Opens a handle in a namespace. The socket is created by a short-lived thread of the addon
   * that enters the namespace; it stays bound there for its whole life.
   * @throws NsnetError ERR_NETNS_NOT_FOUND, ERR_NOT_A_NETNS, or EPERM without CAP_NET_ADMIN there.
   */
  static async open(opts: NetlinkOptions = {}): Promise<Netlink> {
    v.knownKeys(opts, ['netns'], 'Netlink.open options');
    // The probe: loopback is ifindex 1 in every namespace.
    const conn = await Conn.open(NETLINK_ROUTE, opts.netns, 'netlink', (c) =>
      c.request({ type: RTM.GETLINK, header: { index: 1 }, attrs: { extMask: 8 }, only: ['ifname'] }, 'open netlink handle'),
    );
    return new Netlink(conn);
  }

  /**
   * A handle with no socket or thread of its own: each burst of requests is a one-shot
   * exchange in the namespace, run by a pooled thread of the addon. For a few requests in a
   * container's namespace (what a connect does there), where opening a handle would cost a
   * thread. Bursts are ordered only when awaited one after the other.
   * @internal
   */
  static transient(opts: NetlinkOptions & { netns: NetnsSpec }): Netlink {
    return new Netlink(Conn.transient(NETLINK_ROUTE, opts.netns, 'netlink'));
  }

  /**
   * Sends requests built ahead (links.setOp, addresses.addOp, routes.addOp) together: one
   * round trip, processed by the kernel in order, each answered on its own. Returns one error
   * (or undefined) per op; an error whose code the op tolerates counts as done. Every op runs
   * whatever the others' outcome: build only ops that stay right when an earlier one fails.
   * @internal
   */
  async batch(ops: NetlinkOp[]): Promise<(NetlinkError | undefined)[]> {
    if (ops.length === 0) return [];
    const results = await this.conn.batch(
      ops.map((o) => o.request),
      (i) => ops[i]!.what,
    );
    return results.map((r, i) => (r.error && !ops[i]!.tolerate?.includes(r.error.code) ? r.error : undefined));
  }

  /** Requests not yet answered. */
  get pending(): number {
    return this.conn.pending;
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /**
   * Closes the handle. Requests still queued or in flight reject with ERR_HANDLE_CLOSED (an
   * in-flight one may or may not have taken effect in the kernel).
   */
  close(): void {
    this.conn.close();
  }
}
