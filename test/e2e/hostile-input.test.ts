/**
 * Hostile input, table-driven: every row is a call with bad input that must fail with a coded
 * NsnetError (no TypeError, no kernel call half done) and change nothing — the kernel (links,
 * nft ruleset) and the store are compared before and after the whole table.
 *
 * The CLI's and the CNI plugin's own tables live with their tests (test/cli, test/cni); this is
 * the library's surface: NetworkHost, Netlink, Netns.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netlink, Netns, NetworkHost, NsnetError } from '../../lib/index';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';

type Row = [label: string, call: () => Promise<unknown>, code: string | RegExp];

describe("hostile input: a coded error and no change, for each of the table's rows", function () {
  this.timeout(120000);
  useSandbox();

  it('rejects every row and leaves kernel and store exactly as they were', async () => {
    const h = await makeNetns('hi');
    const c = await makeNetns('hc');
    sh('ip', ['-n', h, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1']);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-hostile-'));
    const host = await NetworkHost.open({ stateDir, netns: h });
    const nl = await Netlink.open({ netns: h });
    registerCleanup(async () => {
      nl.close();
      await host.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    });
    await host.createNetwork({ name: 'app', subnet: '172.18.0.0/24' });
    await host.connect('app', { id: 'c1', netns: c, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
    await host.connect('host', { id: 'hm', ports: [{ port: 9090 }] });
    const notNetns = path.join(stateDir, 'not-a-netns');
    fs.writeFileSync(notNetns, 'x');
    const deadPid = spawnSync('true').pid; // a process that has exited

    const snapshot = async (): Promise<string> =>
      JSON.stringify({
        links: ipJson(['-d', 'link', 'show'], h)
          .map((l: any) => [l.ifname, l.ifalias, l.master, l.mtu])
          .sort(),
        container: ipJson(['-d', 'addr', 'show'], c).map((l: any) => [l.ifname, l.addr_info?.map((a: any) => a.local)]),
        ruleset: nftJson(h).nftables.filter((o: any) => !o.metainfo),
        networks: await host.listNetworks(),
        endpoints: await host.listEndpoints(),
        netns: await Netns.list(),
        files: fs.readdirSync(stateDir).sort(),
      });
    const before = await snapshot();

    const big = 'a'.repeat(1 << 20);
    const polluted = JSON.parse('{"name":"pp","__proto__":{"polluted":true}}');
    const conn = (o: unknown) => () => host.connect('app', o as never);
    const net = (o: unknown) => () => host.createNetwork(o as never);
    const pub = (p: unknown) => conn({ id: 'c9', netns: c, publish: [p] });
    const rows: Row[] = [
      // Names: network
      ['network name with /', net({ name: 'a/b' }), 'ERR_INVALID_NAME'],
      ['network name ..', net({ name: '..' }), 'ERR_INVALID_NAME'],
      ['network name with a newline', net({ name: 'x\ny' }), 'ERR_INVALID_NAME'],
      ['network name of 65 bytes', net({ name: 'n'.repeat(65) }), 'ERR_INVALID_NAME'],
      ['network name empty', net({ name: '' }), 'ERR_INVALID_NAME'],
      ['network name with NUL', net({ name: 'a\u0000b' }), 'ERR_INVALID_NAME'],
      ['network name not ASCII', net({ name: 'ünï' }), 'ERR_INVALID_NAME'],
      ['network name a number', net({ name: 42 }), 'ERR_INVALID_NAME'],
      ['network name of 1 MiB', net({ name: big }), 'ERR_INVALID_NAME'],
      ['network spec null', net(null), 'ERR_INVALID_ARGUMENT'],
      ['network spec a string', net('app2'), 'ERR_INVALID_ARGUMENT'],
      ['network spec with __proto__ key', net(polluted), 'ERR_INVALID_ARGUMENT'],
      ['network spec with an unknown key', net({ name: 'x1', subnett: '10.1.0.0/24' }), 'ERR_INVALID_ARGUMENT'],
      // CIDRs and addresses
      ['subnet 300.1.1.1/8', net({ name: 'x2', subnet: '300.1.1.1/8' }), /ERR_INVALID_(CIDR|IP)/],
      ['subnet /33', net({ name: 'x2', subnet: '10.9.0.0/33' }), 'ERR_INVALID_CIDR'],
      ['subnet without a prefix', net({ name: 'x2', subnet: '10.9.0.0' }), 'ERR_INVALID_CIDR'],
      ['IPv6 subnet in the IPv4 field', net({ name: 'x2', subnet: 'fd00:1::/64' }), /ERR_INVALID_(CIDR|IP)|ERR_NO_IPV/],
      ['IPv4 subnet in the IPv6 field', net({ name: 'x2', subnet: '10.9.0.0/24', subnet6: '10.8.0.0/24' }), /ERR_INVALID_(CIDR|IP)|ERR_NO_IPV/],
      ['gateway outside the subnet', net({ name: 'x2', subnet: '10.9.0.0/24', gateway: '10.10.0.1' }), 'ERR_GATEWAY_OUTSIDE_SUBNET'],
      ['ip range outside the subnet', net({ name: 'x2', subnet: '10.9.0.0/24', ipRange: '10.10.0.0/25' }), 'ERR_RANGE_OUTSIDE_SUBNET'],
      ['subnet overlapping app', net({ name: 'x2', subnet: '172.18.0.128/25' }), 'ERR_SUBNET_OVERLAP'],
      ['subnet a number', net({ name: 'x2', subnet: 10 }), /ERR_INVALID_(CIDR|ARGUMENT)/],
      ['mtu 0', net({ name: 'x2', mtu: 0 }), 'ERR_INVALID_MTU'],
      ['mtu 70000', net({ name: 'x2', mtu: 70000 }), 'ERR_INVALID_MTU'],
      ['mtu a string', net({ name: 'x2', mtu: '1500' }), 'ERR_INVALID_MTU'],
      ['mtu 1.5', net({ name: 'x2', mtu: 1.5 }), 'ERR_INVALID_MTU'],
      ['icc a string', net({ name: 'x2', icc: 'false' }), 'ERR_INVALID_ARGUMENT'],
      ['labels with a number value', net({ name: 'x2', labels: { a: 1 } }), 'ERR_INVALID_ARGUMENT'],
      ['labels with a constructor key', net({ name: 'x2', labels: JSON.parse('{"constructor":"x"}') }), 'ERR_INVALID_ARGUMENT'],
      ['bridge name of 16 bytes', net({ name: 'x2', bridge: 'abcdefghijklmnop' }), 'ERR_INVALID_NAME'],
      ['bridge name with /', net({ name: 'x2', bridge: 'br/0' }), 'ERR_INVALID_NAME'],
      ['driver unknown', net({ name: 'x2', driver: 'ipvlan' }), 'ERR_INVALID_ARGUMENT'],
      ['macvlan parent missing', net({ name: 'x2', driver: 'macvlan', parent: 'nope0', subnet: '10.9.0.0/24' }), 'ERR_PARENT_NOT_FOUND'],
      ['macvlan parent with ..', net({ name: 'x2', driver: 'macvlan', parent: '..', subnet: '10.9.0.0/24' }), 'ERR_INVALID_NAME'],
      ['macvlan mode unknown', net({ name: 'x2', driver: 'macvlan', parent: 'lan0', mode: 'loud', subnet: '10.9.0.0/24' }), 'ERR_INVALID_ARGUMENT'],
      // Endpoints
      ['endpoint id with /', conn({ id: 'a/b', netns: c }), 'ERR_INVALID_NAME'],
      ['endpoint id ..', conn({ id: '..', netns: c }), 'ERR_INVALID_NAME'],
      ['endpoint id with a newline', conn({ id: 'a\nb', netns: c }), 'ERR_INVALID_NAME'],
      ['endpoint id of 129 bytes', conn({ id: 'e'.repeat(129), netns: c }), 'ERR_INVALID_NAME'],
      ['endpoint id __proto__', conn({ id: '__proto__', netns: c }), 'ERR_INVALID_NAME'],
      ['endpoint id an object', conn({ id: { toString: () => 'x' }, netns: c }), 'ERR_INVALID_NAME'],
      ['connect options null', conn(null), 'ERR_INVALID_ARGUMENT'],
      ['connect to a missing network', () => host.connect('nope', { id: 'c9', netns: c }), 'ERR_NETWORK_NOT_FOUND'],
      ['ifname of 16 bytes', conn({ id: 'c9', netns: c, ifname: 'abcdefghijklmnop' }), 'ERR_INVALID_NAME'],
      ['ifname with /', conn({ id: 'c9', netns: c, ifname: 'eth/0' }), 'ERR_INVALID_NAME'],
      ['ifname .', conn({ id: 'c9', netns: c, ifname: '.' }), 'ERR_INVALID_NAME'],
      ['static address outside the subnet', conn({ id: 'c9', netns: c, ipv4: '10.0.0.5' }), 'ERR_ADDRESS_OUTSIDE_SUBNET'],
      ['static address 300.0.0.1', conn({ id: 'c9', netns: c, ipv4: '300.0.0.1' }), 'ERR_INVALID_IP'],
      ['static address the gateway', conn({ id: 'c9', netns: c, ipv4: '172.18.0.1' }), /ERR_ADDRESS_(RESERVED|IN_USE)/],
      ['static address held by c1', conn({ id: 'c9', netns: c, ipv4: '172.18.0.2' }), 'ERR_ADDRESS_IN_USE'],
      // Namespaces
      ['netns path to a regular file', conn({ id: 'c9', netns: notNetns }), 'ERR_NOT_A_NETNS'],
      ['netns of a dead pid', conn({ id: 'c9', netns: { pid: deadPid } }), 'ERR_NETNS_NOT_FOUND'],
      ['netns a mount namespace', conn({ id: 'c9', netns: '/proc/self/ns/mnt' }), 'ERR_NOT_A_NETNS'],
      ['netns name with ../', conn({ id: 'c9', netns: '../etc' }), /ERR_INVALID_NETNS|ERR_NETNS_NOT_FOUND|ERR_INVALID_NAME/],
      ['netns negative pid', conn({ id: 'c9', netns: { pid: -1 } }), /ERR_INVALID_NETNS|ERR_INVALID_ARGUMENT/],
      ['netns fd not open', conn({ id: 'c9', netns: { fd: 99999 } }), 'ERR_NETNS_NOT_FOUND'],
      ['netns pid above pid_max', conn({ id: 'c9', netns: { pid: 2 ** 22 + 1 } }), 'ERR_INVALID_NETNS'],
      ['netns missing for bridge', conn({ id: 'c9' }), 'ERR_INVALID_ARGUMENT'],
      // Ports
      ['containerPort 0', pub({ protocol: 'tcp', hostPort: 81, containerPort: 0 }), 'ERR_INVALID_PORT'],
      ['hostPort 65536', pub({ protocol: 'tcp', hostPort: 65536, containerPort: 80 }), 'ERR_INVALID_PORT'],
      ['hostPort -1', pub({ protocol: 'tcp', hostPort: -1, containerPort: 80 }), 'ERR_INVALID_PORT'],
      ['hostPort a string', pub({ protocol: 'tcp', hostPort: '80', containerPort: 80 }), 'ERR_INVALID_PORT'],
      ['port range backwards', pub({ protocol: 'tcp', hostPort: 90, hostPortEnd: 80, containerPort: 80 }), 'ERR_INVALID_PORT'],
      ['port range past 65535 in the container', pub({ protocol: 'tcp', hostPort: 100, hostPortEnd: 200, containerPort: 65500 }), 'ERR_INVALID_PORT'],
      ['protocol icmp', pub({ protocol: 'icmp', hostPort: 81, containerPort: 80 }), 'ERR_INVALID_ARGUMENT'],
      [
        'hostIp ::1 (never publishable: the kernel cannot DNAT IPv6 loopback)',
        pub({ protocol: 'tcp', hostIp: '::1', hostPort: 81, containerPort: 80 }),
        'ERR_INVALID_HOST_IP',
      ],
      ['hostIp :: on a network without IPv6', pub({ protocol: 'tcp', hostIp: '::', hostPort: 81, containerPort: 80 }), 'ERR_NO_IPV6_SUBNET'],
      [
        'hostIp an IPv6 address on a network without IPv6',
        pub({ protocol: 'tcp', hostIp: '2001:db8::1', hostPort: 81, containerPort: 80 }),
        'ERR_NO_IPV6_SUBNET',
      ],
      ['hostIp a v4-mapped address', pub({ protocol: 'tcp', hostIp: '::ffff:10.0.0.1', hostPort: 81, containerPort: 80 }), 'ERR_INVALID_HOST_IP'],
      ['hostIp 999.0.0.1', pub({ protocol: 'tcp', hostIp: '999.0.0.1', hostPort: 81, containerPort: 80 }), 'ERR_INVALID_IP'],
      ['a port mapping null', pub(null), 'ERR_INVALID_ARGUMENT'],
      ['publish not an array', conn({ id: 'c9', netns: c, publish: 'yes' }), 'ERR_INVALID_ARGUMENT'],
      ['a port published by c1', pub({ protocol: 'tcp', hostPort: 8080, containerPort: 80 }), 'ERR_PORT_IN_USE'],
      ['a port claimed in host mode', pub({ protocol: 'tcp', hostPort: 9090, containerPort: 80 }), 'ERR_PORT_IN_USE'],
      ['host-mode port 65536', () => host.connect('host', { id: 'h9', ports: [{ port: 65536 }] }), 'ERR_INVALID_PORT'],
      ['host-mode port a string', () => host.connect('host', { id: 'h9', ports: [{ port: 'x' as never }] }), 'ERR_INVALID_PORT'],
      ['publish in macvlan-like host mode', () => host.connect('host', { id: 'h9', publish: [] }), 'ERR_INVALID_ARGUMENT'],
      // Container mode
      ['container target with ../', () => host.connect('container', { id: 'c9', target: '../c1' }), 'ERR_INVALID_NAME'],
      ['container target unknown', () => host.connect('container', { id: 'c9', target: 'ghost' }), 'ERR_ENDPOINT_NOT_FOUND'],
      // Other calls
      ['disconnect an unknown endpoint', () => host.disconnect('app', 'ghost'), 'ERR_ENDPOINT_NOT_FOUND'],
      ['remove a network with endpoints', () => host.removeNetwork('app'), 'ERR_NETWORK_IN_USE'],
      ['remove the default network', () => host.removeNetwork('bridge'), 'ERR_INVALID_ARGUMENT'],
      ['inspect a name with /', () => host.inspectNetwork('../app'), 'ERR_INVALID_NAME'],
      ['open with an unknown option', () => NetworkHost.open({ stateDir, netns: h, bogus: 1 } as never), 'ERR_INVALID_ARGUMENT'],
      // The kernel API's own validation
      ['link MAC multicast', () => nl.links.add({ kind: 'bridge', name: 'bx0', mac: '01:00:5e:00:00:01' }), 'ERR_INVALID_MAC'],
      ['link MAC malformed', () => nl.links.add({ kind: 'bridge', name: 'bx0', mac: 'zz:zz:zz:zz:zz:zz' }), 'ERR_INVALID_MAC'],
      ['link name of 16 bytes', () => nl.links.add({ kind: 'bridge', name: 'abcdefghijklmnop' }), 'ERR_INVALID_NAME'],
      ['link kind with a slash', () => nl.links.add({ kind: 'br/idge', name: 'bx0' }), 'ERR_INVALID_ARGUMENT'],
      ['address 300.1.1.1/8', () => nl.addresses.add('lan0', '300.1.1.1/8'), /ERR_INVALID_(CIDR|IP)/],
      ['address /33', () => nl.addresses.add('lan0', '10.1.1.1/33'), 'ERR_INVALID_CIDR'],
      ['netns name with /', () => Netns.create('a/b'), /ERR_INVALID_(NAME|NETNS)/],
      ['netns name ..', () => Netns.create('..'), /ERR_INVALID_(NAME|NETNS)/],
      ['sysctl outside net.*', () => Netns.sysctl(h, 'kernel.hostname', 'x'), 'ERR_INVALID_SYSCTL'],
      ['sysctl with ../', () => Netns.sysctl(h, 'net/../../kernel/hostname', 'x'), 'ERR_INVALID_SYSCTL'],
    ];
    assert.ok(rows.length >= 50, `at least 50 rows (${rows.length})`);
    const wrong: string[] = [];
    for (const [label, call, code] of rows) {
      let err: unknown;
      try {
        await call();
        wrong.push(`${label}: succeeded`);
        continue;
      } catch (e) {
        err = e;
      }
      if (!(err instanceof NsnetError)) {
        wrong.push(`${label}: not an NsnetError: ${String(err)}`);
        continue;
      }
      const ok = typeof code === 'string' ? err.code === code : code.test(err.code);
      if (!ok) wrong.push(`${label}: ${err.code} (${err.message}), expected ${String(code)}`);
      else if (!err.message || err.message.length < 10) wrong.push(`${label}: no useful message`);
    }
    assert.deepEqual(wrong, [], 'every row fails with its code');
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
    assert.equal(await snapshot(), before, 'nothing changed');
    console.log(`      (${rows.length} hostile inputs)`);
  });
});
