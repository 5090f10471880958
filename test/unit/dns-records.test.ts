/**
 * The DNS records index and the network policy behind it: which networks are served, on which
 * addresses, what names (id, name, aliases) resolve to, PTR names, who may ask; and decide(),
 * what the resolver says to a query given a network's zone.
 */
import * as assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { decide } from '../../lib/dns/answer';
import { dnsEnabled, listenAddresses, networkUpstreams, type DnsNetworkRecord } from '../../lib/dns/config';
import { parseQuery, type Query } from '../../lib/dns/message';
import { RecordIndex, reverseAddress, type DnsEndpointRecord } from '../../lib/dns/records';

const created = '2026-01-01T00:00:00.000Z';
const rec = (a: dnsPacket.Answer): { ttl?: number; data?: unknown } => a as { ttl?: number; data?: unknown };

function bridgeNet(name: string, o: Partial<Record<string, unknown>> = {}): DnsNetworkRecord {
  return {
    driver: 'bridge',
    name,
    bridge: `br-${name}`,
    subnet: '172.20.0.0/16',
    gateway: '172.20.0.1',
    mtu: 1500,
    internal: false,
    icc: true,
    ipMasquerade: true,
    labels: {},
    created,
    ...o,
  } as DnsNetworkRecord;
}

function ep(network: string, id: string, ipv4: string, o: Partial<DnsEndpointRecord> = {}): DnsEndpointRecord {
  return { id, network, ipv4, ports: [], created, ...o };
}

function q(name: string, type: dnsPacket.RecordType): Query {
  const p = parseQuery(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }));
  assert.equal(p.kind, 'query');
  return (p as { query: Query }).query;
}

function decoded(d: ReturnType<typeof decide>): dnsPacket.DecodedPacket & { rcode: string } {
  assert.equal(d.kind, 'reply');
  return dnsPacket.decode((d as { response: Buffer }).response) as dnsPacket.DecodedPacket & { rcode: string };
}

describe('dns: which networks are served', () => {
  it('user bridge and overlay networks by default; not the predefined bridge, macvlan, host/none/container, nor dns: false', () => {
    assert.equal(dnsEnabled(bridgeNet('app')), true);
    assert.equal(dnsEnabled(bridgeNet('app', { dns: false })), false);
    assert.equal(dnsEnabled(bridgeNet('bridge')), false, "the predefined bridge, like Docker's");
    assert.equal(dnsEnabled(bridgeNet('bridge', { dns: {} })), true, 'unless its record turns it on');
    assert.equal(
      dnsEnabled({ driver: 'overlay', name: 'ov', gateway: '10.88.3.1', subnet: '10.88.0.0/16', hostSubnet: '10.88.3.0/24' } as unknown as DnsNetworkRecord),
      true,
    );
    assert.equal(
      dnsEnabled({ driver: 'macvlan', name: 'mv', parent: 'eth0', subnet: '192.168.1.0/24', gateway: '192.168.1.1', dns: {} } as unknown as DnsNetworkRecord),
      false,
      'macvlan never',
    );
    for (const driver of ['host', 'none', 'container']) assert.equal(dnsEnabled({ driver, name: driver, labels: {}, created } as DnsNetworkRecord), false);
  });

  it("listens on the gateway and, dual stack, the IPv6 gateway; upstreams are the network's own when it names them", () => {
    assert.deepEqual(listenAddresses(bridgeNet('app')), ['172.20.0.1']);
    assert.deepEqual(listenAddresses(bridgeNet('app', { subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' })), ['172.20.0.1', 'fd00:1::1']);
    assert.deepEqual(listenAddresses(bridgeNet('app', { dns: false })), []);
    assert.equal(networkUpstreams(bridgeNet('app')), undefined);
    assert.deepEqual(networkUpstreams(bridgeNet('app', { dns: { upstream: ['192.0.2.53', '[2001:db8::53]:5353', 'junk'] } })), [
      { address: '192.0.2.53', port: 53, family: 4 },
      { address: '2001:db8::53', port: 5353, family: 6 },
    ]);
    assert.deepEqual(networkUpstreams(bridgeNet('app', { dns: { upstream: [] } })), [], 'an empty list forwards nothing');
  });
});

describe('dns: the records index', () => {
  const nets = [
    bridgeNet('app', { subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' }),
    bridgeNet('other', { subnet: '172.21.0.0/16', gateway: '172.21.0.1' }),
    bridgeNet('off', { dns: false, subnet: '172.22.0.0/16', gateway: '172.22.0.1' }),
  ];
  const eps = [
    ep('app', 'c1', '172.20.0.2', { ipv6: 'fd00:1::2', name: 'Web', aliases: ['www', 'shop.internal', 'lb'] }),
    ep('app', 'c2', '172.20.0.3', { aliases: ['lb'] }),
    ep('app', 'bad:id', '172.20.0.4', { aliases: ['ok-alias', 'not a name', 'x'.repeat(64)] }),
    ep('other', 'c1', '172.21.0.2'),
    ep('off', 'c9', '172.22.0.2'),
    ep('gone', 'c8', '172.23.0.2'),
  ];
  const index = RecordIndex.build(nets, eps);

  it('indexes id, name and aliases (lowercase) per network; a shared alias holds every address', () => {
    const app = index.zone('app')!;
    assert.deepEqual(app.names.get('c1'), { v4: ['172.20.0.2'], v6: ['fd00:1::2'] });
    assert.deepEqual(app.names.get('web'), { v4: ['172.20.0.2'], v6: ['fd00:1::2'] });
    assert.deepEqual(app.names.get('shop.internal')?.v4, ['172.20.0.2']);
    assert.deepEqual(app.names.get('lb')?.v4, ['172.20.0.2', '172.20.0.3']);
    assert.deepEqual(index.zone('other')!.names.get('c1')?.v4, ['172.21.0.2'], 'the same id in another network: its address there');
    assert.equal(index.zone('off'), undefined);
    assert.equal(index.zone('gone'), undefined);
  });

  it('leaves out what is not a DNS name, never failing on it', () => {
    const app = index.zone('app')!;
    assert.equal(app.names.has('bad:id'), false);
    assert.deepEqual(app.names.get('ok-alias')?.v4, ['172.20.0.4']);
    assert.equal(
      [...app.names.keys()].some((k) => k.includes(' ') || k.length > 63),
      false,
    );
    assert.doesNotThrow(() =>
      RecordIndex.build([null, { name: 5 }] as unknown as DnsNetworkRecord[], [null, 7, { network: 'app' }] as unknown as DnsEndpointRecord[]),
    );
  });

  it('PTR names the endpoint by its name, else its id; the listeners are every gateway', () => {
    const app = index.zone('app')!;
    assert.equal(app.ptr.get('172.20.0.2'), 'web');
    assert.equal(app.ptr.get('fd00:1::2'), 'web');
    assert.equal(app.ptr.get('172.20.0.3'), 'c2');
    assert.deepEqual(index.listeners(), [
      { network: 'app', address: '172.20.0.1' },
      { network: 'app', address: 'fd00:1::1' },
      { network: 'other', address: '172.21.0.1' },
    ]);
  });

  it("counts each served network's endpoints, with a name or not (what keeps the nsnet daemon up)", () => {
    assert.deepEqual(
      [...index.zones.values()].map((z) => [z.network, z.endpoints]),
      [
        ['app', 3],
        ['other', 1],
      ],
      'bad:id counts: it was given the resolver too',
    );
    assert.deepEqual(
      [...RecordIndex.build(nets, []).zones.values()].map((z) => z.endpoints),
      [0, 0],
    );
  });

  it('knows who is inside a network', () => {
    const app = index.zone('app')!;
    assert.equal(app.contains('172.20.255.254'), true);
    assert.equal(app.contains('fd00:1::abcd'), true);
    assert.equal(app.contains('172.21.0.2'), false);
    assert.equal(app.contains('fd00:2::1'), false);
    assert.equal(app.contains('not-an-ip'), false);
  });

  it('maps reverse names to addresses and nothing else', () => {
    assert.equal(reverseAddress('2.0.20.172.in-addr.arpa'), '172.20.0.2');
    assert.equal(reverseAddress(`${'2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f'}.ip6.arpa`), 'fd00:1::2');
    for (const n of ['20.172.in-addr.arpa', '256.0.20.172.in-addr.arpa', '02.0.20.172.in-addr.arpa', 'in-addr.arpa', '1.ip6.arpa', 'example.com'])
      assert.equal(reverseAddress(n), undefined, n);
  });

  it('decide(): names of the network, NODATA, PTR, NXDOMAIN for bare names, REFUSED from outside, forward for the rest', () => {
    const app = index.zone('app')!;
    const inside = { src: '172.20.0.3', transport: 'udp' as const };
    let r = decoded(decide(q('WWW', 'A'), app, inside));
    assert.equal(r.rcode, 'NOERROR');
    assert.equal(r.flag_aa, true);
    assert.deepEqual(
      r.answers?.map((a) => [a.name, a.type, rec(a).ttl, rec(a).data]),
      [['WWW', 'A', 0, '172.20.0.2']],
      "the question's case is echoed; TTL 0",
    );
    r = decoded(decide(q('web', 'ANY' as dnsPacket.RecordType), app, inside));
    assert.deepEqual(
      r.answers?.map((a) => a.type),
      ['A', 'AAAA'],
    );
    r = decoded(decide(q('c2', 'AAAA'), app, inside));
    assert.equal(r.rcode, 'NOERROR');
    assert.equal(r.answers?.length, 0, 'a name without IPv6: NODATA, not NXDOMAIN');
    r = decoded(decide(q('web', 'MX'), app, inside));
    assert.equal(r.rcode, 'NOERROR');
    r = decoded(decide(q('2.0.20.172.in-addr.arpa', 'PTR'), app, inside));
    assert.deepEqual(
      r.answers?.map((a) => rec(a).data),
      ['web'],
    );
    r = decoded(decide(q('99.0.20.172.in-addr.arpa', 'PTR'), app, inside));
    assert.equal(r.rcode, 'NXDOMAIN', 'an address of the network without an endpoint');
    assert.equal(decide(q('2.0.21.172.in-addr.arpa', 'PTR'), app, inside).kind, 'forward', "another network's address is not ours to answer");
    r = decoded(decide(q('nothere', 'A'), app, inside));
    assert.equal(r.rcode, 'NXDOMAIN');
    assert.equal(decide(q('nothere', 'NS'), app, inside).kind, 'forward', "a bare name's other types (a TLD's NS) go upstream");
    assert.equal(decide(q('example.com', 'A'), app, inside).kind, 'forward');
    r = decoded(decide(q('web', 'A'), app, { src: '172.21.0.2', transport: 'udp' }));
    assert.equal(r.rcode, 'REFUSED', 'a client of another network');
    r = decoded(decide(q('example.com', 'A'), app, { src: '10.0.0.9', transport: 'tcp' }));
    assert.equal(r.rcode, 'REFUSED', 'not an open resolver');
  });

  it('decide(): many addresses under one name are cut to the UDP limit with TC, and rotate', () => {
    const many = Array.from({ length: 60 }, (_, i) => ep('app', `n${i}`, `172.20.1.${i + 1}`, { aliases: ['pool'] }));
    const zone = RecordIndex.build(nets, many).zone('app')!;
    const udp = decide(q('pool', 'A'), zone, { src: '172.20.0.9', transport: 'udp' }) as { response: Buffer };
    assert.ok(udp.response.length <= 512);
    const p = dnsPacket.decode(udp.response);
    assert.equal(p.flag_tc, true);
    assert.ok((p.answers ?? []).length > 10);
    const tcp = dnsPacket.decode((decide(q('pool', 'A'), zone, { src: '172.20.0.9', transport: 'tcp' }) as { response: Buffer }).response);
    assert.equal(tcp.answers?.length, 60);
    assert.notEqual(rec(p.answers![0]!).data, rec(tcp.answers![0]!).data, 'the first address rotates');
  });
});
