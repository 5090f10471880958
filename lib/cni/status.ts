/**
 * STATUS (CNI 1.1): can the plugin serve ADD right now?
 *
 * - 50 (not available): the state directory cannot be opened or written, the host namespace
 *   is gone, or the kernel refuses what nsnet's firewall needs (nf_tables with inet and bridge
 *   tables, nat and filter base chains — probed with a transaction that creates a scratch
 *   table and deletes it in the same atomic batch, so nothing is left behind);
 * - 51 (not available, existing containers may have limited connectivity): nsnet's firewall
 *   tables are gone or changed (a `flush ruleset`, another tool) while bridge containers are
 *   attached, or the network's bridge is missing or down while containers are attached:
 *   `nsnet reconcile` repairs both;
 * - success otherwise, with no output.
 */
import * as fs from 'node:fs';
import { Firewall } from '../firewall/firewall';
import { NfTables } from '../nftables/nftables';
import { CNI_ERR, CniError } from './codes';
import type { PluginConfig } from './config';
import type { HostLease, PluginContext } from './context';

const unavailable = (msg: string, details = ''): CniError => new CniError(CNI_ERR.NOT_AVAILABLE, msg, details);

export async function probeStatus(conf: PluginConfig, ctx: PluginContext): Promise<void> {
  let lease: HostLease;
  try {
    lease = await ctx.open(conf.stateDir, conf.hostNetns ?? ctx.callerNetns);
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    throw unavailable(`nsnet cannot open its state in ${conf.stateDir} or the host namespace: ${(e as Error).message}`, code);
  }
  try {
    try {
      fs.accessSync(conf.stateDir, fs.constants.W_OK);
    } catch (e) {
      throw unavailable(`the state directory ${conf.stateDir} is not writable: ${(e as Error).message}`, (e as { code?: string }).code ?? '');
    }
    const fw = await Firewall.open(lease.netns === undefined ? {} : { netns: lease.netns });
    let state;
    try {
      state = await fw.check();
    } finally {
      fw.close();
    }
    if (!state.intact) {
      // Bridge endpoints depend on the tables (NAT, published ports); with none attached, the
      // next ADD rewrites them (Firewall.ensure()).
      const attached = (await lease.host.listEndpoints()).filter((e) => e.hostIfname !== undefined).length;
      if (attached)
        throw new CniError(
          CNI_ERR.LIMITED_CONNECTIVITY,
          `nsnet's firewall tables are ${state.absent ? 'gone' : 'changed'} (${state.problems.slice(0, 2).join('; ')}) with ${attached} container(s) attached: run nsnet reconcile`,
          'firewall',
        );
      if (state.absent) await probeNftables(lease);
    }
    const net = (await lease.host.listNetworks()).find((n) => n.name === conf.name);
    if (net?.driver === 'bridge') {
      const attached = (await lease.host.listEndpoints(conf.name)).length;
      const bridge = await lease.netlink.links.find(net.bridge);
      if (attached && (!bridge || !bridge.up))
        throw new CniError(
          CNI_ERR.LIMITED_CONNECTIVITY,
          `the bridge ${net.bridge} of network ${net.name} is ${bridge ? 'down' : 'missing'} with ${attached} container(s) attached: run nsnet reconcile`,
          'bridge',
        );
    }
  } finally {
    await lease.release();
  }
}

/** Creates and deletes a scratch inet and bridge table with the chain types nsnet uses, in one batch. */
async function probeNftables(lease: HostLease): Promise<void> {
  let nft: NfTables | undefined;
  const name = `nsnet_probe_${process.pid}`;
  try {
    nft = await NfTables.open(lease.netns === undefined ? {} : { netns: lease.netns });
    await nft.transaction((tx) => {
      tx.addTable({ family: 'inet', name });
      tx.addChain({ family: 'inet', table: name, name: 'pre', type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' });
      tx.addChain({ family: 'inet', table: name, name: 'post', type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' });
      tx.addChain({ family: 'inet', table: name, name: 'fwd', type: 'filter', hook: 'forward', priority: 0, policy: 'accept' });
      tx.addTable({ family: 'bridge', name });
      tx.addChain({ family: 'bridge', table: name, name: 'fwd', type: 'filter', hook: 'forward', priority: -200, policy: 'accept' });
      tx.deleteTable({ family: 'inet', name });
      tx.deleteTable({ family: 'bridge', name });
    });
  } catch (e) {
    throw unavailable(`the kernel refuses the nftables objects nsnet needs: ${(e as Error).message}`, (e as { code?: string }).code ?? '');
  } finally {
    nft?.close();
  }
}
