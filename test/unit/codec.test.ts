/**
 * The native attribute codec on bytes captured from a real kernel by an independent script
 * (test/fixtures/capture-rtnl.py, raw sockets, no nsnet code): decoding matches what `ip -j`
 * showed at capture time, encoding round-trips, and malformed input is rejected cleanly.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native, NETLINK_ROUTE, type NativeMessage } from '../../lib/native';
import { decodeLink } from '../../lib/netlink/link-decode';
import { decodeAddress } from '../../lib/netlink/addresses';
import { decodeRoute } from '../../lib/netlink/routes';
import { decodeNeighbor, decodeFdb } from '../../lib/netlink/neighbors';

interface Fixture {
  name: string;
  kind: string;
  hex: string;
  expect: Record<string, any>;
}
const fixtures: Fixture[] = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'rtnl.json'), 'utf8')).fixtures;
const fx = (name: string): Fixture => {
  const f = fixtures.find((x) => x.name === name);
  if (!f) throw new Error(`fixture ${name} missing`);
  return f;
};
const bytes = (name: string): Buffer => Buffer.from(fx(name).hex, 'hex');
const decodeOne = (name: string): NativeMessage => {
  const msgs = native.decode(NETLINK_ROUTE, bytes(name));
  assert.equal(msgs.length, 1);
  return msgs[0]!;
};

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: any) => e.code === code, `expected ${code}`);
}

describe('codec: decoding captured kernel messages', () => {
  for (const name of ['link-lo', 'link-veth', 'link-bridge', 'link-vxlan', 'link-macvlan', 'link-bridge-port']) {
    it(`${name} decodes to what ip -j showed`, () => {
      const e = fx(name).expect;
      const m = decodeOne(name);
      assert.equal(m.name, 'RTM_NEWLINK');
      const l = decodeLink(m);
      assert.equal(l.index, e.ifindex);
      assert.equal(l.name, e.ifname);
      assert.equal(l.mtu, e.mtu);
      assert.equal(l.mac, e.address);
      assert.equal(l.txqlen, e.txqlen);
      assert.deepEqual(l.flags.filter((f) => e.flags.includes(f)).sort(), [...e.flags].sort());
      assert.equal(l.operstate, String(e.operstate).toLowerCase());
      if (e.master_ifindex !== undefined) assert.equal(l.master, e.master_ifindex);
      if (e.ifalias !== undefined) assert.equal(l.alias, e.ifalias);
      const kind = e.linkinfo?.info_kind;
      assert.equal(l.kernelKind, kind ?? '');
      if (kind === 'vxlan') {
        assert.equal(l.kind, 'vxlan');
        if (l.kind !== 'vxlan') return;
        const d = e.linkinfo.info_data;
        assert.equal(l.vxlan.vni, d.id);
        assert.equal(l.vxlan.local, d.local);
        assert.equal(l.vxlan.port, d.port);
        assert.equal(l.vxlan.learning, d.learning);
        assert.equal(l.vxlan.proxy, d.proxy);
        assert.equal(l.vxlan.ttl, d.ttl);
      }
      if (kind === 'macvlan') {
        assert.equal(l.kind, 'macvlan');
        if (l.kind === 'macvlan') assert.equal(l.macvlan.mode, e.linkinfo.info_data.mode);
      }
      if (e.linkinfo?.info_slave_kind === 'bridge') {
        assert.ok(l.bridgePort, 'bridge port info decoded');
        assert.equal(l.bridgePort?.learning, e.linkinfo.info_slave_data.learning);
      }
      if (e.link_ifindex !== undefined) assert.equal(l.parentIndex, e.link_ifindex);
    });
  }

  it('keeps attributes it has no schema row for as raw bytes', () => {
    const m = decodeOne('link-lo');
    // Nothing is dropped: every attribute is either named or in `unknown` with its bytes.
    const raw = bytes('link-lo');
    let count = 0;
    for (let off = 16 + 16; off + 4 <= raw.length;) {
      const len = raw.readUInt16LE(off);
      count++;
      off += (len + 3) & ~3;
    }
    const named = Object.keys(m.attrs).filter((k) => k !== 'unknown').length;
    assert.equal(named + (m.attrs.unknown?.length ?? 0), count);
  });

  it('addresses decode (IPv4 and IPv6)', () => {
    for (const name of ['addr-ipv4', 'addr-ipv6']) {
      const e = fx(name).expect;
      const a = decodeAddress(decodeOne(name));
      assert.equal(a.address, e.local);
      assert.equal(a.prefixLength, e.prefixlen);
      assert.equal(a.index, e.ifindex);
      assert.equal(a.family, e.family === 'inet' ? 4 : 6);
      if (e.label) assert.equal(a.label, e.label);
      if (e.nodad) assert.ok(a.flags.includes('nodad'));
    }
  });

  it('routes decode', () => {
    for (const name of ['route-ipv4', 'route-ipv4-default', 'route-ipv6']) {
      const e = fx(name).expect;
      const r = decodeRoute(decodeOne(name));
      assert.equal(r.dst, e.dst);
      assert.equal(r.gateway, e.gateway);
      assert.equal(r.dev, e.ifindex);
      assert.equal(r.table, e.numeric.table);
      assert.equal(r.protocol, e.protocol);
      if (e.metric !== undefined) assert.equal(r.metric, e.metric);
    }
  });

  it('neighbours and FDB entries decode', () => {
    const n = decodeNeighbor(decodeOne('neigh-ipv4'));
    const ne = fx('neigh-ipv4').expect;
    assert.equal(n.ip, ne.dst);
    assert.equal(n.mac, ne.lladdr);
    assert.equal(n.index, ne.ifindex);
    assert.deepEqual(
      n.state,
      ne.state.map((s: string) => s.toLowerCase()),
    );
    const f = decodeFdb(decodeOne('fdb-vxlan'));
    const fe = fx('fdb-vxlan').expect;
    assert.equal(f.mac, fe.mac);
    assert.equal(f.dst, fe.dst);
    assert.equal(f.index, fe.ifindex);
    assert.equal(f.self, fe.flags.includes('self'));
    assert.equal(f.permanent, fe.state === 'permanent');
  });

  it('a multi-message datagram decodes into each message', () => {
    const e = fx('dump-link-multi').expect;
    const msgs = native.decode(NETLINK_ROUTE, bytes('dump-link-multi'));
    assert.equal(msgs.length, e.count);
    assert.deepEqual(
      msgs.map((m) => m.attrs.ifname),
      e.messages.map((m: any) => m.ifname),
    );
    assert.deepEqual(
      msgs.map((m) => m.header.index),
      e.messages.map((m: any) => m.ifindex),
    );
  });

  it('error messages yield errno and extended-ACK text', () => {
    const ua = native.parseError(bytes('error-extack-unknown-kind'));
    assert.equal(ua.errno, fx('error-extack-unknown-kind').expect.errno);
    assert.equal(ua.code, 'EOPNOTSUPP');
    assert.equal(ua.extack, 'Unknown device type');
    const ex = native.parseError(bytes('error-eexist'));
    assert.equal(ex.errno, 17);
    assert.equal(ex.code, 'EEXIST');
    assert.equal(ex.extack, undefined);
    expectCode(() => native.parseError(bytes('link-lo')), 'ERR_MALFORMED_MESSAGE');
  });
});

describe('codec: encoding', () => {
  for (const name of [
    'link-veth',
    'link-bridge',
    'link-vxlan',
    'link-macvlan',
    'link-bridge-port',
    'addr-ipv4',
    'addr-ipv6',
    'route-ipv4',
    'route-ipv6',
    'neigh-ipv4',
    'fdb-vxlan',
  ]) {
    it(`${name}: decode -> encode -> decode is the identity`, () => {
      const m = decodeOne(name);
      const again = native.encode(NETLINK_ROUTE, { type: m.type, flags: m.flags, seq: m.seq, header: m.header, attrs: m.attrs });
      const [m2] = native.decode(NETLINK_ROUTE, again);
      assert.deepEqual(m2!.header, m.header);
      assert.deepEqual(m2!.attrs, m.attrs);
      // Same bytes apart from attribute order (unknown attributes are written last).
      assert.equal(again.length, bytes(name).length);
    });
  }

  it('writes the header and attributes the kernel expects for a veth with a peer', () => {
    const buf = native.encode(NETLINK_ROUTE, {
      type: 16,
      flags: 0x605,
      seq: 7,
      header: { index: 0 },
      attrs: { ifname: 'va', mtu: 1450, linkinfo: { kind: 'veth', data: { peer: { header: {}, attrs: { ifname: 'vb' } } } } },
    });
    assert.equal(buf.readUInt32LE(0), buf.length, 'nlmsg_len');
    assert.equal(buf.readUInt16LE(4), 16, 'RTM_NEWLINK');
    assert.equal(buf.readUInt16LE(6), 0x605);
    assert.equal(buf.readUInt32LE(8), 7, 'seq');
    assert.equal(buf.length % 4, 0, 'aligned');
    // IFLA_IFNAME "va\0" right after nlmsghdr(16) + ifinfomsg(16)
    assert.equal(buf.readUInt16LE(32), 7);
    assert.equal(buf.readUInt16LE(34), 3);
    assert.equal(buf.toString('latin1', 36, 39), 'va\0');
    const [m] = native.decode(NETLINK_ROUTE, buf);
    assert.deepEqual(m!.attrs.linkinfo, {
      kind: 'veth',
      data: { peer: { header: { family: 0, type: 0, index: 0, flags: 0, change: 0 }, attrs: { ifname: 'vb' } } },
    });
  });

  it('rejects what does not fit the schema, with ERR_INVALID_ARGUMENT', () => {
    const bad: Record<string, unknown>[] = [
      { type: 16, flags: 0, attrs: { nosuch: 1 } },
      { type: 16, flags: 0, attrs: { mtu: -1 } },
      { type: 16, flags: 0, attrs: { mtu: 2 ** 32 } },
      { type: 16, flags: 0, attrs: { mtu: 1.5 } },
      { type: 16, flags: 0, attrs: { operstate: 256 } },
      { type: 16, flags: 0, attrs: { ifname: 'a\0b' } },
      { type: 16, flags: 0, attrs: { ifname: 5 } },
      { type: 16, flags: 0, attrs: { address: 'zz:00:00:00:00:00' } },
      { type: 16, flags: 0, attrs: { address: '02:42:ac' + ':00'.repeat(40) } },
      { type: 20, flags: 0, attrs: { local: '300.1.1.1' } },
      { type: 16, flags: 0, header: { nosuch: 1 } },
      { type: 16, flags: 0, header: { index: 2 ** 31 } },
      { type: 16, flags: 0, attrs: { linkinfo: { kind: 'veth', data: { peer: { attrs: { bogus: 1 } } } } } },
      { type: 16, flags: 0, attrs: { linkinfo: { data: {} } } },
      { type: 16, flags: 0, attrs: { unknown: [{ type: 0, data: Buffer.alloc(1) }] } },
      { type: 999, flags: 0 },
      { type: 16, flags: 0x10000 },
    ];
    for (const req of bad) expectCode(() => native.encode(NETLINK_ROUTE, req as never), 'ERR_INVALID_ARGUMENT');
  });

  it('names an unknown attribute or field whole, however long; reads only own keys', () => {
    const long = 'x'.repeat(200);
    for (const [req, text] of [
      [{ type: 16, flags: 0, attrs: { [long]: 1 } }, `unknown attribute '${long}'`],
      [{ type: 16, flags: 0, header: { [long]: 1 } }, `unknown field '${long}'`],
      [{ type: 16, flags: 0, attrs: { ['é'.repeat(40)]: 1 } }, `unknown attribute '${'é'.repeat(40)}'`],
    ] as const)
      assert.throws(
        () => native.encode(NETLINK_ROUTE, req as never),
        (e: any) => e.code === 'ERR_INVALID_ARGUMENT' && e.message.includes(text),
      );
    // An inherited enumerable property is not part of the request.
    const attrs = Object.create({ nosuch: 1 }) as Record<string, unknown>;
    attrs.mtu = 1400;
    const plain = native.encode(NETLINK_ROUTE, { type: 16, flags: 0, attrs: { mtu: 1400 } } as never);
    assert.deepEqual(native.encode(NETLINK_ROUTE, { type: 16, flags: 0, attrs } as never), plain);
  });
});

describe('codec: malformed input', () => {
  const all = fixtures.filter((f) => f.kind.startsWith('RTM_')).map((f) => Buffer.from(f.hex, 'hex'));

  it('every truncation of every message is rejected or decodes to fewer messages, never read out of bounds', () => {
    for (const buf of all) {
      for (let n = 0; n < buf.length; n++) {
        const cut = Buffer.from(buf.subarray(0, n)); // a copy: nothing valid lies past its end
        try {
          const msgs = native.decode(NETLINK_ROUTE, cut);
          assert.equal(msgs.length, 0, `a cut at ${n} cannot hold a whole message`);
        } catch (e: any) {
          assert.equal(e.code, 'ERR_MALFORMED_MESSAGE');
        }
      }
    }
  });

  it('attribute lengths that lie are rejected', () => {
    const buf = Buffer.from(bytes('link-veth'));
    const first = 32; // first attribute after nlmsghdr + ifinfomsg
    for (const len of [0, 1, 3, 0xffff, buf.length - first + 1]) {
      const b = Buffer.from(buf);
      b.writeUInt16LE(len, first);
      expectCode(() => native.decode(NETLINK_ROUTE, b), 'ERR_MALFORMED_MESSAGE');
    }
    const b = Buffer.from(buf);
    b.writeUInt32LE(b.length + 4, 0); // nlmsg_len past the end
    expectCode(() => native.decode(NETLINK_ROUTE, b), 'ERR_MALFORMED_MESSAGE');
    const h = Buffer.from(buf.subarray(0, 24));
    h.writeUInt32LE(24, 0); // shorter than ifinfomsg
    expectCode(() => native.decode(NETLINK_ROUTE, h), 'ERR_MALFORMED_MESSAGE');
  });

  it('random corruption never crashes the decoder (5,000 mutations)', () => {
    let seed = 12345;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const src = all[rand(all.length)]!;
      const b = Buffer.from(src);
      const flips = 1 + rand(8);
      for (let j = 0; j < flips; j++) b[rand(b.length)] = rand(256);
      try {
        native.decode(NETLINK_ROUTE, b);
        decoded++;
      } catch (e: any) {
        assert.equal(e.code, 'ERR_MALFORMED_MESSAGE');
        rejected++;
      }
    }
    assert.equal(decoded + rejected, 5000);
    assert.ok(rejected > 0 && decoded > 0, `both outcomes occur (${decoded} decoded, ${rejected} rejected)`);
  });
});
