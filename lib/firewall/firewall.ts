/**
 * The bridge-mode firewall: nsnet's own nftables tables (`inet nsnet`, `bridge nsnet_l2`) in
 * the host namespace, written through NfTables, plus conntrack cleanup through Conntrack. The
 * layout is ./layout: a fixed skeleton written once by {@link Firewall.ensure}; afterwards every
 * operation is ONE transaction of element additions and removals — no rule is ever added or
 * removed, so the rule count is the same with one container or ten thousand, and every lookup
 * on the packet path is O(1).
 *
 * What a bridge driver calls, in order:
 * 1. `Firewall.open({ netns })`, then `ensure()` (once per process: it reads both tables).
 * 2. Network creation: create the bridge, set {@link Firewall.sysctls} with `Netns.sysctl`, then
 *    `addNetwork(net)`. Removal: `removeNetwork(name)` after its last endpoint, then the bridge.
 * 3. Container: create the veth (host end on the bridge, with the bridge port's hairpin mode on:
 *    with br_netfilter active a container reaching its own published port is bridged back out
 *    of the port it came in), then `connectEndpoint(ep)` — one transaction for its no-ICC port
 *    and its published ports. `disconnectEndpoint(ep)` before or after deleting the veth.
 * 4. gc: `listOwned()` groups every element by owner; `removeOwner('ep:<id>')` drops one.
 *    Reconcile: `check()`; when not intact, `rebuild({ networks, endpoints })` from the store.
 *
 * Operations on endpoints use point queries only (O(1) however many containers exist), except
 * that publishing more than 48 ports at once, or unpublishing a port bound to a single host
 * address, reads the whole table once. Operations on networks read the whole table.
 */
import { NetlinkError, NsnetError } from '../errors';
import { Conntrack } from '../conntrack';
import { NfTables } from '../nftables/nftables';
import type { Element, Family } from '../nftables/types';
import type { NetnsSpec } from '../netns';
import * as v from '../validate';
import { checkSkeleton, type FirewallCheck } from './check';
import { epOwner, normalizeEndpoint, normalizeNetwork, ownerName, type FirewallEndpoint, type FirewallNetwork, type Placed } from './elements';
import { entryOf, expandPorts, PORT_MAPS, portElement, type FirewallPort, type PortEntry } from './published';
import { INET, L2, SET, tableOf, writeSkeleton } from './layout';
import { elementsBySet, firewallMissing, KernelLookup, POINT_QUERY_MAX, readSnapshot, SnapshotLookup, type Lookup, type Snapshot } from './lookup';
import { planNetwork, planRemoveNetwork } from './networks';
import { askPublish, dropIndexIfLast, emptyPlan, planHandOver, planPublish, planUnpublish, portInUse, type Plan } from './ports';
import { addedEntries, keptElements, stateElements, writeElements, type FirewallState } from './state';

export type { FirewallState };

/** What {@link Firewall.ensure} did. */
export type EnsureResult = 'created' | 'unchanged' | 'repaired';

/** An element of one of nsnet's sets, with its owner. */
export interface OwnedElement {
  family: Family;
  table: string;
  set: string;
  key: unknown;
  value?: unknown;
  /** The owner: `net:<network>` or `ep:<endpoint>`. */
  comment: string;
}

/** nsnet's firewall in one network namespace (the host's). */
export class Firewall {
  private conntrack?: Promise<Conntrack>;

  private constructor(
    private readonly nft: NfTables,
    private readonly netns: NetnsSpec | undefined,
  ) {}

  /**
   * Opens the firewall of a namespace (default: the caller's). Changes nothing: call
   * {@link ensure} before the first operation.
   */
  static async open(opts: { netns?: NetnsSpec } = {}): Promise<Firewall> {
    v.knownKeys(opts, ['netns'], 'Firewall.open options');
    const nft = await NfTables.open(opts.netns === undefined ? {} : { netns: opts.netns });
    return new Firewall(nft, opts.netns);
  }

  /**
   * The sysctls a network needs in the host namespace, to set with `Netns.sysctl` after the
   * bridge exists and before traffic: `net.ipv4.ip_forward` (containers reach beyond the host,
   * published ports reach containers) and the bridge's `route_localnet` (a port published on
   * 127.0.0.1, or on every address and reached at 127.0.0.1, is DNATed out of the bridge with a
   * loopback source; the `guard` chain drops any loopback-addressed packet arriving from an
   * nsnet bridge, so this opens nothing else); with an IPv6 subnet also
   * `net.ipv6.conf.all.forwarding` (which the kernel copies to every interface and to `default`).
   * An internal network needs none.
   *
   * IPv6 forwarding on makes the kernel ignore router advertisements on interfaces whose
   * `accept_ra` is 1 (the default): a host that takes its own IPv6 default route from RAs should
   * set `accept_ra` to 2 on its uplink first (Docker has the same caveat); `nsnet doctor` warns.
   */
  static sysctls(net: FirewallNetwork): Record<string, string> {
    const n = normalizeNetwork(net);
    if (n.internal) return {};
    const conf = n.bridge.includes('.') ? `net/ipv4/conf/${n.bridge}/route_localnet` : `net.ipv4.conf.${n.bridge}.route_localnet`;
    return { 'net.ipv4.ip_forward': '1', [conf]: '1', ...(n.subnet6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}) };
  }

  /**
   * Validates published ports as {@link publish} and {@link connectEndpoint} do, without the
   * kernel: what a caller runs before it changes anything else. `endpoint` gives the container
   * addresses a port without `containerIp` / `containerIp6` maps to (an omitted `hostIp` then
   * means both families when both are given). Returns one entry per family and host port.
   * @throws ERR_INVALID_ARGUMENT, ERR_INVALID_IP, ERR_INVALID_HOST_IP (`::1`, link-local, ...)
   */
  static checkPorts(
    ports: FirewallPort[],
    endpoint: { ipv4?: string; ipv6?: string } = {},
  ): { family: 4 | 6; hostIp: string; protocol: FirewallPort['protocol']; hostPort: number; containerIp: string; containerPort: number }[] {
    return expandPorts(ports, endpoint).map((e) => ({ ...e, hostIp: e.hostIp ?? (e.family === 4 ? '0.0.0.0' : '::') }));
  }

  /**
   * Makes sure the skeleton is in place: creates both tables when neither exists ('created'),
   * does nothing when they are intact ('unchanged'), and otherwise ('repaired': a rule, chain,
   * set or one of the tables is missing or was changed) rewrites both tables in one transaction,
   * keeping every element whose set still exists. Safe to run concurrently.
   */
  async ensure(): Promise<EnsureResult> {
    const snap = await readSnapshot(this.nft);
    const chk = checkSkeleton(snap);
    if (chk.intact) return 'unchanged';
    if (chk.absent) {
      try {
        await this.nft.transaction((tx) => writeSkeleton(tx));
        return 'created';
      } catch (e) {
        if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
        // Another process created it meanwhile.
        const again = await readSnapshot(this.nft);
        if (checkSkeleton(again).intact) return 'unchanged';
        await this.replace(again, keptElements(again));
        return 'repaired';
      }
    }
    await this.replace(snap, keptElements(snap));
    return 'repaired';
  }

  /** Compares the kernel's tables with the skeleton (elements aside). */
  async check(): Promise<FirewallCheck> {
    return checkSkeleton(await readSnapshot(this.nft));
  }

  /** Whether both tables hold exactly the skeleton. */
  async isIntact(): Promise<boolean> {
    return (await this.check()).intact;
  }

  /**
   * Adds a network's elements (bridge, subnet for masquerade and hairpin, icc, internal) in one
   * transaction. Idempotent; with changed settings, the network's elements are replaced.
   * @throws ERR_BRIDGE_IN_USE, ERR_SUBNET_OVERLAP (another network holds it), ERR_FIREWALL_MISSING
   */
  async addNetwork(net: FirewallNetwork): Promise<void> {
    const n = normalizeNetwork(net);
    const sets = elementsBySet(await readSnapshot(this.nft));
    const plan = emptyPlan();
    planNetwork(sets, n, plan);
    await this.apply(plan);
  }

  /**
   * Removes every element a network owns, in one transaction (none, or no firewall at all:
   * nothing happens).
   */
  async removeNetwork(name: string): Promise<void> {
    const sets = elementsBySet(await readSnapshot(this.nft), true);
    const plan = emptyPlan();
    planRemoveNetwork(sets, ownerName(name, 'network name'), plan);
    await this.apply(plan);
  }

  /**
   * Connects an endpoint: its bridge port joins `noicc_ports` when its network has icc off, and
   * its ports are published — one transaction. UDP conntrack entries of the published host ports
   * are deleted afterwards (a flow seen while the port was not published would otherwise keep
   * bypassing the DNAT). Idempotent.
   * @throws ERR_NETWORK_NOT_FOUND (the bridge is no network's), ERR_PORT_IN_USE,
   *   ERR_NETWORK_INTERNAL, ERR_FIREWALL_MISSING
   */
  async connectEndpoint(ep: FirewallEndpoint): Promise<void> {
    const e = normalizeEndpoint(ep);
    const owner = epOwner(e.id);
    const look = await this.lookupFor(e.ports.length);
    // Every question of this connect in one burst (one round trip); the plan reads the answers.
    const [bridge, noicc, port] = (await Promise.all([
      look.get(SET.bridges, e.bridge),
      look.get(SET.noiccBridges, e.bridge),
      look.get(SET.noiccPorts, e.hostIfname),
      ...askPublish(look, e.ports).map((p) => p.catch(() => undefined)),
    ])) as (Element | undefined)[];
    if (!bridge)
      throw new NsnetError('ERR_NETWORK_NOT_FOUND', `${e.bridge} is not the bridge of a network the firewall knows: addNetwork() first`, { bridge: e.bridge });
    const plan = emptyPlan();
    if (noicc && port?.comment !== owner) {
      // An element under this interface name with another owner is a leftover: the name is this endpoint's now.
      if (port) plan.remove.push({ set: SET.noiccPorts, element: { key: e.hostIfname } });
      plan.add.push({ set: SET.noiccPorts, element: { key: e.hostIfname, comment: owner } });
    }
    await planPublish(look, owner, e.ports, plan);
    await this.apply(plan, owner, e.ports);
    await this.forgetUdp(addedEntries(plan));
  }

  /**
   * Disconnects an endpoint: removes its no-ICC port and its published ports (only elements it
   * owns), one transaction, then the UDP conntrack entries of those host ports. Given only an
   * id, finds its elements by owner (reads the whole table). Only the id, host interface and
   * host side of the ports are used. Idempotent; with nsnet's tables gone, nothing to do.
   */
  async disconnectEndpoint(ep: (Pick<FirewallEndpoint, 'id' | 'hostIfname'> & Partial<FirewallEndpoint>) | string): Promise<void> {
    if (typeof ep === 'string') {
      await this.removeOwner(epOwner(ownerName(ep, 'endpoint id')));
      return;
    }
    const e = normalizeEndpoint(ep, true);
    const owner = epOwner(e.id);
    const look = await this.lookupFor(e.ports.length, true);
    const plan = emptyPlan();
    // Both questions in one burst: the interface's element and the ports' (planUnpublish asks together).
    const [port, removed] = await Promise.all([look.get(SET.noiccPorts, e.hostIfname), planUnpublish(look, owner, e.ports, plan)]);
    if (port?.comment === owner) plan.remove.push({ set: SET.noiccPorts, element: { key: e.hostIfname } });
    await this.apply(plan);
    await this.forgetUdp(removed);
  }

  /**
   * Publishes ports of an endpoint (`containerIp` required on each), one transaction.
   * Idempotent for ports it already holds with the same target.
   * @throws ERR_PORT_IN_USE (details: holder, endpoint), ERR_NETWORK_INTERNAL, ERR_FIREWALL_MISSING
   */
  async publish(endpointId: string, ports: FirewallPort[]): Promise<void> {
    const owner = epOwner(ownerName(endpointId, 'endpoint id'));
    const entries = expandPorts(ports);
    const plan = await planPublish(await this.lookupFor(entries.length), owner, entries);
    await this.apply(plan, owner, entries);
    await this.forgetUdp(addedEntries(plan));
  }

  /**
   * Hands published ports over to another endpoint in ONE transaction: each element of these
   * host ports that endpoint `from` holds is replaced by one that points at `to`'s container
   * address (`ipv4` / `ipv6`, as in {@link connectEndpoint}) and is owned by `to`, so the port is
   * never unpublished in between; a port no element holds is published for `to` as
   * {@link publish} would. Then the UDP conntrack entries of those host ports are deleted (their
   * flows go to the new container). What the façade does when the attachment that receives a
   * port its container publishes on several networks leaves.
   * @throws ERR_PORT_IN_USE (another endpoint holds one), ERR_NETWORK_INTERNAL, ERR_FIREWALL_MISSING
   */
  async handOver(from: string, to: { id: string; ipv4: string; ipv6?: string; ports: FirewallPort[] }): Promise<void> {
    const fromOwner = epOwner(ownerName(from, 'endpoint id'));
    const owner = epOwner(ownerName(to.id, 'endpoint id'));
    const ipv4 = v.ip(to.ipv4, 4, `address of endpoint ${to.id}`).address;
    const ipv6 = to.ipv6 === undefined ? undefined : v.ip(to.ipv6, 6, `IPv6 address of endpoint ${to.id}`).address;
    const entries = expandPorts(to.ports, { ipv4, ...(ipv6 !== undefined ? { ipv6 } : {}) });
    const plan = await planHandOver(await this.lookupFor(entries.length), fromOwner, owner, entries);
    await this.apply(plan, owner, entries);
    await this.forgetUdp(entries);
  }

  /**
   * Unpublishes ports of an endpoint (all of them when `ports` is omitted), one transaction;
   * then deletes the UDP conntrack entries of those host ports, so a port published again
   * reaches its new container at once. Ports the endpoint does not hold are ignored.
   */
  async unpublish(endpointId: string, ports?: FirewallPort[]): Promise<void> {
    const owner = epOwner(ownerName(endpointId, 'endpoint id'));
    if (ports === undefined) {
      const sets = elementsBySet(await readSnapshot(this.nft), true);
      const mine: PortEntry[] = [];
      for (const set of PORT_MAPS) for (const el of sets.get(set) ?? []) if (el.comment === owner) mine.push(entryOf(set, el)!);
      ports = mine.map((e) => ({
        protocol: e.protocol,
        hostIp: e.hostIp ?? (e.family === 4 ? '0.0.0.0' : '::'),
        hostPort: e.hostPort,
        containerPort: e.containerPort,
      }));
    }
    const entries = expandPorts(ports, {}, true);
    const plan = emptyPlan();
    const removed = await planUnpublish(await this.lookupFor(entries.length, true), owner, entries, plan);
    await this.apply(plan);
    await this.forgetUdp(removed);
  }

  /** Every element of nsnet's sets that names an owner, grouped by owner (`net:x`, `ep:y`). */
  async listOwned(): Promise<Map<string, OwnedElement[]>> {
    const sets = elementsBySet(await readSnapshot(this.nft));
    const out = new Map<string, OwnedElement[]>();
    for (const [set, els] of sets) {
      const t = tableOf(set);
      for (const el of els) {
        if (el.comment === undefined) continue;
        const o: OwnedElement = { family: t.family, table: t.table, set, key: el.key, comment: el.comment };
        if (el.value !== undefined) o.value = el.value;
        const list = out.get(el.comment);
        if (list) list.push(o);
        else out.set(el.comment, [o]);
      }
    }
    return out;
  }

  /**
   * Removes every element of one owner (`net:<name>` or `ep:<id>`) in one transaction — what gc
   * does with a leftover — and the UDP conntrack entries of its published ports. Returns how
   * many elements were removed.
   */
  async removeOwner(owner: string): Promise<number> {
    if (typeof owner !== 'string' || !/^(net|ep):/u.test(owner))
      throw new NsnetError('ERR_INVALID_ARGUMENT', `owner must be "net:<name>" or "ep:<id>", got ${JSON.stringify(owner)}`);
    const sets = elementsBySet(await readSnapshot(this.nft), true);
    const plan = emptyPlan();
    const removed: PortEntry[] = [];
    for (const [set, els] of sets) {
      for (const el of els) {
        if (el.comment !== owner) continue;
        plan.remove.push({ set, element: { key: el.key as never } });
        const entry = entryOf(set, el);
        if (entry) removed.push(entry);
      }
    }
    await dropIndexIfLast(new SnapshotLookup(sets), removed, plan);
    await this.apply(plan);
    await this.forgetUdp(removed);
    return plan.remove.filter((p) => p.set !== SET.hostipPorts && p.set !== SET.hostipPorts6).length;
  }

  /**
   * Rewrites both tables from the desired state in ONE transaction: existing tables are
   * deleted, the skeleton written, and every network's and endpoint's elements added. For
   * reconcile after `nft flush ruleset` or a damaged table. Conflicts inside `state` are refused
   * before anything changes.
   * @throws ERR_PORT_IN_USE, ERR_BRIDGE_IN_USE, ERR_SUBNET_OVERLAP, ERR_NETWORK_NOT_FOUND
   */
  async rebuild(state: FirewallState): Promise<void> {
    const placed = await stateElements(state);
    await this.replace(await readSnapshot(this.nft), placed);
  }

  /** Deletes both of nsnet's tables (uninstall), in one transaction. */
  async uninstall(): Promise<void> {
    const snap = await readSnapshot(this.nft);
    await this.nft.transaction((tx) => {
      if (snap.inet) tx.deleteTable({ family: INET.family, name: INET.table });
      if (snap.l2) tx.deleteTable({ family: L2.family, name: L2.table });
    });
  }

  get isClosed(): boolean {
    return this.nft.isClosed;
  }

  /** Closes the handles. */
  close(): void {
    this.nft.close();
    void this.conntrack?.then(
      (c) => c.close(),
      () => undefined,
    );
  }

  // ------------------------------------------------------------------------------ internals

  /** Point queries for few keys, one snapshot for many; `lenient` for removals (a missing set holds nothing). */
  private async lookupFor(keys: number, lenient = false): Promise<Lookup> {
    if (keys <= POINT_QUERY_MAX) return new KernelLookup(this.nft, lenient);
    return new SnapshotLookup(elementsBySet(await readSnapshot(this.nft), lenient));
  }

  /** Deletes the tables present in `snap`, writes the skeleton, adds `elements`: one transaction. */
  private async replace(snap: Snapshot, elements: Placed[]): Promise<void> {
    await this.nft.transaction((tx) => {
      if (snap.inet) tx.deleteTable({ family: INET.family, name: INET.table });
      if (snap.l2) tx.deleteTable({ family: L2.family, name: L2.table });
      writeSkeleton(tx);
      writeElements(tx, 'addElements', elements);
    });
  }

  /**
   * Applies a plan in one transaction (nothing to do: no transaction). EEXIST on the additions
   * of published ports (a concurrent publisher won) becomes ERR_PORT_IN_USE naming the holder.
   */
  private async apply(plan: Plan, owner?: string, entries?: PortEntry[]): Promise<void> {
    if (!plan.remove.length && !plan.ensure.length && !plan.add.length) return;
    try {
      await this.nft.transaction((tx) => {
        writeElements(tx, 'deleteElements', plan.remove);
        writeElements(tx, 'ensureElements', plan.ensure);
        writeElements(tx, 'addElements', plan.add);
      });
    } catch (e) {
      if (e instanceof NsnetError && e.code === 'ERR_SET_NOT_FOUND') throw firewallMissing(e);
      if (e instanceof NetlinkError && e.code === 'ENOENT' && !(await this.present())) throw firewallMissing(e);
      if (e instanceof NetlinkError && e.code === 'EEXIST' && owner !== undefined && entries) {
        // Someone published one of these keys between the check and the transaction: find who.
        const look = new KernelLookup(this.nft);
        for (const x of entries) {
          const p = portElement(x, owner);
          const holder = await look.get(p.set, p.element.key);
          if (holder && holder.comment !== owner)
            throw portInUse(x, {
              ...(x.hostIp !== undefined ? { hostIp: x.hostIp } : {}),
              ...(holder.comment !== undefined ? { comment: holder.comment } : {}),
            });
        }
      }
      throw e;
    }
  }

  /** Whether nsnet's sets exist (a cheap probe, no listing). */
  private async present(): Promise<boolean> {
    try {
      const look = new KernelLookup(this.nft);
      await look.get(SET.bridges, 'lo');
      await look.get(SET.noiccPorts, 'lo');
      return true;
    } catch (e) {
      if (e instanceof NsnetError && e.code === 'ERR_FIREWALL_MISSING') return false;
      throw e;
    }
  }

  /**
   * Deletes the UDP conntrack entries of these host ports (ctnetlink, one listing): an entry on
   * every address of a family matches that family's flows to the port, one on an address the
   * flows to that address and port.
   */
  private async forgetUdp(entries: PortEntry[]): Promise<void> {
    const udp = entries.filter((e) => e.protocol === 'udp');
    if (udp.length === 0) return;
    this.conntrack ??= Conntrack.open(this.netns === undefined ? {} : { netns: this.netns });
    const ct = await this.conntrack;
    await ct.delete(
      udp.map((e) => ({ protocol: 'udp' as const, origDstPort: e.hostPort, ...(e.hostIp !== undefined ? { origDst: e.hostIp } : { family: e.family }) })),
    );
  }
}
