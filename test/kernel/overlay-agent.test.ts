/**
 * The overlay agent and driver on one host namespace (in process, file control plane): bad
 * configuration fails with a code and changes nothing; a full pass repairs hand-made damage to
 * the peers and leaves other routes alone; devices are adopted after a restart and remade
 * when their settings changed; leave removes everything.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { overlayNames } from '../../lib/overlay/devices';
import { OverlayAgent } from '../../lib/overlay/agent';
import { vtepMacOf } from '../../lib/overlay/controlplane';
import { FileControlPlane } from '../../lib/overlay/files';
import { rejectsWith } from '../helpers/assert';
import { makeWorld, peerState } from '../helpers/overlay';
import { ipJson, sh } from '../helpers/oracle';
import { registerCleanup, useSandbox } from '../helpers/sandbox';

describe('overlay agent (one host, file control plane)', function () {
  this.timeout(60000);
  useSandbox();
  let h: string;
  let dir: string;

  beforeEach(async () => {
    h = (await makeWorld(1)).hosts[0]!;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ova-'));
    const d = dir;
    registerCleanup(() => fs.rmSync(d, { recursive: true, force: true }), 'dir');
  });

  async function cp(hostId: string): Promise<FileControlPlane> {
    const c = await FileControlPlane.open({ dir, hostId, pollInterval: 50 });
    registerCleanup(() => c.close({ revoke: false }), `close ${hostId}`);
    return c;
  }
  async function agent(c: FileControlPlane, underlay: { dev: string } | { address: string } = { dev: 'eth0' }): Promise<OverlayAgent> {
    const a = await OverlayAgent.open({ controlPlane: c, netns: h, underlay, reconcileInterval: 60000 });
    registerCleanup(() => a.close(), 'agent');
    return a;
  }
  const nsnetLinks = (): string[] =>
    ipJson(['link', 'show'], h)
      .map((l: { ifname: string }) => l.ifname)
      .filter((n: string) => /^ns(ov|vx)-/u.test(n));

  it('refuses an underlay that is missing with ERR_UNDERLAY_NOT_FOUND', async () => {
    const c = await cp('h1');
    await rejectsWith(OverlayAgent.open({ controlPlane: c, netns: h, underlay: { dev: 'nope0' } }), 'ERR_UNDERLAY_NOT_FOUND');
    await rejectsWith(OverlayAgent.open({ controlPlane: c, netns: h, underlay: { address: '198.18.0.77' } }), 'ERR_UNDERLAY_NOT_FOUND');
    await rejectsWith(OverlayAgent.open({ controlPlane: c, netns: h, underlay: { dev: 'eth0', address: '198.18.0.77' } }), 'ERR_UNDERLAY_NOT_FOUND');
    await rejectsWith(OverlayAgent.open({ controlPlane: c, netns: h, underlay: { dev: 'lo' } }), 'ERR_UNDERLAY_NOT_FOUND');
    const a = await agent(c, { address: '198.18.0.1' });
    assert.equal(a.underlay.dev, 'eth0');
    assert.equal(a.underlay.mtu, 1500);
  });

  it('refuses a VNI another device of the host uses with ERR_VNI_IN_USE, leaving no claim and no device', async () => {
    const c = await cp('h1');
    await c.defineNetwork({ name: 'ov', subnet: '10.88.0.0/16', vni: 77 });
    sh('ip', ['-n', h, 'link', 'add', 'other0', 'type', 'vxlan', 'id', '77', 'dstport', '4789', 'local', '198.18.0.1']);
    const a = await agent(c);
    await rejectsWith(a.join('ov'), 'ERR_VNI_IN_USE');
    assert.deepEqual((await c.snapshot()).hosts, [], 'the block was given back');
    assert.deepEqual(nsnetLinks(), []);
    await rejectsWith(a.join('nope'), 'ERR_NETWORK_NOT_FOUND');
  });

  it('makes the devices (configured MTU), repairs the peers in a full pass and leaves foreign routes alone', async () => {
    const c = await cp('h1');
    await c.defineNetwork({ name: 'ov', subnet: '10.88.0.0/16', vni: 88, mtu: 1300 });
    const a = await agent(c);
    const d = await a.join('ov');
    assert.equal(d.mtu, 1300);
    assert.equal(ipJson(['link', 'show', d.vxlan], h)[0].mtu, 1300);
    assert.equal(d.vtepMac, vtepMacOf('ov', 'h1'));
    // Two other hosts, published by their own control-plane handles.
    const p1 = await (await cp('p1')).join('ov', { underlay: '198.18.0.51', vtepMac: '02:00:00:00:00:51' });
    const p2 = await (await cp('p2')).join('ov', { underlay: '198.18.0.52', vtepMac: '02:00:00:00:00:52' });
    let r = await a.reconcile();
    assert.equal(r.peers.ov, 2);
    assert.deepEqual(r.changes.ov!.added.sort(), [p1.subnet, p2.subnet].sort());
    // Damage: a route gone, a neighbour wrong, a stale FDB entry, a stale nsnet route; plus a foreign route.
    sh('ip', ['-n', h, 'route', 'del', p1.subnet, 'dev', d.vxlan]);
    sh('ip', ['-n', h, 'neigh', 'replace', p2.subnet.split('/')[0]!, 'lladdr', '02:00:00:00:00:99', 'dev', d.vxlan, 'nud', 'permanent']);
    sh('bridge', ['-n', h, 'fdb', 'add', '02:00:00:00:00:77', 'dev', d.vxlan, 'dst', '198.18.0.77', 'self', 'permanent']);
    sh('ip', ['-n', h, 'route', 'add', '10.88.200.0/24', 'via', '10.88.200.0', 'dev', d.vxlan, 'onlink', 'proto', '110']);
    sh('ip', ['-n', h, 'route', 'add', '192.0.2.0/24', 'via', '10.88.201.0', 'dev', d.vxlan, 'onlink']);
    r = await a.reconcile();
    assert.deepEqual(r.changes.ov!.removed, ['10.88.200.0/24']);
    const s = peerState(h, d.vxlan);
    assert.deepEqual(
      s.routes.sort(),
      [
        `${p1.subnet} via ${p1.subnet.split('/')[0]} onlink proto 110`,
        `${p2.subnet} via ${p2.subnet.split('/')[0]} onlink proto 110`,
        '192.0.2.0/24 via 10.88.201.0 onlink proto boot',
      ].sort(),
    );
    assert.deepEqual(s.fdb.sort(), ['02:00:00:00:00:51 dst 198.18.0.51 permanent', '02:00:00:00:00:52 dst 198.18.0.52 permanent']);
    assert.ok(s.neighs.includes(`${p2.subnet.split('/')[0]} 02:00:00:00:00:52 PERMANENT`));
  });

  it('follows the watch: a peer that moves is re-pointed, one that leaves is withdrawn', async () => {
    const c = await cp('h1');
    await c.defineNetwork({ name: 'ov', subnet: '10.88.0.0/16', vni: 88 });
    const a = await agent(c);
    const d = await a.join('ov');
    a.start();
    await a.synced();
    const pc = await cp('p1');
    const p1 = await pc.join('ov', { underlay: '198.18.0.51', vtepMac: '02:00:00:00:00:51' });
    const seen = (f: string): Promise<void> =>
      new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no ${f}`)), 5000);
        const check = (): void => {
          if (peerState(h, d.vxlan).fdb.includes(f)) {
            clearTimeout(t);
            res();
          } else setTimeout(check, 50);
        };
        check();
      });
    await seen('02:00:00:00:00:51 dst 198.18.0.51 permanent');
    await pc.join('ov', { underlay: '198.18.0.61', vtepMac: '02:00:00:00:00:51' });
    await seen('02:00:00:00:00:51 dst 198.18.0.61 permanent');
    await pc.leave('ov');
    const empty = (): boolean => {
      const s = peerState(h, d.vxlan);
      return !s.routes.length && !s.neighs.length && !s.fdb.length;
    };
    for (let i = 0; i < 100 && !empty(); i++) await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(peerState(h, d.vxlan), { routes: [], neighs: [], fdb: [] });
    void p1;
  });

  it('adopts its devices after a restart, remakes them when the underlay changed, and removes them on leave', async () => {
    const c = await cp('h1');
    await c.defineNetwork({ name: 'ov', subnet: '10.88.0.0/16', vni: 88 });
    const d1 = await (await agent(c)).join('ov');
    const idx = ipJson(['link', 'show', d1.vxlan], h)[0].ifindex;
    await c.close(); // a clean leave: the block is released, the devices stay
    const c2 = await cp('h1');
    const a2 = await agent(c2);
    const d2 = await a2.join('ov');
    assert.equal(d2.subnet, d1.subnet, 'the block its device carries is claimed again');
    assert.equal(ipJson(['link', 'show', d1.vxlan], h)[0].ifindex, idx, 'the device is adopted');
    sh('ip', ['-n', h, 'addr', 'add', '198.18.0.9/24', 'dev', 'eth0']);
    const a3 = await agent(c2, { address: '198.18.0.9' });
    const d3 = await a3.join('ov');
    assert.equal(d3.subnet, d1.subnet);
    const [vx] = ipJson(['-d', 'link', 'show', d1.vxlan], h);
    assert.equal(vx.linkinfo.info_data.local, '198.18.0.9');
    assert.equal((await c2.snapshot()).hosts[0]!.underlay, '198.18.0.9');
    await a3.leave('ov');
    assert.deepEqual(nsnetLinks(), []);
    assert.deepEqual((await c2.snapshot()).hosts, []);
    assert.deepEqual(overlayNames('ov'), { bridge: d1.bridge, vxlan: d1.vxlan });
  });
});
