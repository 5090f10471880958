/** Overlay mode without the kernel: block arithmetic, configuration checks, VTEP MACs, firewall elements. */
import * as assert from 'node:assert/strict';
import { NsnetError } from '../../lib/errors';
import { networkElements, normalizeNetwork } from '../../lib/firewall/elements';
import {
  blockAt,
  blockCount,
  blockKey,
  blockOfKey,
  checkBlock,
  checkConflicts,
  gatewayOf,
  normalizeSpec,
  overlaps,
  pickBlock,
  vtepAddress,
  vtepMacOf,
} from '../../lib/overlay/controlplane';
import { overlayMtu, overlayNames } from '../../lib/overlay/devices';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NsnetError, String(e));
    return e.code;
  }
  return 'no error';
};

describe('overlay (no kernel)', () => {
  const cfg = normalizeSpec({ name: 'ov', subnet: '10.88.0.0/16', vni: 42 });

  it('splits the range into host blocks and names their addresses', () => {
    assert.equal(blockCount(cfg), 256);
    assert.equal(blockAt(cfg, 0), '10.88.0.0/24');
    assert.equal(blockAt(cfg, 255), '10.88.255.0/24');
    assert.equal(blockKey('10.88.3.0/24'), '10.88.3.0-24');
    assert.equal(blockOfKey('10.88.3.0-24'), '10.88.3.0/24');
    assert.equal(vtepAddress('10.88.3.0/24'), '10.88.3.0');
    assert.equal(gatewayOf('10.88.3.0/24'), '10.88.3.1');
    const small = normalizeSpec({ name: 's', subnet: '10.99.0.0/24', vni: 1, hostPrefix: 27 });
    assert.deepEqual(Array.from({ length: blockCount(small) }, (_, i) => blockAt(small, i)).slice(0, 3), ['10.99.0.0/27', '10.99.0.32/27', '10.99.0.64/27']);
    assert.equal(checkBlock(cfg, '10.88.7.0/24'), '10.88.7.0/24');
    assert.equal(
      code(() => checkBlock(cfg, '10.88.7.0/25')),
      'ERR_INVALID_CIDR',
    );
    assert.equal(
      code(() => checkBlock(cfg, '10.88.7.1/24')),
      'ERR_INVALID_CIDR',
    );
    assert.equal(
      code(() => checkBlock(cfg, '10.89.0.0/24')),
      'ERR_INVALID_CIDR',
    );
  });

  it('picks the block asked for when free, another (or ERR_SUBNET_TAKEN with exact) when not, ERR_NO_FREE_SUBNET when none is left', () => {
    const taken = new Map([['10.88.1.0/24', 'h1']]);
    assert.equal(pickBlock(cfg, taken, { subnet: '10.88.2.0/24' }), '10.88.2.0/24');
    assert.notEqual(pickBlock(cfg, taken, { subnet: '10.88.1.0/24' }), '10.88.1.0/24');
    assert.equal(
      code(() => pickBlock(cfg, taken, { subnet: '10.88.1.0/24', exact: true })),
      'ERR_SUBNET_TAKEN',
    );
    const tiny = normalizeSpec({ name: 't', subnet: '10.99.0.0/24', vni: 1, hostPrefix: 25 });
    const full = new Map([
      ['10.99.0.0/25', 'a'],
      ['10.99.0.128/25', 'b'],
    ]);
    assert.equal(
      code(() => pickBlock(tiny, full)),
      'ERR_NO_FREE_SUBNET',
    );
    assert.equal(pickBlock(tiny, new Map([['10.99.0.0/25', 'a']])), '10.99.0.128/25');
  });

  it('checks a configuration and its conflicts with the stored ones', () => {
    assert.deepEqual({ ...cfg, created: '' }, { name: 'ov', subnet: '10.88.0.0/16', vni: 42, hostPrefix: 24, vxlanPort: 4789, created: '' });
    assert.equal(
      code(() => normalizeSpec({ name: 'x', subnet: '10.0.0.0/8', vni: 1, hostPrefix: 30 })),
      'ERR_INVALID_ARGUMENT',
    ); // 2^22 blocks
    assert.equal(
      code(() => normalizeSpec({ name: 'x', subnet: '10.0.0.0/8', vni: 1, color: 'red' } as never)),
      'ERR_INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => checkConflicts(normalizeSpec({ name: 'y', subnet: '10.89.0.0/16', vni: 42 }), [cfg])),
      'ERR_VNI_IN_USE',
    );
    assert.equal(
      code(() => checkConflicts(normalizeSpec({ name: 'y', subnet: '10.88.4.0/24', vni: 43 }), [cfg])),
      'ERR_SUBNET_OVERLAP',
    );
    assert.equal(
      code(() => checkConflicts(normalizeSpec({ name: 'ov', subnet: '10.89.0.0/16', vni: 43 }), [cfg])),
      'ERR_NETWORK_EXISTS',
    );
    assert.equal(
      code(() => checkConflicts(normalizeSpec({ name: 'y', subnet: '10.89.0.0/16', vni: 43 }), [cfg])),
      'no error',
    );
    assert.equal(overlaps('10.88.0.0/16', '10.88.255.0/24'), true);
    assert.equal(overlaps('10.88.0.0/16', '10.89.0.0/24'), false);
  });

  it('derives a stable, locally administered unicast VTEP MAC per network and host; device names per network', () => {
    const m = vtepMacOf('ov', 'host1');
    assert.equal(m, vtepMacOf('ov', 'host1'));
    assert.notEqual(m, vtepMacOf('ov', 'host2'));
    assert.notEqual(m, vtepMacOf('ov2', 'host1'));
    const first = parseInt(m.slice(0, 2), 16);
    assert.equal(first & 1, 0, 'unicast');
    assert.equal(first & 2, 2, 'locally administered');
    const n = overlayNames('ov');
    assert.match(n.bridge, /^nsov-[0-9a-f]{10}$/u);
    assert.equal(n.vxlan, `nsvx-${n.bridge.slice(5)}`);
  });

  it('takes the MTU from the underlay minus the VXLAN overhead unless configured', () => {
    const u = { address: '198.18.0.1', dev: 'eth0', index: 2, mtu: 1500 };
    assert.equal(overlayMtu(undefined, u), 1450);
    assert.equal(overlayMtu(1300, u), 1300);
    assert.equal(
      code(() => overlayMtu(undefined, { ...u, mtu: 100 })),
      'ERR_INVALID_MTU',
    );
  });

  it('firewall: the VXLAN device joins bridges and icc both ways with the bridge; overlays are never internal', () => {
    const els = networkElements(normalizeNetwork({ name: 'ov', bridge: 'nsov-1', subnet: '10.88.3.0/24', vxlan: 'nsvx-1' }));
    const keys = els.map((e) => `${e.set} ${JSON.stringify(e.element.key)}`);
    assert.ok(keys.includes('bridges "nsvx-1"'));
    assert.ok(keys.includes('icc ["nsov-1","nsvx-1"]'));
    assert.ok(keys.includes('icc ["nsvx-1","nsov-1"]'));
    assert.ok(keys.includes('masq_subnets "10.88.3.0/24"'));
    assert.ok(els.every((e) => e.element.comment === 'net:ov'));
    assert.equal(
      code(() => normalizeNetwork({ name: 'ov', bridge: 'nsov-1', subnet: '10.88.3.0/24', vxlan: 'nsvx-1', internal: true })),
      'ERR_INVALID_ARGUMENT',
    );
  });
});
