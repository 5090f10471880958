/**
 * The container's side of an attachment, whatever the link kind (veth peer, macvlan child):
 * its interface name checked before anything is made, then loopback, addresses and default
 * routes on a handle in the container's namespace.
 */
import { NetlinkError, NsnetError } from '../errors';
import type { NetlinkOp } from '../netlink/conn';
import { Netlink } from '../netlink/netlink';
import { openNetns, type NetnsSpec } from '../netns';

/**
 * Refuses an interface name the container already has, before anything is made: the new link
 * would collide with it, and the kernel's EEXIST would name the wrong link.
 * @throws ERR_IFNAME_IN_USE
 */
export async function assertIfnameFree(c: Netlink, ifname: string, netns: NetnsSpec): Promise<void> {
  const link = await c.links.find(ifname);
  if (!link) return;
  const where = typeof netns === 'string' ? netns : JSON.stringify(netns);
  throw new NsnetError(
    'ERR_IFNAME_IN_USE',
    `the container's namespace ${where} already has an interface named ${ifname} (${link.kernelKind || 'device'}, index ${link.index}): choose another ifname or remove it`,
    { ifname, netns, index: link.index },
  );
}

/** How a container's interface is addressed and routed. */
export interface ContainerAddressing {
  ifname: string;
  /** Its index there, when known (the veth's creation says it): saves asking by name. */
  index?: number | undefined;
  /** The address and the subnet's prefix length. */
  ipv4: string;
  prefix: number;
  ipv6?: string | undefined;
  prefix6?: number | undefined;
  gateway?: string | undefined;
  gateway6?: string | undefined;
  /** No default routes (an internal network reaches its own subnet only, by the prefix route). */
  internal: boolean;
  /** The link was made with IPv6 address generation on, and the network has no IPv6: turn it off before it comes up. */
  addrGenOff?: boolean;
}

/**
 * Configures the container's interface once it exists there: loopback up, the addresses (no
 * IPv6 at all on an IPv4-only network), up, the default routes — one batch, one round trip
 * (the kernel applies them in order). The first refusal is thrown; the caller removes the
 * interface, which takes what was applied with it.
 */
export async function configureContainer(c: Netlink, a: ContainerAddressing): Promise<void> {
  const index = a.index ?? (await c.links.get(a.ifname)).index;
  const ops = [c.links.setOp(LOOPBACK, { up: true }), c.addresses.addOp(index, `${a.ipv4}/${a.prefix}`)];
  if (a.addrGenOff) ops.push(c.links.setOp(index, { addrGenMode: 'none' })); // before it comes up
  ops.push(c.links.setOp(index, { up: true }));
  if (a.ipv6 && a.prefix6 !== undefined) ops.push(c.addresses.addOp(index, `${a.ipv6}/${a.prefix6}`, { nodad: true }));
  if (!a.internal) ops.push(...defaultRouteOps(c, a.gateway, a.gateway6));
  const failed = (await c.batch(ops)).find((e) => e !== undefined);
  if (failed) throw failed;
}

/** Loopback's index in every namespace. */
const LOOPBACK = 1;

/**
 * The container's default routes via its network's gateways. A container already attached to
 * another network keeps that one's (EEXIST): like Docker, the first network is the way out.
 */
function defaultRouteOps(c: Netlink, gateway: string | undefined, gateway6: string | undefined): NetlinkOp[] {
  return [gateway, gateway6].filter((gw): gw is string => !!gw).map((gw) => ({ ...c.routes.addOp({ dst: 'default', gateway: gw }), tolerate: ['EEXIST'] }));
}

/**
 * Deletes the container's interface `ifname` if it still carries `alias` (nsnet's mark for this
 * endpoint); anything else of that name is left alone. A gone namespace took it with it.
 */
export async function removeMarkedLink(netns: string, ifname: string, alias: string): Promise<void> {
  try {
    openNetns(netns).close();
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND') return;
    throw e;
  }
  const c = await Netlink.open({ netns });
  try {
    const link = await c.links.find(ifname);
    if (link?.alias !== alias) return; // not ours (any more)
    await c.links.remove(link.index).catch((e) => {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
    });
  } finally {
    c.close();
  }
}
