/**
 * Docker's NetworkDriver calls over a NetworkHost. Docker's model and nsnet's meet like this:
 *
 * - CreateNetwork / DeleteNetwork: an nsnet bridge network named by the Docker network's short
 *   id ({@link networkName}), made with the subnets and gateways Docker's IPAM data names.
 * - CreateEndpoint: Docker gives the address (from its IPAM or nsnet's); nsnet checks it and
 *   answers the MAC it derives from it. Nothing is made yet: the namespace is not known.
 * - Join: the endpoint is connected with `handOver` (lib/host.ts): the veth's host end on the
 *   bridge, its other end left in the host namespace under {@link handOverName}, which Join
 *   returns for Docker to move into the sandbox (`SandboxKey`, recorded as the endpoint's
 *   namespace, so gc removes it when the sandbox is gone) and rename `eth<N>`; Docker sets the
 *   address and the default route through the returned gateway.
 * - ProgramExternalConnectivity / RevokeExternalConnectivity: the sandbox's published ports,
 *   through NetworkHost.publish (one ledger for every nsnet user of the host).
 * - Leave: nothing (Docker moves the interface back out); DeleteEndpoint: disconnect, and the
 *   veth pair is deleted before the reply.
 *
 * Between CreateEndpoint and Join the endpoint lives only in this process ({@link pending}): a
 * plugin restarted in that moment answers Join with ERR_ENDPOINT_NOT_FOUND and Docker's
 * `run`/`network connect` fails cleanly (nothing was made). Every other piece of state is in
 * the store, so the plugin's restarts and dockerd's are invisible to running containers.
 */
import { NsnetError, invalid } from '../errors';
import type { NetworkHost } from '../host';
import type { BridgeNetworkRecord, Endpoint, Network, PortMapping } from '../host-types';
import { macFromIp } from '../ipam/index';
import type { IpamDriver } from './ipam';
import {
  DOCKER_NETWORK_LABEL,
  DST_PREFIX,
  bare,
  dockerId,
  handOverName,
  networkName,
  networkSpec,
  portBindings,
  toPortBindings,
  unknownEndpoint,
} from './mapping';
import { obj, str, type Body } from './protocol';

/** An endpoint between CreateEndpoint and Join. */
interface Pending {
  network: string;
  ipv4: string;
  ipv6?: string;
}

export class NetworkDriver {
  /** Endpoints created and not joined yet, by Docker endpoint id. */
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly host: NetworkHost,
    private readonly ipam: IpamDriver,
  ) {}

  /** The nsnet network of a Docker network id. @throws ERR_NETWORK_NOT_FOUND */
  private async network(networkId: string): Promise<BridgeNetworkRecord> {
    const name = networkName(networkId);
    const net = (await this.host.listNetworks()).find((n) => n.name === name);
    if (!net || net.labels[DOCKER_NETWORK_LABEL] !== networkId || net.driver !== 'bridge')
      throw new NsnetError('ERR_NETWORK_NOT_FOUND', `Docker network ${networkId} is not an nsnet network`, { network: networkId });
    return net;
  }

  /** The nsnet endpoint of a Docker endpoint, if connected. */
  private async connected(net: Network, endpointId: string): Promise<Endpoint | undefined> {
    dockerId(endpointId, 'EndpointID');
    return (await this.host.listEndpoints(net.name)).find((e) => e.id === endpointId);
  }

  /** The endpoint, connected or pending. @throws ERR_ENDPOINT_NOT_FOUND */
  private async known(body: Body): Promise<{ net: BridgeNetworkRecord; ep?: Endpoint; pending?: Pending }> {
    const net = await this.network(str(body, 'NetworkID'));
    const id = str(body, 'EndpointID');
    const ep = await this.connected(net, id);
    const pending = this.pending.get(id);
    if (!ep && (!pending || pending.network !== net.name)) throw unknownEndpoint(str(body, 'NetworkID'), id);
    return { net, ...(ep ? { ep } : {}), ...(pending ? { pending } : {}) };
  }

  getCapabilities(): Body {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  async createNetwork(body: Body): Promise<Body> {
    const spec = networkSpec(body);
    const existing = (await this.host.listNetworks()).find((n) => n.name === spec.name);
    // The same network again (Docker retrying) is done already.
    if (existing && existing.labels[DOCKER_NETWORK_LABEL] === spec.labels![DOCKER_NETWORK_LABEL]) return {};
    const net = await this.host.createNetwork(spec);
    this.ipam.networkMade('subnet' in net ? net.subnet : '');
    return {};
  }

  async deleteNetwork(body: Body): Promise<Body> {
    const net = await this.network(str(body, 'NetworkID'));
    await this.host.removeNetwork(net.name);
    return {};
  }

  async createEndpoint(body: Body): Promise<Body> {
    const net = await this.network(str(body, 'NetworkID'));
    const id = dockerId(str(body, 'EndpointID'), 'EndpointID');
    const iface = obj(body, 'Interface');
    const legacy = Array.isArray(body.Interfaces) ? (body.Interfaces[0] as Record<string, unknown> | undefined) : undefined;
    const want = Object.keys(iface).length ? iface : (legacy ?? {});
    if (typeof want.Address !== 'string' || want.Address === '')
      throw invalid(
        'ERR_INVALID_ARGUMENT',
        'CreateEndpoint: Interface.Address is required (nsnet networks get addresses from the nsnet or the default IPAM driver)',
      );
    const ipv4 = bare(want.Address);
    const ipv6 = typeof want.AddressIPv6 === 'string' && want.AddressIPv6 !== '' ? bare(want.AddressIPv6) : undefined;
    const ep = await this.connected(net, id);
    if (ep) {
      if (ep.ipv4 && bare(ep.ipv4) === ipv4) return {};
      throw new NsnetError('ERR_ENDPOINT_EXISTS', `endpoint ${id} is connected to ${net.name} with another address`, { network: net.name, endpoint: id });
    }
    const holder = (await this.host.listEndpoints(net.name)).find((e) => e.ipv4 !== undefined && bare(e.ipv4) === ipv4);
    if (holder)
      throw new NsnetError('ERR_ADDRESS_IN_USE', `${ipv4} is in use by endpoint ${holder.id} of network ${net.name}`, { address: ipv4, owner: holder.id });
    this.ipam.checkInside(net, ipv4, ipv6);
    this.pending.set(id, { network: net.name, ipv4, ...(ipv6 ? { ipv6 } : {}) });
    // Docker takes a MAC from the driver only when it has none (a --mac-address wins).
    return typeof want.MacAddress === 'string' && want.MacAddress !== '' ? {} : { Interface: { MacAddress: macFromIp(ipv4) } };
  }

  async endpointOperInfo(body: Body): Promise<Body> {
    const { net, ep } = await this.known(body);
    if (!ep) return { Value: {} };
    return {
      Value: {
        'com.docker.network.portmap': toPortBindings(ep.ports),
        'nsnet.network': net.name,
        ...(ep.hostIfname ? { 'nsnet.host_ifname': ep.hostIfname } : {}),
      },
    };
  }

  async join(body: Body): Promise<Body> {
    const net = await this.network(str(body, 'NetworkID'));
    const id = dockerId(str(body, 'EndpointID'), 'EndpointID');
    const sandbox = str(body, 'SandboxKey');
    if (!sandbox.startsWith('/')) throw invalid('ERR_INVALID_ARGUMENT', `Join: SandboxKey ${JSON.stringify(sandbox.slice(0, 80))} is not a namespace path`);
    let ep = await this.connected(net, id);
    const pending = this.pending.get(id);
    if (!ep) {
      if (!pending || pending.network !== net.name) throw unknownEndpoint(str(body, 'NetworkID'), id);
      // No ConnectOptions.container: Docker keeps a container's published ports on one endpoint
      // at a time itself (the one that is its gateway; when that changes it revokes them there
      // and programs them on the next), so no two attachments ever share a port here.
      ep = await this.host.connect(net.name, {
        id,
        netns: sandbox,
        handOver: handOverName(id),
        ipv4: pending.ipv4,
        ...(net.subnet6 ? { ipv6: pending.ipv6 ?? false } : {}),
      });
      this.pending.delete(id);
      this.ipam.taken(net, pending.ipv4, pending.ipv6);
    }
    return {
      InterfaceName: { SrcName: handOverName(id), DstPrefix: DST_PREFIX },
      // An internal network is no way out: Docker then routes through another network, or none.
      ...(!net.internal && ep.gateway ? { Gateway: ep.gateway } : {}),
      ...(!net.internal && ep.gateway6 ? { GatewayIPv6: ep.gateway6 } : {}),
      StaticRoutes: [],
      DisableGatewayService: false,
    };
  }

  async leave(body: Body): Promise<Body> {
    await this.known(body);
    return {};
  }

  /**
   * Publishes the sandbox's port map on the endpoint that is its way out. A binding with a host
   * port range (`-p 8000-8010:80`) takes the first free port of it.
   */
  async programExternalConnectivity(body: Body): Promise<Body> {
    const { net, ep } = await this.known(body);
    if (!ep) throw unknownEndpoint(str(body, 'NetworkID'), str(body, 'EndpointID'));
    const bindings = portBindings(obj(body, 'Options'));
    if (!bindings.some((b) => b.candidates.length > 1)) {
      await this.host.publish(
        net.name,
        ep.id,
        bindings.map((b) => b.mapping),
      );
      return {};
    }
    const before = ep.ports;
    const chosen: PortMapping[] = [];
    try {
      for (const b of bindings) {
        for (const [i, port] of b.candidates.entries()) {
          const m = { ...b.mapping, hostPort: port };
          try {
            await this.host.publish(net.name, ep.id, [...chosen, m]);
            chosen.push(m);
            break;
          } catch (e) {
            if (!(e instanceof NsnetError && e.code === 'ERR_PORT_IN_USE') || i === b.candidates.length - 1) throw e;
          }
        }
      }
    } catch (e) {
      await this.host.publish(net.name, ep.id, before).catch(() => undefined);
      throw e;
    }
    return {};
  }

  async revokeExternalConnectivity(body: Body): Promise<Body> {
    const { net, ep } = await this.known(body);
    if (ep?.ports.length) await this.host.publish(net.name, ep.id, []);
    return {};
  }

  async deleteEndpoint(body: Body): Promise<Body> {
    const { net, ep, pending } = await this.known(body);
    const id = str(body, 'EndpointID');
    if (pending) this.pending.delete(id);
    if (ep) {
      await this.host.disconnect(net.name, id);
      await this.host.reap(); // the veth pair is gone when Docker hears back
    }
    return {};
  }

  discover(): Body {
    return {};
  }
}
