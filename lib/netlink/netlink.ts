/**
 * A rtnetlink handle bound to one network namespace. Requests on one handle run in order on
 * its own worker thread; open several handles for parallelism.
 */
import { NsnetError, fromNative } from '../errors';
import { NETLINK_ROUTE, native } from '../native';
import { openNetns, type NetnsHandle, type NetnsSpec } from '../netns';
import * as v from '../validate';
import { Addresses } from './addresses';
import { Conn } from './conn';
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
  private closed = false;

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
    const ns: NetnsHandle = openNetns(opts.netns);
    let handle;
    try {
      handle = new native.Handle(NETLINK_ROUTE, ns.fd);
    } catch (e) {
      ns.close();
      throw fromNative(e, 'open netlink handle');
    }
    const nl = new Netlink(new Conn(handle, ns));
    try {
      // Proves the socket works in that namespace: loopback is ifindex 1 in every namespace.
      await nl.conn.request({ type: RTM.GETLINK, header: { index: 1 }, attrs: { extMask: 8 } }, 'open netlink handle');
    } catch (e) {
      nl.close();
      throw e;
    }
    return nl;
  }

  /** Requests not yet answered. */
  get pending(): number {
    return this.conn.handle.pending;
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Closes the handle. Requests still queued or in flight reject with ERR_HANDLE_CLOSED (an
   * in-flight one may or may not have taken effect in the kernel).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.handle.close();
    this.conn.netns.close();
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new NsnetError('ERR_HANDLE_CLOSED', 'the netlink handle is closed');
  }
}
