/**
 * Docker's IpamDriver calls over nsnet's address plans (`docker network create --ipam-driver
 * nsnet`): one IPAM for Docker and every other nsnet user of the host, so a Docker network never
 * overlaps an nsnet one and a `nsnet connect` never takes an address Docker handed out.
 *
 * - RequestPool picks a free subnet the way `nsnet network create` does (Docker's default
 *   pools, clear of every nsnet network's) or checks the one asked for; the pool id names the
 *   subnet (`nsnet:10.1.0.0/24`, with the ip range `nsnet:10.1.0.0/24:10.1.0.128/25`), so it
 *   means the same after a restart of the plugin. Until CreateNetwork makes the network, the
 *   pool is held here so that two networks being created cannot get the same one.
 * - RequestAddress: the gateway (the first host unless one is asked for); then, once the
 *   network exists, the first address no endpoint of it holds (or the one asked for, checked).
 *   It is held here until Join connects the endpoint with it (nsnet then records the lease),
 *   or ReleaseAddress.
 * - ReleaseAddress / ReleasePool forget what is held here; the lease itself goes with the
 *   endpoint's disconnect (DeleteEndpoint comes first).
 */
import { NsnetError, invalid } from '../errors';
import type { NetworkHost } from '../host';
import type { BridgeNetworkRecord, Network } from '../host-types';
import { contains, formatBlock, fromBig, lastOf, overlaps, parseAddress, parseBlock, type Block } from '../ipam/addr';
import { normalizeNetwork } from '../ipam/index';
import { ADDRESS_SPACE, bare } from './mapping';
import { obj, str, type Body } from './protocol';

const GATEWAY_REQUEST = 'com.docker.network.gateway';

/** A pool as its id names it. */
interface Pool {
  subnet: string;
  ipRange?: string;
}

/** Every subnet an nsnet network of this host holds (an overlay's whole range included). */
function subnetsOf(nets: Network[]): string[] {
  return nets.flatMap((n) => ('subnet' in n ? [n.subnet, ...('subnet6' in n && n.subnet6 ? [n.subnet6] : [])] : []));
}

export class IpamDriver {
  /** Pools handed out whose network is not made yet, by pool id. */
  private readonly pools = new Map<string, Pool>();
  /** Addresses handed out and not yet leased by a connected endpoint, per subnet. */
  private readonly held = new Map<string, Set<string>>();

  constructor(private readonly host: NetworkHost) {}

  getCapabilities(): Body {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  getDefaultAddressSpaces(): Body {
    return { LocalDefaultAddressSpace: ADDRESS_SPACE, GlobalDefaultAddressSpace: ADDRESS_SPACE };
  }

  /** The pool a pool id names. @throws ERR_INVALID_ARGUMENT */
  private parsePoolId(id: string): Pool & { block: Block } {
    const m = /^nsnet:([^:]+\/\d+)(?::(.+\/\d+))?$/u.exec(id) ?? /^nsnet:(.+\/\d+)$/u.exec(id);
    if (!m) throw invalid('ERR_INVALID_ARGUMENT', `PoolID ${JSON.stringify(id.slice(0, 80))} is not one nsnet handed out`, { pool: id.slice(0, 80) });
    const block = parseBlock(m[1], undefined, 'PoolID subnet', true);
    return { subnet: formatBlock(block), block, ...(m[2] ? { ipRange: m[2] } : {}) };
  }

  async requestPool(body: Body): Promise<Body> {
    const space = str(body, 'AddressSpace');
    if (space !== '' && space !== ADDRESS_SPACE)
      throw invalid('ERR_INVALID_ARGUMENT', `address space ${JSON.stringify(space)} is not nsnet's (${ADDRESS_SPACE})`);
    const taken = [...subnetsOf(await this.host.listNetworks()), ...[...this.pools.values()].map((p) => p.subnet)];
    const want = str(body, 'Pool');
    const sub = str(body, 'SubPool');
    let pool: Pool;
    if (body.V6 === true) {
      // IPv6: nsnet picks no IPv6 subnets itself (nor does `nsnet network create`).
      if (want === '') throw invalid('ERR_INVALID_ARGUMENT', "nsnet's IPAM needs an IPv6 --subnet", { field: 'Pool' });
      const block = parseBlock(want, 6, 'IPv6 subnet', true);
      const clash = taken.find((t) => overlaps(parseBlock(t, undefined, 'subnet', false), block));
      if (clash) throw new NsnetError('ERR_SUBNET_OVERLAP', `subnet ${formatBlock(block)} overlaps ${clash}`, { subnet: formatBlock(block), existing: clash });
      if (sub !== '') throw invalid('ERR_INVALID_ARGUMENT', 'an IPv6 --ip-range is not supported by nsnet', { field: 'SubPool' });
      pool = { subnet: formatBlock(block) };
    } else {
      const plan = normalizeNetwork({ ...(want !== '' ? { subnet: want } : {}), ...(sub !== '' ? { ipRange: sub } : {}) }, taken);
      pool = { subnet: plan.subnet, ...(plan.ipRange ? { ipRange: plan.ipRange } : {}) };
    }
    const id = `nsnet:${pool.subnet}${pool.ipRange ? `:${pool.ipRange}` : ''}`;
    this.pools.set(id, pool);
    return { PoolID: id, Pool: pool.subnet, Data: {} };
  }

  async releasePool(body: Body): Promise<Body> {
    const id = str(body, 'PoolID');
    this.parsePoolId(id);
    this.pools.delete(id);
    return {};
  }

  async requestAddress(body: Body): Promise<Body> {
    const pool = this.parsePoolId(str(body, 'PoolID'));
    const { block } = pool;
    const asked = str(body, 'Address');
    const suffix = `/${block.prefix}`;
    const inside = (address: string): bigint => {
      const a = parseAddress(address, block.family, 'address');
      if (!contains(block, block.family, a.n))
        throw new NsnetError('ERR_ADDRESS_OUTSIDE_SUBNET', `${a.address} is outside ${pool.subnet}`, { address: a.address, subnet: pool.subnet });
      return a.n;
    };
    if (obj(body, 'Options').RequestAddressType === GATEWAY_REQUEST)
      return { Address: `${asked !== '' ? fromBig(inside(asked), block.family) : fromBig(block.base + 1n, block.family)}${suffix}`, Data: {} };
    const net = (await this.host.listNetworks()).find(
      (n): n is BridgeNetworkRecord => n.driver === 'bridge' && (n.subnet === pool.subnet || n.subnet6 === pool.subnet),
    );
    if (!net) {
      // While Docker creates the network it asks only for fixed addresses (--aux-address).
      if (asked === '') throw new NsnetError('ERR_NETWORK_NOT_FOUND', `no nsnet network has the pool ${pool.subnet} yet`, { pool: pool.subnet });
      return { Address: `${fromBig(inside(asked), block.family)}${suffix}`, Data: {} };
    }
    const v4 = block.family === 4;
    const used = new Set<string>([v4 ? net.gateway : (net.gateway6 ?? ''), ...(this.held.get(pool.subnet) ?? [])]);
    for (const e of await this.host.listEndpoints(net.name)) {
      const a = v4 ? e.ipv4 : e.ipv6;
      if (a) used.add(bare(a));
    }
    const last = lastOf(block);
    let address: string | undefined;
    if (asked !== '') {
      const n = inside(asked);
      address = fromBig(n, block.family);
      if (n === block.base || (v4 && n === last))
        throw new NsnetError('ERR_ADDRESS_RESERVED', `${address} is the network's ${n === block.base ? 'network' : 'broadcast'} address`, { address });
      if (used.has(address)) throw new NsnetError('ERR_ADDRESS_IN_USE', `${address} is in use on network ${net.name}`, { address, network: net.name });
    } else {
      const range = pool.ipRange ? parseBlock(pool.ipRange, block.family, 'ip range', true) : block;
      for (let n = range.base === block.base ? range.base + 1n : range.base; n <= lastOf(range) && n < (v4 ? last : last + 1n); n++) {
        const a = fromBig(n, block.family);
        if (!used.has(a)) {
          address = a;
          break;
        }
      }
      if (address === undefined)
        throw new NsnetError('ERR_SUBNET_FULL', `no free address left in ${pool.ipRange ?? pool.subnet} of network ${net.name}`, { network: net.name });
    }
    this.hold(pool.subnet, address);
    return { Address: `${address}${suffix}`, Data: {} };
  }

  async releaseAddress(body: Body): Promise<Body> {
    const pool = this.parsePoolId(str(body, 'PoolID'));
    this.held.get(pool.subnet)?.delete(bare(str(body, 'Address')));
    return {};
  }

  private hold(subnet: string, address: string): void {
    const set = this.held.get(subnet) ?? new Set<string>();
    set.add(address);
    this.held.set(subnet, set);
  }

  /** A network was made on a pool handed out here: the network holds the subnet now. */
  networkMade(subnet: string): void {
    for (const [id, p] of this.pools) if (p.subnet === subnet) this.pools.delete(id);
  }

  /** An endpoint was connected with these addresses: its lease holds them now. */
  taken(net: BridgeNetworkRecord, ipv4: string, ipv6?: string): void {
    this.held.get(net.subnet)?.delete(ipv4);
    if (ipv6 && net.subnet6) this.held.get(net.subnet6)?.delete(ipv6);
  }

  /**
   * Checks that an endpoint's addresses (whichever IPAM gave them) are inside its network.
   * @throws ERR_ADDRESS_OUTSIDE_SUBNET, ERR_INVALID_IP
   */
  checkInside(net: BridgeNetworkRecord, ipv4: string, ipv6?: string): void {
    for (const [a, subnet, family] of [
      [ipv4, net.subnet, 4],
      [ipv6, net.subnet6, 6],
    ] as const) {
      if (a === undefined) continue;
      if (subnet === undefined) throw new NsnetError('ERR_NO_IPV6_SUBNET', `network ${net.name} has no IPv6 subnet for ${a}`, { network: net.name });
      const p = parseAddress(a, family, 'endpoint address');
      if (!contains(parseBlock(subnet, family, 'subnet', true), family, p.n))
        throw new NsnetError('ERR_ADDRESS_OUTSIDE_SUBNET', `${p.address} is outside ${subnet} of network ${net.name}`, { address: p.address, subnet });
    }
  }
}
