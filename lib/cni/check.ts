/**
 * CHECK: is the attachment still what ADD made? Compared, in order:
 *
 * 1. the configuration with the network's record (7 when they disagree);
 * 2. the record: the endpoint `<containerId>:<ifname>` exists on the network (else 3), in
 *    CNI_NETNS (else 105), and the namespace exists (else 3);
 * 3. `prevResult` (the chain's final result, which later plugins may have changed): every
 *    address it lists for the container's interface is one nsnet assigned (else 105);
 * 4. the container's namespace: the interface is there and up, with the MAC prevResult lists
 *    for it (a later plugin such as `tuning` may have changed it; nsnet's own when prevResult
 *    has none) and the addresses; the default route through the gateway, unless the network
 *    is internal or prevResult no longer lists it (a later plugin may own routes);
 * 5. the host: the veth's host end up on the network's bridge (macvlan: the parent up),
 *    IPv4 forwarding on, nsnet's firewall tables intact and the endpoint's published ports in
 *    them.
 * Every difference found is CNI error 105, its message naming each one.
 */
import { NsnetError } from '../errors';
import { Firewall } from '../firewall/firewall';
import type { Endpoint, NetworkInspect } from '../host-types';
import { Netlink } from '../netlink/netlink';
import { openNetns } from '../netns';
import { CNI_ERR, CniError, NSNET_ERR, toCniError } from './codes';
import type { CniEnv, PluginConfig } from './config';
import { checkAgainst } from './network';
import type { HostLease } from './context';

interface PrevInterface {
  name?: unknown;
  mac?: unknown;
  sandbox?: unknown;
}
interface PrevIp {
  address?: unknown;
  interface?: unknown;
}
interface PrevRoute {
  dst?: unknown;
  gw?: unknown;
}

export async function checkAttachment(lease: HostLease, conf: PluginConfig, env: CniEnv, id: string): Promise<void> {
  let inspect: NetworkInspect;
  try {
    inspect = await lease.host.inspectNetwork(conf.name);
  } catch (e) {
    if (e instanceof NsnetError && e.code === 'ERR_NETWORK_NOT_FOUND')
      throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `network ${conf.name} does not exist: nothing was added to it`, e.code);
    throw toCniError(e);
  }
  checkAgainst(inspect, conf);
  const ep = inspect.endpoints.find((e) => e.id === id);
  if (!ep)
    throw new CniError(
      CNI_ERR.UNKNOWN_CONTAINER,
      `container ${env.containerId} has no interface ${env.ifname} on network ${conf.name}`,
      'ERR_ENDPOINT_NOT_FOUND',
    );
  const netns = env.netns!;
  if (ep.netns !== netns) throw new CniError(NSNET_ERR.CHECK_FAILED, `the attachment was made in ${ep.netns ?? 'no namespace'}, not ${netns}`);
  try {
    openNetns(netns).close();
  } catch (e) {
    throw toCniError(e); // ERR_NETNS_NOT_FOUND: 3
  }

  const problems: string[] = [];
  const expected = fromPrevResult(conf.prevResult, ep, netns, problems);
  try {
    await checkContainer(ep, netns, expected, !('internal' in inspect && inspect.internal), problems);
    await checkHost(lease, inspect, ep, problems);
  } catch (e) {
    throw toCniError(e);
  }
  if (problems.length) throw new CniError(NSNET_ERR.CHECK_FAILED, `container ${env.containerId} on ${conf.name}: ${problems.join('; ')}`, 'CHECK');
}

interface Expected {
  mac: string | undefined;
  /** Whether the default routes are still the chain's (listed in prevResult, or no prevResult). */
  routes: { '4': boolean; '6': boolean };
}

/** What prevResult says the container's interface should look like. */
function fromPrevResult(prev: Record<string, unknown> | undefined, ep: Endpoint, netns: string, problems: string[]): Expected {
  const out: Expected = { mac: ep.mac, routes: { '4': true, '6': true } };
  if (!prev) return out;
  const ifaces = Array.isArray(prev.interfaces) ? (prev.interfaces as PrevInterface[]) : [];
  const index = ifaces.findIndex((i) => i?.name === ep.ifname && (i.sandbox === netns || i.sandbox === undefined));
  if (index < 0) {
    problems.push(`prevResult lists no interface ${String(ep.ifname)} in ${netns}`);
    return out;
  }
  if (typeof ifaces[index]!.mac === 'string') out.mac = (ifaces[index]!.mac as string).toLowerCase();
  const mine = new Set([ep.ipv4, ep.ipv6].filter((x): x is string => x !== undefined));
  const ips = Array.isArray(prev.ips) ? (prev.ips as PrevIp[]) : [];
  for (const ip of ips) {
    if (ip?.interface !== index || typeof ip.address !== 'string') continue;
    if (!mine.has(ip.address)) problems.push(`prevResult lists the address ${ip.address}, which nsnet did not assign (it assigned ${[...mine].join(', ')})`);
  }
  const routes = Array.isArray(prev.routes) ? (prev.routes as PrevRoute[]) : [];
  out.routes['4'] = routes.some((r) => r?.dst === '0.0.0.0/0' && r.gw === ep.gateway);
  out.routes['6'] = routes.some((r) => r?.dst === '::/0' && r.gw === ep.gateway6);
  return out;
}

async function checkContainer(ep: Endpoint, netns: string, expected: Expected, egress: boolean, problems: string[]): Promise<void> {
  const c = await Netlink.open({ netns });
  try {
    const link = await c.links.find(ep.ifname!);
    if (!link) {
      problems.push(`interface ${String(ep.ifname)} is missing from the container`);
      return;
    }
    if (!link.up) problems.push(`interface ${link.name} is down`);
    if (expected.mac && link.mac !== expected.mac) problems.push(`interface ${link.name} has MAC ${String(link.mac)}, expected ${expected.mac}`);
    const addrs = new Set((await c.addresses.list({ dev: link.index })).map((a) => a.cidr));
    for (const a of [ep.ipv4, ep.ipv6]) if (a !== undefined && !addrs.has(a)) problems.push(`interface ${link.name} lacks the address ${a}`);
    if (!egress) return;
    for (const [family, gw] of [
      ['4', ep.gateway],
      ['6', ep.gateway6],
    ] as const) {
      if (gw === undefined || !expected.routes[family]) continue;
      const routes = await c.routes.list({ family: Number(family) as 4 | 6 });
      if (!routes.some((r) => r.dst === 'default' && r.gateway === gw)) problems.push(`no default route via ${gw} (IPv${family})`);
    }
  } finally {
    c.close();
  }
}

async function checkHost(lease: HostLease, net: NetworkInspect, ep: Endpoint, problems: string[]): Promise<void> {
  if (net.driver === 'macvlan') {
    if (net.parentUp !== true) problems.push(`the parent ${net.parent} is missing or down`);
    return;
  }
  if (net.driver !== 'bridge') return;
  const bridge = await lease.netlink.links.find(net.bridge);
  if (!bridge || !bridge.up) problems.push(`the bridge ${net.bridge} is missing or down`);
  if (ep.hostIfname !== undefined) {
    const veth = await lease.netlink.links.find(ep.hostIfname);
    if (!veth) problems.push(`the host end ${ep.hostIfname} of the veth is missing`);
    else {
      if (!veth.up) problems.push(`the host end ${ep.hostIfname} is down`);
      if (bridge && veth.master !== bridge.index) problems.push(`the host end ${ep.hostIfname} is not on the bridge ${net.bridge}`);
    }
  }
  if (!net.internal && !net.ipForward) problems.push('IPv4 forwarding is off in the host namespace');
  const fw = await Firewall.open(lease.netns === undefined ? {} : { netns: lease.netns });
  try {
    const state = await fw.check();
    if (!state.intact) problems.push(`nsnet's firewall tables are not intact (${state.problems.slice(0, 3).join('; ')}): run nsnet reconcile`);
    else if (ep.ports.length) {
      // Published by this attachment, or by another of its container's (the first one receives a port both publish).
      const owners = [...(await fw.listOwned()).keys()];
      const container = `ep:${ep.container ?? ep.id.slice(0, ep.id.lastIndexOf(':'))}:`;
      if (!owners.includes(`ep:${ep.id}`) && !owners.some((o) => o.startsWith(container))) problems.push('its published ports are missing from the firewall');
    }
  } finally {
    fw.close();
  }
}
