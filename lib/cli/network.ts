/** `nsnet network create | ls | inspect | rm`. */
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { NsnetError } from '../errors';
import type { Endpoint, Network, NetworkInspect, NetworkSpec } from '../host-types';
import { type Context, example } from './context';
import { asNsnetError, errorLine } from './exit';
import {
  ENDPOINT_HEADERS,
  NETWORK_HEADERS,
  block,
  endpointRow,
  networkDevice,
  networkDns,
  networkFlags,
  networkGateways,
  networkRow,
  networkSubnets,
  table,
} from './format';
import { DRIVER_OPTIONS, type CliNetworkSpec, keyValue, parseBool, parseDriverOptions, parseInteger } from './parse';

/** Repeatable options: no default shown in --help; `?? []` where read. */
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

interface CreateOptions {
  driver: string;
  subnet?: string[];
  gateway?: string[];
  ipRange?: string;
  internal?: boolean;
  icc?: string;
  mtu?: string;
  ipv6?: boolean;
  subnet6?: string;
  gateway6?: string;
  parent?: string;
  mode?: string;
  bridge?: string;
  vni?: string;
  opt?: string[];
  label?: string[];
  /** false with --no-dns (commander's default for a --no- option is true). */
  dns?: boolean;
  dnsUpstream?: string[];
}

/** lib/dns/config.ts dnsEnabled(), loaded when a command prints networks (not for --help). */
async function dnsRule(): Promise<(n: Network) => boolean> {
  const { dnsEnabled } = await import('../dns/config');
  return dnsEnabled;
}

/** Turns the flags of `network create` into a NetworkSpec; nothing is opened yet. */
export function networkSpec(name: string, o: CreateOptions): CliNetworkSpec {
  const spec: CliNetworkSpec = { name };
  const fields = spec as Record<string, unknown>;
  if (o.driver !== 'bridge') spec.driver = o.driver;
  // Docker style: --subnet and --gateway may be given once per family.
  const byFamily = (values: string[], flag: string, parse: (v: string) => number): [string | undefined, string | undefined] => {
    let v4: string | undefined;
    let v6: string | undefined;
    for (const v of values) {
      const fam = parse(v);
      if (fam === 6 ? v6 !== undefined : v4 !== undefined)
        throw new NsnetError('ERR_INVALID_ARGUMENT', `${flag} is given twice for IPv${fam === 6 ? 6 : 4}`, { option: flag });
      if (fam === 6) v6 = v;
      else v4 = v;
    }
    return [v4, v6];
  };
  const [subnet, subnet6] = byFamily(o.subnet ?? [], '--subnet', (v) => (v.includes(':') ? 6 : 4));
  const [gateway, gateway6] = byFamily(o.gateway ?? [], '--gateway', (v) => (isIP(v) === 6 ? 6 : 4));
  const set = (field: keyof CliNetworkSpec, value: unknown, flag: string): void => {
    if (value === undefined) return;
    if (fields[field] !== undefined) throw new NsnetError('ERR_INVALID_ARGUMENT', `${flag}: ${field} is given twice`, { option: flag });
    fields[field] = value;
  };
  set('subnet', subnet, '--subnet');
  set('gateway', gateway, '--gateway');
  set('subnet6', subnet6, '--subnet');
  set('gateway6', gateway6, '--gateway');
  set('subnet6', o.subnet6, '--subnet6');
  set('gateway6', o.gateway6, '--gateway6');
  set('ipRange', o.ipRange, '--ip-range');
  if (o.ipv6 && spec.subnet6 === undefined)
    throw new NsnetError('ERR_INVALID_ARGUMENT', '--ipv6 needs an IPv6 subnet: --subnet6 CIDR (no IPv6 pool is picked automatically)', { option: '--ipv6' });
  if (o.internal) spec.internal = true;
  set('icc', o.icc === undefined ? undefined : parseBool(o.icc, '--icc'), '--icc');
  set('mtu', o.mtu === undefined ? undefined : parseInteger(o.mtu, '--mtu', 'ERR_INVALID_MTU'), '--mtu');
  set('parent', o.parent, '--parent');
  set('mode', o.mode, '--mode');
  set('bridge', o.bridge, '--bridge');
  set('vni', o.vni === undefined ? undefined : parseInteger(o.vni, '--vni'), '--vni');
  const fromOpts = parseDriverOptions(o.opt ?? [], fields);
  Object.assign(spec, fromOpts);
  if (spec.vni !== undefined && o.driver !== 'overlay') throw new NsnetError('ERR_INVALID_ARGUMENT', 'vni applies to overlay networks only', { option: 'vni' });
  if (o.dns === false && o.dnsUpstream?.length)
    throw new NsnetError('ERR_INVALID_ARGUMENT', '--no-dns and --dns-upstream contradict each other', { option: '--dns-upstream' });
  if (o.dns === false) spec.dns = false;
  else if (o.dnsUpstream?.length) spec.dns = { upstream: o.dnsUpstream };
  if (o.label?.length) {
    const labels: Record<string, string> = {};
    for (const l of o.label) {
      const [k, v] = keyValue(l, '--label');
      labels[k] = v;
    }
    spec.labels = labels;
  }
  return spec;
}

function humanNetwork(n: NetworkInspect, dnsOn: (n: Network) => boolean): string {
  const head = block([
    ['Name', n.name],
    ['Driver', n.driver],
    ['Subnet', networkSubnets(n)],
    ['Gateway', networkGateways(n)],
    ['Device', networkDevice(n)],
    ['DNS', networkDns(n, dnsOn(n), true)],
    ['Options', networkFlags(n)],
    ['Created', n.created],
    ['IP forward', n.ipForward ? 'on' : 'off'],
    ['Bridge up', n.bridgeUp === undefined ? undefined : n.bridgeUp ? 'yes' : 'NO'],
    ['Parent up', n.parentUp === undefined ? undefined : n.parentUp ? 'yes' : 'NO'],
  ]);
  const ifs = n.interfaces?.length
    ? `Host interfaces:\n${indent(
        table(
          ['name', 'kind', 'state', 'mtu', 'addresses'],
          n.interfaces.map((i) => [i.name, i.kind, i.up ? 'up' : 'down', i.mtu, i.addresses.join(', ')]),
        ),
      )}`
    : '';
  const eps = n.endpoints.length ? `Endpoints:\n${indent(table(ENDPOINT_HEADERS, n.endpoints.map(endpointRow)))}` : 'Endpoints: none\n';
  return head + ifs + eps;
}

const indent = (s: string): string => s.replace(/^(?=.)/gmu, '  ');

function countBy(eps: Endpoint[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of eps) m.set(e.network, (m.get(e.network) ?? 0) + 1);
  return m;
}

export function registerNetwork(program: Command, ctx: Context): void {
  const net = program.command('network').description('create, list, inspect and remove networks');
  example(net, 'nsnet network create --subnet 172.20.0.0/16 app', 'nsnet network ls');

  const optionKeys = Object.keys(DRIVER_OPTIONS)
    .filter((k) => !k.startsWith('com.') && k !== 'ipMasquerade' && k !== 'macvlan_mode')
    .join(', ');
  example(
    net
      .command('create')
      .description('create a network (bridge by default; macvlan children of a parent; overlay across hosts)')
      .argument('<name>', 'network name (letters, digits, _ . -)')
      .option('-d, --driver <driver>', 'bridge, macvlan, ipvlan, vlan or overlay', 'bridge')
      .option('--subnet <cidr>', 'subnet (once per family; default: a free one)', collect)
      .option('--gateway <ip>', 'gateway address (once per family; default: the first address)', collect)
      .option('--ip-range <cidr>', 'allocate container addresses from this part of the subnet only')
      .option('--internal', 'no egress and no published ports')
      .option('--icc <bool>', 'containers of the network may talk to each other (default true)')
      .option('--mtu <n>', "MTU (bridge default 1500, macvlan the parent's)")
      .option('--ipv6', 'dual stack (needs --subnet6)')
      .option('--subnet6 <cidr>', 'IPv6 subnet')
      .option('--gateway6 <ip>', 'IPv6 gateway')
      .option('--parent <dev>', 'macvlan: the parent device in the host namespace')
      .option('--mode <mode>', 'macvlan: bridge (default), private, vepa or passthru')
      .option('--bridge <dev>', 'bridge: the bridge device name (default nsbr-<hash>)')
      .option('--vni <n>', 'overlay: the VXLAN network identifier')
      .option('-o, --opt <key=value>', `driver option, repeatable: ${optionKeys} (also Docker's com.docker.network.* names)`, collect)
      .option('--label <key=value>', 'label, repeatable', collect)
      .option('--no-dns', 'no embedded DNS resolver on this network (bridge, overlay: on by default)')
      .option(
        '--dns-upstream <addr>',
        "forward names that are not the network's to this server, ADDR[:PORT] or [IPv6]:PORT, repeatable (default: the host's resolv.conf)",
        collect,
      )
      .action(async (name: string, o: CreateOptions) => {
        const spec = networkSpec(name, o);
        // Upstreams are checked before anything is opened (ERR_INVALID_IP); loaded only here.
        if (spec.dns !== undefined) (await import('../dns/names')).checkNetworkDns(spec.dns);
        const dnsOn = await dnsRule();
        const created = await ctx.withHost((host) => host.createNetwork(spec as unknown as NetworkSpec));
        ctx.print(created, () => table(NETWORK_HEADERS, [networkRow(created, 0, networkDns(created, dnsOn(created)))]));
      }),
    'nsnet network create --subnet 172.20.0.0/16 --gateway 172.20.0.1 app',
    'nsnet network create --icc=false --internal --mtu 1400 backend',
    'nsnet network create -d macvlan -o parent=eth0 --subnet 192.168.1.0/24 --gateway 192.168.1.1 lan',
    'nsnet network create --subnet 172.21.0.0/16 --ipv6 --subnet6 fd00:21::/64 dual',
    'nsnet network create --dns-upstream 192.0.2.53 --dns-upstream [2001:db8::53]:5353 lab',
    'nsnet network create --no-dns quiet',
  );

  example(
    net
      .command('ls')
      .alias('list')
      .description('list networks (the predefined bridge, host, none and container included)')
      .option('-q, --quiet', 'names only')
      .action(async (o: { quiet?: boolean }) => {
        const [nets, eps] = await ctx.withHost(async (host) => [await host.listNetworks(), await host.listEndpoints()] as const);
        nets.sort((a, b) => a.name.localeCompare(b.name));
        const counts = countBy(eps);
        const dnsOn = await dnsRule();
        ctx.print(nets, () =>
          o.quiet
            ? nets.map((n) => n.name).join('\n')
            : table(
                NETWORK_HEADERS,
                nets.map((n) => networkRow(n, counts.get(n.name) ?? 0, networkDns(n, dnsOn(n)))),
              ),
        );
      }),
    'nsnet network ls',
    'nsnet --json network ls',
  );

  example(
    net
      .command('inspect')
      .description('show networks with their endpoints and the host state they depend on')
      .argument('<name...>', 'network names')
      .action(async (names: string[]) => {
        // All or nothing: one missing network is an error and nothing is printed.
        const found = await ctx.withHost(async (host) => {
          const out: NetworkInspect[] = [];
          for (const n of names) out.push(await host.inspectNetwork(n));
          return out;
        });
        const dnsOn = await dnsRule();
        ctx.print(found, () => found.map((n) => humanNetwork(n, dnsOn)).join('\n'));
      }),
    'nsnet network inspect app',
    'nsnet --json network inspect app bridge',
  );

  example(
    net
      .command('rm')
      .alias('remove')
      .description('remove networks (not while endpoints are connected)')
      .argument('<name...>', 'network names')
      .action(async (names: string[]) => {
        // Like `docker network rm`: each name on its own. What was removed is printed (with
        // --json: the `removed` member, also of the error document); each failure gets its
        // `nsnet: CODE: message` line in order, and the last one decides the exit status.
        const removed: string[] = [];
        const failed: NsnetError[] = [];
        await ctx.withHost(async (host) => {
          for (const n of names) {
            try {
              await host.removeNetwork(n);
              removed.push(n);
            } catch (e) {
              failed.push(asNsnetError(e));
            }
          }
        });
        if (!failed.length) {
          ctx.print({ removed }, () => removed.join('\n'));
          return;
        }
        if (!ctx.json && removed.length) ctx.io.stdout.write(`${removed.join('\n')}\n`);
        for (const e of failed.slice(0, -1)) ctx.io.stderr.write(errorLine(e));
        ctx.errorExtra = { removed };
        throw failed[failed.length - 1]!;
      }),
    'nsnet network rm app backend',
  );
}
