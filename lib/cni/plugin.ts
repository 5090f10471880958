/**
 * nsnet-cni: the CNI plugin (spec 1.1.0; also 1.0.0, 0.4.0, 0.3.1, 0.3.0), as a pure function
 * from a request — the CNI_* environment and the configuration on stdin — to a response —
 * stdout, stderr, exit status. The process entry (./main.ts) and the daemon (./daemon.ts) both
 * call {@link run}; tests call it in process.
 *
 * How CNI maps onto NetworkHost:
 * - network: the configuration's `name` (created on first ADD, checked on every later one);
 * - endpoint id: `<CNI_CONTAINERID>:<CNI_IFNAME>`. CNI's key for an attachment is (network,
 *   container id, ifname) and a container may be attached to one network twice under two
 *   interface names; ':' can be in neither a container id nor an interface name, so the id is
 *   unambiguous, and it reads well in `nsnet endpoint ls`;
 * - netns: CNI_NETNS; ifname: CNI_IFNAME; `runtimeConfig.portMappings` → `publish`,
 *   `runtimeConfig.ips` and CNI_ARGS `IP` (podman's single `--ip`) → a static `ipv4` / `ipv6`;
 * - names: CNI_ARGS `K8S_POD_NAME` → `name`, the `aliases` capability → `aliases` (./names.ts);
 *   on a network with DNS, the daemon's resolver serves them (./resolvers.ts) and the result's
 *   `dns` tells the container to ask it, unless the configuration has a `dns` of its own;
 * - the container: CNI_CONTAINERID (ConnectOptions.container), so that one container attached
 *   to several networks with the same port mappings (`podman run --network a,b -p 8083:80`)
 *   publishes each port once, through its first attachment (see lib/state/ledger.ts);
 * - published ports are connected with `hostPortsHeldByCaller`: runtimes reserve the host ports
 *   they publish by holding sockets bound to them (podman's conmon, dockerd's userland proxy),
 *   and the reference `portmap` plugin never checks listeners, so a socket on the host is not a
 *   conflict here; another endpoint holding the port still is;
 * - the host namespace: the configuration's `hostNetns`, else the one the plugin runs in (for
 *   the daemon: the one its client runs in).
 *
 * Verbs: ADD connects and prints the result; DEL disconnects and succeeds when there is nothing
 * to remove (no network, no endpoint, no namespace); CHECK compares the kernel with the record
 * and prevResult (./check.ts); GC disconnects this network's CNI endpoints that are not in
 * `cni.dev/valid-attachments`, then runs `NetworkHost.gc()`; STATUS probes the state directory
 * and the kernel (./status.ts); VERSION lists the versions.
 */
import { NsnetError } from '../errors';
import type { ConnectOptions, Endpoint } from '../host-types';
import { hostIfname } from '../devices/marks';
import { openNetns } from '../netns';
import { checkAttachment } from './check';
import { CNI_ERR, CniError, NSNET_ERR, toCniError } from './codes';
import {
  LATEST_VERSION,
  checkVersion,
  decode,
  parseConfig,
  parseEnv,
  replyVersion,
  staticAddresses,
  versionAtLeast,
  versionsFor,
  type CniEnv,
  type Dns,
  type PluginConfig,
} from './config';
import { oneShot, type HostLease, type PluginContext } from './context';
import { endpointNames } from './names';
import { ensureNetwork } from './network';
import { buildResult } from './result';
import { probeStatus } from './status';

/** What the plugin prints and how it exits. */
export interface CniResponse {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** The endpoint id of an attachment (see the file comment). */
export const endpointIdOf = (containerId: string, ifname: string): string => `${containerId}:${ifname}`;
/** Whether an endpoint id has the shape nsnet-cni gives (GC leaves others alone). */
const CNI_ENDPOINT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*:[^:/\s]{1,15}$/u;

/** Failures a stale pooled NetworkHost can cause: the kernel refused, or something unexpected. */
const retryable = (e: unknown): boolean => {
  const code = toCniError(e).code;
  return code === NSNET_ERR.KERNEL || code === NSNET_ERR.INTERNAL;
};

const ok = (stdout = ''): CniResponse => ({ stdout, stderr: '', exitCode: 0 });

function failure(e: unknown, version: string): CniResponse {
  const err = toCniError(e);
  const body: Record<string, unknown> = { cniVersion: version, code: err.code, msg: err.message };
  if (err.details) body.details = err.details;
  return { stdout: `${JSON.stringify(body)}\n`, stderr: `nsnet-cni: ${err.message}${err.details ? ` (${err.details})` : ''}\n`, exitCode: 1 };
}

/**
 * Serves one request. Never throws: every failure is CNI error JSON on stdout and exit
 * status 1.
 */
export async function run(env: Record<string, string | undefined>, stdin: string, ctx: PluginContext = oneShot): Promise<CniResponse> {
  let raw: Record<string, unknown> | undefined;
  try {
    const cenv = parseEnv(env);
    if (cenv.command === 'VERSION') return version(stdin);
    raw = decode(stdin);
    const conf = parseConfig(raw, checkVersion(raw), cenv.command);
    const needs = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' } as Record<string, string>;
    const min = needs[cenv.command];
    if (min !== undefined && !versionAtLeast(conf.cniVersion, min))
      throw new CniError(
        CNI_ERR.INCOMPATIBLE_VERSION,
        `CNI ${conf.cniVersion} has no ${cenv.command}; it needs ${min} or later`,
        `cniVersion ${conf.cniVersion}`,
      );
    if (conf.hostNetns !== undefined) {
      try {
        openNetns(conf.hostNetns).close();
      } catch (e) {
        throw new CniError(
          cenv.command === 'STATUS' ? CNI_ERR.NOT_AVAILABLE : CNI_ERR.INVALID_CONFIG,
          `hostNetns: ${(e as Error).message}`,
          (e as NsnetError).code ?? '',
        );
      }
    }
    if (cenv.command === 'STATUS') {
      await probeStatus(conf, ctx);
      return ok();
    }
    const serve = async (lease: HostLease): Promise<CniResponse> => {
      switch (cenv.command) {
        case 'ADD':
          return ok(`${JSON.stringify(await add(lease, conf, cenv, ctx))}\n`);
        case 'DEL':
          await del(lease, conf, cenv);
          return ok();
        case 'CHECK':
          await checkAttachment(lease, conf, cenv, endpointIdOf(cenv.containerId!, cenv.ifname!));
          return ok();
        default:
          await gc(lease, conf);
          return ok(); // GC
      }
    };
    const netns = conf.hostNetns ?? ctx.callerNetns;
    let lease = await ctx.open(conf.stateDir, netns);
    try {
      try {
        return await serve(lease);
      } catch (e) {
        // ADD is all-or-nothing: when a pooled NetworkHost failed in the kernel, it may have
        // been stale; retry once with a fresh one (what a one-shot process always has).
        if (cenv.command !== 'ADD' || !lease.invalidate || !retryable(e)) throw e;
        lease.invalidate();
        await lease.release();
        lease = await ctx.open(conf.stateDir, netns);
        return await serve(lease);
      }
    } finally {
      await lease.release();
    }
  } catch (e) {
    return failure(e, replyVersion(raw));
  }
}

/**
 * VERSION: stdin holds `{"cniVersion": …}`, the version the caller speaks (a runtime may send
 * nothing: then the latest is used); the versions listed are those up to it (see versionsFor).
 */
function version(stdin: string): CniResponse {
  let conf: Record<string, unknown> | undefined;
  try {
    conf = stdin.trim() === '' ? undefined : decode(stdin);
  } catch {
    conf = undefined;
  }
  return ok(`${JSON.stringify({ cniVersion: conf ? replyVersion(conf) : LATEST_VERSION, supportedVersions: versionsFor(conf?.cniVersion) })}\n`);
}

/** Conflicts an attachment whose namespace is gone can cause (it keeps its address and ports). */
const RECLAIMABLE = new Set(['ERR_PORT_IN_USE', 'ERR_ADDRESS_IN_USE']);

async function add(lease: HostLease, conf: PluginConfig, env: CniEnv, ctx: PluginContext): Promise<unknown> {
  try {
    const ips = staticAddresses(conf, env);
    const net = await ensureNetwork(lease.host, conf);
    const options: ConnectOptions = {
      id: endpointIdOf(env.containerId!, env.ifname!),
      netns: env.netns!,
      ifname: env.ifname!,
      container: env.containerId!,
      ...(conf.portMappings.length ? { publish: conf.portMappings, hostPortsHeldByCaller: true } : {}),
      ...(ips.ipv4 !== undefined ? { ipv4: ips.ipv4 } : {}),
      ...(ips.ipv6 !== undefined ? { ipv6: ips.ipv6 } : {}),
      ...endpointNames(conf.aliases, env.args.K8S_POD_NAME),
    };
    let ep: Endpoint;
    try {
      ep = await lease.host.connect(conf.name, options);
    } catch (e) {
      // A runtime that cannot enter a container's namespace any more (it vanished in a crash)
      // never calls DEL for it (podman 4.3's `rm -f`): the dead attachment keeps its address
      // and ports. When this ADD needs one of them, remove the attachments whose namespace is
      // gone (NetworkHost.gc(), as `nsnet gc` does) and try once more; else the conflict stands.
      if (!(e instanceof NsnetError) || !RECLAIMABLE.has(e.code)) throw e;
      const reclaimed = await lease.host.gc().then(
        (r) => r.endpoints.length > 0,
        () => false,
      );
      if (!reclaimed) throw e;
      ep = await lease.host.connect(conf.name, options);
    }
    const hostMac = ep.hostIfname === undefined ? undefined : (await lease.netlink.links.find(ep.hostIfname))?.mac;
    const internal = 'internal' in net && net.internal;
    const mtu = 'mtu' in net ? net.mtu : 1500;
    return buildResult(
      conf.cniVersion,
      { endpoint: ep, ...(hostMac ? { hostMac } : {}), mtu, internal, sandbox: env.netns! },
      conf.dns ?? (await servedDns(ep, conf, ctx)),
      conf.prevResult,
    );
  } catch (e) {
    throw toCniError(e);
  }
}

/**
 * The result's `dns` when the configuration has none: the endpoint's resolver (its gateway,
 * the host's search domains), once the daemon serves it. Run in a process of its own (no
 * daemon), the plugin gives none: nothing would answer on the gateway after it exits, and the
 * container keeps the resolvers its runtime gives it otherwise. A resolver that cannot start is
 * in the daemon's log; the ADD still succeeds, without `dns`.
 */
async function servedDns(ep: Endpoint, conf: PluginConfig, ctx: PluginContext): Promise<Dns | undefined> {
  if (!ep.dns || !ctx.serveDns) return undefined;
  try {
    await ctx.serveDns(conf.stateDir, conf.hostNetns ?? ctx.callerNetns);
  } catch {
    return undefined;
  }
  return { nameservers: [...ep.dns.nameservers], search: [...ep.dns.search] };
}

const notFound = (e: unknown): boolean => e instanceof NsnetError && (e.code === 'ERR_ENDPOINT_NOT_FOUND' || e.code === 'ERR_NETWORK_NOT_FOUND');

/** DEL: idempotent; a missing network, endpoint or namespace is success. */
async function del(lease: HostLease, conf: PluginConfig, env: CniEnv): Promise<void> {
  try {
    await lease.host.disconnect(conf.name, endpointIdOf(env.containerId!, env.ifname!));
  } catch (e) {
    if (!notFound(e)) throw toCniError(e);
  }
  // disconnect() only retires the veth (down, off the bridge) and deletes it a moment later;
  // a runtime may add another plugin's interface of the same name to the same namespace
  // right after DEL, so the pair is deleted before DEL returns (one kernel wait, shared by
  // every DEL in flight in the daemon). reap() joins a deletion already under way, which may
  // have started before this veth was retired: then a second one takes it.
  try {
    await lease.host.reap();
    if (await lease.netlink.links.find(hostIfname(conf.name, endpointIdOf(env.containerId!, env.ifname!)))) await lease.host.reap();
  } catch (e) {
    throw toCniError(e);
  }
}

/**
 * GC: the endpoints of this network that nsnet-cni made (their id has its shape) and that are
 * not in the runtime's list of valid attachments are disconnected; then NetworkHost.gc()
 * removes what no record explains (endpoints whose namespace is gone, leftover links and
 * firewall elements). Without the list nothing is removed: an absent list is not an empty one.
 */
async function gc(lease: HostLease, conf: PluginConfig): Promise<void> {
  if (conf.validAttachments === undefined) throw new CniError(CNI_ERR.INVALID_CONFIG, 'GC needs cni.dev/valid-attachments (the attachments to keep)');
  const keep = new Set(conf.validAttachments.map((a) => endpointIdOf(a.containerID, a.ifname)));
  const errors: string[] = [];
  try {
    let eps: { id: string }[] = [];
    try {
      eps = await lease.host.listEndpoints(conf.name);
    } catch (e) {
      if (!notFound(e)) throw e;
    }
    for (const ep of eps) {
      if (!CNI_ENDPOINT_RE.test(ep.id) || keep.has(ep.id)) continue;
      // Remove as much as possible; report what failed at the end.
      await lease.host.disconnect(conf.name, ep.id).catch((e) => {
        if (!notFound(e)) errors.push(`${ep.id}: ${(e as Error).message}`);
      });
    }
    await lease.host.gc();
  } catch (e) {
    throw toCniError(e);
  }
  if (errors.length) throw new CniError(CNI_ERR.TRY_AGAIN, `GC could not remove ${errors.length} attachment(s): ${errors.join('; ')}`);
}
