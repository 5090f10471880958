/**
 * ipvlan and vlan modes through the NetworkHost façade, and their drivers' kernel requests.
 *
 * The kernel these tests were written on has neither ipvlan nor 802.1Q links: there, each mode's
 * test proves that the request is the one iproute2 sends (the driver's link spec is the spec
 * test/unit/link-kinds.test.ts shows to encode byte for byte as `ip link add … type ipvlan|vlan`
 * does), that the kernel's refusal arrives as ERR_NOT_AVAILABLE and that nothing is left
 * behind, and then skips the traffic part with the kernel's reason. On a kernel that has them,
 * the same tests send real traffic.
 */
import * as assert from 'node:assert/strict';
import { NetworkHost, NsnetError, type LinkSpec } from '../../lib/index';
import { Links } from '../../lib/netlink/links';
import { rejectsWith } from '../helpers/assert';
import { ipJson, sh } from '../helpers/oracle';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { tcpReach } from '../helpers/traffic';
import { makeWorld } from '../helpers/world';

const subnet = '192.168.88.0/24';

/** Every RTM_NEWLINK spec sent through Netlink handles while `fn` runs. */
async function recordingAdds<T>(fn: () => Promise<T>): Promise<{ specs: LinkSpec[]; result: T | NsnetError }> {
  const specs: LinkSpec[] = [];
  const proto = Links.prototype as unknown as { add(spec: LinkSpec): Promise<unknown> };
  const add = proto.add;
  proto.add = function (this: unknown, spec: LinkSpec) {
    specs.push(spec);
    return add.call(this, spec);
  };
  try {
    return { specs, result: await fn().catch((e: unknown) => (e instanceof NsnetError ? e : Promise.reject(e))) };
  } finally {
    proto.add = add;
  }
}

describe('modes: ipvlan and vlan (NetworkHost)', function () {
  this.timeout(60000);
  useSandbox();

  let h: string;
  let ext: string;
  let host: NetworkHost;

  beforeEach(async () => {
    ({ h, ext, host } = await makeWorld({ prefix: 'k', hostIp: '10.98.0.1', extIp: '10.98.0.2', uplink: 'lan0' }));
    sh('ip', ['-n', ext, 'addr', 'add', '192.168.88.254/24', 'dev', 'eth0']);
  });

  it('ipvlan: the child is the one iproute2 asks for; a kernel without ipvlan says so, nothing is left; with it, traffic flows', async function () {
    const net = await host.createNetwork({
      name: 'ipv',
      driver: 'ipvlan',
      parent: 'lan0',
      mode: 'l2',
      subnet,
      gateway: '192.168.88.254',
      ipRange: '192.168.88.128/25',
    });
    assert.equal(net.driver, 'ipvlan');
    const c = await makeNetns('ki');
    const { specs, result } = await recordingAdds(() => host.connect('ipv', { id: 'i1', netns: c }));
    const child = specs.find((s) => s.kind === 'ipvlan');
    assert.ok(child, 'an ipvlan child was asked for');
    // The fields `ip link add link lan0 name eth0 type ipvlan mode l2 bridge` sends (link-kinds.test.ts: 'ipvlan-l2-bridge').
    assert.deepEqual(
      {
        kind: child.kind,
        parent: (child as { parent: unknown }).parent,
        mode: (child as { mode: unknown }).mode,
        flags: (child as { flags: unknown }).flags,
        name: child.name,
      },
      { kind: 'ipvlan', parent: 'lan0', mode: 'l2', flags: 'bridge', name: 'eth0' },
    );
    assert.equal((child as { mac?: string }).mac, undefined, "an ipvlan child has its parent's MAC");
    if (result instanceof NsnetError) {
      assert.equal(result.code, 'ERR_NOT_AVAILABLE', result.message);
      assert.match(result.message, /no ipvlan links/u);
      assert.deepEqual(
        ipJson(['link', 'show'], c).map((l: any) => l.ifname),
        ['lo'],
        'nothing in the container',
      );
      assert.deepEqual(await host.listEndpoints('ipv'), [], 'no record');
      assert.equal(
        ((await host.connect('ipv', { id: 'i1', netns: c }).catch((e: NsnetError) => e)) as NsnetError).code,
        'ERR_NOT_AVAILABLE',
        'the address was not kept: the same request fails the same way',
      );
      await host.removeNetwork('ipv');
      skipBecause(this, `the kernel has no ipvlan: ${result.message}`);
    }
    assert.equal(result.ipv4, '192.168.88.128/24');
    const eth0 = ipJson(['-d', 'link', 'show', 'eth0'], c)[0];
    assert.equal(eth0.linkinfo.info_kind, 'ipvlan');
    assert.ok(await tcpReach(c, ext, '192.168.88.128', 7301), 'the external peer reaches the container on the segment');
    await host.disconnect('ipv', 'i1');
    assert.deepEqual(
      ipJson(['link', 'show'], c).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('vlan: the sub-interface is the one iproute2 asks for; a kernel without 802.1Q says so at create, nothing is left; with it, traffic flows on the VLAN', async function () {
    const { specs, result } = await recordingAdds(() =>
      host.createNetwork({ name: 'v10', driver: 'vlan', parent: 'lan0.10', subnet, gateway: '192.168.88.254', ipRange: '192.168.88.128/25' }),
    );
    const sub = specs.find((s) => s.kind === 'vlan');
    assert.ok(sub, 'a vlan sub-interface was asked for');
    // The fields `ip link add link lan0 name lan0.10 type vlan id 10 protocol 802.1Q` sends (link-kinds.test.ts: 'vlan-10-802.1Q').
    assert.deepEqual(
      {
        kind: sub.kind,
        parent: (sub as { parent: unknown }).parent,
        id: (sub as { id: unknown }).id,
        protocol: (sub as { protocol: unknown }).protocol,
        name: sub.name,
      },
      { kind: 'vlan', parent: 'lan0', id: 10, protocol: '802.1Q', name: 'lan0.10' },
    );
    if (result instanceof NsnetError) {
      assert.equal(result.code, 'ERR_NOT_AVAILABLE', result.message);
      assert.equal(
        ipJson(['link', 'show'], h).some((l: any) => l.ifname === 'lan0.10'),
        false,
        'no sub-interface left',
      );
      assert.equal(
        (await host.listNetworks()).some((n) => n.name === 'v10'),
        false,
        'no record',
      );
      // The subnet was not kept either.
      await host.createNetwork({ name: 'other', subnet });
      skipBecause(this, `the kernel has no vlan links: ${result.message}`);
    }
    assert.equal(ipJson(['-d', 'link', 'show', 'lan0.10'], h)[0].ifalias, 'nsnet:v10');
    const c = await makeNetns('kv');
    const ep = await host.connect('v10', { id: 'v1', netns: c });
    assert.equal(ep.ipv4, '192.168.88.128/24');
    sh('ip', ['-n', ext, 'addr', 'del', '192.168.88.254/24', 'dev', 'eth0']);
    sh('ip', ['-n', ext, 'link', 'add', 'link', 'eth0', 'name', 'eth0.10', 'type', 'vlan', 'id', '10']);
    sh('ip', ['-n', ext, 'addr', 'add', '192.168.88.254/24', 'dev', 'eth0.10']);
    sh('ip', ['-n', ext, 'link', 'set', 'eth0.10', 'up']);
    assert.ok(await tcpReach(c, ext, '192.168.88.128', 7302), 'the external peer reaches the container on VLAN 10');
    await host.disconnect('v10', 'v1');
    await host.removeNetwork('v10');
    assert.equal(
      ipJson(['link', 'show'], h).some((l: any) => l.ifname === 'lan0.10'),
      false,
      'the sub-interface nsnet made is removed with the network',
    );
  });

  it('refuses bad configs with a coded error, changing nothing (any kernel)', async () => {
    const before = JSON.stringify([ipJson(['link', 'show'], h), await host.listNetworks()]);
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'ipvlan', subnet }), 'ERR_INVALID_ARGUMENT', /parent/);
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'ipvlan', parent: 'nope0', subnet }), 'ERR_PARENT_NOT_FOUND');
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'ipvlan', parent: 'lan0', mode: 'bridge', subnet }), 'ERR_INVALID_ARGUMENT', /ipvlan mode/);
    await rejectsWith(
      () => host.createNetwork({ name: 'b', driver: 'ipvlan', parent: 'lan0', ipvlanFlag: 'loud' as 'vepa', subnet }),
      'ERR_INVALID_ARGUMENT',
      /ipvlanFlag/,
    );
    await rejectsWith(
      () => host.createNetwork({ name: 'b', driver: 'ipvlan', parent: 'lan0', vlanId: 5, subnet }),
      'ERR_INVALID_ARGUMENT',
      /vlanId does not apply/,
    );
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'lan0', subnet }), 'ERR_INVALID_ARGUMENT', /vlanId/);
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'lan0', vlanId: 4095, subnet }), 'ERR_INVALID_ARGUMENT', /vlanId/);
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'nope0.7', subnet }), 'ERR_PARENT_NOT_FOUND');
    await rejectsWith(
      () => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'lan0', vlanId: 7, vlanProtocol: '802.1x' as '802.1Q', subnet }),
      'ERR_INVALID_ARGUMENT',
      /vlanProtocol/,
    );
    await rejectsWith(() => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'averylongname.77', subnet }), 'ERR_INVALID_NAME');
    await rejectsWith(
      () => host.createNetwork({ name: 'b', driver: 'vlan', parent: 'lan0', vlanId: 7, icc: false, subnet }),
      'ERR_INVALID_ARGUMENT',
      /icc does not apply/,
    );
    assert.equal(JSON.stringify([ipJson(['link', 'show'], h), await host.listNetworks()]), before, 'nothing changed');
  });
});
