/**
 * The Docker plugin (`nsnet docker-plugin`): Docker's remote NetworkDriver and IpamDriver
 * protocol served on `/run/docker/plugins/nsnet.sock` (where dockerd finds plugins by name:
 * `docker network create -d nsnet [--ipam-driver nsnet]`), over one NetworkHost — the same
 * store, port ledger and firewall as the library, the CLI and the CNI plugin. Root only: the
 * socket is mode 0600 and the process must be root.
 */
import type * as http from 'node:http';
import { NsnetError } from '../errors';
import { NetworkHost } from '../host';
import type { NetworkHostOptions } from '../host-types';
import type { Reply } from './errors';
import { IpamDriver } from './ipam';
import { NetworkDriver } from './network';
import { listen, type Routes } from './server';

import { DEFAULT_SOCKET } from './paths';

export { DEFAULT_SOCKET };

export interface DockerPluginOptions {
  /** Default {@link DEFAULT_SOCKET}. */
  socket?: string;
  stateDir?: NetworkHostOptions['stateDir'];
  /** The host namespace (default: the plugin's own: dockerd's must be the same). */
  netns?: NetworkHostOptions['netns'];
  onWarning?: NetworkHostOptions['onWarning'];
  /** Hears of every request served. */
  onRequest?: (method: string, reply: Reply, ms: number) => void;
}

export interface DockerPlugin {
  readonly socket: string;
  /** Stops serving, removes the socket, closes the NetworkHost. */
  close(): Promise<void>;
}

/** Every method nsnet serves, by its path. */
export function routes(net: NetworkDriver, ipam: IpamDriver): Routes {
  return {
    'NetworkDriver.GetCapabilities': () => net.getCapabilities(),
    'NetworkDriver.CreateNetwork': (b) => net.createNetwork(b),
    'NetworkDriver.DeleteNetwork': (b) => net.deleteNetwork(b),
    'NetworkDriver.CreateEndpoint': (b) => net.createEndpoint(b),
    'NetworkDriver.DeleteEndpoint': (b) => net.deleteEndpoint(b),
    'NetworkDriver.EndpointOperInfo': (b) => net.endpointOperInfo(b),
    'NetworkDriver.Join': (b) => net.join(b),
    'NetworkDriver.Leave': (b) => net.leave(b),
    'NetworkDriver.ProgramExternalConnectivity': (b) => net.programExternalConnectivity(b),
    'NetworkDriver.RevokeExternalConnectivity': (b) => net.revokeExternalConnectivity(b),
    'NetworkDriver.DiscoverNew': () => net.discover(),
    'NetworkDriver.DiscoverDelete': () => net.discover(),
    'IpamDriver.GetCapabilities': () => ipam.getCapabilities(),
    'IpamDriver.GetDefaultAddressSpaces': () => ipam.getDefaultAddressSpaces(),
    'IpamDriver.RequestPool': (b) => ipam.requestPool(b),
    'IpamDriver.ReleasePool': (b) => ipam.releasePool(b),
    'IpamDriver.RequestAddress': (b) => ipam.requestAddress(b),
    'IpamDriver.ReleaseAddress': (b) => ipam.releaseAddress(b),
  };
}

/**
 * Opens the NetworkHost and serves the socket.
 * @throws ERR_NOT_ROOT, ERR_SOCKET_IN_USE, and what NetworkHost.open throws
 */
export async function startDockerPlugin(opts: DockerPluginOptions = {}): Promise<DockerPlugin> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new NsnetError('ERR_NOT_ROOT', "the Docker plugin must run as root (it serves dockerd, which runs as root, and changes the host's network)");
  const socket = opts.socket ?? DEFAULT_SOCKET;
  const host = await NetworkHost.open({
    ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
    ...(opts.netns !== undefined ? { netns: opts.netns } : {}),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
  });
  let server: http.Server;
  try {
    const ipam = new IpamDriver(host);
    server = await listen({ socket, routes: routes(new NetworkDriver(host, ipam), ipam), ...(opts.onRequest ? { onRequest: opts.onRequest } : {}) });
  } catch (e) {
    await host.close();
    throw e;
  }
  return {
    socket,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      await host.close();
    },
  };
}
