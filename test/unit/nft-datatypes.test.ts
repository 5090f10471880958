/**
 * Set key and map value types (lib/nftables/datatypes.ts): the bytes each value becomes, the
 * hand-read dotted quad against ipaddr.js, and concatenations padded field by field.
 */
import * as assert from 'node:assert/strict';
import * as ipaddr from 'ipaddr.js';
import { Layout } from '../../lib/nftables/datatypes';

const hex = (b: Buffer): string => b.toString('hex');

describe('nf_tables data types', () => {
  it('an IPv4 address becomes the bytes ipaddr.js gives, for 20,000 addresses and the edges', () => {
    const l = new Layout('ipv4_addr');
    const some = ['0.0.0.0', '255.255.255.255', '1.2.3.4', '10.0.0.255', '192.168.100.9', '100.64.0.1'];
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let i = 0; i < 20000; i++) some.push(`${rnd()}.${rnd()}.${rnd()}.${rnd()}`);
    for (const a of some) assert.equal(hex(l.encode(a)), hex(Buffer.from(ipaddr.IPv4.parse(a).toByteArray())), a);
  });

  it('what is not a plain dotted quad is refused as before, with ERR_INVALID_IP', () => {
    const l = new Layout('ipv4_addr');
    for (const bad of ['256.1.1.1', '1.2.3', '1.2.3.4.', ' 1.2.3.4', '1.2.3.-4', 'a.b.c.d', '', '::1', '0x7f.0.0.1', 5, null]) {
      assert.throws(
        () => l.encode(bad),
        (e: any) => e.code === 'ERR_INVALID_IP',
        JSON.stringify(bad),
      );
    }
  });

  it('a concatenation pads each field to 4 bytes, in one buffer', () => {
    assert.equal(hex(new Layout(['inet_proto', 'inet_service']).encode(['tcp', 80])), '06000000' + '00500000');
    assert.equal(hex(new Layout(['ipv4_addr', 'inet_service']).encode(['10.0.0.1', 8080])), '0a000001' + '1f900000');
    assert.equal(hex(new Layout(['inet_proto', 'ipv4_addr', 'inet_service']).encode(['udp', '172.20.0.2', 53])), '11000000' + 'ac140002' + '00350000');
    assert.equal(new Layout(['ether_addr', 'inet_service']).encode(['02:42:ac:11:00:02', 1]).length, 8 + 4);
    assert.throws(
      () => new Layout(['inet_proto', 'inet_service']).encode(['tcp']),
      (e: any) => e.code === 'ERR_INVALID_ARGUMENT',
    );
  });
});
