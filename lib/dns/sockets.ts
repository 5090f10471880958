/**
 * Sockets in the host namespace for the event loop: the addon makes each one inside the
 * namespace (on a helper thread: the main thread never changes namespace) and dgram/net adopt it
 * by fd. Listeners are bound with IP_FREEBIND, so the resolver can listen on a gateway before its
 * bridge has the address (a network recorded but not yet realized, a bridge being remade, an IPv6
 * address still tentative) and receives as soon as it does.
 * @internal
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { fromNative } from '../errors';
import { native, type InetSocketSpec, type NativeChangeWatch, type NativeUdpResponder } from '../native';
import type { NetnsHandle } from '../netns';
import type { Upstream } from './names';

export const DNS_PORT = 53;

const familyOf = (address: string): 4 | 6 => (net.isIPv6(address) ? 6 : 4);

export class HostSockets {
  constructor(private readonly ns: NetnsHandle) {}

  private async fd(spec: InetSocketSpec, what: string): Promise<number> {
    try {
      return await native.inetSocket(this.ns.fd, spec);
    } catch (e) {
      throw fromNative(e, what);
    }
  }

  /**
   * A UDP socket bound to address:port in the host namespace, served on the event loop by the
   * addon (native/udp/responder.h): what it has remembered under `watch`'s present generation it
   * answers itself; every other datagram goes to `onMiss`.
   */
  async udpResponder(
    address: string,
    port: number,
    watch: NativeChangeWatch | null,
    onMiss: (datagram: Buffer, address: string, port: number) => void,
  ): Promise<NativeUdpResponder> {
    const fd = await this.fd({ family: familyOf(address), type: 'udp', address, port, freebind: true }, `listen on udp ${address}:${port}`);
    try {
      return new native.UdpResponder(fd, watch, onMiss);
    } catch (e) {
      closeQuiet(fd);
      throw fromNative(e, `listen on udp ${address}:${port}`);
    }
  }

  /** A TCP server listening on address:port in the host namespace. */
  async tcpListener(address: string, port: number, server: net.Server): Promise<net.Server> {
    const family = familyOf(address);
    const fd = await this.fd({ family, type: 'tcp', address, port, freebind: true, reuseAddr: true }, `listen on tcp ${address}:${port}`);
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => {
        closeQuiet(fd);
        reject(e);
      };
      server.once('error', fail);
      try {
        server.listen({ fd, backlog: 511 }, () => {
          server.off('error', fail);
          resolve(server);
        });
      } catch (e) {
        fail(e as Error);
      }
    });
  }

  /** A UDP socket on an ephemeral port of the host namespace (on `address`, default any), for asking upstreams. */
  async udpClient(family: 4 | 6, address = family === 4 ? '0.0.0.0' : '::'): Promise<dgram.Socket> {
    const fd = await this.fd({ family, type: 'udp', address, port: 0 }, `open an IPv${family} UDP socket`);
    return adoptUdp(fd, family);
  }

  /** A TCP connection from the host namespace to an upstream (connected, or rejected within timeoutMs). */
  async tcpConnect(up: Upstream, timeoutMs: number): Promise<net.Socket> {
    const fd = await this.fd(
      { family: up.family, type: 'tcp', connect: { address: up.address, port: up.port }, timeoutMs },
      `connect to ${up.address} port ${up.port}`,
    );
    try {
      return new net.Socket({ fd, readable: true, writable: true });
    } catch (e) {
      closeQuiet(fd);
      throw e;
    }
  }
}

function adoptUdp(fd: number, family: 4 | 6): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => {
      closeQuiet(fd);
      reject(e);
    };
    s.once('error', fail);
    try {
      s.bind({ fd }, () => {
        s.off('error', fail);
        resolve(s);
      });
    } catch (e) {
      fail(e as Error);
    }
  });
}

function closeQuiet(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* Node took it and closed it already */
  }
}
