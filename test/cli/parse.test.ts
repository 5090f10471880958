/** The CLI's value syntaxes, exit status classes and tables, without running anything. */
import * as assert from 'node:assert/strict';
import { NsnetError } from '../../lib/errors';
import { connectOptions } from '../../lib/cli/endpoint';
import { EXIT, exitStatus } from '../../lib/cli/exit';
import { formatPort, formatPorts, table } from '../../lib/cli/format';
import { networkSpec } from '../../lib/cli/network';
import { parseDriverOptions, parseHostClaim, parseNetns, parsePublish } from '../../lib/cli/parse';

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof NsnetError && e.code === code);
}

describe('cli: -p (Docker publish syntax)', () => {
  const cases: [string, object][] = [
    ['80', { protocol: 'tcp', hostPort: 0, containerPort: 80 }],
    ['8080:80', { protocol: 'tcp', hostPort: 8080, containerPort: 80 }],
    ['0:80/udp', { protocol: 'udp', hostPort: 0, containerPort: 80 }],
    ['5353:53/udp', { protocol: 'udp', hostPort: 5353, containerPort: 53 }],
    ['127.0.0.1:8080:80', { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 }],
    ['127.0.0.1::80', { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 }],
    // 0.0.0.0 and [::] are kept: every address of one family (Docker's reading); none: both families.
    ['0.0.0.0:8080:80', { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }],
    ['[::]:8080:80', { protocol: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 }],
    ['[::]:8080:80/udp', { protocol: 'udp', hostIp: '::', hostPort: 8080, containerPort: 80 }],
    ['[2001:db8::1]:8080:80', { protocol: 'tcp', hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80 }],
    ['[2001:db8::1]:8000-8010:9000-9010/sctp', { protocol: 'sctp', hostIp: '2001:db8::1', hostPort: 8000, hostPortEnd: 8010, containerPort: 9000 }],
    ['[2001:db8::1]::80', { protocol: 'tcp', hostIp: '2001:db8::1', hostPort: 0, containerPort: 80 }],
    ['[::ffff:10.0.0.1]:80:80', { protocol: 'tcp', hostIp: '::ffff:10.0.0.1', hostPort: 80, containerPort: 80 }],
    // Syntax only: the library refuses [::1] (ERR_INVALID_HOST_IP), the kernel cannot DNAT it.
    ['[::1]:8080:80', { protocol: 'tcp', hostIp: '::1', hostPort: 8080, containerPort: 80 }],
    ['[::1]:80', { protocol: 'tcp', hostIp: '::1', hostPort: 0, containerPort: 80 }],
    ['8000-8010:9000-9010/sctp', { protocol: 'sctp', hostPort: 8000, hostPortEnd: 8010, containerPort: 9000 }],
    ['65535:1', { protocol: 'tcp', hostPort: 65535, containerPort: 1 }],
  ];
  for (const [spec, want] of cases) it(`parses ${spec}`, () => assert.deepEqual(parsePublish(spec), want));

  const bad: [string, string][] = [
    ['', 'ERR_INVALID_PORT'],
    ['80/icmp', 'ERR_INVALID_PORT'],
    ['80/TCP', 'ERR_INVALID_PORT'],
    ['70000:80', 'ERR_INVALID_PORT'],
    ['8080:0', 'ERR_INVALID_PORT'],
    ['8080:', 'ERR_INVALID_PORT'],
    ['x:80', 'ERR_INVALID_PORT'],
    ['80-79:80-79', 'ERR_INVALID_PORT'],
    ['8000-8001:80', 'ERR_INVALID_PORT'],
    ['8000:80-81', 'ERR_INVALID_PORT'],
    ['8000-8002:80-81', 'ERR_INVALID_PORT'],
    ['80-81', 'ERR_INVALID_PORT'],
    ['1.2.3:8080:80', 'ERR_INVALID_IP'],
    ['::1:8080:80', 'ERR_INVALID_PORT'],
    ['[1.2.3.4]:80:80', 'ERR_INVALID_IP'],
    ['[::1]8080', 'ERR_INVALID_PORT'],
    ['[::1]', 'ERR_INVALID_PORT'],
    ['[]:80:80', 'ERR_INVALID_IP'],
    ['[::1:80:80', 'ERR_INVALID_PORT'],
    ['[2001:db8::g]:80:80', 'ERR_INVALID_IP'],
    ['2001:db8::1:8080:80', 'ERR_INVALID_PORT'],
    ['[2001:db8::1]:8080:80:90', 'ERR_INVALID_PORT'],
    ['[2001:db8::1]:8080:80/icmp', 'ERR_INVALID_PORT'],
    ['1:2:3:4', 'ERR_INVALID_PORT'],
    ['-1:80', 'ERR_INVALID_PORT'],
    ['08080x:80', 'ERR_INVALID_PORT'],
  ];
  for (const [spec, code] of bad) it(`refuses ${JSON.stringify(spec)} with ${code}`, () => throwsCode(() => parsePublish(spec), code));

  it('host mode: -p claims the port itself', () => {
    assert.deepEqual(parseHostClaim('8000'), { protocol: 'tcp', port: 8000 });
    assert.deepEqual(parseHostClaim('8000/udp'), { protocol: 'udp', port: 8000 });
    assert.deepEqual(parseHostClaim('8000:8000'), { protocol: 'tcp', port: 8000 });
    assert.deepEqual(parseHostClaim('10.0.0.1:9000-9005:9000-9005'), { protocol: 'tcp', port: 9000, portEnd: 9005, hostIp: '10.0.0.1' });
    throwsCode(() => parseHostClaim('8080:80'), 'ERR_INVALID_PORT');
  });
});

describe('cli: network create flags', () => {
  it('maps flags and -o options onto NetworkSpec', () => {
    assert.deepEqual(
      networkSpec('app', {
        driver: 'bridge',
        subnet: ['172.20.0.0/16', 'fd00::/64'],
        gateway: ['172.20.0.1'],
        icc: 'false',
        mtu: '1400',
        internal: true,
        opt: ['com.docker.network.bridge.name=br-app', 'ip-masquerade=false'],
        label: ['team=a', 'x=y=z'],
      }),
      {
        name: 'app',
        subnet: '172.20.0.0/16',
        subnet6: 'fd00::/64',
        gateway: '172.20.0.1',
        internal: true,
        icc: false,
        mtu: 1400,
        bridge: 'br-app',
        ipMasquerade: false,
        labels: { team: 'a', x: 'y=z' },
      },
    );
    assert.deepEqual(networkSpec('lan', { driver: 'macvlan', opt: ['parent=eth0', 'macvlan_mode=private'] }), {
      name: 'lan',
      driver: 'macvlan',
      parent: 'eth0',
      mode: 'private',
    });
    assert.deepEqual(networkSpec('d', { driver: 'bridge', ipv6: true, subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' }), {
      name: 'd',
      subnet6: 'fd00:1::/64',
      gateway6: 'fd00:1::1',
    });
    assert.deepEqual(networkSpec('o', { driver: 'overlay', vni: '42' }), { name: 'o', driver: 'overlay', vni: 42 });
  });

  it('refuses unknown or doubled options, bad values, --ipv6 without a subnet', () => {
    throwsCode(() => networkSpec('a', { driver: 'bridge', opt: ['nosuch=1'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', opt: ['noequals'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', opt: ['__proto__=1'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', mtu: '1400', opt: ['mtu=1300'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', opt: ['icc=false', 'com.docker.network.bridge.enable_icc=true'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', subnet: ['10.0.0.0/8', '10.1.0.0/16'] }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', icc: 'maybe' }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', mtu: '1.5k' }), 'ERR_INVALID_MTU');
    throwsCode(() => networkSpec('a', { driver: 'bridge', ipv6: true }), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => networkSpec('a', { driver: 'bridge', vni: '42' }), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(parseDriverOptions([]), {});
    // DNS: commander gives dns: true unless --no-dns; only a change from the default is passed on.
    assert.deepEqual(networkSpec('a', { driver: 'bridge', dns: true }), { name: 'a' });
    assert.deepEqual(networkSpec('a', { driver: 'bridge', dns: false }), { name: 'a', dns: false });
    assert.deepEqual(networkSpec('a', { driver: 'bridge', dns: true, dnsUpstream: ['192.0.2.53', '[2001:db8::53]:5353'] }), {
      name: 'a',
      dns: { upstream: ['192.0.2.53', '[2001:db8::53]:5353'] },
    });
    throwsCode(() => networkSpec('a', { driver: 'bridge', dns: false, dnsUpstream: ['192.0.2.53'] }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('cli: connect flags', () => {
  it('container:ID is the container network with a target; -p claims on host, publishes elsewhere', () => {
    assert.deepEqual(connectOptions('container:c1', 's', {}), { network: 'container', opts: { id: 's', target: 'c1' } });
    assert.deepEqual(connectOptions('host', 'h', { publish: ['8000'] }), { network: 'host', opts: { id: 'h', ports: [{ protocol: 'tcp', port: 8000 }] } });
    assert.deepEqual(connectOptions('app', 'c', { netns: '4242', publish: ['8000'], ip: '10.0.0.2', ifname: 'eth1' }), {
      network: 'app',
      opts: { id: 'c', netns: 4242, ipv4: '10.0.0.2', ifname: 'eth1', publish: [{ protocol: 'tcp', hostPort: 0, containerPort: 8000 }] },
    });
    assert.equal(parseNetns('/proc/1/ns/net'), '/proc/1/ns/net');
    throwsCode(() => connectOptions('container:a', 's', { target: 'b' }), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(connectOptions('app', 'c', { netns: 'c', name: 'web', alias: ['www', 'shop'] }), {
      network: 'app',
      opts: { id: 'c', netns: 'c', name: 'web', aliases: ['www', 'shop'] },
    });
    assert.deepEqual(connectOptions('app', 'c', { netns: 'c', alias: [] }).opts, { id: 'c', netns: 'c' });
  });
});

describe('cli: exit statuses and tables', () => {
  it('maps error codes onto the documented classes', () => {
    const want: [string, number, Record<string, unknown>?][] = [
      ['ERR_USAGE', EXIT.USAGE],
      ['ERR_NETWORK_NOT_FOUND', 3],
      ['ERR_NETNS_NOT_FOUND', 3],
      ['ERR_ENDPOINT_NOT_FOUND', 3],
      ['ERR_NETWORK_EXISTS', 4],
      ['ERR_PORT_IN_USE', 4],
      ['ERR_ENDPOINT_IN_USE', 4],
      ['ERR_SUBNET_OVERLAP', 4],
      ['ERR_NO_FREE_SUBNET', 4],
      ['ERR_INVALID_PORT', 5],
      ['ERR_INVALID_CIDR', 5],
      ['ERR_NOT_A_NETNS', 5],
      ['ERR_ADDRESS_OUTSIDE_SUBNET', 5],
      ['EPERM', 6],
      ['EEXIST', 6],
      ['ERR_NOT_ROOT', 6],
      ['ERR_STORE_IO', 6, { errno: 'EACCES' }],
      ['ERR_NOT_AVAILABLE', 7],
      ['ERR_CHECK_FAILED', 8],
      ['ERR_INTERRUPTED', 130, { signal: 'SIGINT' }],
      ['ERR_INTERRUPTED', 143, { signal: 'SIGTERM' }],
      ['ERR_STORE_CORRUPT', 1],
      ['ERR_INTERNAL', 1],
      ['ERR_STORE_IO', 1, { errno: 'ENOSPC' }],
    ];
    for (const [code, status, details] of want) assert.equal(exitStatus(code, details), status, code);
  });

  it('aligns table columns and marks empty cells', () => {
    assert.equal(
      table(
        ['name', 'x'],
        [
          ['a', 1],
          ['long-name', undefined],
        ],
      ),
      'NAME       X\na          1\nlong-name  -\n',
    );
    assert.equal(formatPort({ protocol: 'udp', hostIp: '127.0.0.1', hostPort: 8000, hostPortEnd: 8001, containerPort: 80 }), '127.0.0.1:8000-8001->80-81/udp');
    assert.equal(formatPort({ protocol: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 }), '[::]:8080->80/tcp');
    assert.equal(formatPort({ protocol: 'tcp', hostIp: '2001:db8::1', hostPort: 8080, containerPort: 80 }), '[2001:db8::1]:8080->80/tcp');
    assert.equal(formatPort({ protocol: 'tcp', hostPort: 8080, containerPort: 80 }), '0.0.0.0:8080->80/tcp');
    const ports = [
      { protocol: 'tcp' as const, hostPort: 8080, containerPort: 80 },
      { protocol: 'udp' as const, hostIp: '127.0.0.1', hostPort: 53, containerPort: 53 },
    ];
    assert.equal(formatPorts(ports), '0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp');
    assert.equal(formatPorts(ports, true), '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:53->53/udp', 'dual-stack: both bindings, as docker ps');
    assert.equal(exitStatus('ERR_INVALID_HOST_IP'), 5, 'an address nothing can be published on is invalid input');
  });
});
