/**
 * The overlay agent racing its own host (one host namespace, file control plane). Each test
 * forces one interleaving with gates (test/helpers/overlay-races.ts) — a kernel call or a
 * control-plane read of the agent's held at a chosen point while the host removes, re-creates
 * or repairs the network — and asserts that the agent reports no error, that nothing is left
 * behind or brought back, and what reconcile() reports. No test waits for a fixed time.
 *
 * Some gates reach into the agent's private netlink handle (`nl`) or network list (`provider`):
 * the only way to have one of its kernel calls or reads in flight at a chosen moment.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkHost, type OverlayNetworkRecord } from '../../lib/index';
import type { Netlink } from '../../lib/netlink/netlink';
import { OverlayAgent } from '../../lib/overlay/agent';
import type { ControlPlane } from '../../lib/overlay/controlplane';
import { FileControlPlane } from '../../lib/overlay/files';
import { FileStore } from '../../lib/store/filestore';
import { makeWorld, peerState, until } from '../helpers/overlay';
import { called, first, hold, intercept, type Intercepted } from '../helpers/overlay-races';
import { ipJson, sh } from '../helpers/oracle';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';

const SPEC = { name: 'ov', driver: 'overlay' as const, subnet: '10.88.0.0/16', vni: 42 };

describe('overlay agent racing its own host (file control plane)', function () {
  this.timeout(60000);
  useSandbox();
  let h: string;
  let dir: string;
  let real: FileControlPlane;
  let cps: Intercepted;
  let host: NetworkHost;
  let agent: OverlayAgent;
  let errors: Error[];

  const open = async (hostId: string, ttl = 15): Promise<FileControlPlane> => {
    const c = await FileControlPlane.open({ dir: path.join(dir, 'cp'), hostId, ttl, pollInterval: 50 });
    registerCleanup(() => c.close({ revoke: false }), `close ${hostId}`);
    return c;
  };
  const nsnetLinks = (): string[] =>
    ipJson(['link', 'show'], h)
      .map((l: { ifname: string }) => l.ifname)
      .filter((n: string) => /^ns(ov|vx)-/u.test(n));
  const nlOf = (a: OverlayAgent): Netlink => (a as unknown as { nl: Netlink }).nl;
  const hostsOf = async (cp: ControlPlane, network: string): Promise<string[]> =>
    (await cp.snapshot()).hosts
      .filter((r) => r.network === network)
      .map((r) => r.hostId)
      .sort();
  /** A link argument (name or index) names the device. */
  const isDev =
    (dev: string) =>
    (x: { dev?: string | number } | string | number | undefined): boolean => {
      const d = typeof x === 'object' ? x?.dev : x;
      return (
        d === dev ||
        (typeof d === 'number' && ipJson(['link', 'show'], h).some((l: { ifname: string; ifindex: number }) => l.ifname === dev && l.ifindex === d))
      );
    };

  beforeEach(async () => {
    h = (await makeWorld(1)).hosts[0]!;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ovr-'));
    const d = dir;
    registerCleanup(() => fs.rmSync(d, { recursive: true, force: true }), 'dir');
    real = await open('h1', 2); // (renewed every 2/3 s: a lost lease is noticed soon)
    cps = intercept(real);
    host = await NetworkHost.open({ stateDir: path.join(dir, 'state'), netns: h, controlPlane: cps.cp, underlay: { dev: 'eth0' }, reconcileInterval: 60000 });
    registerCleanup(() => host.close(), 'host');
    errors = [];
  });

  /** The network with a container and a peer host; the agent running, after its first pass. */
  async function running(): Promise<{ net: OverlayNetworkRecord; peer: FileControlPlane }> {
    const peer = await open('p1');
    const net = (await host.createNetwork(SPEC)) as OverlayNetworkRecord;
    await peer.join('ov', { underlay: '198.18.0.51', vtepMac: '02:00:00:00:00:51' });
    await host.connect('ov', { id: 'c1', netns: await makeNetns('c1') });
    agent = host.runAgent();
    agent.on('error', (e: Error) => errors.push(e));
    await agent.synced();
    assert.equal(peerState(h, net.vxlan).routes.length, 1, 'the peer is programmed');
    return { net, peer };
  }

  /** disconnect + removeNetwork, with the agent held at `gate` until removal waits for it or is done. */
  async function removeWhileHeld(gate: { reached: Promise<void>; open(): void }, vxlan: string): Promise<void> {
    await gate.reached;
    const nl = nlOf(agent);
    // The host removed the VXLAN device by itself (the unfixed code did, outside the agent's queue).
    const removedDevice = new Promise<void>((resolve) => {
      const original = nl.links.remove.bind(nl.links);
      const isVx = isDev(vxlan);
      nl.links.remove = async (link: string | number) => {
        const match = isVx(link);
        await original(link);
        if (match) resolve();
      };
    });
    const waits = called(agent, 'drop');
    const removal = (async () => {
      await host.disconnect('ov', 'c1');
      await host.removeNetwork('ov');
    })();
    // Open once the removal waits for the agent (drop) or removed the device without it.
    await first(removal, waits, removedDevice);
    gate.open();
    await removal;
  }

  async function assertRemovedCleanly(peer: FileControlPlane): Promise<void> {
    await agent.reconcile(); // a pass after the removal brings nothing back
    assert.deepEqual(nsnetLinks(), [], 'no device of the network is left or made again');
    assert.ok(!(await hostsOf(peer, 'ov')).includes('h1'), "the host's block is released and not claimed again");
    assert.deepEqual(
      errors.map((e) => `${(e as { code?: string }).code}: ${e.message}`),
      [],
      'the agent reports no error',
    );
  }

  it("removing a network while a full pass is reading its VXLAN device's routes: no error, nothing left", async () => {
    const { net, peer } = await running();
    const gate = hold(nlOf(agent).routes, 'list', isDev(net.vxlan));
    const pass = agent.reconcile();
    await removeWhileHeld(gate, net.vxlan);
    await pass;
    await assertRemovedCleanly(peer);
  });

  it("removing a network while a peer's arrival is being programmed on it: no error, nothing left", async () => {
    const { net, peer } = await running();
    const gate = hold(nlOf(agent).fdb, 'replace', isDev(net.vxlan));
    const p2 = await open('p2');
    await p2.join('ov', { underlay: '198.18.0.52', vtepMac: '02:00:00:00:00:52' }); // the watch brings it to the agent
    await removeWhileHeld(gate, net.vxlan);
    await assertRemovedCleanly(peer);
  });

  for (const alone of [false, true]) {
    it(`a full pass that listed the host's networks before a removal committed does not bring the network back (${alone ? 'last host: the definition goes' : 'another host stays'})`, async () => {
      const { net, peer } = await running();
      if (alone) await peer.leave('ov');
      // The pass reads the host's networks (ov still recorded) and is held before it acts on them.
      const gate = hold(agent as unknown as Record<string, unknown>, 'provider', () => true, 'after');
      const pass = agent.reconcile();
      await gate.reached;
      await host.disconnect('ov', 'c1');
      await host.removeNetwork('ov');
      gate.open();
      await pass;
      assert.deepEqual(nsnetLinks(), [], 'no device made again');
      assert.deepEqual(await hostsOf(peer, 'ov'), alone ? [] : ['p1'], 'the block is not claimed again');
      assert.equal((await peer.getNetwork('ov')) === undefined, alone);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
      void net;
    });
  }

  it('re-creating a network right after removing it: served again at once, no error', async () => {
    const { peer } = await running();
    const gate = hold(agent as unknown as Record<string, unknown>, 'provider', () => true, 'after');
    const pass = agent.reconcile();
    await gate.reached;
    await host.disconnect('ov', 'c1');
    await host.removeNetwork('ov');
    const again = (await host.createNetwork(SPEC)) as OverlayNetworkRecord;
    gate.open();
    await pass;
    const r = await agent.reconcile();
    assert.equal(r.peers.ov, 1, 'the new network is served with its peer');
    assert.equal(peerState(h, again.vxlan).routes.length, 1);
    assert.deepEqual(await hostsOf(peer, 'ov'), ['h1', 'p1']);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
  });

  it('another process of the host removes the network while a full pass acts on a list read before: nothing is claimed or made again', async () => {
    const { peer } = await running();
    await host.disconnect('ov', 'c1');
    // A second NetworkHost on the same state dir and host id: the CLI beside `nsnet agent`.
    const cli = await NetworkHost.open({ stateDir: path.join(dir, 'state'), netns: h, controlPlane: await open('h1'), underlay: { dev: 'eth0' } });
    registerCleanup(() => cli.close(), 'cli');
    const gate = hold(agent as unknown as Record<string, unknown>, 'provider', () => true, 'after');
    const pass = agent.reconcile();
    await gate.reached; // the list still has ov
    await cli.removeNetwork('ov');
    gate.open();
    await pass;
    await agent.reconcile(); // a list read after the removal
    assert.deepEqual(agent.networks(), []);
    assert.deepEqual(nsnetLinks(), [], 'no device made again');
    assert.deepEqual(await hostsOf(peer, 'ov'), ['p1'], 'the block is not claimed again');
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
  });

  it("a lease lost behind the agent's back, its recovery in flight during a full pass: the same block again, no error", async () => {
    const { net, peer } = await running();
    const recovery = hold(real as unknown as Record<string, unknown>, 'join'); // the control plane's next join: its recovery's
    const store = await FileStore.open({ dir: path.join(dir, 'cp') });
    await store.update((tx) => {
      for (const l of tx.list<{ hostId: string }>('leases')) if (l.value.hostId === 'h1') tx.delete('leases', l.key);
    });
    await store.close();
    await recovery.reached;
    await agent.reconcile(); // while the recovery is held: this host's record is missing
    await until('the record is published again', async () => (await hostsOf(peer, 'ov')).includes('h1'), 10000, 50);
    recovery.open();
    await recovery.finished;
    assert.equal((await peer.snapshot()).hosts.find((r) => r.hostId === 'h1')?.subnet, net.hostSubnet, 'the same block');
    await agent.reconcile();
    assert.equal(peerState(h, net.vxlan).routes.length, 1);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
  });

  it('reconcile() reports a VXLAN device that the running agent remade first, once', async () => {
    const { net } = await running();
    sh('ip', ['-n', h, 'link', 'del', net.vxlan]);
    await agent.reconcile(); // the agent gets there first
    assert.equal(peerState(h, net.vxlan).routes.length, 1, 'the agent remade the device and its peer');
    const r = await host.reconcile();
    assert.deepEqual(r.networks, ['ov'], 'reported although the agent repaired it');
    assert.deepEqual(r.problems, []);
    assert.deepEqual((await host.reconcile()).networks, [], 'reported once');
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
  });

  it('reconcile() while the agent is remaking the VXLAN device: one repair, reported, no error', async () => {
    const { net } = await running();
    sh('ip', ['-n', h, 'link', 'del', net.vxlan]);
    const gate = hold(nlOf(agent).links, 'add', (spec: { kind?: string }) => spec?.kind === 'vxlan');
    const pass = agent.reconcile();
    await gate.reached;
    const waits = called(agent, 'realize');
    const rec = host.reconcile();
    await first(rec, waits);
    gate.open();
    const [r] = await Promise.all([rec, pass]);
    assert.deepEqual(r.networks, ['ov']);
    assert.deepEqual(r.problems, []);
    assert.equal(ipJson(['link', 'show', net.vxlan], h).length, 1);
    assert.equal(peerState(h, net.vxlan).routes.length, 1);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
  });

  it('a VXLAN device deleted by hand while a change is applied: no error, the next pass remakes it and says so', async () => {
    const { net } = await running();
    const gate = hold(nlOf(agent).fdb, 'replace', isDev(net.vxlan));
    const repaired: unknown[] = [];
    agent.on('repaired', (e) => repaired.push(e));
    const p2 = await open('p2');
    await p2.join('ov', { underlay: '198.18.0.52', vtepMac: '02:00:00:00:00:52' });
    await gate.reached;
    sh('ip', ['-n', h, 'link', 'del', net.vxlan]);
    gate.open();
    await until(
      'the agent remade the device with both peers',
      () => ipJson(['link', 'show'], h).some((l: { ifname: string }) => l.ifname === net.vxlan) && peerState(h, net.vxlan).routes.length === 2,
      10000,
      50,
    );
    assert.deepEqual(repaired, [{ network: 'ov' }]);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
    assert.deepEqual((await host.reconcile()).networks, ['ov']);
  });
});

describe('overlay agent: events and snapshots racing (file control plane)', function () {
  this.timeout(60000);
  useSandbox();
  let h: string;
  let dir: string;

  beforeEach(async () => {
    h = (await makeWorld(1)).hosts[0]!;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ovr-'));
    const d = dir;
    registerCleanup(() => fs.rmSync(d, { recursive: true, force: true }), 'dir');
  });

  const open = async (hostId: string): Promise<FileControlPlane> => {
    const c = await FileControlPlane.open({ dir, hostId, pollInterval: 50 });
    registerCleanup(() => c.close({ revoke: false }), `close ${hostId}`);
    return c;
  };

  async function started(): Promise<{ cps: Intercepted; agent: OverlayAgent; errors: Error[]; peers: { network: string; added: string[] }[] }> {
    const cps = intercept(await open('h1'));
    await cps.cp.defineNetwork({ name: 'ov', subnet: '10.88.0.0/16', vni: 88 });
    const agent = await OverlayAgent.open({ controlPlane: cps.cp, netns: h, underlay: { dev: 'eth0' }, reconcileInterval: 60000 });
    registerCleanup(() => agent.close(), 'agent');
    const errors: Error[] = [];
    const peers: { network: string; added: string[] }[] = [];
    agent.on('error', (e: Error) => errors.push(e));
    agent.on('peers', (e: { network: string; added: string[] }) => peers.push(e));
    await agent.join('ov');
    agent.start();
    await agent.synced();
    return { cps, agent, errors, peers };
  }

  it('a host that appears while a full pass reads its snapshot is programmed by that pass', async () => {
    const { cps, agent, errors } = await started();
    const gate = cps.holdSnapshot();
    const pass = agent.reconcile();
    await gate.reached; // read at revision S, not yet used
    const p1 = await (await open('p1')).join('ov', { underlay: '198.18.0.51', vtepMac: '02:00:00:00:00:51' });
    await until('the watch delivered p1 to the agent', () => cps.delivered.some((e) => e.type === 'host-put' && e.record.hostId === 'p1'), 10000, 20);
    gate.open();
    const r = await pass;
    assert.equal(r.peers.ov, 1, 'the pass has p1');
    assert.ok(peerState(h, agent.networks()[0]!.vxlan).routes.some((x) => x.startsWith(`${p1.subnet} `)));
    assert.deepEqual(errors, []);
  });

  it("an event older than a join's snapshot does not bring back a host that has left", async () => {
    const { cps, agent, errors, peers } = await started();
    await cps.cp.defineNetwork({ name: 'ov2', subnet: '10.89.0.0/16', vni: 89 });
    cps.holding = true;
    const pc = await open('p1');
    const p1 = await pc.join('ov2', { underlay: '198.18.0.51', vtepMac: '02:00:00:00:00:51' });
    // Both changes reach the agent's watch (one poll each) and are kept back.
    await until("p1's arrival seen by the watch", () => cps.kept().some((e) => e.type === 'host-put' && e.record.hostId === 'p1'), 10000, 20);
    await pc.leave('ov2');
    await until("p1's leaving seen by the watch", () => cps.kept().some((e) => e.type === 'host-delete' && e.subnet === p1.subnet), 10000, 20);
    await agent.join('ov2'); // its snapshot: p1 is gone
    // Now p1's (old) arrival reaches the agent, without its leaving: anything it queues runs before the pass below.
    cps.flush(cps.kept().findIndex((e) => e.type === 'host-put') + 1);
    await agent.reconcile();
    cps.holding = false;
    cps.flush();
    assert.ok(!peers.some((e) => e.network === 'ov2' && e.added.includes(p1.subnet)), `p1 was never programmed: ${JSON.stringify(peers)}`);
    assert.deepEqual(errors, []);
  });
});
