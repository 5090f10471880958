/**
 * A container's names for the embedded resolver, from what CNI runtimes send:
 *
 * - the `aliases` capability (the CNI conventions' `runtimeConfig.aliases`): a map from network
 *   name to that network's aliases, `{ "app": ["web", "www"] }` — what podman's CNI backend
 *   (containers/common libnetwork/cni) and netavark send. Only the list of this configuration's
 *   network is used; a malformed map, or an alias that is not a DNS name, is error 7;
 * - the container's name: CNI_ARGS `K8S_POD_NAME`. Podman 4 with the CNI backend always passes
 *   the container's name there (`IgnoreUnknown=1;K8S_POD_NAME=web`: what the dnsname plugin
 *   reads); containerd and CRI-O pass the pod's name. A value that is not a DNS name is left
 *   out rather than refused (the runtime names its containers by its own rules, and the
 *   container must still get its network). Without one, the first alias is the name.
 */
import { checkEndpointNames, dnsKey } from '../dns/names';
import type { EndpointDnsNames } from '../host-types';
import { CNI_ERR, CniError } from './codes';

const configError = (msg: string): CniError => new CniError(CNI_ERR.INVALID_CONFIG, msg);

/** `runtimeConfig.aliases`: this network's aliases (checked), or undefined when it has none. */
export function parseAliases(x: unknown, network: string): string[] | undefined {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw configError('runtimeConfig.aliases must be an object: { "<network name>": ["alias", …] }');
  const map = x as Record<string, unknown>;
  for (const [net, list] of Object.entries(map)) {
    if (!Array.isArray(list) || list.some((a) => typeof a !== 'string'))
      throw configError(`runtimeConfig.aliases[${JSON.stringify(net)}] must be an array of strings`);
  }
  if (!Object.prototype.hasOwnProperty.call(map, network)) return undefined;
  const list = map[network] as string[];
  if (list.length === 0) return undefined;
  try {
    return checkEndpointNames({ aliases: list }).aliases;
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `runtimeConfig.aliases: ${(e as Error).message}`, (e as { code?: string }).code ?? '');
  }
}

/**
 * The `name` and `aliases` an ADD connects the endpoint with (see the file comment), from the
 * configuration's aliases (parseAliases) and CNI_ARGS K8S_POD_NAME.
 */
export function endpointNames(aliases: string[] | undefined, podName: string | undefined): EndpointDnsNames {
  const out: EndpointDnsNames = {};
  const name = podName !== undefined && podName !== '' && !podName.endsWith('.') && dnsKey(podName) !== undefined ? podName : aliases?.[0];
  if (name !== undefined) out.name = name;
  if (aliases?.length) out.aliases = aliases;
  return out;
}
