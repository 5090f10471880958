/**
 * Host mode: the container uses the host's namespace — its sockets are the host's, nothing to
 * set up. What nsnet keeps is the endpoint's record and its `ports`, claims in the host-wide
 * port ledger (the façade's), so no two containers of any mode get one host port.
 */
import type { Driver } from './driver';
import type { PlainNetworkRecord } from '../host-types';

/** The host driver (the predefined network `host`). */
export const hostDriver: Driver<PlainNetworkRecord> = {
  name: 'host',
  predefined: true,
  networkOptions: [],
  connectOptions: ['ports'],
  whyNot: (option) =>
    option === 'publish'
      ? ': a host-mode container listens on host ports itself; claim them with `ports`'
      : option === 'netns'
        ? ': a host-mode container uses the host namespace'
        : undefined,
  ownsNetns: false,
  portsFrom: 'ports',
  async realize() {},
  async unrealize() {},
  async attach() {},
  async detach() {},

  async inspect(ctx) {
    const [links, addrs] = await Promise.all([ctx.host.links.list(), ctx.host.addresses.list()]);
    return {
      interfaces: links.map((l) => ({
        name: l.name,
        index: l.index,
        kind: l.kind,
        up: l.up,
        mtu: l.mtu,
        ...(l.mac ? { mac: l.mac } : {}),
        addresses: addrs.filter((a) => a.index === l.index).map((a) => a.cidr),
      })),
    };
  },
};
