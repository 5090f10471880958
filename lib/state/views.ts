/**
 * Records as the façade shows them and as drivers look them up: the public view of an endpoint
 * (addresses with their prefix; a container-mode endpoint shows its target's interface), the
 * recorded attachments of an id, and the check that a shared namespace keeps its owner.
 */
import { dnsConfig } from '../dns/config';
import { currentResolvConf, type ResolvConf } from '../dns/resolvconf';
import type { Recorded } from '../drivers/driver';
import { driverOf, drivers } from '../drivers/registry';
import { NsnetError } from '../errors';
import type { Endpoint, EndpointRecord, NetworkRecord } from '../host-types';
import type { StoreTx, StoreView } from '../store/types';
import { ENDPOINTS, NETWORKS } from './collections';
import { concerning, readEndpoints, readNetworks, type WarningHandler } from './damage';

/**
 * The public view of an endpoint: its addresses with their prefix. `shared`: in container mode,
 * the target's endpoint whose interface and addresses this one sees.
 */
export function toEndpoint(
  r: EndpointRecord,
  net: NetworkRecord,
  shared?: { ep: EndpointRecord; net: NetworkRecord },
  resolv: ResolvConf = currentResolvConf(),
): Endpoint {
  const out: Endpoint = { id: r.id, network: r.network, driver: net.driver, ports: r.ports };
  if (r.netns !== undefined) out.netns = r.netns;
  if (r.target !== undefined) out.target = r.target;
  if (r.container !== undefined) out.container = r.container;
  const { ep: e, net: n } = shared ?? { ep: r, net };
  const a = driverOf(n).addressing?.(n as never);
  if (e.ifname !== undefined) out.ifname = e.ifname;
  if (e.mac !== undefined) out.mac = e.mac;
  if (a && e.ipv4 !== undefined) out.ipv4 = `${e.ipv4}/${a.subnet.split('/')[1]}`;
  if (a?.subnet6 && e.ipv6) out.ipv6 = `${e.ipv6}/${a.subnet6.split('/')[1]}`;
  if (e.gateway !== undefined) out.gateway = e.gateway;
  if (e.gateway6) out.gateway6 = e.gateway6;
  if (r.hostIfname !== undefined) out.hostIfname = r.hostIfname;
  if (r.name !== undefined) out.name = r.name;
  if (r.aliases !== undefined) out.aliases = r.aliases;
  const dns = dnsConfig(n, e, resolv);
  if (dns) out.dns = dns;
  return out;
}

/**
 * Public views of the endpoints of one network, or of all (container-mode ones show their
 * target's addresses). Damaged records are left out; `warn` hears of those that matter.
 */
export function endpointsOf(view: StoreView, network?: string, warn: WarningHandler = () => undefined): Endpoint[] {
  const nets = new Map(readNetworks(view, network === undefined ? warn : concerning(network, warn)).map((n) => [n.name, n]));
  const all = readEndpoints(view, warn, network);
  const resolv = currentResolvConf(); // once per listing: each endpoint's dns shows the host's search domains
  return all
    .filter((e) => (network === undefined || e.network === network) && !e.slot) // (warm-pool slots are no endpoints yet)
    .flatMap((e) => {
      const net = nets.get(e.network);
      if (!net) return [];
      let shared: { ep: EndpointRecord; net: NetworkRecord } | undefined;
      if (e.target !== undefined) {
        const owners = all.filter((x) => x.id === e.target && x.target === undefined && nets.has(x.network));
        const t = owners.find((x) => x.ipv4 !== undefined) ?? owners[0];
        if (t) shared = { ep: t, net: nets.get(t.network)! };
      }
      return [toEndpoint(e, net, shared, resolv)];
    });
}

/**
 * The public view of one recorded endpoint, reading only what it needs (a container-mode
 * endpoint: its target's attachments) — not every endpoint of the network: a connect must not
 * cost more with every container already there.
 */
export function endpointView(view: StoreView, rec: EndpointRecord): Endpoint {
  const net = view.get<NetworkRecord>(NETWORKS, rec.network);
  if (!net) throw new NsnetError('ERR_NETWORK_NOT_FOUND', `network ${rec.network} does not exist`, { network: rec.network });
  let shared: { ep: EndpointRecord; net: NetworkRecord } | undefined;
  if (rec.target !== undefined) {
    const owners = recorded(view)
      .attachments(rec.target)
      .filter((x) => x.target === undefined);
    const t = owners.find((x) => x.ipv4 !== undefined) ?? owners[0];
    const tnet = t && view.get<NetworkRecord>(NETWORKS, t.network);
    if (t && tnet) shared = { ep: t, net: tnet };
  }
  return toEndpoint(rec, net, shared);
}

/** The recorded endpoints as drivers may look them up while connecting. */
export function recorded(view: StoreView): Recorded {
  return {
    attachments: (id) =>
      view
        .list<EndpointRecord>(ENDPOINTS)
        .map((e) => e.value)
        .filter((e) => e.id === id),
    ownsNetns: (network) => {
      const net = view.get<NetworkRecord>(NETWORKS, network);
      return net !== undefined && driverOf(net).ownsNetns;
    },
  };
}

/**
 * Set (once, for good) when an endpoint joins another's namespace (container mode): until then
 * no disconnect needs to look for sharers, and looking costs a listing of every endpoint.
 */
const SHARING = { collection: 'flags', key: 'shared-namespaces' } as const;

/** Whether some endpoint may share another's namespace (a damaged flag: assume so). */
function mayShare(view: StoreView): boolean {
  try {
    return view.get(SHARING.collection, SHARING.key) !== undefined;
  } catch {
    return true;
  }
}

/** Records that endpoints may share namespaces (a container-mode connect). */
export function markSharing(tx: StoreTx): void {
  if (!mayShare(tx)) tx.put(SHARING.collection, SHARING.key, true);
}

/** Whether the store has container-mode endpoints but no flag (written by an earlier version). */
export function sharingUnmarked(view: StoreView): boolean {
  return !mayShare(view) && view.keys(ENDPOINTS).some((k) => joining().some((p) => k.startsWith(p)));
}

/** Key prefixes of the endpoints of networks that join others' namespaces (predefined networks are named after their driver). */
const joining = (): string[] => drivers.filter((d) => d.predefined && d.resolve).map((d) => `${d.name}/`);

/**
 * Refuses to disconnect the last attachment of a namespace that container-mode endpoints
 * share. Nothing is read unless endpoints have ever shared namespaces in this store; then keys
 * only (no document) unless some endpoint is on a network that joins others' namespaces: a
 * disconnect must not cost more with every endpoint on the host.
 * @throws ERR_ENDPOINT_IN_USE
 */
export function assertNotShared(view: StoreView, network: string, id: string): void {
  if (!mayShare(view)) return;
  const keys = view.keys(ENDPOINTS);
  const prefixes = joining();
  if (!keys.some((k) => prefixes.some((p) => k.startsWith(p)))) return;
  const sharers = keys.flatMap((k) => {
    const e = view.get<EndpointRecord>(ENDPOINTS, k);
    return e?.target === id ? [e] : [];
  });
  const owns = recorded(view);
  const keeps =
    sharers.length > 0 &&
    keys.some((k) => {
      const slash = k.indexOf('/');
      return k.slice(slash + 1) === id && k.slice(0, slash) !== network && owns.ownsNetns(k.slice(0, slash));
    });
  if (!keeps && sharers.length) {
    throw new NsnetError('ERR_ENDPOINT_IN_USE', `endpoint ${id}'s namespace is shared by ${sharers.map((e) => e.id).join(', ')}: disconnect them first`, {
      network,
      endpoint: id,
      sharers: sharers.map((e) => e.id),
    });
  }
}
