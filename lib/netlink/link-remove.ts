/**
 * Removing many links in one kernel operation (links.removeMany).
 *
 * Deleting links one request at a time costs an RCU grace period each (~16 ms); deleting a
 * link group (RTM_DELLINK with IFLA_GROUP, `ip link del group N`) takes one wait for all. So
 * the targets are put in a link group no other link has, and that group is deleted.
 *
 * Finding a group no link has: not by listing every link (a full dump costs as much as a tenth
 * of the delete itself with 1,000 links) but by asking the kernel about one random group. An
 * RTM_NEWLINK without NLM_F_CREATE that names no link but a group applies its changes to every
 * link of that group (rtnl_group_changelink, net/core/rtnetlink.c); with an MTU no device takes
 * (2^32 − 1, negative as the kernel's int) it changes nothing either way: it succeeds when the
 * group is empty, and fails with EINVAL ("mtu less than device minimum") at the first member,
 * before any change. A kernel that answers otherwise gets the listing instead.
 *
 * If the kernel refuses the delete (a target that cannot be deleted, such as lo or a physical
 * NIC: the kernel checks every member before it deletes any), nothing is removed and the
 * targets go back to group 0. Decision: the targets' previous groups are not read first — that
 * is the listing again — and links are in group 0 unless someone put them elsewhere (nsnet
 * never leaves one in another group); a target that had another group ends in group 0.
 * @internal
 */
import { NetlinkError } from '../errors';
import { AF, NLM_F, RTEXT_FILTER_SKIP_STATS, RTM } from './constants';
import { toError, type Conn } from './conn';

/** Groups picked for a removal: above those people set by hand, below 2^31. */
const GROUP_BASE = 0x40000000;
const GROUP_SPAN = 0x3fffffff;
/** The MTU of the probe: the kernel reads it as -1 and refuses it for every device. */
const IMPOSSIBLE_MTU = 0xffffffff;

type Target = string | number;

const asTarget = (t: Target): { header: { index?: number }; attrs: { ifname?: string } } =>
  typeof t === 'number' ? { header: { index: t }, attrs: {} } : { header: {}, attrs: { ifname: t } };

/**
 * A link group no link of the namespace has: true when the kernel said group `g` is empty,
 * false when it has a member, undefined when the kernel's answer is not one the probe knows.
 */
export async function groupIsEmpty(conn: Conn, g: number): Promise<boolean | undefined> {
  const [r] = await conn.exec([{ type: RTM.NEWLINK, flags: NLM_F.REQUEST | NLM_F.ACK, header: {}, attrs: { group: g, mtu: IMPOSSIBLE_MTU } }]);
  if (r === undefined) return undefined;
  if (!r.errno) return true;
  if (r.code === 'EINVAL' && /mtu/iu.test(r.extack ?? 'mtu')) return false;
  return undefined;
}

/** A random empty group, or undefined when the probe cannot tell (then list the links). */
async function emptyGroup(conn: Conn): Promise<number | undefined> {
  for (let i = 0; i < 8; i++) {
    const g = GROUP_BASE + Math.floor(Math.random() * GROUP_SPAN);
    const empty = await groupIsEmpty(conn, g);
    if (empty === undefined) return undefined;
    if (empty) return g;
  }
  return undefined; // eight members in a row: not a kernel this probe understands
}

/**
 * Puts `targets` in `group`; returns the targets that are there now. One sendmsg, no ACKs:
 * rtnetlink handles every message of a sendmsg before it returns and answers only the ones
 * that fail, so 500 changes cost one system call and no 500 acknowledgements to read.
 */
async function moveToGroup(conn: Conn, targets: Target[], group: number, restoreTo: (t: Target) => number): Promise<Target[]> {
  const set = await conn.exec(
    targets.map((t) => ({ type: RTM.NEWLINK, flags: NLM_F.REQUEST, ...withGroup(t, group) })),
    true,
  );
  const moved = targets.filter((_, i) => !set[i]!.errno);
  const failed = set.findIndex((r) => r.errno && r.code !== 'ENODEV');
  if (failed >= 0) {
    await restore(conn, moved, restoreTo);
    throw toError(set[failed]!, `set group of link ${targets[failed]}`, failed);
  }
  return moved;
}

function withGroup(t: Target, group: number): { header: { index?: number }; attrs: Record<string, unknown> } {
  const { header, attrs } = asTarget(t);
  return { header, attrs: { ...attrs, group } };
}

async function restore(conn: Conn, targets: Target[], groupOf: (t: Target) => number): Promise<void> {
  if (!targets.length) return;
  // Later duplicates first: the first mention of a link carries the group it had.
  const order = [...targets].reverse();
  await conn
    .batch(
      order.map((t) => ({ type: RTM.NEWLINK, ...withGroup(t, groupOf(t)) })),
      () => 'restore group',
    )
    .catch(() => undefined);
}

/** Deletes `group`; on refusal puts `moved` back (restoreTo) and throws. Nothing left: fine. */
async function deleteGroup(conn: Conn, group: number, moved: Target[], restoreTo: (t: Target) => number): Promise<void> {
  try {
    await conn.request({ type: RTM.DELLINK, header: {}, attrs: { group } }, `remove link group ${group}`);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return; // every target went meanwhile
    await restore(conn, moved, restoreTo);
    throw e;
  }
}

/**
 * Removes `targets` (validated names and indexes, at least two) with one group delete.
 * Targets that do not exist are ignored.
 */
export async function removeLinks(conn: Conn, targets: Target[]): Promise<void> {
  const unique = [...new Set(targets)];
  const group = await emptyGroup(conn);
  if (group === undefined) {
    await removeListed(conn, unique);
    return;
  }
  const moved = await moveToGroup(conn, unique, group, () => 0);
  if (!moved.length) return;
  await deleteGroup(conn, group, moved, () => 0);
}

/**
 * The same by listing the links first (a kernel the probe does not understand): the group is
 * one no listed link has, and a refusal puts every target back in the group it had.
 */
async function removeListed(conn: Conn, targets: Target[]): Promise<void> {
  const msgs = await conn.dump(
    { type: RTM.GETLINK, header: { family: AF.UNSPEC }, attrs: { extMask: RTEXT_FILTER_SKIP_STATS }, only: ['ifname', 'group'] },
    'list links',
  );
  const all = msgs
    .filter((m) => m.type === RTM.NEWLINK)
    .map((m) => ({ index: m.header.index ?? 0, name: String(m.attrs.ifname), group: Number(m.attrs.group ?? 0) }));
  const byName = new Map(all.map((l) => [l.name, l]));
  const byIndex = new Map(all.map((l) => [l.index, l]));
  const found = [...new Set(targets.map((t) => (typeof t === 'number' ? byIndex.get(t) : byName.get(t))).filter((l) => l !== undefined))];
  if (!found.length) return;
  const used = new Set(all.map((l) => l.group));
  let group: number;
  do group = GROUP_BASE + Math.floor(Math.random() * GROUP_SPAN);
  while (used.has(group));
  const previous = new Map(found.map((l) => [l.index, l.group]));
  const indexes = found.map((l) => l.index);
  const moved = await moveToGroup(conn, indexes, group, (t) => previous.get(t as number) ?? 0);
  if (!moved.length) return;
  await deleteGroup(conn, group, moved, (t) => previous.get(t as number) ?? 0);
}
