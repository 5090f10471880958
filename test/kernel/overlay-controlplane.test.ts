/**
 * The overlay control plane's contract, against both implementations: network configurations
 * (conflicts refused, nothing stored), block claims (never two hosts on one block, even when
 * many join at once), leases (a crashed host's records expire, a clean leave releases at once,
 * a lost lease is recovered), watches (events after the listed revision, resync after
 * compaction). etcd runs in a namespace of its own, reached through a veth.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { ControlPlane, ControlPlaneEvent, HostRecord } from '../../lib/overlay/controlplane';
import { vtepMacOf } from '../../lib/overlay/controlplane';
import { EtcdControlPlane } from '../../lib/overlay/etcd';
import { FileControlPlane } from '../../lib/overlay/files';
import { FileStore } from '../../lib/store/filestore';
import { rejectsWith } from '../helpers/assert';
import { EtcdServer, makeWorld, until } from '../helpers/overlay';
import { called, first, hold } from '../helpers/overlay-races';
import { registerCleanup, useSandbox } from '../helpers/sandbox';

const vtep = (host: string, i = 1): { underlay: string; vtepMac: string } => ({ underlay: `198.18.1.${i}`, vtepMac: vtepMacOf('n', host) });

function contract(kind: 'etcd' | 'files'): void {
  describe(`overlay control plane: ${kind}`, function () {
    this.timeout(60000);
    useSandbox();
    let etcd: EtcdServer | undefined;
    let dir: string;
    let prefix = 0;
    let open: (hostId: string, ttl?: number) => Promise<ControlPlane>;

    before(async () => {
      if (kind === 'etcd') {
        const world = await makeWorld(0, { local: true });
        etcd = new EtcdServer(world.wire);
        await etcd.start();
      }
    });

    beforeEach(() => {
      // Each test its own key space.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-cp-'));
      const d = dir;
      const p = `/t${prefix++}/`;
      registerCleanup(() => fs.rmSync(d, { recursive: true, force: true }), 'cp dir');
      open = async (hostId, ttl = 15) => {
        const cp =
          kind === 'etcd'
            ? await EtcdControlPlane.open({ endpoints: [etcd!.url], hostId, ttl, prefix: p })
            : await FileControlPlane.open({ dir: d, hostId, ttl, pollInterval: 50 });
        registerCleanup(() => cp.close({ revoke: false }), `close ${hostId}`);
        return cp;
      };
    });

    it('stores a configuration once; refuses a clashing one (VNI, overlap, same name) and bad input, storing nothing', async () => {
      const cp = await open('a');
      const cfg = await cp.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
      assert.deepEqual({ ...cfg, created: '' }, { name: 'n', subnet: '10.70.0.0/16', vni: 70, hostPrefix: 24, vxlanPort: 4789, created: '' });
      assert.deepEqual(await cp.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 }), cfg, 'the same again: the stored one');
      await rejectsWith(cp.defineNetwork({ name: 'n', subnet: '10.71.0.0/16', vni: 71 }), 'ERR_NETWORK_EXISTS');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 70 }), 'ERR_VNI_IN_USE');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.70.128.0/17', vni: 72 }), 'ERR_SUBNET_OVERLAP');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.0.0.0/8', vni: 72 }), 'ERR_SUBNET_OVERLAP');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.1/16', vni: 72 }), 'ERR_INVALID_CIDR');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 0 }), 'ERR_INVALID_VNI');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 2 ** 24 }), 'ERR_INVALID_VNI');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 72, vxlanPort: 0 }), 'ERR_INVALID_PORT');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 72, hostPrefix: 8 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: 'fd00::/64', vni: 72 }), 'ERR_INVALID_CIDR');
      await rejectsWith(cp.defineNetwork({ name: 'bad name', subnet: '10.72.0.0/16', vni: 72 }), 'ERR_INVALID_NAME');
      await rejectsWith(cp.defineNetwork({ name: 'm', subnet: '10.72.0.0/16', vni: 72, mtu: 20 }), 'ERR_INVALID_MTU');
      assert.equal(await cp.getNetwork('m'), undefined);
      assert.deepEqual(
        (await cp.snapshot()).networks.map((n) => n.name),
        ['n'],
      );
    });

    it('claims a block per host: the same again on re-join and after a restart, the one asked for when free', async () => {
      const a = await open('a');
      await a.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
      await rejectsWith(a.join('nope', vtep('a')), 'ERR_NETWORK_NOT_FOUND');
      const r1 = await a.join('n', vtep('a'), { subnet: '10.70.9.0/24' });
      assert.deepEqual(r1, { network: 'n', hostId: 'a', subnet: '10.70.9.0/24', ...vtep('a') });
      assert.deepEqual(await a.join('n', vtep('a')), r1);
      const moved = await a.join('n', vtep('a', 7));
      assert.equal(moved.subnet, r1.subnet, 'a new underlay address keeps the block');
      assert.equal(moved.underlay, '198.18.1.7');
      const again = await open('a'); // the same host after a restart
      assert.equal((await again.join('n', vtep('a'))).subnet, r1.subnet);
      const b = await open('b');
      await rejectsWith(b.join('n', vtep('b'), { subnet: '10.70.9.0/24', exact: true }), 'ERR_SUBNET_TAKEN');
      const rb = await b.join('n', vtep('b'), { subnet: '10.70.9.0/24' });
      assert.notEqual(rb.subnet, r1.subnet, 'taken: another one');
      await rejectsWith(b.join('n', vtep('b'), { subnet: '10.71.0.0/24' }), 'ERR_INVALID_CIDR');
      const hosts = (await b.snapshot()).hosts.map((h) => `${h.hostId} ${h.subnet}`).sort();
      assert.deepEqual(hosts, [`a ${r1.subnet}`, `b ${rb.subnet}`]);
    });

    it('never gives one block to two hosts, with 40 hosts racing for 32 blocks', async () => {
      const admin = await open('admin');
      await admin.defineNetwork({ name: 'tiny', subnet: '10.99.0.0/24', hostPrefix: 29, vni: 99 });
      const cps = await Promise.all(Array.from({ length: 40 }, (_, i) => open(`h${i}`)));
      const results = await Promise.allSettled(cps.map((cp, i) => cp.join('tiny', vtep(`h${i}`, i + 1))));
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code: string }).code] : []));
      assert.equal(won.length, 32);
      assert.equal(new Set(won.map((r) => r.subnet)).size, 32, 'every block once');
      assert.deepEqual([...new Set(lost)], ['ERR_NO_FREE_SUBNET']);
      const snap = await admin.snapshot();
      assert.equal(snap.hosts.length, 32);
      assert.equal(new Set(snap.hosts.map((h) => h.subnet)).size, 32);
      await rejectsWith(admin.removeNetwork('tiny'), 'ERR_NETWORK_IN_USE');
      await Promise.all(cps.map((cp) => cp.close()));
      assert.equal((await admin.snapshot()).hosts.length, 0, 'clean leaves release every block');
      await admin.removeNetwork('tiny');
      await rejectsWith(admin.removeNetwork('tiny'), 'ERR_NETWORK_NOT_FOUND');
    });

    it('watches from a listed revision: a clean leave is seen at once, a crash after the TTL', async () => {
      const obs = await open('obs');
      await obs.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
      const a = await open('a', 2);
      const b = await open('b', 2);
      const ra = await a.join('n', vtep('a'));
      const snap = await obs.snapshot();
      const events: ControlPlaneEvent[] = [];
      const w = obs.watch(snap.revision, (e) => events.push(e));
      registerCleanup(() => w.close(), 'watch');
      const rb: HostRecord = await b.join('n', vtep('b'));
      await until('host-put of b', () => events.find((e) => e.type === 'host-put' && e.record.hostId === 'b'));
      assert.ok(!events.some((e) => e.type === 'host-put' && e.record.hostId === 'a'), 'nothing from before the revision');
      let t = Date.now();
      await a.close(); // revoke
      await until('host-delete of a', () => events.find((e) => e.type === 'host-delete' && e.subnet === ra.subnet), 3000, 20);
      assert.ok(Date.now() - t < 1500, `a clean leave is seen at once (${Date.now() - t} ms)`);
      t = Date.now();
      await b.close({ revoke: false }); // as if it crashed
      await until('host-delete of b', () => events.find((e) => e.type === 'host-delete' && e.subnet === rb.subnet), 8000, 50);
      assert.ok(Date.now() - t >= 1000, `not before the lease could expire (${Date.now() - t} ms)`);
      assert.ok(!events.some((e) => e.type === 'resync'));
    });

    /** Ends the host's lease behind its back (as if it had expired). */
    async function loseLease(): Promise<void> {
      if (kind === 'etcd') {
        const raw = new Etcd3({ hosts: etcd!.url });
        try {
          const kvs = await raw
            .getAll()
            .prefix(`/t${prefix - 1}/overlay/subnets/`)
            .exec();
          await raw.leaseClient.leaseRevoke({ ID: kvs.kvs[0]!.lease });
        } finally {
          raw.close();
        }
      } else {
        const store = await FileStore.open({ dir });
        await store.update((tx) => {
          for (const k of tx.keys('leases')) tx.delete('leases', k);
        });
        await store.close();
      }
    }

    /** A host on network n, its 'error' events collected. */
    async function member(ttl: number): Promise<{ a: ControlPlane; errors: Error[] }> {
      const a = await open('a', ttl);
      await a.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
      await a.join('n', vtep('a'));
      const errors: Error[] = [];
      a.on('error', (e) => errors.push(e));
      return { a, errors };
    }

    it('recovers a lease lost behind its back: the same block is claimed again', async () => {
      const a = await open('a', 2);
      await a.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
      const r = await a.join('n', vtep('a'));
      const lost = new Promise<void>((res) => a.on('lease-lost', () => res()));
      const back = new Promise<void>((res) => a.on('lease-recovered', () => res()));
      await loseLease();
      await lost;
      await back;
      const snap = await a.snapshot();
      assert.deepEqual(snap.hosts, [r]);
    });

    for (const remove of [false, true]) {
      it(`does not claim again a block left${remove ? ' (and its network removed)' : ''} while the lost lease was being recovered, and reports no error`, async () => {
        const { a, errors } = await member(2);
        const gate = hold(a as unknown as Record<string, unknown>, 'join'); // the recovery's join
        await loseLease();
        await gate.reached;
        const waits = called(a, 'leaving');
        const leaving = (async () => {
          await a.leave('n');
          if (remove) await a.removeNetwork('n');
        })();
        // Open once the leave waits for the recovery, or is done without it.
        await first(leaving, waits);
        gate.open();
        await leaving;
        await gate.finished;
        const obs = await open('obs');
        assert.deepEqual(
          errors.map((e) => e.message),
          [],
        );
        assert.deepEqual((await obs.snapshot()).hosts, [], 'the block stays released');
        assert.equal((await obs.getNetwork('n')) === undefined, remove);
      });
    }

    it('reports no error for a lease recovery that close() cut short, and claims nothing after it', async () => {
      const { a, errors } = await member(2);
      const gate = hold(a as unknown as Record<string, unknown>, 'join'); // the recovery's join
      await loseLease();
      await gate.reached;
      await a.close();
      gate.open();
      await gate.finished;
      const obs = await open('obs');
      assert.deepEqual((await obs.snapshot()).hosts, []);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
    });

    it('reports no error for a lease renewal that close() cut short', async () => {
      const { a, errors } = await member(2);
      const gate = hold(a as unknown as Record<string, unknown>, 'renew'); // the keep-alive's next renewal
      await gate.reached;
      await a.close();
      gate.open();
      await gate.finished;
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
    });

    if (kind === 'etcd') {
      it('ends a watch whose history was compacted with a resync event', async () => {
        const a = await open('a');
        await a.defineNetwork({ name: 'n', subnet: '10.70.0.0/16', vni: 70 });
        const old = (await a.snapshot()).revision;
        await a.join('n', vtep('a'));
        await a.leave('n');
        const raw = new Etcd3({ hosts: etcd!.url });
        try {
          const rev = Number((await raw.kv.range({ key: Buffer.from('/') })).header.revision);
          await raw.kv.compact({ revision: rev, physical: true });
        } finally {
          raw.close();
        }
        const events: ControlPlaneEvent[] = [];
        const w = a.watch(old, (e) => events.push(e));
        registerCleanup(() => w.close(), 'watch');
        const e = (await until('resync', () => events.find((x) => x.type === 'resync'), 5000))!;
        assert.equal(e.type === 'resync' && e.reason, 'compacted', e.type === 'resync' ? e.error?.message : '');
      });

      it('reports an unreachable etcd as ERR_CONTROL_PLANE_UNAVAILABLE within the request timeout', async () => {
        const cp = await EtcdControlPlane.open({ endpoints: ['http://198.18.0.253:2379'], hostId: 'x', requestTimeout: 500 });
        registerCleanup(() => cp.close(), 'close x');
        const t = Date.now();
        await rejectsWith(cp.snapshot(), 'ERR_CONTROL_PLANE_UNAVAILABLE');
        assert.ok(Date.now() - t < 3000);
      });
    }
  });
}

contract('files');
contract('etcd');
