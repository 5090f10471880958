/**
 * What the drivers whose containers hang on a Linux bridge by a veth share (bridge, and each
 * host's share of an overlay): the endpoint steps — veth, firewall elements, retirement, gc,
 * healing — over a view of the network that each driver gives.
 */
import { NetlinkError, NsnetError } from '../errors';
import { hostIfname, ownerAlias, RETIRED_GROUP } from '../devices/marks';
import { attachVeth, markVeth, removeVeth, retireVeth, unretireVeth, vethComplete, type VethBridge } from '../devices/veth';
import { faultPoint } from '../faults';
import { phase } from '../phases';
import type { FirewallEndpoint, FirewallNetwork } from '../firewall/elements';
import type { FirewallPort } from '../firewall/published';
import type { BridgeEndpointRecord, EndpointRecord, NetworkInspect, NetworkRecord } from '../host-types';
import type { Link } from '../netlink/link-types';
import { NetworkGone, type Driver, type DriverContext, type HealState, type UndoLog } from './driver';

/** How a bridged network looks to its endpoints and to the firewall. */
export interface BridgedView {
  veth: VethBridge;
  firewall: FirewallNetwork;
}

type EndpointSteps<N extends NetworkRecord> = Required<
  Pick<Driver<N>, 'complete' | 'attach' | 'republish' | 'detach' | 'adopt' | 'forget' | 'firewallNetwork' | 'firewallEndpoint' | 'healEndpoint' | 'ownsLink'>
> & {
  bridgeUp(ctx: DriverContext, net: N): Promise<Pick<NetworkInspect, 'bridgeUp'>>;
};

/** The firewall's view of an endpoint on a bridged network. */
function fwEndpoint(ep: EndpointRecord, bridge: string): FirewallEndpoint {
  return { ...(ep as BridgeEndpointRecord), bridge };
}

/** Whether an error says the network's bridge or firewall elements are gone (not the endpoint's fault). */
function gone(e: unknown): boolean {
  return (
    (e instanceof NetlinkError && e.code === 'ENODEV') || (e instanceof NsnetError && (e.code === 'ERR_FIREWALL_MISSING' || e.code === 'ERR_NETWORK_NOT_FOUND'))
  );
}

/** An endpoint's published ports as the firewall publishes them (aimed at its addresses). */
function fwPorts(ep: EndpointRecord): FirewallPort[] {
  return ep.ports.map((p) => ({
    ...p,
    ...(ep.ipv4 !== undefined ? { containerIp: ep.ipv4 } : {}),
    ...(ep.ipv6 !== undefined ? { containerIp6: ep.ipv6 } : {}),
  }));
}

/** Puts a retired (or deleted) endpoint back: veth on its bridge, its firewall elements. */
async function restore(ctx: DriverContext, v: BridgedView, ep: BridgeEndpointRecord): Promise<void> {
  if (!(await unretireVeth(ctx.host, ep.hostIfname, v.veth.bridge))) await attachVeth(ctx.host, v.veth, ep, ep.netns);
  await ctx.firewall.connectEndpoint(fwEndpoint(ep, v.veth.bridge));
}

/** The endpoint steps of a bridged driver, over its view of a network. */
export function bridgedEndpoints<N extends NetworkRecord & { bridge: string }>(view: (net: N) => BridgedView): EndpointSteps<N> {
  return {
    complete(net, ep) {
      ep.hostIfname = hostIfname(net.name, ep.id);
    },

    async attach(ctx, net, rec, undo: UndoLog) {
      const v = view(net);
      const ep = rec as BridgeEndpointRecord;
      const fw = fwEndpoint(ep, v.veth.bridge);
      // The veth and the firewall elements do not depend on each other: both are made at once
      // (their round trips overlap), and either is undone when the other fails.
      const [link, elements] = await Promise.allSettled([
        attachVeth(ctx.host, v.veth, ep, ep.netns, ep.handOver).then(() => faultPoint('connect:attached')),
        ctx.firewall.connectEndpoint(fw),
      ]);
      if (link.status === 'rejected' || elements.status === 'rejected') {
        if (link.status === 'fulfilled') await removeVeth(ctx.host, ep.hostIfname).catch(() => undefined);
        if (elements.status === 'fulfilled') await ctx.firewall.disconnectEndpoint(fw).catch(() => undefined);
        const e: unknown = link.status === 'rejected' ? link.reason : (elements as PromiseRejectedResult).reason;
        // The bridge (ENODEV naming it as master), the firewall's tables or this network's
        // elements went away under a long-lived host: not the endpoint's fault.
        throw gone(e) ? new NetworkGone(net.name, e as Error) : e;
      }
      undo(() => removeVeth(ctx.host, ep.hostIfname));
      undo(() => ctx.firewall.disconnectEndpoint(fw));
      faultPoint('connect:published');
    },

    async republish(ctx, _net, ep, next, undo) {
      if (ep.ports.length) await ctx.firewall.unpublish(ep.id, fwPorts(ep));
      try {
        if (next.ports.length) await ctx.firewall.publish(next.id, fwPorts(next));
      } catch (e) {
        if (ep.ports.length) await ctx.firewall.publish(ep.id, fwPorts(ep)).catch(() => undefined);
        throw e;
      }
      undo(async () => {
        if (next.ports.length) await ctx.firewall.unpublish(next.id, fwPorts(next));
        if (ep.ports.length) await ctx.firewall.publish(ep.id, fwPorts(ep));
      });
    },

    async detach(ctx, net, rec, undo) {
      const v = view(net);
      const ep = rec as BridgeEndpointRecord;
      const fw = fwEndpoint(ep, v.veth.bridge);
      // The elements removed and the veth retired (down, its bridge port disabled; deleted with others
      // in one go a moment later) at once; either is put back when the other fails.
      const [elements, link] = await Promise.allSettled([
        ctx.firewall.disconnectEndpoint(fw).then(() => faultPoint('disconnect:unpublished')),
        retireVeth(ctx.host, ep.hostIfname),
      ]);
      phase('firewall/link');
      if (elements.status === 'rejected' || link.status === 'rejected') {
        if (link.status === 'fulfilled') await unretireVeth(ctx.host, ep.hostIfname, v.veth.bridge).catch(() => undefined);
        if (elements.status === 'fulfilled') await ctx.firewall.connectEndpoint(fw).catch(() => undefined);
        throw elements.status === 'rejected' ? elements.reason : (link as PromiseRejectedResult).reason;
      }
      ctx.reaper.soon();
      undo(() => restore(ctx, v, ep));
    },

    async adopt(ctx, net, slot, rec, undo) {
      const v = view(net);
      const ep = rec as BridgeEndpointRecord;
      const fw = fwEndpoint(ep, v.veth.bridge);
      // The slot's veth is already on the bridge and configured in its namespace: it takes the
      // endpoint's mark while the ports are published, at once.
      const [mark, elements] = await Promise.allSettled([markVeth(ctx.host, ep.hostIfname, ownerAlias(net.name, ep.id)), ctx.firewall.connectEndpoint(fw)]);
      if (mark.status === 'rejected' || elements.status === 'rejected') {
        if (mark.status === 'fulfilled') await markVeth(ctx.host, ep.hostIfname, ownerAlias(net.name, slot.id)).catch(() => undefined);
        if (elements.status === 'fulfilled') await ctx.firewall.disconnectEndpoint(fw).catch(() => undefined);
        const e: unknown = mark.status === 'rejected' ? mark.reason : (elements as PromiseRejectedResult).reason;
        throw gone(e) ? new NetworkGone(net.name, e as Error) : e;
      }
      undo(() => markVeth(ctx.host, ep.hostIfname, ownerAlias(net.name, slot.id)));
      undo(() => ctx.firewall.disconnectEndpoint(fw));
    },

    async forget(ctx, _net, ep) {
      await ctx.firewall.disconnectEndpoint(ep.id);
      if (ep.hostIfname !== undefined) await removeVeth(ctx.host, ep.hostIfname);
    },

    firewallNetwork: (net) => view(net).firewall,
    firewallEndpoint: (net, ep) => (ep.hostIfname !== undefined ? fwEndpoint(ep, net.bridge) : undefined),

    ownsLink: (net, link: Link) => link.name === net.bridge,

    async healEndpoint(ctx, net, rec, state: HealState) {
      const v = view(net);
      const ep = rec as BridgeEndpointRecord;
      let link = await ctx.host.links.find(ep.hostIfname);
      // Half made (a connect killed while it attached, its record committed ahead): made again.
      if (link && link.group !== RETIRED_GROUP && ep.netns !== undefined && !(await vethComplete(link, net.name, ep, ep.netns, ep.handOver))) {
        await ctx.host.links.remove(link.index);
        link = undefined;
      }
      const bridgeIndex = (await ctx.host.links.find(v.veth.bridge))?.index;
      // Missing, or retired by a disconnect that never committed, or without its elements.
      const broken =
        !link ||
        link.group === RETIRED_GROUP ||
        link.master !== bridgeIndex ||
        !link.up ||
        ((ep.ports.length > 0 || v.firewall.icc === false) && !state.owned.has(`ep:${ep.id}`));
      if (!broken) return false;
      await restore(ctx, v, ep);
      return true;
    },

    async bridgeUp(ctx, net) {
      return { bridgeUp: (await ctx.host.links.find(net.bridge))?.up === true };
    },
  };
}
