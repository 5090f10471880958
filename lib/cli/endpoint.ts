/** `nsnet connect | disconnect | port`: endpoints (containers) on networks. */
import type { Command } from 'commander';
import { NsnetError } from '../errors';
import type { ConnectOptions, Endpoint, PortMapping } from '../host-types';
import { type Context, example } from './context';
import { ENDPOINT_HEADERS, block, endpointRow, table } from './format';
import { parseHostClaim, parseNetns, parseNetworkArg, parsePublish } from './parse';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

interface ConnectFlags {
  netns?: string;
  publish?: string[];
  ip?: string;
  ip6?: string;
  ifname?: string;
  target?: string;
  name?: string;
  alias?: string[];
}

/**
 * Turns `connect` flags into ConnectOptions for a network, before anything is opened. Which
 * fields apply depends on the network's driver, which only the store knows: `-p` becomes
 * `publish` everywhere except on the predefined `host` network, where it claims host ports.
 */
export function connectOptions(networkArg: string, id: string, f: ConnectFlags): { network: string; opts: ConnectOptions } {
  const { network, target: fromArg } = parseNetworkArg(networkArg);
  const opts: ConnectOptions = { id };
  if (fromArg !== undefined && f.target !== undefined && fromArg !== f.target)
    throw new NsnetError('ERR_INVALID_ARGUMENT', `container:${fromArg} and --target ${f.target} disagree`, { option: '--target' });
  const target = fromArg ?? f.target;
  if (target !== undefined) opts.target = target;
  if (f.netns !== undefined) opts.netns = parseNetns(f.netns);
  if (f.ifname !== undefined) opts.ifname = f.ifname;
  if (f.ip !== undefined) opts.ipv4 = f.ip;
  if (f.ip6 !== undefined) opts.ipv6 = f.ip6;
  if (f.name !== undefined) opts.name = f.name;
  if (f.alias?.length) opts.aliases = f.alias;
  if (f.publish?.length) {
    if (network === 'host') opts.ports = f.publish.map(parseHostClaim);
    else opts.publish = f.publish.map(parsePublish);
  }
  return { network, opts };
}

/**
 * One line per host port and address, like `docker port`: `80/tcp -> 0.0.0.0:8080`, and on a
 * dual-stack endpoint also `80/tcp -> [::]:8080` for a port published on every address.
 */
function portLines(ports: (PortMapping & { network: string; dualStack?: boolean })[]): string {
  const lines: string[] = [];
  for (const p of ports) {
    const n = (p.hostPortEnd ?? p.hostPort) - p.hostPort;
    const ips = p.hostIp !== undefined ? [p.hostIp] : p.dualStack ? ['0.0.0.0', '::'] : ['0.0.0.0'];
    for (let i = 0; i <= n; i++) {
      for (const ip of ips) lines.push(`${p.containerPort + i}/${p.protocol} -> ${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort + i}`);
    }
  }
  // A container on several networks publishing one port shows it once (one binding, as Docker does).
  return [...new Set(lines)].join('\n');
}

/**
 * What connect prints for people: the endpoint's row, then its names and what its resolv.conf
 * gets (when the network has DNS), as `Key: value` lines.
 */
function humanEndpoint(ep: Endpoint): string {
  const rows = table(ENDPOINT_HEADERS, [endpointRow(ep)]);
  const more = block([
    ['Name', ep.name],
    ['Aliases', ep.aliases?.join(', ')],
    ['Nameservers', ep.dns?.nameservers.join(', ')],
    ['Search', ep.dns?.search.join(' ')],
    ['Options', ep.dns?.options.join(' ')],
  ]);
  return more.trim() ? `${rows}\n${more}` : rows;
}

export function registerEndpoint(program: Command, ctx: Context): void {
  example(
    program
      .command('connect')
      .description('connect a container (its network namespace) to a network')
      .argument('<network>', "network name; also host, none, or container:ID (share ID's namespace)")
      .argument('<id>', 'endpoint (container) id')
      .option('--netns <ns>', "the container's namespace: a name under /var/run/netns, a path, or a pid")
      .option('-p, --publish <spec>', 'publish [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/PROTO] (repeatable); on host: claim PORT[/PROTO]', collect)
      .option('--ip <ip>', 'a static IPv4 address in the subnet')
      .option('--ip6 <ip>', 'a static IPv6 address (dual-stack networks)')
      .option('--ifname <name>', 'interface name inside the container (default eth0)')
      .option('--target <id>', 'container network: the endpoint whose namespace to share')
      .option('--name <name>', "the container's name: other containers of the network resolve it (networks with DNS)")
      .option('--alias <name>', 'another name for it on this network (repeatable)', collect)
      .action(async (networkArg: string, id: string, f: ConnectFlags) => {
        const { network, opts } = connectOptions(networkArg, id, f);
        const ep = await ctx.withHost((host) => host.connect(network, opts));
        if (ep.dns) {
          // The names are served by the nsnet daemon (started if none runs); loaded only here.
          const { ensureDnsServed } = await import('./daemon-client');
          await ensureDnsServed(ctx, ep);
        }
        ctx.print(ep, () => humanEndpoint(ep));
      }),
    'nsnet connect app c1 --netns c1 -p 8080:80 -p 127.0.0.1:5353:53/udp',
    'nsnet connect app c2 --netns /proc/4242/ns/net --ip 172.20.0.10 -p 80   # any free host port',
    'nsnet connect app c3 --netns c3 --name web --alias www   # c1, c2 resolve web and www (the nsnet daemon serves them)',
    'nsnet connect host web --publish 8000/tcp      # claim host port 8000 for a host-mode container',
    'nsnet connect none sandbox --netns sandbox',
    "nsnet connect container:c1 sidecar             # share c1's namespace",
  );

  example(
    program
      .command('disconnect')
      .description('disconnect a container from a network (undo what connect did)')
      .argument('<network>', 'network name (or container:ID)')
      .argument('<id>', 'endpoint (container) id')
      .action(async (networkArg: string, id: string) => {
        const { network } = parseNetworkArg(networkArg);
        await ctx.withHost((host) => host.disconnect(network, id));
        ctx.print({ network, id }, () => '');
      }),
    'nsnet disconnect app c1',
  );

  example(
    program
      .command('port')
      .description('published ports of an endpoint (every network it is on), like `docker port`')
      .argument('<id>', 'endpoint (container) id')
      .argument('[port]', 'only this container port: PORT[/PROTO]')
      .action(async (id: string, filter: string | undefined) => {
        const eps: Endpoint[] = await ctx.withHost((host) => host.listEndpoints());
        const mine = eps.filter((e) => e.id === id);
        if (!mine.length) throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `no endpoint ${id} is connected`, { endpoint: id });
        let ports = mine.flatMap((e) => e.ports.map((p) => ({ network: e.network, ...p })));
        const dual = new Set(mine.filter((e) => e.ipv6 !== undefined).map((e) => e.network));
        if (filter !== undefined) {
          const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/u.exec(filter);
          if (!m) throw new NsnetError('ERR_INVALID_PORT', `${JSON.stringify(filter)} is not PORT[/PROTO]`, { value: filter });
          const port = Number(m[1]);
          const proto = m[2] ?? 'tcp';
          ports = ports
            .filter((p) => p.protocol === proto && port >= p.containerPort && port <= p.containerPort + ((p.hostPortEnd ?? p.hostPort) - p.hostPort))
            .map((p) => ({ ...p, hostPort: p.hostPort + (port - p.containerPort), containerPort: port, hostPortEnd: undefined }))
            .map(({ hostPortEnd: _, ...p }) => p);
          if (!ports.length)
            throw new NsnetError('ERR_PORT_NOT_FOUND', `no port ${port}/${proto} is published for ${id}`, { endpoint: id, port, protocol: proto });
        }
        ctx.print(ports, () => portLines(ports.map((p) => ({ ...p, dualStack: dual.has(p.network) }))));
      }),
    'nsnet port c1',
    'nsnet port c1 80/tcp',
  );
}
