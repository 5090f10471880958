/**
 * The XFRM message schema (native/xfrm): a GETSA dump request is what the kernel expects, and
 * an SA laid out by hand from include/uapi/linux/xfrm.h decodes field by field.
 */
import * as assert from 'node:assert/strict';
import { native, NETLINK_XFRM } from '../../lib/native';

describe('xfrm: messages', () => {
  it('XFRM_MSG_GETSA dumps are a bare netlink header (the kernel reads only attributes)', () => {
    const b = native.encode(NETLINK_XFRM, { type: 0x12, flags: 0x301 });
    assert.equal(b.length, 16);
    assert.equal(b.readUInt32LE(0), 16);
    assert.equal(b.readUInt16LE(4), 0x12);
    const withProto = native.encode(NETLINK_XFRM, { type: 0x12, flags: 0x301, attrs: { proto: 50 } });
    assert.deepEqual([...withProto.subarray(16)], [5, 0, 25, 0, 50, 0, 0, 0]); // XFRMA_PROTO = 25
  });

  it('XFRM_MSG_NEWSA decodes its struct xfrm_usersa_info and keeps attributes raw', () => {
    // struct xfrm_usersa_info: sel (56 bytes), id { daddr 16, spi be32 @72, proto u8 @76 },
    // saddr @80, lft @96 (64), curlft @160 (32), stats @192 (12), seq @204, reqid @208,
    // family u16 @212, mode @214, replay_window @215, flags @216; 224 bytes in all.
    const info = Buffer.alloc(224);
    info.writeUInt32BE(0x1234, 72);
    info[76] = 50;
    info.writeUInt32LE(7, 208);
    info.writeUInt16LE(2, 212);
    info[214] = 1;
    info[215] = 32;
    const attr = Buffer.from([8, 0, 2, 0, 1, 2, 3, 4]); // type 2 (XFRMA_ALG_CRYPT), 4 bytes
    const hdr = Buffer.alloc(16);
    hdr.writeUInt32LE(16 + info.length + attr.length, 0);
    hdr.writeUInt16LE(0x10, 4);
    const [m] = native.decode(NETLINK_XFRM, Buffer.concat([hdr, info, attr]));
    assert.equal(m?.name, 'XFRM_MSG_NEWSA');
    assert.deepEqual(m?.header, { spi: 0x1234, proto: 50, reqid: 7, family: 2, mode: 1, replayWindow: 32, flags: 0 });
    assert.deepEqual(m?.attrs.unknown, [{ type: 2, nested: false, data: '01020304' }]);
  });
});
