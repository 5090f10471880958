/**
 * The host-wide port ledger and the validation of what a connect asks (lib/state/ledger.ts,
 * lib/state/publish.ts) without a kernel, against an in-memory transaction: families and host
 * addresses, sockets by family (IPV6_V6ONLY), hostPort 0 free in every family, one point lookup
 * per port however many are held, documents of older versions, and the sharing of a port by the
 * attachments of one container (who receives it, who takes over).
 */
import * as assert from 'node:assert/strict';
import type { PortMapping } from '../../lib/host-types';
import type { BoundSocket } from '../../lib/netlink/sockets';
import { PORTS } from '../../lib/state/collections';
import {
  claimantOf,
  claimsOf,
  ledgerKey,
  parseLedgerKey,
  receivingPorts,
  recordClaims,
  releaseClaims,
  resolvePorts,
  type Claimant,
} from '../../lib/state/ledger';
import { checkPublishFamilies, checkWithFirewall, normalizeClaims, normalizePublish, targetsOf } from '../../lib/state/publish';
import { MemTx } from '../helpers/memstore';

const code = (c: string, re?: RegExp) => (e: any) => {
  assert.equal(e?.code, c, `expected ${c}, got ${e?.code}: ${e?.message}`);
  if (re) assert.match(e.message, re);
  return true;
};
const tcp = (hostPort: number, containerPort = 80, hostIp?: string, hostPortEnd?: number): PortMapping => ({
  protocol: 'tcp',
  hostPort,
  containerPort,
  ...(hostIp !== undefined ? { hostIp } : {}),
  ...(hostPortEnd !== undefined ? { hostPortEnd } : {}),
});
/** A published attachment (`network/id`) of a container, dual-stack unless said. */
const pub = (holder: string, container = holder.split('/')[1]!, dual = true): Claimant => ({ holder, container, published: true, dual });
const sock = (protocol: 'tcp' | 'udp', address: string, port: number, v6only = false): BoundSocket => ({
  protocol,
  family: address.includes(':') ? 6 : 4,
  address,
  port,
  v6only,
});

/** Resolves and records, as connect does. */
function connect(tx: MemTx, who: Claimant, ports: PortMapping[], sockets?: BoundSocket[]) {
  const r = resolvePorts(tx, who, ports, sockets);
  recordClaims(tx, who, r.ports);
  return r;
}

describe('port ledger', () => {
  describe('what a connect asks', () => {
    it("publish: hostIp kept as given (0.0.0.0, ::, an address of either family); ::1, link-local, multicast, v4-mapped and non-addresses refused with the firewall's codes", () => {
      assert.deepEqual(
        normalizePublish([tcp(80), tcp(81, 80, '0.0.0.0'), tcp(82, 80, '::'), tcp(83, 80, '2001:DB8:0::1'), tcp(84, 80, '10.0.0.1')]).map((p) => p.hostIp),
        [undefined, '0.0.0.0', '::', '2001:db8::1', '10.0.0.1'],
      );
      assert.deepEqual(normalizePublish([{ hostPort: 80, containerPort: 80, hostIp: '0:0::0' } as PortMapping])[0], {
        protocol: 'tcp',
        hostPort: 80,
        containerPort: 80,
        hostIp: '::',
      });
      for (const bad of ['::1', 'fe80::1', 'ff02::1', '::ffff:10.0.0.1'])
        assert.throws(() => normalizePublish([tcp(80, 80, bad)]), code('ERR_INVALID_HOST_IP'), bad);
      for (const bad of ['10.0.0.300', 'localhost', '', 7])
        assert.throws(() => normalizePublish([tcp(80, 80, bad as string)]), code('ERR_INVALID_IP'), String(bad));
    });

    it('IPv6 publishing needs an IPv6 address: ERR_NO_IPV6_SUBNET on an IPv4-only network, ERR_INVALID_ARGUMENT with ipv6: false', () => {
      for (const hostIp of ['::', '2001:db8::1']) {
        assert.throws(
          () => checkPublishFamilies([tcp(80), tcp(81, 80, hostIp)], 'v4only', false, true),
          code('ERR_NO_IPV6_SUBNET', /publish\[1\] on \[.*\]: network v4only has no IPv6 subnet/u),
        );
        assert.throws(() => checkPublishFamilies([tcp(81, 80, hostIp)], 'ds', true, false), code('ERR_INVALID_ARGUMENT', /ipv6: false/u));
        checkPublishFamilies([tcp(81, 80, hostIp)], 'ds', true, true);
      }
      checkPublishFamilies([tcp(80), tcp(81, 80, '0.0.0.0'), tcp(82, 80, '10.0.0.1')], 'v4only', false, true); // IPv4 only: fine
      // The firewall's check with the container's addresses.
      assert.throws(() => checkWithFirewall([tcp(80, 80, '::')], { ipv4: '10.0.0.2' }), code('ERR_INVALID_ARGUMENT'));
      checkWithFirewall([tcp(80), tcp(81, 80, '::')], { ipv4: '10.0.0.2', ipv6: 'fd00::2' });
    });

    it('host-mode claims: any address of either family (::1 too: a process can listen there), never a v4-mapped one', () => {
      assert.deepEqual(
        normalizeClaims([{ port: 53, protocol: 'udp', hostIp: '::1' }, { port: 80, hostIp: '::' }, { port: 81 }]).map((p) => p.hostIp),
        ['::1', '::', undefined],
      );
      assert.throws(() => normalizeClaims([{ port: 80, hostIp: '::ffff:10.0.0.1' }]), code('ERR_INVALID_HOST_IP', /claim 10\.0\.0\.1/u));
    });

    it('targets: no hostIp is both families on a dual-stack endpoint, IPv4 otherwise; a wildcard or an address is its family', () => {
      assert.deepEqual(targetsOf({}, true), [{ family: 4 }, { family: 6 }]);
      assert.deepEqual(targetsOf({}, false), [{ family: 4 }]);
      assert.deepEqual(targetsOf({ hostIp: '0.0.0.0' }, true), [{ family: 4 }]);
      assert.deepEqual(targetsOf({ hostIp: '::' }, false), [{ family: 6 }]);
      assert.deepEqual(targetsOf({ hostIp: '2001:db8::1' }, true), [{ family: 6, hostIp: '2001:db8::1' }]);
      assert.deepEqual([ledgerKey(4, 'tcp', 80), ledgerKey(6, 'udp', 53)], ['tcp:80', 'udp6:53']);
      assert.deepEqual(parseLedgerKey('sctp6:9'), { family: 6, protocol: 'sctp', port: 9 });
      assert.equal(parseLedgerKey('tcp:x'), undefined);
    });
  });

  describe('claims by family', () => {
    it('no hostIp on a dual-stack endpoint claims both families, needing both free; 0.0.0.0 and :: are two claims for two containers', () => {
      const tx = new MemTx();
      connect(tx, pub('app/a'), [tcp(8080)]);
      assert.deepEqual(
        [tx.doc(PORTS, 'tcp:8080'), tx.doc(PORTS, 'tcp6:8080')],
        [[{ holder: 'app/a', container: 'a', containerPort: 80 }], [{ holder: 'app/a', container: 'a', containerPort: 80 }]],
      );
      connect(tx, pub('app/b'), [tcp(8081, 80, '0.0.0.0')]);
      connect(tx, pub('app/c'), [tcp(8081, 80, '::')]);
      assert.throws(() => connect(tx, pub('app/d'), [tcp(8081)]), code('ERR_PORT_IN_USE', /tcp port 0\.0\.0\.0:8081 is held by endpoint b \(network app\)/u));
      assert.throws(() => connect(tx, pub('app/d'), [tcp(8080, 80, '::')]), code('ERR_PORT_IN_USE', /\[::\]:8080 is held by endpoint a/u));
      assert.throws(() => connect(tx, pub('app/d'), [tcp(8080, 80, '2001:db8::1')]), code('ERR_PORT_IN_USE'), 'one IPv6 address under an IPv6 wildcard');
      // An IPv4-only endpoint's no-hostIp claim is IPv4 only: [::]:8082 stays free.
      connect(tx, pub('v4/e', 'e', false), [tcp(8082)]);
      assert.equal(tx.doc(PORTS, 'tcp6:8082'), undefined);
      connect(tx, pub('app/f'), [tcp(8082, 80, '::')]);
      // Addresses: two IPv6 addresses coexist; an IPv4 address and an IPv6 one never clash.
      connect(tx, pub('app/g'), [tcp(9000, 80, '2001:db8::1')]);
      connect(tx, pub('app/h'), [tcp(9000, 80, '2001:db8::2'), tcp(9000, 80, '10.0.0.1')]);
      assert.throws(() => connect(tx, pub('app/i'), [tcp(9000, 80, '::')]), code('ERR_PORT_IN_USE', /held by endpoint g/u));
      assert.throws(() => connect(tx, pub('app/i'), [tcp(9000, 80, '0.0.0.0')]), code('ERR_PORT_IN_USE', /held by endpoint h/u));
      // Twice in one request, within a family.
      assert.throws(() => connect(tx, pub('app/i'), [tcp(9100), tcp(9100, 81, '::')]), code('ERR_PORT_IN_USE', /this request \(twice\)/u));
      connect(tx, pub('app/i'), [tcp(9100, 80, '0.0.0.0'), tcp(9100, 81, '::')]);
    });

    it('host-mode claims cover both families and exclude published ports of either', () => {
      const tx = new MemTx();
      const web: Claimant = { holder: 'host/web', container: 'web', published: false, dual: true };
      connect(tx, web, normalizeClaims([{ port: 7000 }, { port: 7001, hostIp: '::1' }]));
      assert.throws(() => connect(tx, pub('app/a'), [tcp(7000, 80, '::')]), code('ERR_PORT_IN_USE', /endpoint web \(network host\)/u));
      assert.throws(() => connect(tx, pub('app/a'), [tcp(7001, 80, '::')]), code('ERR_PORT_IN_USE'));
      connect(tx, pub('app/a'), [tcp(7001, 80, '0.0.0.0')]);
      assert.deepEqual(
        claimsOf(tx, 'host/web'),
        [
          { protocol: 'tcp', hostPort: 7001, containerPort: 7001, hostIp: '::1' },
          { protocol: 'tcp', hostPort: 7000, containerPort: 7000 },
        ].sort((a, b) => (a.hostIp ?? '').localeCompare(b.hostIp ?? '')),
      );
    });

    it('sockets on the host: 0.0.0.0 takes IPv4, :: both families unless IPv6-only, an address its own; v4-mapped is IPv4', () => {
      const tx = new MemTx();
      const socks = [
        sock('tcp', '0.0.0.0', 7001),
        sock('tcp', '::', 7002, true),
        sock('tcp', '::', 7003),
        sock('tcp', '2001:db8::1', 7004),
        sock('tcp', '::ffff:a00:1', 7005),
        sock('udp', '::', 7006, true),
      ];
      const ok = (p: PortMapping) => resolvePorts(tx, pub('app/x'), [p], socks);
      const no = (p: PortMapping, re: RegExp) => assert.throws(() => ok(p), code('ERR_PORT_IN_USE', re), JSON.stringify(p));
      no(tcp(7001), /a listening socket on the host \(0\.0\.0\.0:7001\)/u);
      no(tcp(7001, 80, '10.0.0.1'), /0\.0\.0\.0:7001/u);
      ok(tcp(7001, 80, '::'));
      no(tcp(7002), /\[::\]:7002/u);
      ok(tcp(7002, 80, '0.0.0.0'));
      no(tcp(7003, 80, '0.0.0.0'), /\[::\]:7003/u);
      no(tcp(7003, 80, '::'), /\[::\]:7003/u);
      no(tcp(7004, 80, '::'), /\[2001:db8::1\]:7004/u);
      ok(tcp(7004, 80, '2001:db8::2'));
      ok(tcp(7004, 80, '0.0.0.0'));
      no(tcp(7005, 80, '0.0.0.0'), /::ffff:a00:1/u);
      no(tcp(7005, 80, '10.0.0.1'), /::ffff:a00:1/u);
      ok(tcp(7005, 80, '10.0.0.2'));
      ok(tcp(7005, 80, '::'));
      ok({ protocol: 'udp', hostPort: 7006, containerPort: 53, hostIp: '0.0.0.0' });
      // A runtime that holds its ports itself passes no sockets: nothing but the ledger counts.
      resolvePorts(tx, pub('app/x'), [tcp(7003)], undefined);
    });

    it('hostPort 0 picks a port free in every family the mapping claims', () => {
      const tx = new MemTx();
      connect(tx, pub('app/a'), [tcp(32768, 80, '::')]);
      connect(tx, pub('app/b'), [tcp(32769, 80, '0.0.0.0')]);
      assert.equal(connect(tx, pub('app/c'), [tcp(0)]).ports[0]!.hostPort, 32770, 'free in both');
      assert.equal(connect(tx, pub('v4/d', 'd', false), [tcp(0)]).ports[0]!.hostPort, 32768, 'IPv4 only: [::]:32768 is no obstacle');
      assert.equal(resolvePorts(tx, pub('app/e'), [tcp(0)], [sock('tcp', '::', 32771, true)]).ports[0]!.hostPort, 32772, 'a socket on one family');
    });

    it('one point lookup per port and family, with 10,000 ports held', () => {
      const tx = new MemTx();
      for (let i = 0; i < 1000; i++) recordClaims(tx, pub(`app/c${i}`), [tcp(10000 + i * 10, 80, undefined, 10000 + i * 10 + 9)]);
      assert.equal(tx.keys(PORTS).length, 20000);
      tx.gets = 0;
      resolvePorts(tx, pub('app/new'), [tcp(30000), tcp(30001, 80, '::'), { protocol: 'udp', hostPort: 30002, containerPort: 53, hostIp: '0.0.0.0' }], []);
      assert.equal(tx.gets, 4, 'two families, then one each');
      tx.gets = 0;
      receivingPorts(tx, pub('app/c7'), [tcp(10070, 80, undefined, 10079)]);
      assert.equal(tx.gets, 20, 'ten ports of two families');
    });

    it("documents of older versions: tcp:8080 without family is IPv4, its claim the endpoint's container, never shared", () => {
      const tx = new MemTx();
      tx.put(PORTS, 'tcp:8080', [{ holder: 'app/old' }]);
      tx.put(PORTS, 'udp:53', [{ holder: 'app/old', hostIp: '10.0.0.1' }]);
      assert.throws(() => resolvePorts(tx, pub('app/new'), [tcp(8080, 80, '0.0.0.0')], []), code('ERR_PORT_IN_USE', /endpoint old/u));
      assert.throws(
        () => resolvePorts(tx, pub('other/old', 'old'), [tcp(8080)], []),
        code('ERR_PORT_IN_USE'),
        'same container, but an old claim is not shared',
      );
      resolvePorts(tx, pub('app/new'), [tcp(8080, 80, '::'), { protocol: 'udp', hostPort: 53, containerPort: 53, hostIp: '10.0.0.2' }], []);
      // Its endpoint disconnecting releases it; the record is the truth for what it held.
      const old = claimantOf({ id: 'old', network: 'app', ports: [tcp(8080)], ipv4: '10.1.0.2', created: '' }, 'publish');
      assert.deepEqual(receivingPorts(tx, old, [tcp(8080)]), [tcp(8080)]);
      assert.deepEqual(releaseClaims(tx, old, [tcp(8080)]), { detach: [tcp(8080)], handovers: [] });
      assert.equal(tx.doc(PORTS, 'tcp:8080'), undefined);
    });
  });

  describe('one container on several networks', () => {
    it('the same container shares a port (the first attachment receives it); another container, or another container port, is refused', () => {
      const tx = new MemTx();
      const a = connect(tx, pub('net1/ctr:eth0', 'ctr'), [tcp(8083), tcp(8084)]);
      assert.deepEqual(a.receiving, [tcp(8083), tcp(8084)]);
      const b = connect(tx, pub('net2/ctr:eth1', 'ctr'), [tcp(8083)]);
      assert.deepEqual(b.receiving, [], 'the second attachment publishes nothing: the first receives');
      assert.deepEqual(tx.doc(PORTS, 'tcp6:8083'), [
        { holder: 'net1/ctr:eth0', container: 'ctr', containerPort: 80 },
        { holder: 'net2/ctr:eth1', container: 'ctr', containerPort: 80 },
      ]);
      assert.throws(() => connect(tx, pub('net2/other:eth0', 'other'), [tcp(8083)]), code('ERR_PORT_IN_USE', /endpoint ctr:eth0 \(network net1\)/u));
      assert.throws(() => connect(tx, pub('net3/ctr:eth2', 'ctr'), [tcp(8083, 8080)]), code('ERR_PORT_IN_USE'), 'another container port');
      assert.throws(() => connect(tx, pub('net3/ctr:eth2', 'ctr'), [tcp(8083, 80, '2001:db8::1')]), code('ERR_PORT_IN_USE'), 'one address under the wildcard');
      assert.deepEqual(
        resolvePorts(tx, pub('net3/ctr:eth2', 'ctr'), [tcp(8083, 80, '::')], []).receiving,
        [],
        '[::]:8083 alone is the IPv6 half of the same binding',
      );
      const c = connect(tx, pub('net3/ctr:eth2', 'ctr'), [tcp(8083), tcp(0)]);
      assert.deepEqual(
        c.receiving.map((p) => p.hostPort),
        [c.ports[1]!.hostPort],
        'hostPort 0 picks a port no one claims',
      );
      assert.notEqual(c.ports[1]!.hostPort, 8083);
    });

    it('the receiving attachment leaves: the next one in connect order takes over; a waiting one leaves without a trace', () => {
      const tx = new MemTx();
      const [a, b, c] = ['net1/x', 'net2/x', 'net3/x'].map((h) => pub(h, 'x'));
      for (const who of [a!, b!, c!]) connect(tx, who, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]);
      assert.deepEqual(receivingPorts(tx, b!, [tcp(8083)]), []);
      // b (waiting) leaves: nothing to hand over, nothing of its in the firewall.
      assert.deepEqual(releaseClaims(tx, b!, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]), { detach: [], handovers: [] });
      // a (receiving) leaves: c takes every port over, per family and port.
      const r = releaseClaims(tx, a!, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]);
      assert.deepEqual(r.detach, []);
      assert.deepEqual(
        r.handovers.map((h) => `${h.to} ${h.family} ${h.hostIp ?? '*'}:${h.hostPort}->${h.containerPort}`),
        ['net3/x 4 *:8083->80', 'net3/x 6 *:8083->80', 'net3/x 4 *:9000->90', 'net3/x 4 *:9001->91'],
      );
      assert.deepEqual(receivingPorts(tx, c!, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]), [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]);
      assert.deepEqual(releaseClaims(tx, c!, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]).detach, [tcp(8083), tcp(9000, 90, '0.0.0.0', 9001)]);
      assert.deepEqual(tx.keys(PORTS), []);
    });

    it('an IPv4-only and a dual-stack attachment: the first receives IPv4, the second IPv6 alone', () => {
      const tx = new MemTx();
      connect(tx, pub('v4net/x', 'x', false), [tcp(8083)]);
      const ds = connect(tx, pub('dsnet/x', 'x', true), [tcp(8083)]);
      assert.deepEqual(ds.receiving, [{ protocol: 'tcp', hostIp: '::', hostPort: 8083, containerPort: 80 }]);
      const r = releaseClaims(tx, pub('v4net/x', 'x', false), [tcp(8083)]);
      assert.deepEqual(
        r.handovers.map((h) => [h.to, h.family]),
        [['dsnet/x', 4]],
      );
      assert.deepEqual(receivingPorts(tx, pub('dsnet/x', 'x', true), [tcp(8083)]), [tcp(8083)]);
    });
  });
});
