/**
 * The nsnet network behind a CNI configuration: the configuration's `name` is an nsnet network
 * (the same one `nsnet network ls` and the library see). The first ADD creates it with the
 * configuration's driver, subnet, gateway, …; later ones check that the configuration still
 * agrees with it. Only the fields a configuration states are compared: one that leaves the
 * subnet out accepts whatever subnet the network has. A conflict is CNI error 7.
 *
 * nsnet's predefined networks (`bridge` — the default network on nsnet0, 172.17.0.0/16 —,
 * `host`, `none`, `container`) share the name space: a CNI network named `bridge` is nsnet's
 * default network, and one named `host`, `none` or `container` is refused (wrong driver).
 */
import { NsnetError } from '../errors';
import type { NetworkHost } from '../host';
import type { Network, NetworkSpec } from '../host-types';
import { normalizeNetwork } from '../ipam/index';
import { CNI_ERR, CniError, toCniError } from './codes';
import type { NetworkSettings, PluginConfig } from './config';

/** The label nsnet-cni puts on the networks it creates. */
export const CNI_LABEL = 'nsnet.cni';

const conflict = (name: string, what: string): CniError =>
  new CniError(
    CNI_ERR.INVALID_CONFIG,
    `network ${name} exists with ${what}; the configuration disagrees (remove the network or fix the configuration)`,
    'conflicting network',
  );

/** The configuration's addressing in the form the store records it (no pool pick compared). */
function canonicalAddressing(s: NetworkSettings): Partial<Record<'subnet' | 'gateway' | 'ipRange' | 'subnet6' | 'gateway6', string>> {
  const given = { subnet: s.subnet, gateway: s.gateway, ipRange: s.ipRange, subnet6: s.subnet6, gateway6: s.gateway6 };
  if (Object.values(given).every((x) => x === undefined)) return {};
  const spec = Object.fromEntries(Object.entries(given).filter(([, x]) => x !== undefined));
  let plan: Record<string, string | undefined>;
  try {
    plan = normalizeNetwork(spec, []) as unknown as Record<string, string | undefined>;
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, (e as Error).message, (e as NsnetError).code ?? '');
  }
  const out: Record<string, string> = {};
  for (const k of Object.keys(given) as (keyof typeof given)[]) if (given[k] !== undefined && plan[k] !== undefined) out[k] = plan[k]!;
  return out;
}

/** Throws CNI error 7 when the configuration disagrees with the network's record. */
export function checkAgainst(net: Network, conf: PluginConfig): void {
  const s = conf.network;
  const driver = s.driver ?? 'bridge';
  if (net.driver !== driver) {
    const predefined = net.driver === 'host' || net.driver === 'none' || net.driver === 'container';
    throw predefined
      ? new CniError(
          CNI_ERR.INVALID_CONFIG,
          `${net.name} is one of nsnet's predefined networks (driver ${net.driver}); give the CNI network another name`,
          'predefined network',
        )
      : conflict(net.name, `driver ${net.driver}`);
  }
  const rec = net as unknown as Record<string, unknown>;
  for (const [k, want] of Object.entries(canonicalAddressing(s))) {
    if (rec[k] !== want) throw conflict(net.name, rec[k] === undefined ? `no ${k}` : `${k} ${String(rec[k])}`);
  }
  for (const k of ['bridge', 'parent', 'mode', 'mtu', 'icc', 'internal', 'ipMasquerade'] as const) {
    if (s[k] === undefined) continue;
    if (rec[k] !== s[k]) throw conflict(net.name, rec[k] === undefined ? `no ${k}` : `${k} ${String(rec[k])}`);
  }
}

/** The network of the configuration: created on first use, else checked against it. */
export async function ensureNetwork(host: NetworkHost, conf: PluginConfig): Promise<Network> {
  const existing = (await host.listNetworks()).find((n) => n.name === conf.name);
  if (existing) {
    checkAgainst(existing, conf);
    return existing;
  }
  const spec: NetworkSpec = { name: conf.name, ...conf.network, labels: { [CNI_LABEL]: 'true' } };
  try {
    return await host.createNetwork(spec);
  } catch (e) {
    // Another ADD (another process, or the daemon serving another container) made it first.
    if (!(e instanceof NsnetError && e.code === 'ERR_NETWORK_EXISTS')) throw toCniError(e);
    const made = (await host.listNetworks()).find((n) => n.name === conf.name);
    if (!made) throw toCniError(e);
    checkAgainst(made, conf);
    return made;
  }
}
