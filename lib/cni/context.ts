/**
 * What a CNI request is served with: a NetworkHost lent by the process (one-shot) or by the
 * daemon's pool, and the context that lends it. Shared by the verbs (./plugin.ts, ./check.ts,
 * ./status.ts) and the daemon (./daemon.ts); it imports none of them.
 */
import { NetworkHost } from '../host';
import { Netlink } from '../netlink/netlink';
import type { NetnsSpec } from '../netns';

/** A NetworkHost (and an rtnetlink handle in the same host namespace) lent to one request. */
export interface HostLease {
  host: NetworkHost;
  netlink: Netlink;
  /** The host namespace the two are bound to (undefined: the process's own). */
  netns: NetnsSpec | undefined;
  release(): Promise<void>;
  /**
   * A pooled lease (the daemon's) may be stale: a NetworkHost remembers what it made sure of
   * (the firewall, a network's bridge) for its life, and another process may have removed it
   * since. invalidate() closes it once released; the next lease is a fresh one.
   */
  invalidate?(): void;
}

/** Where a request gets its NetworkHost from. */
export interface PluginContext {
  /** The host namespace when the configuration names none (undefined: the process's own). */
  callerNetns?: NetnsSpec;
  open(stateDir: string, netns: NetnsSpec | undefined): Promise<HostLease>;
  /**
   * The daemon's: makes sure an embedded resolver serves the networks of `stateDir` in host
   * namespace `netns` (./resolvers.ts). Absent when the plugin runs in its own process: nothing
   * would answer on the gateway once it exits, so ADD then leaves the result's `dns` alone.
   */
  serveDns?(stateDir: string, netns: NetnsSpec | undefined): Promise<unknown>;
}

/** Opens a NetworkHost and an rtnetlink handle for a state directory and host namespace. */
export async function openLease(stateDir: string, netns: NetnsSpec | undefined): Promise<Omit<HostLease, 'release'> & { close(): Promise<void> }> {
  const host = await NetworkHost.open(netns === undefined ? { stateDir } : { stateDir, netns });
  let netlink: Netlink;
  try {
    netlink = await Netlink.open(netns === undefined ? {} : { netns });
  } catch (e) {
    await host.close();
    throw e;
  }
  return {
    host,
    netlink,
    netns,
    async close() {
      netlink.close();
      await host.close();
    },
  };
}

/** One process, one request: opens what the request needs and closes it afterwards. */
export const oneShot: PluginContext = {
  async open(stateDir, netns) {
    const l = await openLease(stateDir, netns);
    return { host: l.host, netlink: l.netlink, netns: l.netns, release: () => l.close() };
  },
};
