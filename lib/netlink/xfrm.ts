/**
 * XFRM (the kernel's IPsec state) over NETLINK_XFRM: only listing security associations, which
 * is what `doctor()` needs to prove the interface answers in a namespace.
 * @internal
 */
import { NETLINK_XFRM } from '../native';
import type { NetnsSpec } from '../netns';
import { Conn } from './conn';

/** XFRM_MSG_GETSA (include/uapi/linux/xfrm.h); the dump answers with XFRM_MSG_NEWSA messages. */
const XFRM_MSG_GETSA = 0x12;
const XFRM_MSG_NEWSA = 0x10;

/** A security association, as far as nsnet decodes one. */
export interface XfrmState {
  /** Security parameter index. */
  spi: number;
  /** IPPROTO_ESP (50), IPPROTO_AH (51), IPPROTO_COMP (108). */
  proto: number;
  /** AF_INET (2) or AF_INET6 (10). */
  family: number;
  reqid: number;
  mode: number;
}

/** An XFRM netlink handle bound to one namespace. */
export class Xfrm {
  private constructor(private readonly conn: Conn) {}

  /**
   * Opens a NETLINK_XFRM socket in a namespace and proves it answers (one SA dump).
   * @throws NetlinkError EPROTONOSUPPORT when the kernel has no XFRM netlink interface.
   */
  static async open(netns?: NetnsSpec): Promise<Xfrm> {
    const conn = await Conn.open(NETLINK_XFRM, netns, 'xfrm', (c) => dumpStates(c));
    return new Xfrm(conn);
  }

  /** The namespace's security associations (`ip xfrm state`). */
  async states(): Promise<XfrmState[]> {
    this.conn.assertOpen();
    return dumpStates(this.conn);
  }

  close(): void {
    this.conn.close();
  }
}

async function dumpStates(c: Conn): Promise<XfrmState[]> {
  const replies = await c.dump({ type: XFRM_MSG_GETSA }, 'list xfrm states');
  return replies
    .filter((m) => m.type === XFRM_MSG_NEWSA)
    .map((m) => {
      const h = m.header;
      return { spi: h.spi ?? 0, proto: h.proto ?? 0, family: h.family ?? 0, reqid: h.reqid ?? 0, mode: h.mode ?? 0 };
    });
}
