/**
 * A per-host overlay agent as a process of its own, as it will run in production (one per host,
 * inside the host's namespace): `ip netns exec h1 node dist/test/helpers/overlay-agent.js JSON`.
 *
 * JSON: { hostId, etcd?: string[] | dir?: string, prefix?, ttl?, pollInterval?, underlay: {dev}|{address},
 *         define?: OverlayNetworkSpec[], join: string[], reconcileInterval? }
 * It defines the networks (idempotent), joins them (retrying until the control plane answers),
 * starts the agent and reports on stdout, one JSON object a line: {event:'ready', networks},
 * {event:'synced', ...}, {event:'peers', ...}, {event:'resync', reason}, {event:'error', code, message}.
 * SIGTERM: a clean leave (the lease is revoked: this host's blocks are released everywhere),
 * then exit 0. SIGUSR2: stop and exit without revoking (the records expire after the TTL).
 * SIGKILL is the crash.
 */
import { EtcdControlPlane } from '../../lib/overlay/etcd';
import { FileControlPlane } from '../../lib/overlay/files';
import { OverlayAgent } from '../../lib/overlay/agent';
import type { ControlPlane, OverlayNetworkSpec } from '../../lib/overlay/controlplane';
import type { UnderlaySpec } from '../../lib/overlay/devices';

interface Args {
  hostId: string;
  etcd?: string[];
  dir?: string;
  prefix?: string;
  ttl?: number;
  pollInterval?: number;
  underlay: UnderlaySpec;
  define?: OverlayNetworkSpec[];
  join: string[];
  reconcileInterval?: number;
  /** Leave the networks (remove the devices) on SIGTERM, not only release the blocks. */
  removeDevices?: boolean;
}

const say = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code !== 'ERR_CONTROL_PLANE_UNAVAILABLE' && err.code !== 'ERR_STORE_IO') throw e;
      say({ event: 'retry', what, code: err.code, message: err.message });
      await sleep(delay);
    }
  }
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as Args;
  const cp: ControlPlane = a.etcd
    ? await EtcdControlPlane.open({ endpoints: a.etcd, hostId: a.hostId, ...(a.ttl ? { ttl: a.ttl } : {}), ...(a.prefix ? { prefix: a.prefix } : {}) })
    : await FileControlPlane.open({
        dir: a.dir!,
        hostId: a.hostId,
        ...(a.ttl ? { ttl: a.ttl } : {}),
        ...(a.pollInterval ? { pollInterval: a.pollInterval } : {}),
      });
  const agent = await OverlayAgent.open({
    controlPlane: cp,
    underlay: a.underlay,
    ...(a.reconcileInterval ? { reconcileInterval: a.reconcileInterval } : {}),
    backoff: { initial: 100, max: 1000 },
  });
  agent.on('error', (e: { code?: string; message?: string }) => say({ event: 'error', code: e.code, message: e.message }));
  agent.on('synced', (r) => say({ event: 'synced', ...r }));
  agent.on('peers', (r) => say({ event: 'peers', ...r }));
  agent.on('resync', (r: { reason: string }) => say({ event: 'resync', reason: r.reason }));
  agent.on('lease-lost', () => say({ event: 'lease-lost' }));
  agent.on('lease-recovered', () => say({ event: 'lease-recovered' }));
  for (const spec of a.define ?? []) await retry('define', () => cp.defineNetwork(spec));
  const networks = [];
  for (const n of a.join) networks.push(await retry('join', () => agent.join(n)));
  agent.start();
  say({ event: 'ready', networks });
  let ending = false;
  const end = async (revoke: boolean): Promise<void> => {
    if (ending) return;
    ending = true;
    await agent.stop();
    if (revoke && a.removeDevices) for (const n of a.join) await agent.leave(n).catch(() => undefined);
    await agent.close();
    await cp.close({ revoke });
    say({ event: 'closed', revoke });
    process.exit(0);
  };
  process.on('SIGTERM', () => void end(true));
  process.on('SIGUSR2', () => void end(false));
}

main().catch((e: { code?: string; message?: string; stack?: string }) => {
  say({ event: 'fatal', code: e.code, message: e.message });
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
